/**
 * The worker as a real child process (`node --import tsx src/main.ts`) against a real PostgreSQL: bad
 * config, health endpoint and file, SIGTERM then resume in a second process, SIGKILL then resume after
 * lease expiry, and an account disconnect that pauses its campaign (`no_accounts`) until it reconnects.
 * The simulated provider's memory is an HTTP sink in this test process, so every send is counted
 * where a killed worker cannot lose or invent it.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { createEngine, silentLogger, type Engine } from '@disparo/core';
import { samplePhones } from '@disparo/core/testing';
import { createPostgresStore, type PostgresStore } from '@disparo/adapter-postgres';
import { inspector, pool, testDatabase } from '../../../packages/adapter-postgres/test/support.js';
import { countByKey, killAll, sleep, spawnWorker, startSink, until, type LogLine } from './support.js';

const INTERVAL = { min: 40, max: 40 };

describe('worker process (real PostgreSQL, real child processes)', () => {
  let url = '';
  let db: pg.Pool;
  let sink: Awaited<ReturnType<typeof startSink>>;
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    url = await testDatabase('worker');
    db = pool(url, 4);
    sink = await startSink();
  });

  afterAll(async () => {
    killAll();
    await sink?.close();
    await db?.end();
    console.log(JSON.stringify({ workerTestTimingsMs: timings }));
  });

  /** A schema of its own, its store, and an admin engine (no accounts) that creates and starts campaigns for the workers to register their accounts later. */
  async function setup(schema: string): Promise<{ store: PostgresStore; admin: Engine; raw: ReturnType<typeof inspector> }> {
    const store = createPostgresStore(db, { schema });
    await store.migrate();
    return { store, admin: createEngine({ store, logger: silentLogger }), raw: inspector(db, schema) };
  }

  async function campaign(admin: Engine, id: string, accountIds: string[], n: number, seed: number): Promise<string> {
    const c = await admin.createCampaign({ id, name: id, templates: ['Oi {{name}}, tudo bem? ({{n}})'], accountIds, batchSize: 300, batchPauseMs: { min: 0, max: 0 }, allowUnknownAccounts: true });
    await admin.addRecipients(
      c.id,
      samplePhones(n, seed).map((phone, i) => ({ phone, vars: { name: `p${i}`, n: String(i) } })),
    );
    await admin.start(c.id);
    return c.id;
  }

  const env = (schema: string, accounts: unknown[], extra: Record<string, string> = {}) => ({
    DATABASE_URL: url,
    DB_SCHEMA: schema,
    ACCOUNTS: JSON.stringify(accounts),
    POLL_INTERVAL_MS: '200',
    SHUTDOWN_TIMEOUT_MS: '10000',
    LOG_LEVEL: 'info',
    ...extra,
  });

  const sendsOf = (campaignId: string) => sink.sends.filter((s) => s.key.startsWith(`${campaignId}:`));

  it('exits 78 on bad config, naming each variable', async () => {
    const t0 = Date.now();
    const missing = spawnWorker({ ACCOUNTS: '[{"id":"a","transport":"evolution"' });
    const wrong = spawnWorker({
      DATABASE_URL: 'mysql://nope',
      ACCOUNTS: JSON.stringify([{ id: 'a', transport: 'evolution', baseUrl: 'not a url', apiKey: 'k' }, { id: 'b', transport: 'telegram' }]),
      CONCURRENCY: '0',
      LEASE_TTL_MS: 'soon',
    });
    const [m, w] = await Promise.all([missing.exited, wrong.exited]);
    expect(m.code).toBe(78);
    expect(missing.stderr()).toMatch(/DATABASE_URL: is required/);
    expect(missing.stderr()).toMatch(/ACCOUNTS: is not valid JSON/);
    expect(w.code).toBe(78);
    const text = wrong.stderr();
    expect(text).toMatch(/DATABASE_URL: must be a postgres:\/\//);
    expect(text).toMatch(/ACCOUNTS\[0\]\.baseUrl: must be an http\(s\) URL/);
    expect(text).toMatch(/ACCOUNTS\[0\]\.instance: is required/);
    expect(text).toMatch(/ACCOUNTS\[1\]\.transport: must be "evolution", "baileys" or "simulator"/);
    expect(text).toMatch(/CONCURRENCY: must be at least 1/);
    expect(text).toMatch(/LEASE_TTL_MS: must be a whole number/);
    timings.badConfig = Date.now() - t0;
  });

  it('serves health as JSON (ok + accounts) and keeps a health file', async () => {
    const t0 = Date.now();
    await setup('health');
    const file = join(mkdtempSync(join(tmpdir(), 'disparo-worker-')), 'health.json');
    const w = spawnWorker(env('health', [{ id: 'sim-h', transport: 'simulator' }], { HEALTH_PORT: '0', HEALTH_HOST: '127.0.0.1', HEALTH_FILE: file }));
    const started = await w.waitForLog((l) => l.msg === 'worker started');
    const port = started.healthPort as number;
    expect(port).toBeGreaterThan(0);

    const res = await fetch(`http://127.0.0.1:${port}/health`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    const body = (await res.json()) as { ok: boolean; workerId: string; accounts: Array<{ accountId: string; connection: string }> };
    expect(body.ok).toBe(true);
    expect(body.accounts).toEqual([{ accountId: 'sim-h', connection: 'open' }]);
    const ready = (await (await fetch(`http://127.0.0.1:${port}/ready`)).json()) as { ok: boolean; database: string };
    expect(ready).toMatchObject({ ok: true, database: 'ok' });
    expect((await fetch(`http://127.0.0.1:${port}/nope`)).status).toBe(404);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ ok: true, workerId: body.workerId, accounts: [{ accountId: 'sim-h', connection: 'open' }] });

    w.proc.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ ok: false, status: 'stopped' });
    // Every stdout line is JSON (pino), with the worker's id on it.
    expect(w.logs.filter((l) => l.raw)).toEqual([]);
    expect(w.logs.every((l) => l.workerId === body.workerId && typeof l.level === 'number')).toBe(true);
    timings.health = Date.now() - t0;
  });

  it('wakes on LISTEN/NOTIFY: a campaign started while the worker idles goes out without waiting for a poll', async () => {
    const t0 = Date.now();
    const { store, admin } = await setup('wake');
    const accounts = [{ id: 'sim-w', transport: 'simulator', sinkUrl: sink.url, intervalMs: { min: 0, max: 0 } }];
    const w = spawnWorker(env('wake', accounts, { POLL_INTERVAL_MS: '600000' }));
    await w.waitForLog((l) => l.msg === 'worker started');
    await sleep(500); // past its first poll: from here on only a notification wakes it
    const startedAt = Date.now();
    const id = await campaign(admin, 'wake-1', ['sim-w'], 5, 41);
    await until('campaign completed', async () => (await store.getCampaign(id))?.status === 'completed', 10_000, 25);
    timings.wakeToCompleted = Date.now() - startedAt;
    expect(Date.now() - startedAt).toBeLessThan(8_000);
    expect(countByKey(sendsOf(id)).size).toBe(5);

    // The LISTEN connection dies (a database restart, a proxy timeout): logged, not a crash.
    const { rows } = await db.query<{ ok: boolean }>(`SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE query ILIKE 'LISTEN %' AND datname = current_database()`);
    expect(rows.length).toBeGreaterThanOrEqual(1);
    await w.waitForLog((l) => l.msg === 'database connection lost', 5_000);
    await sleep(300);
    expect(w.proc.exitCode).toBeNull();
    w.proc.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
    timings.wake = Date.now() - t0;
  });

  it('SIGTERM mid-campaign: exits 0 promptly with leases released; a second process finishes with no duplicate and no loss', async () => {
    const t0 = Date.now();
    const { store, admin, raw } = await setup('term');
    const accounts = ['sim-a', 'sim-b'].map((id) => ({ id, transport: 'simulator', sinkUrl: sink.url, intervalMs: INTERVAL }));
    // Many campaigns at once: two campaigns on two accounts, worked concurrently.
    const ids = [await campaign(admin, 'term-1', ['sim-a'], 40, 11), await campaign(admin, 'term-2', ['sim-b'], 40, 12)];
    const first = spawnWorker(env('term', accounts, { WORKER_ID: 'term-w1' }));
    // SIGTERM while a message is on the wire: the provider answers 700 ms later, and the worker waits for it.
    const WIRE_MS = 700;
    const onTheWire = await sink.holdNext((s) => s.key.startsWith(`${ids[0]}:`) && sendsOf(ids[0]!).length >= 10 && sendsOf(ids[1]!).length >= 8, WIRE_MS);
    const signalledAt = Date.now();
    first.proc.kill('SIGTERM');
    const exit = await first.exited;
    timings.sigtermExit = exit.at - signalledAt;
    expect(exit.code).toBe(0);
    expect(exit.at - signalledAt).toBeGreaterThanOrEqual(WIRE_MS - 50);
    expect(exit.at - signalledAt).toBeLessThan(5_000);
    expect(first.logs.some((l) => l.msg === 'stopped gracefully')).toBe(true);
    const wireRow = (await raw.recipients(ids[0]!)).find((r) => `${ids[0]}:${r.phone}` === onTheWire.key);
    expect(wireRow?.status).toBe('sent');

    // Checkpointed and released: nothing in flight or leased, and the ledger equals what the provider saw.
    const sentBefore = ids.reduce((n, id) => n + sendsOf(id).length, 0);
    expect(sentBefore).toBeLessThan(80);
    for (const id of ids) {
      const rows = await raw.recipients(id);
      expect(rows.filter((r) => r.status === 'sending')).toEqual([]);
      expect(rows.filter((r) => r.leaseOwner !== null)).toEqual([]);
      const seen = new Set(sendsOf(id).map((s) => s.key));
      expect(new Set(rows.filter((r) => r.status === 'sent').map((r) => `${id}:${r.phone}`))).toEqual(seen);
      expect((await raw.campaign(id))!.status).toBe('running');
    }

    // A second process picks up at once: had the leases been left behind, it would wait LEASE_TTL_MS (30 s).
    const resumedAt = Date.now();
    const second = spawnWorker(env('term', accounts, { WORKER_ID: 'term-w2' }));
    await until('both campaigns completed', async () => (await Promise.all(ids.map((id) => store.getCampaign(id)))).every((c) => c?.status === 'completed'), 20_000);
    timings.sigtermResume = Date.now() - resumedAt;
    expect(Date.now() - resumedAt).toBeLessThan(15_000);

    const counts = countByKey(sink.sends.filter((s) => ids.some((id) => s.key.startsWith(`${id}:`))));
    expect([...counts.values()].filter((n) => n > 1)).toEqual([]);
    expect(counts.size).toBe(80);
    expect(sink.sends.filter((s) => s.worker === 'term-w2').length).toBe(80 - sentBefore);
    for (const id of ids) {
      const c = (await raw.campaign(id))!;
      expect(c.counters).toMatchObject({ total: 40, sent: 40, pending: 0, sending: 0, failed: 0, unknown: 0 });
    }
    second.proc.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
    timings.sigterm = Date.now() - t0;
  });

  it('SIGKILL mid-campaign: a second process resumes after the lease expires, with no duplicate and no loss', async () => {
    const t0 = Date.now();
    const LEASE = 2_000;
    const { store, admin, raw } = await setup('kill');
    const accounts = [{ id: 'sim-k', transport: 'simulator', sinkUrl: sink.url, intervalMs: INTERVAL }];
    const id = await campaign(admin, 'kill-1', ['sim-k'], 50, 21);
    const first = spawnWorker(env('kill', accounts, { WORKER_ID: 'kill-w1', LEASE_TTL_MS: String(LEASE) }));
    // The 12th message reaches the provider, and the worker dies before it hears back: a send in doubt.
    const inDoubt = await sink.holdNext((s) => s.key.startsWith(`${id}:`) && sendsOf(id).length >= 12);
    first.proc.kill('SIGKILL');
    const exit = await first.exited;
    expect(exit.signal).toBe('SIGKILL');

    // What the dead worker left: rows still leased to it (claimed, maybe one on the wire).
    const stranded = (await raw.recipients(id)).filter((r) => r.leaseOwner === 'kill-w1' && (r.status === 'pending' || r.status === 'sending'));
    const sentByFirst = sendsOf(id).length;

    const resumedAt = Date.now();
    const second = spawnWorker(env('kill', accounts, { WORKER_ID: 'kill-w2', LEASE_TTL_MS: String(LEASE) }));
    await until('campaign completed', async () => (await store.getCampaign(id))?.status === 'completed', 25_000);
    timings.sigkillResume = Date.now() - resumedAt;

    const sends = sendsOf(id);
    const counts = countByKey(sends);
    expect([...counts.values()].filter((n) => n > 1)).toEqual([]);
    expect(counts.size).toBe(50);
    const rows = await raw.recipients(id);
    // The in-doubt send (if any) was settled by looking it up at the provider, not resent nor lost.
    expect(rows.map((r) => r.status).filter((s) => s !== 'sent')).toEqual([]);
    expect(new Set(rows.map((r) => `${id}:${r.phone}`))).toEqual(new Set(counts.keys()));
    // Rows the dead worker held were only taken over once its lease had expired.
    for (const r of stranded) {
      const s = sends.find((x) => x.key === `${id}:${r.phone}`)!;
      if (s.worker === 'kill-w2') expect(s.heardAt).toBeGreaterThanOrEqual(r.leaseExpiresAt!);
    }
    expect(sends.filter((s) => s.worker === 'kill-w2').length).toBe(50 - sentByFirst);
    timings.strandedRows = stranded.length;
    expect(stranded.filter((r) => r.status === 'sending').map((r) => `${id}:${r.phone}`)).toEqual([inDoubt.key]);
    expect(second.logs.some((l) => l.msg === 'recovered 1 in-doubt send(s)')).toBe(true);
    second.proc.kill('SIGTERM');
    expect((await second.exited).code).toBe(0);
    timings.sigkill = Date.now() - t0;
  });

  it('an account disconnect pauses its campaign (no_accounts); the reconnect resumes it', async () => {
    const t0 = Date.now();
    const { store, admin, raw } = await setup('disc');
    const OUTAGE = 1_500;
    const accounts = [{ id: 'sim-d', transport: 'simulator', sinkUrl: sink.url, intervalMs: INTERVAL, disconnect: { afterSends: 8, forMs: OUTAGE } }];
    const id = await campaign(admin, 'disc-1', ['sim-d'], 24, 31);
    const w = spawnWorker(env('disc', accounts, { WORKER_ID: 'disc-w1' }));

    const paused = await until('the campaign paused', async () => {
      const c = await store.getCampaign(id);
      return c?.status === 'paused' ? c : null;
    }, 30_000, 25);
    expect(paused.pauseReason).toBe('no_accounts');
    const sentAtPause = sendsOf(id).length;
    expect(sentAtPause).toBe(8);

    await until('campaign completed', async () => (await store.getCampaign(id))?.status === 'completed', 20_000);
    const sends = sendsOf(id);
    const counts = countByKey(sends);
    expect([...counts.values()].filter((n) => n > 1)).toEqual([]);
    expect(counts.size).toBe(24);
    // Nothing went out while the account was down.
    const gap = sends[8]!.heardAt - sends[7]!.heardAt;
    expect(gap).toBeGreaterThanOrEqual(OUTAGE - 100);
    timings.outageGap = gap;

    const msgs = (pred: (l: LogLine) => boolean) => w.logs.filter(pred);
    expect(msgs((l) => l.msg === 'campaign paused' && l.reason === 'no_accounts' && l.campaignId === id)).toHaveLength(1);
    expect(msgs((l) => l.msg === 'campaign resumed' && l.campaignId === id).length).toBeGreaterThanOrEqual(1);
    expect(msgs((l) => l.msg === 'account connection' && l.accountId === 'sim-d').map((l) => l.state)).toEqual(expect.arrayContaining(['close', 'open']));
    const c = (await raw.campaign(id))!;
    expect(c.counters).toMatchObject({ total: 24, sent: 24, failed: 0, unknown: 0 });

    w.proc.kill('SIGINT');
    expect((await w.exited).code).toBe(0);
    timings.disconnect = Date.now() - t0;
  });
  it('at start, resumes a campaign left paused (no_accounts) by an account a previous process saw disconnect', async () => {
    const t0 = Date.now();
    const { store, admin } = await setup('stale');
    const id = await campaign(admin, 'stale-1', ['sim-s'], 6, 51);
    // What a worker stopped during an outage leaves: the account closed, its campaign paused.
    const now = Date.now();
    await store.upsertAccount('sim-s', { intervalMs: INTERVAL, hourlyCap: null, dailyCap: null, warmup: null, typingMsPerChar: 0, typingMaxMs: 0, maxInFlight: 1, ratePerSecond: null }, now);
    await store.updateAccount('sim-s', { connection: 'close' }, now);
    expect(await store.transitionCampaign(id, { from: ['running'], to: 'paused', pauseReason: 'no_accounts', now })).toBeTruthy();

    const w = spawnWorker(env('stale', [{ id: 'sim-s', transport: 'simulator', sinkUrl: sink.url, intervalMs: INTERVAL }]));
    await until('campaign completed', async () => (await store.getCampaign(id))?.status === 'completed', 15_000);
    expect(countByKey(sendsOf(id)).size).toBe(6);
    w.proc.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
    timings.stale = Date.now() - t0;
  });
});
