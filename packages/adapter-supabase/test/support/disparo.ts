/**
 * A test Supabase project holding Disparo: the migration this package ships (rendered for the schema),
 * the schema exposed to the PostgREST stand-in, Supabase's roles and grants, real supabase-js clients,
 * and a raw reader of the tables for the conformance suite.
 */
import type { StoreInspector } from '@disparo/core/testing';
import { createSupabaseStore, supabaseMigration, type SupabaseStore, type SupabaseStoreOptions } from '../../src/index.js';
import { inspector } from '../../../adapter-postgres/test/support/inspector.js';
import { startTestSupabase, type TestSupabase } from './supabase.js';

export interface DisparoSupabase {
  sb: TestSupabase;
  schema: string;
  /** A store on a new service_role client (its own HTTP connections, so its own database connections through the stand-in). */
  store(options?: SupabaseStoreOptions): SupabaseStore;
  /** The raw reader: plain SQL on the tables as their owner. */
  raw: StoreInspector & { query(text: string, params?: unknown[]): Promise<any[]> };
  /** Empties every table of the schema (not the migration bookkeeping). */
  truncate(): Promise<void>;
  stop(): Promise<void>;
}

export async function startDisparoSupabase(name: string, options: { schema?: string; maxRows?: number; databaseUrl?: string; setupSql?: string; exposeAlso?: string[] } = {},): Promise<DisparoSupabase> {
  const schema = options.schema ?? 'disparo';
  const sb = await startTestSupabase(name, {
    setupSql: supabaseMigration({ schema }) + (options.setupSql ?? ''),
    schemas: ['public', schema, ...(options.exposeAlso ?? [])],
    ...(options.maxRows !== undefined ? { maxRows: options.maxRows } : {}),
    ...(options.databaseUrl !== undefined ? { databaseUrl: options.databaseUrl } : {}),
  });
  const { rows } = await sb.sql<{ t: string }>(
    `SELECT format('%I.%I', $1::text, relname) AS t FROM pg_class WHERE relnamespace = $1::regnamespace AND relkind = 'r'
       AND relname NOT IN ('schema_migrations', 'schema_functions') ORDER BY 1`,
    [schema],
  );
  const tables = rows.map((r) => r.t).join(', ');
  return {
    sb,
    schema,
    store: (o = {}) => createSupabaseStore(sb.client(sb.serviceKey), { schema, ...(options.maxRows !== undefined ? { maxRows: options.maxRows } : {}), ...o }),
    raw: inspector({ query: (text, params) => sb.sql(text, params) }, schema),
    truncate: async () => {
      await sb.sql(`TRUNCATE ${tables} RESTART IDENTITY`);
    },
    stop: () => sb.stop(),
  };
}
