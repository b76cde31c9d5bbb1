import { afterAll, describe, expect, it } from 'vitest';
import { PGlite } from '@electric-sql/pglite';
import { createMemoryStore } from '@disparo/core';
import type { CheckpointInput, Outcome, Recipient, StateStore } from '@disparo/core/store';
import { newCampaign, pacing } from '@disparo/core/testing';
import { createPostgresStore } from '@disparo/adapter-postgres';
import { freshSchema, inspector } from './support.js';

/**
 * Range leases (sql/000005_range_leases.sql): a claim leases a stretch of fresh rows with one `leases`
 * row instead of writing each, and a row carries a lease of its own only once it is written ahead,
 * kept for a retry, or handed back. Whatever the mix, what the store says about leases must be what
 * core's memory store (the reference) says. Here the same random sequence of claims by several owners
 * over overlapping batches, heartbeats, releases (all, or some ids), expiry, write-aheads, outcomes
 * (hand-backs kept and not), recovery and opt-outs goes to both stores; every answer, and every row's
 * status and lease, must agree at every step.
 */
const db = new PGlite();
afterAll(() => db.close());

const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);
const LEASE_MS = 30_000;
const OWNERS = ['o1', 'o2', 'o3'];
const CAMPAIGNS = [['c1', 30, 10], ['c2', 18, 18]] as const;

const rng = (seed: number) => () => {
  seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
  return seed / 2_147_483_648;
};

async function setUp(store: StateStore): Promise<void> {
  await store.upsertAccount('a1', pacing({ maxInFlight: 1_000 }), T0);
  for (const [id, n, batchSize] of CAMPAIGNS) {
    await store.createCampaign(newCampaign(id, { batchSize, now: T0 }));
    await store.addRecipients(id, Array.from({ length: n }, (_, i) => ({ phone: `55119${70_000_000 + (id === 'c1' ? 0 : 100) + i}`, vars: {} })), T0);
  }
}

const rowsOf = async (store: StateStore): Promise<Recipient[]> => {
  const all: Recipient[] = [];
  for (const [c] of CAMPAIGNS) all.push(...(await store.listRecipients(c, { limit: 1_000 })).sort((a, b) => a.seq - b.seq));
  return all;
};
const view = (rows: Recipient[]) =>
  rows.map((r) => [r.campaignId, r.seq, r.status, r.leaseOwner, r.leaseExpiresAt, r.attempts, r.text, r.accountId, r.providerMessageId, r.sentAt, r.processedAt]);
const seqsOf = (rows: Recipient[]) => rows.map((r) => [r.campaignId, r.seq, r.leaseOwner, r.leaseExpiresAt]).sort((a, b) => String(a[0]).localeCompare(String(b[0])) || Number(a[1]) - Number(b[1]));

describe('range leases agree with the memory store', () => {
  it.each([1, 2, 3, 4, 5, 6, 7, 8])('seed %i', async (seed) => {
    const random = rng(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const memory = createMemoryStore();
    const schema = freshSchema('leases');
    const sql = createPostgresStore(db, { schema });
    await sql.migrate();
    await setUp(memory);
    await setUp(sql);
    const raw = inspector(db, schema);
    // By key (campaign, seq): the stores' ids differ.
    const idIn = async (store: StateStore, r: Recipient) => (await store.listRecipients(r.campaignId, { afterSeq: r.seq - 1, limit: 1 }))[0]!.id;
    let now = T0;
    let ranged = 0;
    let overExpired = 0;

    for (let step = 0; step < 400; step++) {
      const roll = random();
      const rows = await rowsOf(memory);
      const label = `seed ${seed} step ${step}`;
      if (roll < 0.3) {
        const [c, , batchSize] = pick(CAMPAIGNS);
        const input = { campaignId: c, batch: 1 + Math.floor(random() * 3), owner: pick(OWNERS), limit: 1 + Math.floor(random() * (batchSize + 2)), now, leaseMs: LEASE_MS };
        // A store of its own per claim: the SQL store's keyset cursor (a worker's, per store) is not
        // the memory store's rule, and is tested apart.
        const expired = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.leases WHERE campaign_id = $1 AND batch = $2 AND expires_at <= $3`, [input.campaignId, input.batch, now]);
        if (expired.rows[0]!.n > 0) overExpired++;
        const a = await memory.claimRecipients(input);
        const b = await createPostgresStore(db, { schema }).claimRecipients(input);
        expect(seqsOf(b), `${label}: claim ${JSON.stringify(input)}`).toEqual(seqsOf(a));
      } else if (roll < 0.5) {
        const open = rows.filter((r) => (r.status === 'pending' || r.status === 'sending') && r.leaseOwner !== null);
        if (open.length === 0) continue;
        // A single send (one outcome, one item: checkpoint.sql's own path) or a group.
        const size = random() < 0.6 ? 1 : 2 + Math.floor(random() * 3);
        const outs = [...new Set(Array.from({ length: random() < 0.7 ? size : 0 }, () => pick(open)))];
        const pending = rows.filter((r) => r.status === 'pending');
        const items = [...new Set(Array.from({ length: random() < 0.8 ? size : 0 }, () => (pending.length > 0 && random() < 0.9 ? pick(pending) : pick(rows))))];
        const first = outs[0] ?? items[0];
        if (!first) continue;
        const owner = random() < 0.85 ? first.leaseOwner ?? pick(OWNERS) : pick(OWNERS);
        const draws = outs.map(() => ({ status: pick(['sent', 'failed', 'skipped', 'pending', 'pending'] as const), keep: random() < 0.5 }));
        // Some sends carry the provider's id from the write-ahead (as Cloud API and Baileys do).
        const known = items.map(() => random() < 0.5);
        const input = async (store: StateStore): Promise<CheckpointInput> => ({
          owner,
          now,
          leaseMs: LEASE_MS,
          outcomes: await Promise.all(
            outs.map(async (o, i): Promise<Outcome> => ({
              recipientId: await idIn(store, o),
              campaignId: o.campaignId,
              status: draws[i]!.status,
              attempts: o.attempts + 1,
              at: now,
              ...(draws[i]!.status === 'pending' ? { keepLease: draws[i]!.keep } : {}),
            })),
          ),
          ...(items.length > 0
            ? { writeAhead: { accountId: 'a1', maxInFlight: 1_000, items: await Promise.all(items.map(async (t, i) => ({ recipientId: await idIn(store, t), campaignId: t.campaignId, text: `m${t.seq}.${t.attempts + 1}`, attempt: t.attempts + 1, ...(known[i] ? { providerMessageId: `w${t.campaignId}.${t.seq}.${t.attempts + 1}` } : {}), gapMs: 0, leadMs: 0 }))) } }
            : {}),
        });
        const a = await memory.checkpoint(await input(memory));
        const b = await sql.checkpoint(await input(sql));
        const strip = (r: typeof a) => ({ outcomes: r.outcomes.map(({ recipientId: _, ...x }) => x), grants: r.grants });
        expect(strip(b), label).toEqual(strip(a));
      } else if (roll < 0.6) {
        const owner = pick(OWNERS);
        expect(await sql.heartbeat(owner, now, LEASE_MS), `${label}: heartbeat ${owner}`).toBe(await memory.heartbeat(owner, now, LEASE_MS));
      } else if (roll < 0.7) {
        const owner = pick(OWNERS);
        if (random() < 0.4) {
          expect(await sql.release(owner), `${label}: release ${owner}`).toBe(await memory.release(owner));
        } else {
          const some = rows.filter(() => random() < 0.2);
          const a = await memory.release(owner, await Promise.all(some.map((r) => idIn(memory, r))));
          const b = await sql.release(owner, await Promise.all(some.map((r) => idIn(sql, r))));
          expect(b, `${label}: release ${owner} of ${some.length}`).toBe(a);
        }
      } else if (roll < 0.85) {
        now += pick([1, 1_000, LEASE_MS / 2, LEASE_MS]);
      } else if (roll < 0.95) {
        const a = await memory.listInDoubt(now, 100);
        const b = await sql.listInDoubt(now, 100);
        expect(seqsOf(b), `${label}: in doubt`).toEqual(seqsOf(a));
        const settle = a.filter(() => random() < 0.7).map((r) => ({ status: pick(['pending', 'unknown', 'sent'] as const), r }));
        const x = await memory.settleInDoubt(await Promise.all(settle.map(async (s) => ({ recipientId: await idIn(memory, s.r), status: s.status }))), now);
        const y = await sql.settleInDoubt(await Promise.all(settle.map(async (s) => ({ recipientId: await idIn(sql, s.r), status: s.status }))), now);
        expect(y, `${label}: settled`).toBe(x);
      } else {
        const r = pick(rows);
        const entry = [{ phone: r.phone, reason: 'SAIR', source: 'inbound' as const, at: now }];
        expect(await sql.addOptOuts(entry, now), `${label}: opt-out`).toEqual(await memory.addOptOuts(entry, now));
      }
      expect(view(await rowsOf(sql)), `${label}: rows`).toEqual(view(await rowsOf(memory)));
      // The test inspector reads rows by the same rule.
      expect(view(await raw.recipients('c1')), `${label}: inspector`).toEqual(view((await rowsOf(memory)).filter((r) => r.campaignId === 'c1')));
      ranged = Math.max(ranged, Number((await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.leases`)).rows[0]!.n));
    }
    // The sequence did lease by range (the rule under test), not only row by row.
    expect(ranged).toBeGreaterThan(0);
    // And claims met expired ranges, the case where ranges are trimmed.
    expect(overExpired).toBeGreaterThanOrEqual(3);
    const counters = async (store: StateStore) => Promise.all(CAMPAIGNS.map(async ([c]) => (await store.getCampaign(c))!.counters));
    expect(await counters(sql)).toEqual(await counters(memory));
  });
});
