import { functions, migrations } from '@disparo/adapter-postgres/calls';
import { schemaName } from './options.js';

/** The search_path every Disparo function runs with on Supabase (pg_temp last, as PostgreSQL advises for SECURITY DEFINER). */
export const FUNCTION_SEARCH_PATH = 'pg_catalog, pg_temp';

const TAG = '$disparo_sql$';
const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;
const literal = (text: string) => `'${text.replaceAll("'", "''")}'`;
const quoted = (sql: string, what: string) => {
  if (sql.includes(TAG)) throw new Error(`${what} contains ${TAG}, the quote the Supabase migration puts around it`);
  return `${TAG}\n${sql.trimEnd()}\n${TAG}`;
};

/**
 * The Supabase migration: @disparo/adapter-postgres's tables and functions (its `sql/*.sql` migrations
 * and `sql/functions/*.sql`, the very text `migrate()` runs, with the schema filled in), recorded in
 * the same bookkeeping tables, and then locked to the service role:
 *
 * - each numbered migration runs once (`schema_migrations`), each function is created when new or
 *   changed (its hash in `schema_functions`, every earlier signature of its name dropped first), and a
 *   function an earlier version shipped and this one does not is dropped; so the file applies twice
 *   cleanly, a newer one applies on top of an older one, and `migrate()` of the same package version
 *   finds nothing to do;
 * - every function `SECURITY DEFINER` with `search_path = pg_catalog, pg_temp`; EXECUTE for
 *   `service_role` on the store's functions, for nobody on the private helpers (`_*`), revoked from
 *   `PUBLIC`, `anon` and `authenticated`;
 * - every table with row level security on and no policy, no privilege for `anon`/`authenticated`
 *   (Supabase's default privileges grant them everything new in `public`; RLS alone would answer them
 *   an empty list, not an error), SELECT for `service_role` (reading; writes go through the functions);
 *   USAGE on the schema for `service_role` only;
 * - `NOTIFY pgrst, 'reload schema'` at the end.
 *
 * Helpers live in `pg_temp` for the length of the session and are dropped at the end: nothing but the
 * store's own objects is left in the schema. Apply it in one transaction (`supabase db push` and the SQL
 * editor do; `psql -1 -f`).
 */
export function supabaseMigration(options: { schema?: string } = {}): string {
  const schema = schemaName(options.schema ?? 'disparo', 'supabaseMigration options');
  const s = ident(schema);
  const ns = `(SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = ${literal(schema)})`;
  const lock = `PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext(${literal(`disparo.migrate:${schema}`)}));`;
  const latest = migrations.length;
  const fill = (sql: string) => sql.replaceAll(':DISPARO_SCHEMA', s);
  const out: string[] = [];
  const add = (...lines: string[]) => out.push(...lines);

  add(
    `-- Disparo's store on Supabase, in schema ${s}: @disparo/adapter-supabase.`,
    '-- DO NOT EDIT: generated at build time from the SQL of @disparo/adapter-postgres (sql/*.sql for the',
    '-- tables, sql/functions/*.sql for the functions, one per file) by scripts/generate-migration.ts.',
    '--',
    '-- Apply with `supabase db push` (this file in supabase/migrations/) or paste it into the SQL editor.',
    '-- Applying it again changes nothing; a newer version applied on top adds the new tables and replaces',
    '-- the functions whose SQL changed. Tables and functions are recorded in schema_migrations and',
    '-- schema_functions, as @disparo/adapter-postgres migrate() records them.',
    '--',
    '-- Access: only the service_role key reaches the store. Every function is SECURITY DEFINER with a fixed',
    `-- search_path (${FUNCTION_SEARCH_PATH}); EXECUTE for service_role on the store's functions, for nobody`,
    '-- on the private helpers (_*); tables have row level security on and no policy, and no privilege for',
    '-- anon or authenticated.',
    '--',
    "-- One step is yours: expose the schema to the Data API. Dashboard > Project Settings > Data API >",
    `-- Exposed schemas: add ${schema}. Or in SQL (keep the schemas already listed):`,
    `--   ALTER ROLE authenticator SET pgrst.db_schemas = 'public, graphql_public, ${schema}';`,
    "--   NOTIFY pgrst, 'reload config';",
    `-- Local development (supabase start): supabase/config.toml, [api] schemas = ["public", "graphql_public", "${schema}"].`,
    '',
    `CREATE SCHEMA IF NOT EXISTS ${s};`,
    `CREATE TABLE IF NOT EXISTS ${s}.schema_migrations (id integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());`,
    '',
    `-- A schema migrated by a newer version must not be touched by this one.`,
    `DO $disparo$`,
    `DECLARE v integer := (SELECT coalesce(max(id), 0) FROM ${s}.schema_migrations);`,
    `BEGIN`,
    `  IF v > ${latest} THEN`,
    `    RAISE EXCEPTION 'Schema % is at version %, newer than this migration (version ${latest}).', ${literal(schema)}, v`,
    `      USING HINT = 'A newer @disparo/adapter-supabase migrated it: apply that version''s migration, and upgrade the workers.';`,
    `  END IF;`,
    `END`,
    `$disparo$;`,
    '',
    `CREATE OR REPLACE FUNCTION pg_temp.disparo_migration(p_id integer, p_name text, p_sql text) RETURNS void LANGUAGE plpgsql AS $disparo$`,
    `BEGIN`,
    `  ${lock}`,
    `  IF EXISTS (SELECT FROM ${s}.schema_migrations WHERE id = p_id) THEN RETURN; END IF;`,
    `  EXECUTE p_sql;`,
    `  INSERT INTO ${s}.schema_migrations (id, name) VALUES (p_id, p_name);`,
    `END`,
    `$disparo$;`,
    '',
    `CREATE OR REPLACE FUNCTION pg_temp.disparo_function(p_name text, p_hash text, p_sql text) RETURNS void LANGUAGE plpgsql AS $disparo$`,
    `DECLARE sig regprocedure;`,
    `BEGIN`,
    `  ${lock}`,
    `  IF (SELECT hash FROM ${s}.schema_functions WHERE name = p_name) IS NOT DISTINCT FROM p_hash`,
    `     AND EXISTS (SELECT FROM pg_catalog.pg_proc WHERE pronamespace = ${ns} AND proname = p_name) THEN`,
    `    RETURN;`,
    `  END IF;`,
    `  -- Bodies refer to each other: they are checked when called, not when created.`,
    `  PERFORM pg_catalog.set_config('check_function_bodies', 'off', true);`,
    `  FOR sig IN SELECT oid FROM pg_catalog.pg_proc WHERE pronamespace = ${ns} AND proname = p_name LOOP`,
    `    EXECUTE format('DROP FUNCTION %s', sig);`,
    `  END LOOP;`,
    `  EXECUTE p_sql;`,
    `  INSERT INTO ${s}.schema_functions (name, hash) VALUES (p_name, p_hash)`,
    `    ON CONFLICT (name) DO UPDATE SET hash = excluded.hash, applied_at = now();`,
    `END`,
    `$disparo$;`,
    '',
    `CREATE OR REPLACE FUNCTION pg_temp.disparo_lock_down(p_shipped text[]) RETURNS void LANGUAGE plpgsql AS $disparo$`,
    `DECLARE f record;`,
    `BEGIN`,
    `  ${lock}`,
    `  -- Functions an earlier version created and this one no longer ships.`,
    `  FOR f IN SELECT p.oid::regprocedure AS sig FROM pg_catalog.pg_proc p JOIN ${s}.schema_functions k ON k.name = p.proname`,
    `           WHERE p.pronamespace = ${ns} AND NOT (k.name = ANY (p_shipped)) LOOP`,
    `    EXECUTE format('DROP FUNCTION %s', f.sig);`,
    `  END LOOP;`,
    `  DELETE FROM ${s}.schema_functions WHERE NOT (name = ANY (p_shipped));`,
    `  FOR f IN SELECT p.oid::regprocedure AS sig, p.proname FROM pg_catalog.pg_proc p WHERE p.pronamespace = ${ns} LOOP`,
    `    EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = ${FUNCTION_SEARCH_PATH}', f.sig);`,
    `    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC, anon, authenticated, service_role', f.sig);`,
    `    IF left(f.proname, 1) <> '_' THEN`,
    `      EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO service_role', f.sig);`,
    `    END IF;`,
    `  END LOOP;`,
    `  FOR f IN SELECT c.oid::regclass AS rel FROM pg_catalog.pg_class c WHERE c.relnamespace = ${ns} AND c.relkind IN ('r', 'p') LOOP`,
    `    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', f.rel);`,
    `  END LOOP;`,
    `END`,
    `$disparo$;`,
    '',
    `-- 1. Tables and indexes: @disparo/adapter-postgres's migrations 1 to ${latest}, each once.`,
  );
  for (const m of migrations) {
    const file = `${String(m.id).padStart(6, '0')}_${m.name}.sql`;
    add('', `-- sql/${file}`, `SELECT pg_temp.disparo_migration(${m.id}, ${literal(m.name)}, ${quoted(fill(m.sql), file)});`);
  }
  add('', '-- 2. Functions, one per file: created when new or changed since they were created here.');
  for (const f of functions) {
    add('', `-- sql/functions/${f.name}.sql`, `SELECT pg_temp.disparo_function(${literal(f.name)}, ${literal(f.hash)}, ${quoted(fill(f.sql), `${f.name}.sql`)});`);
  }
  add(
    '',
    '-- 3. Access: the service role only.',
    `SELECT pg_temp.disparo_lock_down(ARRAY[${functions.map((f) => literal(f.name)).join(', ')}]);`,
    `REVOKE ALL ON SCHEMA ${s} FROM PUBLIC, anon, authenticated;`,
    `GRANT USAGE ON SCHEMA ${s} TO service_role;`,
    `REVOKE ALL ON ALL TABLES IN SCHEMA ${s} FROM PUBLIC, anon, authenticated, service_role;`,
    `GRANT SELECT ON ALL TABLES IN SCHEMA ${s} TO service_role;`,
    `REVOKE ALL ON ALL SEQUENCES IN SCHEMA ${s} FROM PUBLIC, anon, authenticated, service_role;`,
    '',
    'DROP FUNCTION pg_temp.disparo_migration(integer, text, text);',
    'DROP FUNCTION pg_temp.disparo_function(text, text, text);',
    'DROP FUNCTION pg_temp.disparo_lock_down(text[]);',
    '',
    "-- 4. PostgREST picks up the functions.",
    "NOTIFY pgrst, 'reload schema';",
    '',
  );
  return out.join('\n');
}
