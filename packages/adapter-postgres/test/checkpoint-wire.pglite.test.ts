import { afterAll, describe, expect, it } from 'vitest';
import { PGlite } from '@electric-sql/pglite';
import type { CheckpointInput, Outcome, Recipient, StateStore, WriteAhead } from '@disparo/core/store';
import { newCampaign, pacing } from '@disparo/core/testing';
import { checkpointResult, createPostgresStore } from '@disparo/adapter-postgres';
import { freshSchema } from './support.js';

/**
 * checkpoint's inputs travel as columns (checkpoint-codec.ts). A worker still on an older version of
 * the package sends them as records; during a rolling upgrade its calls must do exactly what the new
 * codec's do. Here the same calls go to two stores: one through the store (columns), the other as the
 * previous codec built them (records), straight to the SQL function. Answers and rows must agree.
 */
const db = new PGlite();
afterAll(() => db.close());

const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);
const LEASE_MS = 30_000;

/** The arguments as versions before columns sent them: the contract's records, times rounded. */
function recordArgs(input: CheckpointInput) {
  const outcomes = (input.outcomes ?? []).map((o) => {
    const x: Outcome = { ...o, at: Math.round(o.at) };
    if (o.accountNextSendAt !== undefined) x.accountNextSendAt = Math.ceil(o.accountNextSendAt);
    return x;
  });
  const w = input.writeAhead;
  return [
    input.owner,
    Math.round(input.now),
    Math.round(input.leaseMs),
    outcomes.length > 0 ? JSON.stringify(outcomes) : null,
    w && w.items.length > 0
      ? JSON.stringify({ ...w, items: w.items.map((i) => ({ ...i, providerMessageId: i.providerMessageId ?? null, gapMs: Math.round(i.gapMs), leadMs: Math.round(i.leadMs) })) })
      : null,
  ];
}

async function setUp(store: StateStore): Promise<Recipient[]> {
  await store.upsertAccount('a1', pacing({ maxInFlight: 20 }), T0);
  await store.createCampaign(newCampaign('c1', { batchSize: 12, now: T0 }));
  await store.addRecipients('c1', Array.from({ length: 12 }, (_, i) => ({ phone: `55119${80_000_000 + i}`, vars: {} })), T0);
  return (await store.claimRecipients({ campaignId: 'c1', batch: 1, owner: 'o1', limit: 12, now: T0, leaseMs: LEASE_MS })).sort((a, b) => a.seq - b.seq);
}

async function snapshot(store: StateStore) {
  const rows = (await store.listRecipients('c1', { limit: 100 })).map((r) => [r.seq, r.status, r.attempts, r.accountId, r.leaseOwner, r.leaseExpiresAt, r.text, r.providerMessageId, r.lastError, r.skipReason, r.sentAt, r.processedAt]);
  const account = (await store.listAccounts(['a1'])).map((a) => [a.consecutiveFailures, a.nextSendAt]);
  return { rows, account, counters: (await store.getCampaign('c1'))!.counters };
}

const ahead = (rows: Recipient[], attempt = 1, extra: Partial<WriteAhead> = {}): WriteAhead => ({
  accountId: 'a1',
  maxInFlight: 20,
  items: rows.map((r, i) => ({ recipientId: r.id, campaignId: 'c1', text: `Oi ${r.seq}`, attempt, gapMs: 10.4 + i, leadMs: 0, ...(i === 1 ? { providerMessageId: `pre-${r.seq}` } : {}) })),
  ...extra,
});
const out = (r: Recipient, status: Outcome['status'], at: number, o: Partial<Outcome> = {}): Outcome => ({ recipientId: r.id, campaignId: 'c1', status, attempts: 1, at, accountId: 'a1', ...o });

describe('checkpoint inputs as records (a worker on an older version) and as columns', () => {
  it('do the same, on the group path and on a single send', async () => {
    const viaStore = createPostgresStore(db, { schema: freshSchema('wire') });
    const rawSchema = freshSchema('wire');
    const raw = createPostgresStore(db, { schema: rawSchema });
    await viaStore.migrate();
    await raw.migrate();
    const rows = await setUp(viaStore);
    const rawRows = await setUp(raw);
    expect(rawRows.map((r) => r.id)).toEqual(rows.map((r) => r.id));
    const r = rows;

    const calls: CheckpointInput[] = [
      // a group written ahead
      { owner: 'o1', now: T0 + 1, leaseMs: LEASE_MS, writeAhead: ahead(r.slice(0, 6)) },
      // their outcomes: every field of an Outcome, an error present or not
      {
        owner: 'o1',
        now: T0 + 500,
        leaseMs: LEASE_MS,
        outcomes: [
          out(r[0]!, 'sent', T0 + 100.6, { providerMessageId: 'wamid.0', accountEffect: 'success', accountNextSendAt: T0 + 900.2 }),
          out(r[1]!, 'failed', T0 + 110, { error: 'boom', accountEffect: 'failure' }),
          out(r[2]!, 'pending', T0 + 120, { keepLease: true, error: 'transient', accountEffect: 'none' }),
          out(r[3]!, 'skipped', T0 + 130, { skipReason: 'not_on_whatsapp', accountId: null }),
          out(r[4]!, 'pending', T0 + 140, { keepLease: true, error: 'later' }),
          out(r[5]!, 'unknown', T0 + 150, { accountId: '' }),
        ],
        writeAhead: ahead(r.slice(6, 8), 1, { aheadMs: 5_000 }),
      },
      // the retries: one outcome clears its error (present, null), the other keeps it (absent)
      { owner: 'o1', now: T0 + 2_000, leaseMs: LEASE_MS, writeAhead: ahead([r[2]!, r[4]!], 2, { aheadMs: 5_000 }) },
      {
        owner: 'o1',
        now: T0 + 3_000,
        leaseMs: LEASE_MS,
        outcomes: [out(r[2]!, 'sent', T0 + 2_100, { attempts: 2, error: null }), out(r[4]!, 'sent', T0 + 2_200, { attempts: 2 }), out(r[6]!, 'sent', T0 + 2_300), out(r[7]!, 'failed', T0 + 2_400, { error: 'x' })],
      },
      // a single send: one outcome and one item, each path of the function once
      { owner: 'o1', now: T0 + 4_000, leaseMs: LEASE_MS, writeAhead: ahead([r[8]!], 1, { aheadMs: 5_000 }) },
      { owner: 'o1', now: T0 + 5_000, leaseMs: LEASE_MS, outcomes: [out(r[8]!, 'failed', T0 + 4_100, { error: null, accountEffect: 'failure' })], writeAhead: ahead([r[9]!], 1, { aheadMs: 5_000 }) },
      { owner: 'o1', now: T0 + 6_000, leaseMs: LEASE_MS, outcomes: [out(r[9]!, 'pending', T0 + 5_100, { keepLease: true, error: 'again' })] },
    ];
    for (const [k, input] of calls.entries()) {
      const expected = await viaStore.checkpoint(input);
      const value = (await db.query<{ value: unknown }>(
        `SELECT "${rawSchema}".checkpoint(p_owner => $1, p_now => $2, p_lease_ms => $3, p_outcomes => $4::jsonb, p_write_ahead => $5::jsonb) AS value`,
        recordArgs(input),
      )).rows[0]!.value;
      expect(checkpointResult(input, value), `call ${k}`).toEqual(expected);
      expect(await snapshot(raw), `call ${k}`).toEqual(await snapshot(viaStore));
    }
    // What the calls did, so that agreeing means something: every status, errors kept and cleared.
    const shown = await viaStore.listRecipients('c1', { limit: 100 });
    expect(shown.slice(0, 10).map((x) => [x.status, x.lastError])).toEqual([
      ['sent', null], ['failed', 'boom'], ['sent', null], ['skipped', null], ['sent', 'later'], ['unknown', null], ['sent', null], ['failed', 'x'], ['failed', null], ['pending', 'again'],
    ]);
    expect(shown[1]!.providerMessageId).toBe('pre-2');
  });

  it('refuses columns of different lengths with a clear error', async () => {
    const schema = freshSchema('wire');
    const store = createPostgresStore(db, { schema });
    await store.migrate();
    const [a, b] = await setUp(store);
    const bad = { recipientId: [a!.id, b!.id], campaignId: ['c1'], status: ['sent', 'sent'], keepLease: [null, null], attempts: [1, 1], at: [T0, T0], accountId: ['a1', 'a1'], providerMessageId: [null, null], error: [null, null], hasError: [false, false], skipReason: [null, null], accountEffect: [null, null], accountNextSendAt: [null, null] };
    await expect(db.query(`SELECT "${schema}".checkpoint(p_owner => 'o1', p_now => $1, p_lease_ms => 1000, p_outcomes => $2::jsonb)`, [T0, JSON.stringify(bad)])).rejects.toThrow(
      /every column of the outcomes must hold one entry per outcome/,
    );
    // Nothing was written.
    expect((await store.getCampaign('c1'))!.counters.sent).toBe(0);
  });

  it('takes columns without entries as no outcomes and no items', async () => {
    const schema = freshSchema('wire');
    const store = createPostgresStore(db, { schema });
    await store.migrate();
    await setUp(store);
    const before = await snapshot(store);
    const outcomes = { recipientId: [], campaignId: [], status: [], keepLease: [], attempts: [], at: [], accountId: [], providerMessageId: [], error: [], hasError: [], skipReason: [], accountEffect: [], accountNextSendAt: [] };
    const writeAhead = { accountId: 'a1', maxInFlight: 20, items: { recipientId: [], campaignId: [], text: [], attempt: [], providerMessageId: [], gapMs: [], leadMs: [] } };
    const call = (o: unknown, w: unknown) =>
      db.query<{ value: unknown }>(`SELECT "${schema}".checkpoint(p_owner => 'o1', p_now => $1, p_lease_ms => 1000, p_outcomes => $2::jsonb, p_write_ahead => $3::jsonb) AS value`, [
        T0 + 1,
        o === null ? null : JSON.stringify(o),
        w === null ? null : JSON.stringify(w),
      ]);
    const none = { applied: [], failures: [], granted: [], at: [], reason: [] };
    for (const [o, w] of [[outcomes, null], [null, writeAhead], [outcomes, writeAhead]] as const) {
      expect((await call(o, w)).rows[0]!.value).toEqual(none);
    }
    // Nothing reserved or written: the account's next slot is where it was.
    expect(await snapshot(store)).toEqual(before);
  });
});
