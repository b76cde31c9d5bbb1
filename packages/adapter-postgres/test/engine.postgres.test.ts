/**
 * The engine on real PostgreSQL: racing step() calls, several engines sharing one schema, wake-ups
 * through LISTEN/NOTIFY, a database outage, and LISTEN surviving its connection.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, connect, type Socket } from 'node:net';
import pg from 'pg';
import { createEngine, createSimulatorTransport, silentLogger, type Engine } from '@disparo/core';
import { samplePhones } from '@disparo/core/testing';
import { createPostgresStore } from '@disparo/adapter-postgres';
import { freshSchema, pool, testDatabase } from './support.js';

let url = '';
const pools: pg.Pool[] = [];
const open = (max = 5) => {
  const p = pool(url, max);
  pools.push(p);
  return p;
};
beforeAll(async () => {
  url = await testDatabase('engine');
});
afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
});

const fast = { intervalMs: { min: 0, max: 0 } };

describe('engine on PostgreSQL', () => {
  it('duplicate step() calls racing on one campaign, from two workers, never send a recipient twice', async () => {
    const schema = freshSchema('step');
    const sim = createSimulatorTransport({ seed: 3 });
    // One provider, two hosts (two invocations of an edge function), each with its own connection pool.
    const engines: Engine[] = [open(), open()].map((p, i) =>
      createEngine({ store: createPostgresStore(p, { schema }), workerId: `host${i}`, logger: silentLogger, accounts: [{ id: 'a1', transport: sim, pacing: fast }] }),
    );
    await createPostgresStore(pools.at(-1)!, { schema }).migrate();
    const c = await engines[0]!.createCampaign({ name: 'race', templates: ['Oi {{name}}'], accountIds: ['a1'], batchSize: 25, batchPauseMs: { min: 0, max: 0 } });
    await engines[0]!.addRecipients(c.id, samplePhones(200, 11).map((phone, i) => ({ phone, vars: { name: `n${i}` } })));
    await engines[0]!.start(c.id);

    for (let round = 0; round < 40; round++) {
      // Three calls at once each round: two on one host, one on the other.
      await Promise.all([engines[0]!.step({ campaignId: c.id, budgetMs: 200 }), engines[0]!.step({ campaignId: c.id, budgetMs: 200 }), engines[1]!.step({ campaignId: c.id, budgetMs: 200 })]);
      if ((await engines[1]!.progress(c.id)).status === 'completed') break;
    }
    const progress = await engines[1]!.progress(c.id);
    expect(progress.status).toBe('completed');
    const keys = sim.sends.map((s) => s.idempotencyKey);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys.length).toBe(200);
    expect(progress.counters.sent).toBe(200);
  });

  it('grouped checkpoints: two workers sending in groups, with failures and retries, send each recipient once; counters equal rows', async () => {
    const schema = freshSchema('grouped');
    const sim = createSimulatorTransport({ seed: 5, failureRates: { transient: 0.05, rate_limited: 0.02, invalid_recipient: 0.02 } });
    const engines: Engine[] = [open(), open()].map((p, i) =>
      createEngine({
        store: createPostgresStore(p, { schema }),
        workerId: `g${i}`,
        logger: silentLogger,
        pollIntervalMs: 50,
        failureThreshold: 100,
        checkpoints: { groupSize: 40 },
        accounts: [{ id: 'a1', transport: sim, pacing: fast }],
      }),
    );
    await createPostgresStore(pools.at(-1)!, { schema }).migrate();
    const c = await engines[0]!.createCampaign({
      name: 'grouped',
      templates: ['Oi {{name}}'],
      accountIds: ['a1'],
      batchSize: 150,
      batchPauseMs: { min: 0, max: 0 },
      retryBackoffMs: { min: 10, max: 10 },
    });
    await engines[0]!.addRecipients(c.id, samplePhones(600, 21).map((phone, i) => ({ phone, vars: { name: `n${i}` } })));
    const done = new Promise<void>((resolve) => engines[1]!.on('campaign:completed', () => resolve()));
    const other = new Promise<void>((resolve) => engines[0]!.on('campaign:completed', () => resolve()));
    await engines[0]!.start(c.id);
    const runs = engines.map((e) => e.run());
    await Promise.race([done, other]);
    await Promise.all(engines.map((e) => e.stop()));
    await Promise.all(runs);
    const progress = await engines[1]!.progress(c.id);
    expect(progress.status).toBe('completed');
    const keys = sim.sends.map((s) => s.idempotencyKey);
    expect(new Set(keys).size).toBe(keys.length);
    const rows = await engines[1]!.store.listRecipients(c.id, { limit: 10_000 });
    const counted: Record<string, number> = {};
    for (const r of rows) counted[r.status] = (counted[r.status] ?? 0) + 1;
    expect(progress.counters.sent).toBe(counted.sent ?? 0);
    expect(progress.counters.sent).toBe(keys.length);
    expect(progress.counters.failed).toBe(counted.failed ?? 0);
    expect(progress.counters.skipped).toBe(counted.skipped ?? 0);
    expect((counted.pending ?? 0) + (counted.sending ?? 0)).toBe(0);
    expect(progress.counters.sent).toBeGreaterThan(500);
  });

  it('an idle worker wakes on NOTIFY when another process starts a campaign, long before its poll', async () => {
    const schema = freshSchema('wake');
    const store = createPostgresStore(open(), { schema });
    await store.migrate();
    const sim = createSimulatorTransport({ seed: 4 });
    const worker = createEngine({ store, workerId: 'idle', logger: silentLogger, pollIntervalMs: 10 * 60_000, accounts: [{ id: 'a1', transport: sim, pacing: fast }] });
    const running = worker.run();
    // Another process (its own pool, no run loop) creates and starts the campaign.
    const admin = createEngine({ store: createPostgresStore(open(), { schema }), logger: silentLogger, accounts: [{ id: 'a1', transport: createSimulatorTransport(), pacing: fast }] });
    await new Promise((r) => setTimeout(r, 300)); // the worker is idle in its 10-minute poll by now
    const c = await admin.createCampaign({ name: 'wake', templates: ['Oi'], accountIds: ['a1'], batchPauseMs: { min: 0, max: 0 } });
    await admin.addRecipients(c.id, samplePhones(5, 12).map((phone) => ({ phone })));
    const completed = new Promise<void>((resolve) => worker.on('campaign:completed', () => resolve()));
    await admin.start(c.id);
    const outcome = await Promise.race([completed.then(() => 'completed'), new Promise((r) => setTimeout(() => r('still idle'), 15_000))]);
    await worker.stop();
    await running;
    expect(outcome).toBe('completed');
    expect(sim.sends).toHaveLength(5);
  });

  it('a database outage longer than the write retries: sending picks up when it is back, each recipient sent once, none left leased', async () => {
    const schema = freshSchema('outage');
    await createPostgresStore(open(2), { schema }).migrate();
    const proxy = await cuttableProxy(url);
    const p = pool(proxy.url, 4);
    pools.push(p);
    p.on('error', () => undefined); // idle connections dropped by the cut (a host logs these)
    const sim = createSimulatorTransport({ seed: 6 });
    const errors: string[] = [];
    const engine = createEngine({
      store: createPostgresStore(p, { schema }),
      workerId: 'w-outage',
      logger: silentLogger,
      pollIntervalMs: 300,
      accounts: [{ id: 'a1', transport: sim, pacing: { intervalMs: { min: 20, max: 40 } } }],
    });
    engine.on('error', (e) => errors.push(e.context));
    const c = await engine.createCampaign({ name: 'outage', templates: ['Oi {{name}}'], accountIds: ['a1'], batchSize: 40, batchPauseMs: { min: 0, max: 0 } });
    await engine.addRecipients(c.id, samplePhones(120, 13).map((phone, i) => ({ phone, vars: { name: `n${i}` } })));
    await engine.start(c.id);
    const completed = new Promise<void>((resolve) => engine.on('campaign:completed', () => resolve()));
    const running = engine.run();
    while (sim.sends.length < 15) await new Promise((r) => setTimeout(r, 5));
    // Every connection dropped and new ones refused for 15 s: longer than the engine's retries of a
    // write (~11 s), shorter than the lease (30 s).
    proxy.cut();
    const atCut = sim.sends.length;
    await new Promise((r) => setTimeout(r, 15_000));
    expect(sim.sends.length - atCut).toBeLessThanOrEqual(1); // at most the send already on its way
    proxy.restore();
    const outcome = await Promise.race([completed.then(() => 'completed'), new Promise((r) => setTimeout(() => r('stalled'), 30_000))]);
    await engine.stop();
    await running;
    expect(outcome).toBe('completed');
    expect(errors.length).toBeGreaterThan(0); // the outage was seen (and reported), not slept through
    const keys = sim.sends.map((s) => s.idempotencyKey);
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys).toHaveLength(120);
    const admin = open(1);
    const { rows } = await admin.query(`SELECT status, count(*)::int AS n, count(lease_owner)::int AS leased FROM ${schema}.recipients GROUP BY status`);
    expect(rows).toEqual([{ status: 'sent', n: 120, leased: 0 }]);
    expect((await engine.progress(c.id)).counters).toMatchObject({ total: 120, sent: 120, sending: 0, pending: 0, unknown: 0 });
    proxy.close();
  }, 60_000);
});

  it('LISTEN survives its connection being killed: no crash, it listens again and reports the gap as a wake-up', async () => {
    const schema = freshSchema('relisten');
    const p = open();
    const store = createPostgresStore(p, { schema });
    await store.migrate();
    let wakes = 0;
    const unsubscribe = await store.subscribeWake(() => wakes++);
    const admin = open(1);
    const listeners = async () =>
      (await admin.query(`SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND datname = current_database()`)).rows as Array<{ pid: number }>;
    const [victim] = await listeners();
    expect(victim).toBeDefined();
    // The server ends the LISTEN session (what a restart or a network cut looks like to the client).
    await admin.query('SELECT pg_terminate_backend($1)', [victim!.pid]);
    const deadline = Date.now() + 10_000;
    while (wakes === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(wakes).toBe(1); // the reconnect itself wakes the worker once, for anything missed
    const again = await listeners();
    expect(again.map((r) => r.pid)).not.toContain(victim!.pid);
    expect(again).toHaveLength(1);
    await createPostgresStore(open(1), { schema }).notifyWake();
    while (wakes === 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(wakes).toBe(2);
    await unsubscribe();
    expect(await listeners()).toHaveLength(0);
  });

/** A TCP proxy in front of the test server whose `cut()` drops every connection and refuses new ones until `restore()`. */
async function cuttableProxy(target: string): Promise<{ url: string; cut(): void; restore(): void; close(): void }> {
  const t = new URL(target);
  const sockets = new Set<Socket>();
  let down = false;
  const server = createServer((client) => {
    if (down) return void client.destroy();
    const upstream = connect(Number(t.port), t.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const u = new URL(target);
  u.hostname = '127.0.0.1';
  u.port = String((server.address() as { port: number }).port);
  return {
    url: u.toString(),
    cut() {
      down = true;
      for (const s of sockets) s.destroy();
    },
    restore() {
      down = false;
    },
    close() {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}
