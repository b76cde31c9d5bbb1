/**
 * What PostgreSQL cannot store reaches the store's caller as the library's ValidationError naming the
 * field (never node-postgres's untyped DatabaseError, which an HTTP API turns into a 500), and nothing
 * of the call is stored: a NUL character in any text, or text that is not valid JSON to PostgreSQL
 * (a lone UTF-16 surrogate). On PostgreSQL (COPY and JSON imports) and on PGlite.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import { ValidationError, type StateStore } from '@disparo/core';
import { createPostgresStore } from '@disparo/adapter-postgres';
import { freshSchema, pool, testDatabase } from './support.js';

const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);
const settings = {
  batchSize: 10,
  batchPauseMs: { min: 0, max: 0 },
  maxAttempts: 3,
  retryBackoffMs: { min: 0, max: 0 },
  inDoubt: 'at-most-once' as const,
  sendWindow: null,
  stickySender: false,
  precheckNumbers: false,
  contactCap: null,
};
const campaign = (id: string, o: { name?: string; metadata?: Record<string, unknown> } = {}) => ({
  id,
  name: o.name ?? 'ok',
  templates: ['Oi {{name}}'],
  media: null,
  accountIds: ['a1'],
  settings,
  status: 'draft' as const,
  scheduledAt: null,
  metadata: o.metadata ?? {},
  now: T0,
});

let url = '';
const pools: pg.Pool[] = [];
const lite = new PGlite();
beforeAll(async () => {
  url = await testDatabase('badinput');
});
afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
  await lite.close();
});

const stores: Record<string, () => Promise<StateStore>> = {
  'postgres (COPY import)': async () => {
    const p = pool(url, 2);
    pools.push(p);
    const store = createPostgresStore(p, { schema: freshSchema('bad') });
    await store.migrate();
    return store;
  },
  'postgres (JSON import)': async () => {
    const p = pool(url, 2);
    pools.push(p);
    const store = createPostgresStore(p, { schema: freshSchema('badj'), importMode: 'insert' });
    await store.migrate();
    return store;
  },
  pglite: async () => {
    const store = createPostgresStore(lite, { schema: freshSchema('badl') });
    await store.migrate();
    return store;
  },
};

/** The call's error: a ValidationError whose first issue names `path`, and whose message says why. */
async function refused(call: Promise<unknown>, path: string, why: RegExp): Promise<ValidationError> {
  const error = await call.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error, `expected a ValidationError for ${path}`).toBeInstanceOf(ValidationError);
  const v = error as ValidationError;
  expect(v.code).toBe('VALIDATION');
  expect(v.field).toBe(path);
  expect(v.message).toContain(path);
  expect(v.message).toMatch(why);
  return v;
}

describe.each(Object.keys(stores))('bad input on %s', (kind) => {
  it('a NUL character in a campaign name or in its metadata: a ValidationError naming the field, nothing stored', async () => {
    const store = await stores[kind]!();
    await refused(store.createCampaign(campaign('c1', { name: 'Black\u0000Friday' })), 'name', /NUL character/);
    await refused(store.createCampaign(campaign('c1', { metadata: { crm: { note: 'a\u0000b' } } })), 'metadata.crm.note', /NUL character/);
    await refused(store.createCampaign(campaign('c1', { metadata: { 'we\u0000ird': 1 } })), 'metadata.we\u0000ird', /NUL character .*in its name/);
    expect(await store.getCampaign('c1')).toBeNull();
    expect(await store.listCampaigns()).toEqual([]);
  });

  it('a NUL character in a recipient phone or variable: a ValidationError naming the row and field, no row imported', async () => {
    const store = await stores[kind]!();
    await store.createCampaign(campaign('c1'));
    const rows = [
      { phone: '5511970000001', vars: { name: 'Ana' } },
      { phone: '5511970000002', vars: { name: 'Jo\u0000ão' } },
    ];
    await refused(store.addRecipients('c1', rows, T0), 'rows[1].vars.name', /NUL character/);
    await refused(store.addRecipients('c1', [{ phone: '55119700\u000000003', vars: {} }], T0), 'rows[0].phone', /NUL character/);
    expect(await store.listRecipients('c1')).toEqual([]);
    expect((await store.getCampaign('c1'))!.counters.total).toBe(0);
    // The same rows without the NUL go in.
    expect(await store.addRecipients('c1', [rows[0]!, { ...rows[1]!, vars: { name: 'João' } }], T0)).toEqual({ inserted: 2, duplicates: 0, optedOut: 0 });
  });

  it('text that is not valid JSON to PostgreSQL (a lone surrogate in a variable): a ValidationError naming the field', async () => {
    const store = await stores[kind]!();
    await store.createCampaign(campaign('c1'));
    await refused(store.addRecipients('c1', [{ phone: '5511970000001', vars: { emoji: 'broken \ud83d' } }], T0), 'rows[0].vars.emoji', /lone UTF-16 surrogate/);
    await refused(store.updateCampaign('c1', { metadata: { x: '\udc00' } }, T0), 'metadata.x', /lone UTF-16 surrogate/);
    expect(await store.listRecipients('c1')).toEqual([]);
  });

  it('a NUL character in the text written ahead: a ValidationError naming the item, the row untouched', async () => {
    const store = await stores[kind]!();
    await store.createCampaign(campaign('c1'));
    await store.upsertAccount('a1', { intervalMs: { min: 0, max: 0 }, hourlyCap: null, dailyCap: null, warmup: null, typingMsPerChar: 0, typingMaxMs: 0, maxInFlight: 1, ratePerSecond: null }, T0);
    await store.addRecipients('c1', [{ phone: '5511970000001', vars: {} }], T0);
    const [row] = await store.claimRecipients({ campaignId: 'c1', batch: 1, owner: 'o1', limit: 1, now: T0, leaseMs: 30_000 });
    const item = { recipientId: row!.id, campaignId: 'c1', text: 'Oi\u0000', attempt: 1, gapMs: 0, leadMs: 0 };
    await refused(store.checkpoint({ owner: 'o1', now: T0, leaseMs: 30_000, writeAhead: { accountId: 'a1', maxInFlight: 1, items: [item] } }), 'writeAhead.items[0].text', /NUL character/);
    expect((await store.listRecipients('c1'))[0]).toMatchObject({ status: 'pending', text: null });
    const ok = await store.checkpoint({ owner: 'o1', now: T0, leaseMs: 30_000, writeAhead: { accountId: 'a1', maxInFlight: 1, items: [{ ...item, text: 'Oi' }] } });
    expect(ok.grants).toEqual([{ granted: true, slotAt: T0 }]);
  });
});
