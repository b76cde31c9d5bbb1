/**
 * Starts one real PostgreSQL server for the whole test run (or uses DATABASE_URL), and hands its URL to
 * the test files through `inject('databaseUrl')`. Each file creates its own database on it.
 */
import type { TestProject } from 'vitest/node';
import { EmbeddedPostgresError, startPostgres, type RunningPostgres } from './packages/adapter-postgres/scripts/embedded-pg.js';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
  }
}

let server: RunningPostgres | undefined;

export async function setup(project: TestProject): Promise<void> {
  // Only when the run may include a file that needs PostgreSQL: `vitest run packages/core` starts nothing.
  const filters = process.argv.slice(2).filter((a) => !a.startsWith('-') && a !== 'run' && !a.endsWith('vitest') && !a.endsWith('vitest.mjs'));
  const needed = filters.length === 0 || filters.some((f) => /adapter-postgres|adapter-supabase|transport-cloud-api|examples/.test(f));
  if (!needed) {
    project.provide('databaseUrl', '');
    return;
  }
  try {
    server = await startPostgres();
  } catch (error) {
    // The message says what happened and what to do; a stack through vitest's internals would only bury it.
    if (error instanceof EmbeddedPostgresError) error.stack = `${error.name}: ${error.message}`;
    throw error;
  }
  project.provide('databaseUrl', server.url);
}

export async function teardown(): Promise<void> {
  await server?.stop();
}
