/**
 * The roles and grants a Supabase database has, on a test database, so that permission tests see what
 * a Supabase project would. Facts from supabase/postgres (migrations/db/init-scripts/
 * 00000000000000-initial-schema.sql and later migrations):
 *
 * - `anon`, `authenticated`, `service_role`: NOLOGIN roles (created NOINHERIT, switched to INHERIT in
 *   20230529180330_alter_api_roles_for_inherit.sql); `service_role` has BYPASSRLS.
 * - `authenticator`: LOGIN NOINHERIT, member of the three, so it can only act through them
 *   (PostgREST's user impersonation); `statement_timeout` and `lock_timeout` of 8 s on it
 *   (20221028101028, 20231130133139).
 * - `anon` has `statement_timeout = 3s`, `authenticated` 8s (PostgREST applies them when it switches role).
 * - USAGE on schema public for the three, and DEFAULT PRIVILEGES that grant ALL on every new table,
 *   function and sequence in public to them. A migration that must keep `anon`/`authenticated` out has to
 *   REVOKE explicitly (functions also carry PostgreSQL's default EXECUTE for PUBLIC).
 * - Event triggers that send `NOTIFY pgrst, 'reload schema'` after DDL, so PostgREST picks up changes.
 *
 * Roles belong to the whole server; grants and default privileges to one database.
 */
import pg from 'pg';

/** A fixed password for the test server's `authenticator` login (a throw-away local server). */
export const AUTHENTICATOR_PASSWORD = 'authenticator-test-only';

const ROLES_SQL = `
DO $roles$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'anon') THEN CREATE ROLE anon NOLOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticated') THEN CREATE ROLE authenticated NOLOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'service_role') THEN CREATE ROLE service_role NOLOGIN BYPASSRLS; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticator') THEN
    EXECUTE format('CREATE ROLE authenticator LOGIN NOINHERIT PASSWORD %L', '${AUTHENTICATOR_PASSWORD}');
  END IF;
END
$roles$;
ALTER ROLE anon INHERIT;
ALTER ROLE authenticated INHERIT;
ALTER ROLE service_role INHERIT BYPASSRLS;
GRANT anon, authenticated, service_role TO authenticator;
ALTER ROLE anon SET statement_timeout = '3s';
ALTER ROLE authenticated SET statement_timeout = '8s';
ALTER ROLE authenticator SET statement_timeout = '8s';
ALTER ROLE authenticator SET lock_timeout = '8s';
`;

const DATABASE_SQL = `
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
CREATE SCHEMA IF NOT EXISTS extensions;
GRANT USAGE ON SCHEMA extensions TO anon, authenticated, service_role;

-- Supabase tells PostgREST to reload its schema cache after DDL (extensions.pgrst_ddl_watch and
-- pgrst_drop_watch in supabase/postgres): the same here, for the stand-in's cache.
CREATE OR REPLACE FUNCTION extensions.pgrst_ddl_watch() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF EXISTS (SELECT FROM pg_event_trigger_ddl_commands() c WHERE COALESCE(c.schema_name, '') <> 'pg_temp') THEN
    NOTIFY pgrst, 'reload schema';
  END IF;
END $fn$;
CREATE OR REPLACE FUNCTION extensions.pgrst_drop_watch() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF EXISTS (SELECT FROM pg_event_trigger_dropped_objects() o WHERE NOT o.is_temporary) THEN
    NOTIFY pgrst, 'reload schema';
  END IF;
END $fn$;
DO $triggers$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_event_trigger WHERE evtname = 'pgrst_ddl_watch') THEN
    CREATE EVENT TRIGGER pgrst_ddl_watch ON ddl_command_end EXECUTE FUNCTION extensions.pgrst_ddl_watch();
  END IF;
  IF NOT EXISTS (SELECT FROM pg_event_trigger WHERE evtname = 'pgrst_drop_watch') THEN
    CREATE EVENT TRIGGER pgrst_drop_watch ON sql_drop EXECUTE FUNCTION extensions.pgrst_drop_watch();
  END IF;
END
$triggers$;
`;

/**
 * Creates the Supabase roles on the server (once; safe when several test files do it at the same time)
 * and the grants on the given database. Returns the URL the PostgREST stand-in connects with.
 */
export async function installSupabaseRoles(databaseUrl: string): Promise<{ authenticatorUrl: string }> {
  // Roles are server-wide, advisory locks per database: serialise on the maintenance database.
  const server = new URL(databaseUrl);
  server.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: server.toString() });
  await admin.connect();
  try {
    await admin.query('SELECT pg_advisory_lock(7403514)');
    try {
      await admin.query(ROLES_SQL);
    } finally {
      await admin.query('SELECT pg_advisory_unlock(7403514)');
    }
  } finally {
    await admin.end();
  }
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    await db.query(DATABASE_SQL);
  } finally {
    await db.end();
  }
  const url = new URL(databaseUrl);
  url.username = 'authenticator';
  url.password = AUTHENTICATOR_PASSWORD;
  return { authenticatorUrl: url.toString() };
}
