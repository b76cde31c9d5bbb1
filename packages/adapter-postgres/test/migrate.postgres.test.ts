/**
 * Migrations and functions on real PostgreSQL: many workers migrating at once, a schema newer than
 * the package, the upgrade of a database migrated by the earlier layout (functions inside the
 * migrations), and functions tracked by hash: a changed one reaches an existing database, none is
 * ever defined twice, one no longer shipped goes.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { createPostgresStore, functions, LATEST_SCHEMA_VERSION, migrations, SchemaTooNewError } from '@disparo/adapter-postgres';
import { freshSchema, inspector, pool, testDatabase } from './support.js';

let url = '';
const pools: pg.Pool[] = [];
const open = (max = 2) => {
  const p = pool(url, max);
  pools.push(p);
  return p;
};
beforeAll(async () => {
  url = await testDatabase('migrate');
});
afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
});

const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);
const functionsIn = async (p: pg.Pool, schema: string) =>
  (
    await p.query(`SELECT p.proname AS name, count(*)::int AS n FROM pg_proc p JOIN pg_namespace s ON s.oid = p.pronamespace WHERE s.nspname = $1 GROUP BY p.proname ORDER BY 1`, [
      schema,
    ])
  ).rows as Array<{ name: string; n: number }>;

describe('migrate()', () => {
  it('twenty workers migrating at once apply each migration, and create the functions, exactly once', async () => {
    const schema = freshSchema('mig');
    const p = open(20);
    const results = await Promise.all(Array.from({ length: 20 }, () => createPostgresStore(p, { schema }).migrate()));
    expect(results.filter((r) => r.applied.length > 0)).toHaveLength(1);
    expect(results.filter((r) => r.functions.created.length > 0)).toHaveLength(1);
    expect(results.every((r) => r.to === LATEST_SCHEMA_VERSION)).toBe(true);
    const rows = await p.query(`SELECT id FROM "${schema}".schema_migrations ORDER BY id`);
    expect(rows.rows.map((r) => r.id)).toEqual(migrations.map((m) => m.id));
    expect(await createPostgresStore(p, { schema }).version()).toBe(LATEST_SCHEMA_VERSION);
    // Each shipped function once, and nothing else.
    expect(await functionsIn(p, schema)).toEqual(functions.map((f) => ({ name: f.name, n: 1 })).sort((a, b) => (a.name < b.name ? -1 : 1)));
  });

  it('refuses a schema newer than the package, and changes nothing', async () => {
    const schema = freshSchema('new');
    const p = open(2);
    const store = createPostgresStore(p, { schema });
    await store.migrate();
    await p.query(`INSERT INTO "${schema}".schema_migrations (id, name) VALUES ($1, 'from_the_future')`, [LATEST_SCHEMA_VERSION + 1]);
    const error = await store.migrate().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SchemaTooNewError);
    expect((error as SchemaTooNewError).code).toBe('STORE');
    expect((error as Error).message).toMatch(/Upgrade @disparo\/adapter-postgres/);
    expect((await p.query(`SELECT count(*)::int AS n FROM "${schema}".schema_migrations`)).rows[0].n).toBe(LATEST_SCHEMA_VERSION + 1);
  });

  it('a store used before migrate() says to call migrate()', async () => {
    const store = createPostgresStore(open(1), { schema: freshSchema('none') });
    await expect(store.getCampaign('x')).rejects.toThrow(/Call store.migrate\(\) first/);
    await expect(store.checkpoint({ owner: 'o', now: T0, leaseMs: 1_000, outcomes: [] })).rejects.toThrow(/Call store.migrate\(\) first/);
  });

  it('rejects a bad schema name with a ValidationError naming the option', () => {
    expect(() => createPostgresStore(open(1), { schema: 'drop table; --' })).toThrow(/schema/);
  });

  it('a function whose SQL changed is replaced (every earlier signature of it dropped), one no longer shipped is dropped, and nothing else is touched', async () => {
    const schema = freshSchema('fn');
    const p = open(2);
    const store = createPostgresStore(p, { schema });
    await store.migrate();
    const s = `"${schema}"`;
    // As an older package would have left them: get_campaign with other SQL, heartbeat with another
    // parameter list beside today's, and a function this package no longer ships.
    await p.query(`CREATE OR REPLACE FUNCTION ${s}.get_campaign(p_id text) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{"stale": true}'::jsonb $$`);
    await p.query(`CREATE FUNCTION ${s}.heartbeat(p_owner text, p_now bigint) RETURNS integer LANGUAGE sql AS $$ SELECT 0 $$`);
    await p.query(`CREATE FUNCTION ${s}.obsolete_fn() RETURNS integer LANGUAGE sql AS $$ SELECT 1 $$`);
    await p.query(`UPDATE ${s}.schema_functions SET hash = 'older' WHERE name IN ('get_campaign', 'heartbeat')`);
    await p.query(`INSERT INTO ${s}.schema_functions (name, hash) VALUES ('obsolete_fn', 'older')`);
    await p.query(`CREATE FUNCTION ${s}.users_own() RETURNS integer LANGUAGE sql AS $$ SELECT 2 $$`);

    const result = await store.migrate();
    expect(result.applied).toEqual([]);
    expect(result.functions).toEqual({ created: ['get_campaign', 'heartbeat'], dropped: ['obsolete_fn'] });
    expect(await store.getCampaign('nope')).toBeNull(); // the shipped SQL again
    const found = await functionsIn(p, schema);
    expect(found.find((f) => f.name === 'heartbeat')).toEqual({ name: 'heartbeat', n: 1 });
    expect(found.map((f) => f.name)).not.toContain('obsolete_fn');
    expect(found.map((f) => f.name)).toContain('users_own'); // not ours: left alone
    expect((await p.query(`SELECT hash FROM ${s}.schema_functions WHERE name = 'get_campaign'`)).rows[0].hash).toBe(functions.find((f) => f.name === 'get_campaign')!.hash);
    expect((await store.migrate()).functions).toEqual({ created: [], dropped: [] });
  });

  it('upgrades a database migrated by the earlier layout (functions in migrations): its data kept, its old functions and views gone, work goes on', async () => {
    const schema = freshSchema('v2');
    const p = open(2);
    const s = `"${schema}"`;
    // The schema as version 2 of the earlier layout left it, with a campaign in progress made by its functions.
    const dir = new URL('./fixtures/schema-v2/', import.meta.url);
    await p.query(`CREATE SCHEMA ${s}`);
    await p.query(`CREATE TABLE ${s}.schema_migrations (id integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    for (const [i, file] of readdirSync(dir).sort().entries()) {
      await p.query(readFileSync(new URL(file, dir), 'utf8').replaceAll(':DISPARO_SCHEMA', s));
      await p.query(`INSERT INTO ${s}.schema_migrations (id, name) VALUES ($1, $2)`, [i + 1, file.slice(7, -4)]);
    }
    await p.query(`INSERT INTO ${s}.campaigns (id, name, templates, account_ids, status, settings, metadata, created_at, updated_at)
      VALUES ('c1', 'old', '["Oi"]', '["a1"]', 'running', '{"batchSize": 10}', '{}', $1, $1)`, [T0]);
    await p.query(`INSERT INTO ${s}.accounts (id, pacing, next_send_at, created_at, updated_at) VALUES ('a1', '{"intervalMs": {"min": 1000, "max": 1000}, "maxInFlight": 1}', $1, $1, $1)`, [T0]);
    const phones = ['5511970000001', '5511970000002', '5511970000003', '5511970000004'];
    await p.query(`SELECT * FROM ${s}.import_json('c1', $1::jsonb, $2)`, [JSON.stringify(phones.map((phone) => ({ phone, vars: {} }))), T0]);
    await p.query(`UPDATE ${s}.campaigns SET current_batch = 1 WHERE id = 'c1'`);
    const claimed = (await p.query(`SELECT id, seq FROM ${s}.claim('c1', 1, 'old-worker', 3, $1, 30000, 0) ORDER BY seq`, [T0])).rows;
    const begin = (id: string) => JSON.stringify({ r: id, c: 'c1', tx: 'Oi', n: 1, p: null, acc: 'a1', gap: 0, lead: 0 });
    await p.query(`SELECT ${s}.advance('old-worker', $1, 30000, NULL, $2::jsonb)`, [T0, begin(claimed[0].id)]);
    await p.query(`SELECT ${s}.advance('old-worker', $1, 30000, $2::jsonb, $3::jsonb)`, [
      T0 + 1,
      JSON.stringify([{ r: claimed[0].id, c: 'c1', s: 'sent', k: false, n: 1, t: T0 + 1, a: 'a1', p: 'old-1', e: null, he: false, sr: null, fx: 'success' }]),
      begin(claimed[1].id),
    ]);
    // Row 1 sent, row 2 in flight when the old worker died, row 3 leased, row 4 pending.

    const store = createPostgresStore(p, { schema });
    const result = await store.migrate();
    expect(result.from).toBe(2);
    expect(result.applied).toEqual(migrations.filter((m) => m.id > 2).map((m) => `${String(m.id).padStart(6, '0')}_${m.name}`));
    expect(await functionsIn(p, schema)).toEqual(functions.map((f) => ({ name: f.name, n: 1 })).sort((a, b) => (a.name < b.name ? -1 : 1)));
    expect((await p.query(`SELECT count(*)::int AS n FROM pg_views WHERE schemaname = $1`, [schema])).rows[0].n).toBe(0);

    const before = await store.getCampaign('c1');
    expect(before?.counters).toMatchObject({ total: 4, sent: 1, sending: 1, pending: 2 });
    expect((await store.getRecipientByProviderId('old-1'))?.status).toBe('sent');
    // The old worker's send holds the account's window until it is settled, which paces the account.
    const later = T0 + 30_001;
    const row2 = String(claimed[1].id);
    expect((await store.listInDoubt(later, 10)).map((r) => r.id)).toEqual([row2]);
    const mine = await store.claimRecipients({ campaignId: 'c1', batch: 1, owner: 'new', limit: 10, now: later, leaseMs: 30_000 });
    expect(mine.map((r) => r.seq)).toEqual([3, 4]);
    const item = (r: { id: string }) => ({ recipientId: r.id, campaignId: 'c1', text: 'Oi', attempt: 1, gapMs: 1_000, leadMs: 0 });
    const refused = await store.checkpoint({ owner: 'new', now: later, leaseMs: 30_000, writeAhead: { accountId: 'a1', maxInFlight: 1, items: [item(mine[0]!)] } });
    expect(refused.grants).toEqual([{ granted: false, reason: 'in_flight', retryAt: later }]);
    expect(await store.settleInDoubt([{ recipientId: row2, status: 'unknown' }], later)).toBe(1);
    const granted = await store.checkpoint({ owner: 'new', now: later + 1_000, leaseMs: 30_000, writeAhead: { accountId: 'a1', maxInFlight: 1, items: [item(mine[0]!)] } });
    expect(granted.grants).toEqual([{ granted: true, slotAt: later + 1_000 }]);
    const raw = inspector(p, schema);
    const rows = await raw.recipients('c1');
    expect(rows.map((r) => r.status)).toEqual(['sent', 'unknown', 'sending', 'pending']);
    expect((await raw.campaign('c1'))!.counters).toEqual({ total: 4, pending: 1, sending: 1, sent: 1, delivered: 0, read: 0, failed: 0, skipped: 0, unknown: 1 });
  });
});

describe('the generated SQL module', () => {
  it('matches the .sql files', async () => {
    const { renderSqlModule, OUTPUT } = await import('../scripts/generate-migrations.js');
    expect(readFileSync(OUTPUT, 'utf8')).toBe(renderSqlModule());
  });

  it('refuses a function defined in a migration, a file defining another function, and a file defining two', async () => {
    const { renderSqlModule } = await import('../scripts/generate-migrations.js');
    const tree = (files: Record<string, string>) => {
      const dir = mkdtempSync(join(tmpdir(), 'disparo-sql-'));
      mkdirSync(join(dir, 'functions'));
      for (const [name, sql] of Object.entries(files)) writeFileSync(join(dir, name), sql);
      return dir;
    };
    const table = 'CREATE TABLE :DISPARO_SCHEMA.t (id int);\n';
    const fn = (name: string) => `CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.${name}() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;\n`;
    expect(() => renderSqlModule(tree({ '000001_a.sql': table, 'functions/f.sql': fn('f') }))).not.toThrow();
    expect(() => renderSqlModule(tree({ '000001_a.sql': table + fn('g'), 'functions/f.sql': fn('f') }))).toThrow(/creates a function/);
    expect(() => renderSqlModule(tree({ '000001_a.sql': table, 'functions/f.sql': fn('g') }))).toThrow(/exactly one thing/);
    expect(() => renderSqlModule(tree({ '000001_a.sql': table, 'functions/f.sql': fn('f') + fn('f') }))).toThrow(/exactly one thing/);
    expect(() => renderSqlModule(tree({ '000001_a.sql': table, 'functions/f.sql': fn('f').replace(' OR REPLACE', '') }))).toThrow(/CREATE OR REPLACE/);
  });
});
