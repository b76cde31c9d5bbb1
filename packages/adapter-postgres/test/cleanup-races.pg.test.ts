/**
 * cleanup racing a worker's write-ahead on real PostgreSQL, the interleaving forced: the worker's
 * checkpoint holds its row in an open transaction, and the test waits (pg_blocking_pids) until cleanup
 * is blocked by it before it commits. No sleeps.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { newCampaign, pacing, samplePhones } from '@disparo/core/testing';
import { createPostgresStore } from '@disparo/adapter-postgres';
import { blockedBy, freshSchema, pool, testDatabase } from './support.js';

const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);
const LEASE_MS = 600_000;

let url = '';
const pools: pg.Pool[] = [];
const clients: pg.Client[] = [];
beforeAll(async () => {
  url = await testDatabase('cleanup_races');
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  await Promise.all(pools.map((p) => p.end()));
});

async function session() {
  const db = new pg.Client({ connectionString: url });
  clients.push(db);
  await db.connect();
  const pid = Number((await db.query('SELECT pg_backend_pid() AS pid')).rows[0].pid);
  return { db, pid };
}

describe('cleanup racing a write-ahead (real PostgreSQL)', () => {
  it('leaves no send in flight of a deleted campaign behind: the account window it held is free again', async () => {
    const schema = freshSchema('cr');
    const p = pool(url, 4);
    pools.push(p);
    const store = createPostgresStore(p, { schema });
    await store.migrate();
    // A worker is mid-send in c1 through a2 (a window of one) when the host cancels c1 and cleans up at once.
    await store.upsertAccount('a2', pacing({ maxInFlight: 1 }), T0);
    await store.createCampaign(newCampaign('c1', { batchSize: 100 }));
    await store.addRecipients('c1', samplePhones(1, 3).map((phone) => ({ phone, vars: {} })), T0);
    const [r] = await store.claimRecipients({ campaignId: 'c1', batch: 1, owner: 'o1', limit: 10, now: T0, leaseMs: LEASE_MS });
    expect(await store.transitionCampaign('c1', { from: ['draft'], to: 'cancelled', now: T0 + 1 })).not.toBeNull();

    const [worker, host] = [await session(), await session()];
    const workerStore = createPostgresStore(worker.db, { schema });
    const hostStore = createPostgresStore(host.db, { schema });
    await worker.db.query('BEGIN');
    const ahead = await workerStore.checkpoint({
      owner: 'o1',
      now: T0 + 2,
      leaseMs: LEASE_MS,
      writeAhead: { accountId: 'a2', maxInFlight: 1, items: [{ recipientId: r!.id, campaignId: 'c1', text: 'Oi', attempt: 1, providerMessageId: null, gapMs: 0, leadMs: 0 }] },
    });
    expect(ahead.grants[0]!.granted).toBe(true);
    const cleaning = hostStore.cleanup(T0 + 10);
    await blockedBy(p, host, worker);
    await worker.db.query('COMMIT');
    expect(await cleaning).toEqual({ campaigns: 1, recipients: 1 });

    // Nothing of c1 is left, and a2's window (one send) is free for the next campaign.
    const { rows: left } = await p.query(`SELECT count(*)::int AS n FROM "${schema}".in_flight`);
    expect(left[0].n).toBe(0);
    await store.createCampaign(newCampaign('c2', { batchSize: 100 }));
    await store.addRecipients('c2', samplePhones(1, 4).map((phone) => ({ phone, vars: {} })), T0 + 20);
    const [r2] = await store.claimRecipients({ campaignId: 'c2', batch: 1, owner: 'o1', limit: 10, now: T0 + 20, leaseMs: LEASE_MS });
    const next = await store.checkpoint({
      owner: 'o1',
      now: T0 + 21,
      leaseMs: LEASE_MS,
      writeAhead: { accountId: 'a2', maxInFlight: 1, items: [{ recipientId: r2!.id, campaignId: 'c2', text: 'Oi', attempt: 1, providerMessageId: null, gapMs: 0, leadMs: 0 }] },
    });
    expect(next.grants[0]).toMatchObject({ granted: true });
  });
});
