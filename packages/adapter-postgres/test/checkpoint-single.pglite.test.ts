import { afterAll, describe, expect, it } from 'vitest';
import { PGlite } from '@electric-sql/pglite';
import { createMemoryStore } from '@disparo/core';
import type { CheckpointInput, Outcome, Recipient, StateStore, WriteAhead } from '@disparo/core/store';
import { newCampaign, pacing } from '@disparo/core/testing';
import { createPostgresStore } from '@disparo/adapter-postgres';
import { freshSchema } from './support.js';

/**
 * A single send's checkpoint (at most one outcome and one item: W = 1, one checkpoint per message) has
 * a path of its own in checkpoint.sql. Here random single checkpoints go to the memory store (core's
 * reference) and to the SQL store in the same order, with what the conformance cases take one at a
 * time mixed in one call: an outcome through one account and an item through another, rows of
 * different campaigns and batches, an item before its outcome's row, lost leases, repeats, caps,
 * windows, pacing, unusable accounts. Every answer, and then every row, account and counter, must agree.
 */
const db = new PGlite();
afterAll(() => db.close());

const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);
const LEASE_MS = 30_000;
const OWNERS = ['o1', 'o1', 'o1', 'o2'];
const ACCOUNTS = ['a1', 'a2'];

const rng = (seed: number) => () => {
  seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
  return seed / 2_147_483_648;
};

async function setUp(store: StateStore): Promise<Recipient[]> {
  for (const a of ACCOUNTS) await store.upsertAccount(a, pacing(), T0);
  const rows: Recipient[] = [];
  for (const [id, n, batchSize] of [['c1', 40, 8], ['c2', 24, 6]] as const) {
    await store.createCampaign(newCampaign(id, { batchSize, accountIds: ACCOUNTS, now: T0 }));
    await store.addRecipients(id, Array.from({ length: n }, (_, i) => ({ phone: `55119${70_000_000 + (id === 'c1' ? 0 : 100) + i}`, vars: {} })), T0);
    // Every batch leased, the last row of each to the other owner.
    for (let batch = 1; batch <= Math.ceil(n / batchSize); batch++) {
      const claimed = await store.claimRecipients({ campaignId: id, batch, owner: 'o1', limit: batchSize - 1, now: T0, leaseMs: LEASE_MS });
      const rest = await store.claimRecipients({ campaignId: id, batch, owner: 'o2', limit: batchSize, now: T0, leaseMs: LEASE_MS });
      rows.push(...claimed, ...rest);
    }
  }
  return rows.sort((a, b) => (a.campaignId === b.campaignId ? a.seq - b.seq : a.campaignId < b.campaignId ? -1 : 1));
}

/** What a store keeps, without its own ids and clock columns. */
async function snapshot(store: StateStore) {
  const rows = [];
  for (const c of ['c1', 'c2']) {
    for (const r of (await store.listRecipients(c, { limit: 1_000 })).sort((a, b) => a.seq - b.seq)) {
      rows.push([c, r.seq, r.status, r.attempts, r.accountId, r.leaseOwner, r.leaseExpiresAt, r.text, r.providerMessageId, r.lastError, r.skipReason, r.sentAt, r.processedAt]);
    }
  }
  const accounts = (await store.listAccounts(ACCOUNTS)).sort((a, b) => (a.id < b.id ? -1 : 1))
    .map((a) => [a.id, a.consecutiveFailures, a.nextSendAt, a.hourKey, a.sentThisHour, a.dayKey, a.sentToday]);
  const counters = [];
  for (const c of ['c1', 'c2']) counters.push((await store.getCampaign(c))!.counters, (await store.listBatches(c)).map((b) => [b.batch, b.size, b.sent, b.failed, b.skipped, b.unknown]));
  return { rows, accounts, counters };
}

describe('a single send\'s checkpoint agrees with the memory store', () => {
  it.each([1, 2, 3, 4, 5, 6])('seed %i', async (seed) => {
    const random = rng(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const memory = createMemoryStore();
    const sql = createPostgresStore(db, { schema: freshSchema('single') });
    await sql.migrate();
    const memRows = await setUp(memory);
    const sqlRows = await setUp(sql);
    expect(sqlRows.map((r) => [r.campaignId, r.seq, r.leaseOwner])).toEqual(memRows.map((r) => [r.campaignId, r.seq, r.leaseOwner]));

    let now = T0;
    const hourKey = (k: number) => `h${k}`;
    for (let step = 0; step < 200; step++) {
      now += pick([0, 1, 5, 100, 400]);
      if (random() < 0.05) {
        const patch = pick([{ state: 'active' as const, connection: 'open' as const }, { state: 'stopped' as const }, { connection: 'close' as const }, { state: 'disabled' as const, disabledUntil: now + 1_000 }]);
        const id = pick(ACCOUNTS);
        await memory.updateAccount(id, patch, now);
        await sql.updateAccount(id, patch, now);
      }
      const withOutcome = random() < 0.8;
      const withItem = random() < 0.85;
      // Mostly as a sender goes (the outcome of a send on the wire, the item a row still pending), not always.
      const status_ = new Map<string, string>();
      for (const c of ['c1', 'c2']) for (const r of await memory.listRecipients(c, { limit: 1_000 })) status_.set(r.id, r.status);
      const indexes = (st: string) => memRows.flatMap((r, i) => (status_.get(r.id) === st ? [i] : []));
      const sending = indexes('sending');
      const pendingRows = indexes('pending');
      const oi = sending.length > 0 && random() < 0.75 ? pick(sending) : Math.floor(random() * memRows.length);
      const near = random() < 0.3 ? Math.max(0, oi - 1 - Math.floor(random() * 3)) : Math.min(memRows.length - 1, oi + 1 + Math.floor(random() * 3));
      const ti = pendingRows.length > 0 && random() < 0.6 ? (random() < 0.5 ? pendingRows[0]! : pick(pendingRows)) : near;
      const status = pick(['sent', 'sent', 'sent', 'failed', 'skipped', 'unknown', 'pending'] as const);
      const outcomeFor = (r: Recipient): Outcome => ({
        recipientId: r.id,
        campaignId: r.campaignId,
        status,
        attempts: 1 + Math.floor(random() * 2),
        at: now,
        ...(random() < 0.8 ? { accountId: pick([...ACCOUNTS, 'a1', '', null]) } : {}),
        ...(random() < 0.5 ? { providerMessageId: pick(['p1', 'p2', '', null]) } : {}),
        ...(random() < 0.3 ? { error: pick(['boom', null]) } : {}),
        ...(status === 'skipped' ? { skipReason: 'not_on_whatsapp' as const } : {}),
        ...(status === 'pending' ? { keepLease: random() < 0.5 } : {}),
        ...(random() < 0.8 ? { accountEffect: pick(['success', 'failure', 'none'] as const) } : {}),
        ...(random() < 0.6 ? { accountNextSendAt: now + pick([-500, 0, 200, 1_000]) } : {}),
      });
      const owner = oi >= 0 && random() < 0.8 ? (memRows[oi]!.leaseOwner ?? 'o1') : pick(OWNERS);
      const account = pick([...ACCOUNTS, 'a1', 'a1', 'missing']);
      const capsKey = hourKey(Math.floor((now - T0) / 5_000));
      const item = {
        text: `t${step}`,
        attempt: 1 + Math.floor(random() * 2),
        providerMessageId: pick([null, null, `b${step}`]),
        gapMs: pick([0, 0, 300, 1_000]),
        leadMs: pick([0, 0, 50]),
      };
      const w = {
        maxInFlight: pick([1, 1, 2, 3]),
        ...(random() < 0.3 ? { aheadMs: pick([0, 200, 2_000]) } : {}),
        ...(random() < 0.3 ? { hourly: { key: pick([capsKey, 'other']), limit: pick([1, 2, 5]), endsAt: now + 10_000 } } : {}),
        ...(random() < 0.3 ? { daily: { key: pick([capsKey, 'day']), limit: pick([1, 3, 8]), endsAt: now + 50_000 } } : {}),
      };
      // The same random draws for both stores: drawn once, applied to each store's own ids.
      const outcomeDraw = withOutcome ? outcomeFor(memRows[oi]!) : null;
      const input = (rows: Recipient[]): CheckpointInput => {
        const writeAhead: WriteAhead | undefined = withItem
          ? { accountId: account, ...w, items: [{ recipientId: rows[ti]!.id, campaignId: rows[ti]!.campaignId, ...item }] }
          : undefined;
        return {
          owner,
          now,
          leaseMs: LEASE_MS,
          outcomes: outcomeDraw ? [{ ...outcomeDraw, recipientId: rows[oi]!.id }] : [],
          ...(writeAhead ? { writeAhead } : {}),
        };
      };
      const a = await memory.checkpoint(input(memRows));
      const b = await sql.checkpoint(input(sqlRows));
      const strip = (r: typeof a) => ({ outcomes: r.outcomes.map(({ recipientId: _, ...x }) => x), grants: r.grants });
      expect(strip(b), `step ${step}: ${JSON.stringify(input(memRows))}`).toEqual(strip(a));
      if (step % 40 === 39) expect(await snapshot(sql), `after step ${step}`).toEqual(await snapshot(memory));
    }
    expect(await snapshot(sql)).toEqual(await snapshot(memory));
  });
});
