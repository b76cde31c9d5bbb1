/**
 * apply_status_updates racing other sessions on real PostgreSQL, each interleaving forced: a session
 * holds a row lock in an open transaction, and the test waits (pg_blocking_pids) until the session
 * it drives is blocked by the one it expects before it moves on. No sleeps.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import type { Outcome, RecipientCounters } from '@disparo/core/store';
import { newCampaign, pacing, samplePhones } from '@disparo/core/testing';
import { createPostgresStore, type PostgresStore } from '@disparo/adapter-postgres';
import { blockedBy, freshSchema, inspector, pool, testDatabase } from './support.js';

const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);
const LEASE_MS = 600_000;

let url = '';
const pools: pg.Pool[] = [];
let clients: pg.Client[] = [];
beforeAll(async () => {
  url = await testDatabase('receipts_races');
});
afterEach(async () => {
  // Ending a session rolls back whatever it still holds, so a failed case leaves no lock behind.
  await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  clients = [];
});
afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
});

/** One session of its own: its backend pid, and a store on it (so its calls can run inside our BEGIN). */
interface Session {
  db: pg.Client;
  pid: number;
  store: PostgresStore;
}

/** A fresh schema with campaign c1 of `n` recipients, all claimed by `o1`; rows in key order. */
async function setup(n: number) {
  const schema = freshSchema('rr');
  const p = pool(url, 4);
  pools.push(p);
  const store = createPostgresStore(p, { schema });
  await store.migrate();
  await store.createCampaign(newCampaign('c1', { batchSize: 100 }));
  await store.addRecipients('c1', samplePhones(n, 7).map((phone, i) => ({ phone, vars: { name: `n${i}` } })), T0);
  await store.upsertAccount('a1', pacing(), T0);
  expect(await store.claimRecipients({ campaignId: 'c1', batch: 1, owner: 'o1', limit: 100, now: T0, leaseMs: LEASE_MS })).toHaveLength(n);
  const raw = inspector(p, schema);
  const rows = (await raw.recipients('c1')).sort((a, b) => Number(a.id) - Number(b.id));

  const session = async (): Promise<Session> => {
    const db = new pg.Client({ connectionString: url });
    clients.push(db);
    await db.connect();
    const pid = Number((await db.query('SELECT pg_backend_pid() AS pid')).rows[0].pid);
    return { db, pid, store: createPostgresStore(db, { schema }) };
  };
  /** Write a recipient ahead as `sending` (with the provider id when it is known before the send). */
  const begin = async (id: string, pid: string | null = null) => {
    const res = await store.checkpoint({
      owner: 'o1',
      now: T0,
      leaseMs: LEASE_MS,
      writeAhead: { accountId: 'a1', maxInFlight: 1_000, items: [{ recipientId: id, campaignId: 'c1', text: 'Oi', attempt: 1, providerMessageId: pid, gapMs: 0, leadMs: 0 }] },
    });
    expect(res.grants[0]!.granted).toBe(true);
  };
  const sent = (id: string, providerMessageId: string, at = T0 + 1): Outcome => ({ recipientId: id, campaignId: 'c1', status: 'sent', attempts: 1, at, accountId: 'a1', providerMessageId });
  const record = async (outcomes: Outcome[], on: PostgresStore = store) => {
    const res = await on.checkpoint({ owner: 'o1', now: T0 + 2, leaseMs: LEASE_MS, outcomes });
    expect(res.outcomes.map((o) => o.applied)).toEqual(outcomes.map(() => true));
  };
  /** Hold `id`'s row lock in an open transaction on `s`. */
  const holdRow = async (s: Session, id: string) => {
    await s.db.query('BEGIN');
    await s.db.query(`SELECT 1 FROM "${schema}".recipients WHERE id = $1 FOR UPDATE`, [id]);
  };
  const row = async (id: string) => (await raw.recipients('c1')).find((r) => r.id === id)!;
  /** I2: the campaign's counters against a count of its rows by status. */
  const countersAndRows = async () => {
    const counted: RecipientCounters = { total: 0, pending: 0, sending: 0, sent: 0, delivered: 0, read: 0, failed: 0, skipped: 0, unknown: 0 };
    for (const r of await raw.recipients('c1')) {
      counted.total++;
      counted[r.status]++;
    }
    return { counters: (await raw.campaign('c1'))!.counters, rows: counted };
  };
  return { schema, store, rows, session, begin, sent, record, holdRow, row, countersAndRows };
}

describe('apply_status_updates racing other sessions (real PostgreSQL)', () => {
  it('a receipt for a row whose provider id came after the call started never moves its status back (I4), and counters equal rows (I2)', async () => {
    const t = await setup(2);
    const [r0, r1] = t.rows as [(typeof t.rows)[0], (typeof t.rows)[0]];
    // r0 sent as Q; r1 on the wire, its provider id to come with the answer (Evolution, Cloud API).
    await t.begin(r0.id);
    await t.record([t.sent(r0.id, 'Q')]);
    await t.begin(r1.id);
    const [holder, x, z] = [await t.session(), await t.session(), await t.session()];
    const admin = pools.at(-1)!;

    // X (delivered for Q and for P) waits on r0, held elsewhere; it knows no row carrying P yet.
    await t.holdRow(holder, r0.id);
    const callX = x.store.applyStatusUpdates(
      [
        { providerMessageId: 'Q', status: 'delivered', at: T0 + 10 },
        { providerMessageId: 'P', status: 'delivered', at: T0 + 11 },
      ],
      T0 + 12,
    );
    const settledX = callX.then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error }),
    );
    await blockedBy(admin, x, holder);
    // Meanwhile r1's outcome commits (sent, as P), and Z applies `read` for P, not committed yet.
    await t.record([t.sent(r1.id, 'P')]);
    await z.db.query('BEGIN');
    expect(await z.store.applyStatusUpdates([{ providerMessageId: 'P', status: 'read', at: T0 + 20 }], T0 + 20)).toMatchObject({ applied: 1 });
    // X goes on, reaches r1 and waits for Z; then Z commits.
    await holder.db.query('COMMIT');
    await blockedBy(admin, x, z);
    await z.db.query('COMMIT');

    const outcome = await settledX;
    expect(outcome.ok ? null : String(outcome.error), 'the receipts call fails').toBeNull();
    // The late `delivered` after `read` changed nothing: r1 stays read, X reports no move of r1.
    expect(await t.row(r1.id)).toMatchObject({ status: 'read', readAt: T0 + 20 });
    expect(await t.row(r0.id)).toMatchObject({ status: 'delivered', deliveredAt: T0 + 10 });
    if (outcome.ok) expect(outcome.value.changed).toEqual([{ recipientId: r0.id, campaignId: 'c1', from: 'sent', to: 'delivered' }]);
    const { counters, rows } = await t.countersAndRows();
    expect(counters, 'counters equal rows').toEqual(rows);
    expect(rows).toMatchObject({ total: 2, delivered: 1, read: 1 });
  });

  it('a receipt found by its idempotency key, racing a checkpoint of the same rows, does not deadlock', async () => {
    const t = await setup(7);
    const [, , r3, , r5, , r7] = t.rows as Array<(typeof t.rows)[0]>;
    // r3 on the wire, its answer lost (no provider id); r5 on the wire as P5 (id known ahead); r7 sent as P7.
    await t.begin(r3!.id);
    await t.begin(r5!.id, 'P5');
    await t.begin(r7!.id);
    await t.record([t.sent(r7!.id, 'P7')]);
    const [holder, x, c] = [await t.session(), await t.session(), await t.session()];
    const admin = pools.at(-1)!;

    // X, receipts for r5 and r7 by provider id and for r3 by its idempotency key, waits on r7.
    await t.holdRow(holder, r7!.id);
    const callX = x.store.applyStatusUpdates(
      [
        { providerMessageId: 'P5', status: 'delivered', at: T0 + 10 },
        { providerMessageId: 'P7', status: 'delivered', at: T0 + 10 },
        { providerMessageId: 'Q', idempotencyKey: `c1:${r3!.phone}`, status: 'delivered', at: T0 + 10 },
      ],
      T0 + 11,
    );
    await blockedBy(admin, x, holder);
    // The checkpoint with the outcomes of r3 and r5 comes next and waits on X.
    const callC = t.record([t.sent(r3!.id, 'Q'), t.sent(r5!.id, 'P5')], c.store);
    await blockedBy(admin, c, x);
    await holder.db.query('COMMIT');

    const [resX, resC] = await Promise.allSettled([callX, callC]);
    expect(resX.status === 'rejected' ? String(resX.reason) : null, 'the receipts call fails').toBeNull();
    expect(resC.status === 'rejected' ? String(resC.reason) : null, 'the checkpoint fails').toBeNull();
    // X applied P7 and held the two receipts whose rows were still sending.
    if (resX.status === 'fulfilled') {
      expect(resX.value).toMatchObject({ applied: 1, ignored: 2, unmatched: 0, held: 2 });
      expect(resX.value.changed).toEqual([{ recipientId: r7!.id, campaignId: 'c1', from: 'sent', to: 'delivered' }]);
    }
    // Housekeeping applies the held receipts now that both outcomes are recorded.
    expect(await t.store.applyStatusUpdates([], T0 + 20)).toMatchObject({ applied: 2 });
    for (const r of [r3!, r5!, r7!]) expect(await t.row(r.id)).toMatchObject({ status: 'delivered' });
    expect(await t.row(r3!.id)).toMatchObject({ providerMessageId: 'Q' });
    const { counters, rows } = await t.countersAndRows();
    expect(counters, 'counters equal rows').toEqual(rows);
    expect(rows).toMatchObject({ total: 7, pending: 4, delivered: 3 });
  });
});
