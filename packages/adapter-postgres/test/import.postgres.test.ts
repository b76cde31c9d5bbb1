/**
 * The engine's import into PostgreSQL through COPY, where each row is encoded into the chunk as it is
 * read (StateStore.recipientBuffer): the same recipients, counts, order and variables as the memory
 * store's import of the same list, across chunk boundaries, duplicates and opt-outs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import { createEngine, createMemoryStore, createSimulatorTransport, silentLogger, type StateStore } from '@disparo/core';
import { createPostgresStore } from '@disparo/adapter-postgres';
import { freshSchema, pool, testDatabase } from './support.js';

let url = '';
const pools: pg.Pool[] = [];
beforeAll(async () => {
  url = await testDatabase('import');
});
afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
});

// Duplicates inside a chunk and across chunks (chunks of 4), formats that normalise to one phone,
// an invalid number, an opted-out one, and variables COPY must escape (tab, newline, backslash, CR),
// quotes, non-ASCII and a character outside the BMP.
const list = [
  { phone: '5511990000001', vars: { name: 'Ana\tMaria', note: 'line1\nline2' } },
  { phone: '+55 (11) 99000-0002', vars: { name: 'Bruno \\ "B"' } },
  { phone: '5511990000001', vars: { name: 'repeat in chunk' } },
  { phone: '11 99000-0003', vars: { name: 'Çãé ✓ 😀', cr: 'a\rb' } },
  { phone: '5511990000004', vars: {} },
  { phone: '+55 11 99000-0002', vars: { name: 'repeat across chunks' } },
  { phone: 'not a phone', vars: { name: 'invalid' } },
  { phone: '5511990000099', vars: { name: 'opted out' } },
  { phone: 5511990000005, vars: { n: 5, yes: true, none: null } as never },
  { phone: '5511990000003', vars: { name: 'repeat, third chunk' } },
  { phone: '5511990000006', vars: { empty: '' } },
];

async function importInto(store: StateStore) {
  const engine = createEngine({ store, logger: silentLogger, accounts: [{ id: 'a1', transport: createSimulatorTransport(), pacing: { intervalMs: { min: 0, max: 0 } } }] });
  await engine.optOut(['5511990000099']);
  const c = await engine.createCampaign({ name: 'import', templates: ['Oi {{name|cliente}}'], accountIds: ['a1'], batchSize: 3 });
  // As a stream (rows read one by one), then again as an array: the second import finds them all.
  const first = await engine.addRecipients(c.id, (function* () { yield* list; })(), { chunkSize: 4 });
  const again = await engine.addRecipients(c.id, list, { chunkSize: 4 });
  const rows = (await store.listRecipients(c.id)).map((r) => ({ seq: r.seq, batch: r.batch, phone: r.phone, vars: r.vars, status: r.status }));
  const progress = await engine.progress(c.id);
  return { first, again, rows, counters: progress.counters, remaining: progress.remaining };
}

describe('import through COPY', () => {
  it('stores what the memory store stores: the first of each phone, in order, with its variables exactly', async () => {
    const p = pool(url, 3);
    pools.push(p);
    const store = createPostgresStore(p, { schema: freshSchema('imp') });
    await store.migrate();
    expect(await store.recipientBuffer()).not.toBeNull();
    const got = await importInto(store);
    const want = await importInto(createMemoryStore());
    expect(got).toEqual(want);
    expect(got.first).toMatchObject({ processed: 11, inserted: 6, duplicates: 3, invalid: 1, optedOut: 1 });
    expect(got.again).toMatchObject({ processed: 11, inserted: 0, duplicates: 9, invalid: 1, optedOut: 1 });
    expect(got.rows.map((r) => r.vars.name)).toEqual(['Ana\tMaria', 'Bruno \\ "B"', 'Çãé ✓ 😀', undefined, undefined, undefined]);
    expect(got.rows[0]!.vars.note).toBe('line1\nline2');
    expect(got.rows[2]!.vars.cr).toBe('a\rb');
  });

  it('PGlite takes arrays (no COPY), with the same result', async () => {
    const db = new PGlite();
    try {
      const store = createPostgresStore(db, { schema: 'imp' });
      await store.migrate();
      expect(await store.recipientBuffer()).toBeNull();
      expect(await importInto(store)).toEqual(await importInto(createMemoryStore()));
    } finally {
      await db.close();
    }
  });
});
