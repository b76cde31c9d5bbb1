/**
 * The Supabase migration this package ships: generated from @disparo/adapter-postgres's SQL, applied to
 * a database with Supabase's roles (and default privileges that hand anon and authenticated everything,
 * the worst case), it keeps every function and table out of reach of anon and authenticated through
 * the Data API, applies twice cleanly, upgrades an older schema, and leaves nothing for migrate() to do.
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresStore, functions, migrations } from '@disparo/adapter-postgres';
import { FUNCTION_SEARCH_PATH, supabaseMigration } from '../src/index.js';
import { MIGRATIONS_DIR, shippedMigrations } from '../scripts/generate-migration.js';
import { testDatabase } from '../../adapter-postgres/test/support.js';
import { apiSurface, probeAccess, type ApiObject } from './support/api-surface.js';
import { installSupabaseRoles } from './support/supabase-roles.js';
import { startTestSupabase, type TestSupabase } from './support/supabase.js';

const SCHEMA = 'disparo';
const shippedFile = () => {
  const files = shippedMigrations();
  expect(files, 'exactly one shipped migration').toHaveLength(1);
  return { name: files[0]!, sql: readFileSync(`${MIGRATIONS_DIR}${files[0]}`, 'utf8') };
};

// Supabase grants everything new in public to the API roles; here, everywhere, so nothing is kept out by luck.
const WORST_DEFAULTS = `
ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
`;

/** Everything of the schema that access depends on, to compare before and after an apply. */
async function snapshot(q: (text: string, values?: unknown[]) => Promise<pg.QueryResult>) {
  const fns = await q(
    `SELECT p.oid::regprocedure::text AS sig, p.oid::int AS oid, p.prosecdef, p.proconfig, p.proacl::text[] AS acl, md5(p.prosrc) AS src
     FROM pg_proc p WHERE p.pronamespace = $1::regnamespace ORDER BY 1`,
    [SCHEMA],
  );
  const rels = await q(
    `SELECT c.relname, c.oid::int AS oid, c.relrowsecurity, c.relacl::text[] AS acl FROM pg_class c
     WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'S', 'v', 'm') ORDER BY 1`,
    [SCHEMA],
  );
  const books = await q(`SELECT id, name, applied_at FROM ${SCHEMA}.schema_migrations ORDER BY id`);
  const hashes = await q(`SELECT name, hash, applied_at FROM ${SCHEMA}.schema_functions ORDER BY name`);
  const nsp = await q(`SELECT nspacl::text[] AS acl FROM pg_namespace WHERE nspname = $1`, [SCHEMA]);
  return { functions: fns.rows, relations: rels.rows, migrations: books.rows, hashes: hashes.rows, schemaAcl: nsp.rows[0]?.acl };
}

describe('the shipped migration file', () => {
  it('is the one the generator renders from adapter-postgres SQL (run `pnpm --filter @disparo/adapter-supabase generate` after changing it)', () => {
    const { name, sql } = shippedFile();
    expect(name).toMatch(/^\d{14}_disparo\.sql$/);
    expect(sql).toBe(supabaseMigration());
    // Every migration and every function of adapter-postgres, with its hash, and nothing copied by hand.
    for (const m of migrations) expect(sql).toContain(`SELECT pg_temp.disparo_migration(${m.id}, '${m.name}'`);
    for (const f of functions) expect(sql).toContain(`SELECT pg_temp.disparo_function('${f.name}', '${f.hash}'`);
    expect(sql).not.toContain(':DISPARO_SCHEMA');
    const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { files: string[] };
    expect(manifest.files).toContain('supabase');
  });

  it('fills in another schema name and refuses one that is not a plain identifier', () => {
    const other = supabaseMigration({ schema: 'crm_disparo' });
    expect(other).toContain('CREATE SCHEMA IF NOT EXISTS "crm_disparo";');
    expect(other).not.toMatch(/"disparo"\./);
    expect(() => supabaseMigration({ schema: 'bad-name; DROP' })).toThrow(/schema/);
  });
});

describe('who reaches what after the migration', () => {
  let sb: TestSupabase;
  let surface: ApiObject[];
  const userToken = () => sb.token({ role: 'authenticated', sub: 'user-1', exp: Math.floor(Date.now() / 1000) + 600 });
  const anon = () => sb.client(sb.anonKey, { db: { schema: SCHEMA } });
  const user = () => sb.client(sb.anonKey, { db: { schema: SCHEMA }, global: { headers: { Authorization: `Bearer ${userToken()}` } } });

  beforeAll(async () => {
    sb = await startTestSupabase('sb_security', { setupSql: WORST_DEFAULTS + shippedFile().sql, schemas: ['public', SCHEMA] });
    surface = await apiSurface(sb.sql, SCHEMA);
  });
  afterAll(async () => {
    await sb?.stop();
  });

  it('the API surface is every function adapter-postgres ships and every table, nothing else', () => {
    expect(surface.filter((o) => o.kind === 'function').map((o) => o.name)).toEqual(functions.map((f) => f.name).sort());
    expect(surface.filter((o) => o.kind === 'table').map((o) => o.name)).toEqual(
      ['accounts', 'batch_counts', 'batches', 'campaign_counts', 'campaigns', 'held_receipts', 'in_flight', 'leases', 'opt_outs', 'recipients', 'schema_functions', 'schema_migrations'].sort(),
    );
  });

  it('anon gets 401 and authenticated 403, both 42501, on every function and every table', async () => {
    const a = await probeAccess(anon(), surface);
    expect(a).toHaveLength(surface.length);
    expect(a.filter((r) => r.status !== 401 || r.code !== '42501')).toEqual([]);
    const u = await probeAccess(user(), surface);
    expect(u.filter((r) => r.status !== 403 || r.code !== '42501')).toEqual([]);
  });

  it('still refused object by object when the schema is opened to them (USAGE granted, as a custom-schema guide would)', async () => {
    await sb.sql(`GRANT USAGE ON SCHEMA ${SCHEMA} TO anon, authenticated`);
    try {
      const a = await probeAccess(anon(), surface);
      expect(a.filter((r) => r.status !== 401 || r.code !== '42501')).toEqual([]);
      // The refusal now comes from each object's own privileges, not from the schema.
      for (const r of a) expect(r.message).toMatch(r.object.startsWith('function') ? /^permission denied for function / : /^permission denied for table /);
      const u = await probeAccess(user(), surface);
      expect(u.filter((r) => r.status !== 403 || r.code !== '42501')).toEqual([]);
    } finally {
      await sb.sql(`REVOKE USAGE ON SCHEMA ${SCHEMA} FROM anon, authenticated`);
    }
  });

  it('service_role calls the store functions and reads the tables; the private helpers answer nobody', async () => {
    const service = await probeAccess(sb.client(sb.serviceKey, { db: { schema: SCHEMA } }), surface);
    const helpers = service.filter((r) => /^function _/.test(r.object));
    expect(helpers.length).toBeGreaterThan(0);
    expect(helpers.filter((r) => r.status !== 403 || r.code !== '42501')).toEqual([]);
    // Called with null arguments, a function may refuse the values, never the caller.
    const rest = service.filter((r) => !/^function _/.test(r.object));
    expect(rest.filter((r) => r.code === '42501' || r.code === 'PGRST202')).toEqual([]);
    expect(rest.filter((r) => r.object.startsWith('table')).map((r) => r.status)).toEqual(rest.filter((r) => r.object.startsWith('table')).map(() => 200));
  });

  it('in the catalog: every function SECURITY DEFINER with a fixed search_path and no EXECUTE for PUBLIC/anon/authenticated; every table RLS on, no policy, no privilege for them', async () => {
    const { rows: fns } = await sb.sql<{ sig: string; prosecdef: boolean; proconfig: string[] | null; anon: boolean; auth: boolean; pub: boolean }>(
      `SELECT p.oid::regprocedure::text AS sig, p.prosecdef, p.proconfig,
         has_function_privilege('anon', p.oid, 'EXECUTE') AS anon, has_function_privilege('authenticated', p.oid, 'EXECUTE') AS auth,
         EXISTS (SELECT FROM aclexplode(p.proacl) x WHERE x.grantee = 0) AS pub
       FROM pg_proc p WHERE p.pronamespace = $1::regnamespace`,
      [SCHEMA],
    );
    expect(fns).toHaveLength(functions.length);
    for (const f of fns) {
      expect(f, f.sig).toMatchObject({ prosecdef: true, anon: false, auth: false, pub: false });
      expect(f.proconfig, f.sig).toContain(`search_path=${FUNCTION_SEARCH_PATH}`);
    }
    const { rows: rels } = await sb.sql<{ relname: string; relrowsecurity: boolean; policies: number; anon: boolean; auth: boolean }>(
      `SELECT c.relname, c.relrowsecurity, (SELECT count(*)::int FROM pg_policy WHERE polrelid = c.oid) AS policies,
         has_any_column_privilege('anon', c.oid, 'SELECT, INSERT, UPDATE, REFERENCES') OR has_table_privilege('anon', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER') AS anon,
         has_any_column_privilege('authenticated', c.oid, 'SELECT, INSERT, UPDATE, REFERENCES') OR has_table_privilege('authenticated', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER') AS auth
       FROM pg_class c WHERE c.relnamespace = $1::regnamespace AND c.relkind = 'r'`,
      [SCHEMA],
    );
    expect(rels.length).toBeGreaterThan(5);
    for (const r of rels) expect(r, r.relname).toMatchObject({ relrowsecurity: true, policies: 0, anon: false, auth: false });
  });
});

describe('applying it', () => {
  let url = '';
  let db: pg.Client;
  beforeAll(async () => {
    url = await testDatabase('sb_apply');
    await installSupabaseRoles(url);
    db = new pg.Client({ connectionString: url });
    await db.connect();
    await db.query(WORST_DEFAULTS);
  });
  afterAll(async () => {
    await db?.end();
  });
  const q = (text: string, values?: unknown[]) => db.query(text, values);

  it('twice on a fresh database: the second apply changes nothing (no function re-created, no migration re-run, same privileges)', async () => {
    const { sql } = shippedFile();
    await db.query(sql);
    const first = await snapshot(q);
    expect(first.migrations.map((m: { id: number }) => m.id)).toEqual(migrations.map((m) => m.id));
    expect(first.functions).toHaveLength(functions.length);
    await db.query(sql);
    expect(await snapshot(q)).toEqual(first);
    // Nothing of the migration's own machinery is left behind.
    expect((await db.query(`SELECT count(*)::int AS n FROM pg_proc WHERE proname LIKE 'disparo\\_%' AND pronamespace = pg_my_temp_schema()`)).rows[0].n).toBe(0);
  });

  it("leaves nothing for @disparo/adapter-postgres's migrate() to do (same bookkeeping), so it never re-creates a function without the lock-down", async () => {
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    try {
      const result = await createPostgresStore(pool, { schema: SCHEMA }).migrate();
      expect(result).toMatchObject({ applied: [], functions: { created: [], dropped: [] } });
    } finally {
      await pool.end();
    }
  });

  it('upgrades an older schema: a function whose SQL changed is re-created and locked down again, one no longer shipped is dropped', async () => {
    const before = await snapshot(q);
    const checkpointOid = before.functions.find((f: { sig: string }) => f.sig.startsWith(`${SCHEMA}.checkpoint(`))!.oid;
    // What an older version left: another checkpoint (hash), open to everyone, and a function it shipped that this one does not.
    await db.query(`UPDATE ${SCHEMA}.schema_functions SET hash = 'older' WHERE name = 'checkpoint'`);
    await db.query(`ALTER FUNCTION ${SCHEMA}.checkpoint(text, bigint, bigint, jsonb, jsonb) SECURITY INVOKER RESET search_path`);
    await db.query(`GRANT EXECUTE ON FUNCTION ${SCHEMA}.checkpoint(text, bigint, bigint, jsonb, jsonb) TO PUBLIC, anon`);
    await db.query(`CREATE FUNCTION ${SCHEMA}.advance_old(p integer) RETURNS integer LANGUAGE sql AS $$ SELECT p $$`);
    await db.query(`INSERT INTO ${SCHEMA}.schema_functions (name, hash) VALUES ('advance_old', 'x')`);

    await db.query(shippedFile().sql);
    const after = await snapshot(q);
    const cp = after.functions.find((f: { sig: string }) => f.sig.startsWith(`${SCHEMA}.checkpoint(`))!;
    expect(cp.oid).not.toBe(checkpointOid);
    expect(cp).toMatchObject({ prosecdef: true, proconfig: expect.arrayContaining([`search_path=${FUNCTION_SEARCH_PATH}`]) });
    expect((await db.query(`SELECT has_function_privilege('anon', $1::regprocedure, 'EXECUTE') AS anon`, [cp.sig])).rows[0].anon).toBe(false);
    expect(after.functions.map((f: { sig: string }) => f.sig)).not.toContain(`${SCHEMA}.advance_old(integer)`);
    expect(after.hashes.map((h: { name: string }) => h.name)).toEqual(functions.map((f) => f.name).sort());
    // Everything else untouched.
    const others = (s: typeof before) => s.functions.filter((f: { sig: string }) => !/\.(checkpoint|advance_old)\(/.test(f.sig)).map((f: { oid: number }) => f.oid);
    expect(others(after)).toEqual(others(before));
  });

  it('refuses a schema a newer version migrated, and changes nothing', async () => {
    await db.query(`INSERT INTO ${SCHEMA}.schema_migrations (id, name) VALUES (99, 'future')`);
    try {
      const before = await snapshot(q);
      await expect(db.query(shippedFile().sql)).rejects.toThrow(/Schema disparo is at version 99, newer than this migration/);
      expect(await snapshot(q)).toEqual(before);
    } finally {
      await db.query(`DELETE FROM ${SCHEMA}.schema_migrations WHERE id = 99`);
    }
  });
});
