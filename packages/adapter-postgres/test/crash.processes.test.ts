/**
 * Real processes, real PostgreSQL: three workers share one schema and run three campaigns over three
 * accounts; a controller SIGKILLs random workers at random moments (at least 20 times) and starts new
 * ones. The provider is an HTTP sink in this process (test/crash/sink.ts) that answers each send after
 * 20-150 ms (often longer than the accounts' 60-90 ms gap), so sends survive the kills and are
 * measured where the workers cannot lie. Checks I1 (no recipient sent twice), I2 (every row terminal,
 * counters = rows), I3 at the provider (no two arrivals of one account closer than its minimum gap,
 * 20 ms of jitter allowed, and never two messages of one account on the wire at once: the window of
 * one holds across workers) and on the store's grants, and I5 (every campaign completes). Prints one
 * result line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { createEngine, createSimulatorTransport, silentLogger } from '@disparo/core';
import { samplePhones } from '@disparo/core/testing';
import { createPostgresStore, type PostgresStore } from '@disparo/adapter-postgres';
import { inspector, pool, testDatabase } from './support.js';
import { startSink, wireReport, type ProviderSink } from './crash/sink.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const WORKER = fileURLToPath(new URL('./crash/worker.ts', import.meta.url));
const SCHEMA = 'crash';
const MIN_GAP_MS = 60;
const MAX_GAP_MS = 90;
const LEASE_MS = 2_000;
const POLL_MS = 250;
const KILLS = 22;
const PER_CAMPAIGN = 300;

const LATENCY_MS = { min: 20, max: 150 };
const TOLERANCE_MS = 20;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('crash recovery across real worker processes (SIGKILL, PostgreSQL)', () => {
  let url = '';
  let db: pg.Pool;
  let store: PostgresStore;
  let sink: ProviderSink;
  const children = new Set<ChildProcess>();
  const workerOf = new Map<ChildProcess, string>();
  let spawned = 0;

  beforeAll(async () => {
    url = await testDatabase('crash');
    db = pool(url, 4);
    store = createPostgresStore(db, { schema: SCHEMA });
    await store.migrate();
    sink = await startSink({ latencyMs: LATENCY_MS });
  });

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await sink?.close();
    await db?.end();
  });

  const startWorker = () => {
    const id = `w${++spawned}`;
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER], {
      cwd: ROOT,
      env: {
        ...process.env,
        DATABASE_URL: url,
        SCHEMA,
        SINK_URL: sink.url,
        WORKER_ID: id,
        LEASE_MS: String(LEASE_MS),
        POLL_MS: String(POLL_MS),
        MIN_GAP_MS: String(MIN_GAP_MS),
        MAX_GAP_MS: String(MAX_GAP_MS),
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr = (stderr + String(d)).slice(-4_000)));
    child.on('exit', (code, signal) => {
      children.delete(child);
      if (code !== 0 && signal !== 'SIGKILL' && signal !== 'SIGTERM') console.error(`worker ${id} exited with ${code ?? signal}:\n${stderr}`);
    });
    children.add(child);
    workerOf.set(child, id);
    return child;
  };

  it('survives 20+ SIGKILLs: nothing sent twice, nothing lost, pacing and the window held at the provider, every campaign completed', { timeout: 240_000 }, async () => {
    const startedAt = Date.now();
    const { sends, slots } = sink;
    // The admin side: create and start the campaigns (its transports are never used).
    const admin = createEngine({
      store,
      logger: silentLogger,
      accounts: ['a1', 'a2', 'a3'].map((id) => ({ id, transport: createSimulatorTransport(), pacing: { intervalMs: { min: MIN_GAP_MS, max: MAX_GAP_MS } } })),
    });
    await admin.ready();
    const phones = samplePhones(PER_CAMPAIGN * 3, 7);
    const pairs = [['a1', 'a2'], ['a2', 'a3'], ['a1', 'a3']];
    const ids: string[] = [];
    for (const [i, accountIds] of pairs.entries()) {
      const c = await admin.createCampaign({
        id: `crash-${i + 1}`,
        name: `crash ${i + 1}`,
        templates: ['Oi {{name}}, mensagem {{n}}'],
        accountIds,
        batchSize: 100,
        batchPauseMs: { min: 0, max: 0 },
        retryBackoffMs: { min: 10, max: 20 },
      });
      await admin.addRecipients(
        c.id,
        phones.slice(i * PER_CAMPAIGN, (i + 1) * PER_CAMPAIGN).map((phone, n) => ({ phone, vars: { name: `p${n}`, n: String(n) } })),
      );
      await admin.start(c.id);
      ids.push(c.id);
    }

    for (let i = 0; i < 3; i++) startWorker();
    let kills = 0;
    const rnd = (a: number, b: number) => a + Math.random() * (b - a);
    let killedMidSend = 0;
    while (kills < KILLS) {
      await sleep(rnd(400, 1_000));
      // A worker that has sent already (a process still starting up proves little), at a random moment:
      // often with a message on the wire.
      const working = [...children].filter((c) => sends.some((x) => x.worker === workerOf.get(c)));
      const victim = working[Math.floor(Math.random() * working.length)];
      if (!victim) continue;
      if (sends.some((x) => x.worker === workerOf.get(victim) && x.answeredAt === null)) killedMidSend++;
      victim.kill('SIGKILL');
      kills++;
      startWorker();
    }
    const killedWhileWorking = sends.length;

    const deadline = Date.now() + 150_000;
    for (;;) {
      const cs = await Promise.all(ids.map((id) => store.getCampaign(id)));
      if (cs.every((c) => c?.status === 'completed')) break;
      if (Date.now() > deadline) throw new Error(`not completed: ${cs.map((c) => `${c?.id}=${c?.status} ${JSON.stringify(c?.counters)}`).join('; ')}`);
      await sleep(300);
    }
    await Promise.all(
      [...children].map(
        (c) =>
          new Promise<void>((r) => {
            c.once('exit', () => r());
            c.kill('SIGTERM');
          }),
      ),
    );

    // I1: each recipient reached the provider at most once.
    const perKey = new Map<string, number>();
    for (const s of sends) perKey.set(s.key, (perKey.get(s.key) ?? 0) + 1);
    const repeated = [...perKey].filter(([, n]) => n > 1);
    expect(repeated).toEqual([]);

    // I2: every row terminal; counters and batch records equal the rows; the ledger matches the sink.
    const raw = inspector(db, SCHEMA);
    let unknown = 0;
    for (const id of ids) {
      const rows = await raw.recipients(id);
      const c = (await raw.campaign(id))!;
      expect(rows).toHaveLength(PER_CAMPAIGN);
      expect(rows.filter((r) => r.status === 'pending' || r.status === 'sending')).toEqual([]);
      const count = (st: string) => rows.filter((r) => r.status === st).length;
      expect(c.counters).toEqual({
        total: rows.length,
        pending: 0,
        sending: 0,
        sent: count('sent'),
        delivered: count('delivered'),
        read: count('read'),
        failed: count('failed'),
        skipped: count('skipped'),
        unknown: count('unknown'),
      });
      unknown += count('unknown');
      for (const r of rows) {
        const reached = perKey.has(`${id}:${r.phone}`);
        // Sent in the ledger <=> seen by the provider (unknown rows are the ones nobody could settle).
        if (r.status === 'sent') expect(reached, `${id}:${r.phone} marked sent but never reached the provider`).toBe(true);
        if (r.status === 'failed' || r.status === 'skipped') expect(reached).toBe(false);
      }
      const batches = await raw.batches(id);
      expect(batches.reduce((n, b) => n + b.size, 0)).toBe(PER_CAMPAIGN);
    }
    for (const key of perKey.keys()) {
      const [cid, phone] = key.split(':');
      const row = (await raw.recipients(cid!)).find((r) => r.phone === phone);
      expect(['sent', 'unknown']).toContain(row?.status);
    }

    // I3 at the provider: per account, consecutive arrivals no closer than the minimum gap (less
    // 20 ms of jitter), and none while an earlier message of the account was still unanswered.
    const wire = wireReport(sends, MIN_GAP_MS, TOLERANCE_MS);
    // I3 on the store's grants: no two slots of one account closer than the minimum gap, and no
    // message at the provider before its slot.
    const slotMinGapMs: Record<string, number> = {};
    for (const account of ['a1', 'a2', 'a3']) {
      const times = slots.filter((x) => x.account === account).map((x) => x.slotAt).sort((a, b) => a - b);
      slotMinGapMs[account] = Math.min(...times.slice(1).map((t, i) => t - times[i]!));
    }
    const idOf = new Map<string, string>();
    for (const id of ids) for (const r of await raw.recipients(id)) idOf.set(`${id}:${r.phone}`, r.id);
    const beforeSlot = sends.filter((x) => !slots.some((slot) => slot.recipientId === idOf.get(x.key) && slot.slotAt <= x.arrivedAt)).map((x) => x.key);

    console.log(
      JSON.stringify({
        crashTest: {
          kills,
          killedMidSend,
          workersStarted: spawned,
          sends: sends.length,
          sendsBeforeLastKill: killedWhileWorking,
          inDoubtLeftUnknown: unknown,
          latencyMs: [LATENCY_MS.min, LATENCY_MS.max],
          gapMs: [MIN_GAP_MS, MAX_GAP_MS],
          atProvider: { minGapMs: wire.minGapMs, gapsBelowMin: wire.gapsBelowMin, overlaps: wire.overlaps },
          slotMinGapMs,
          sendsBeforeTheirSlot: beforeSlot.length,
          durationMs: Date.now() - startedAt,
        },
      }),
    );
    expect(wire.examples, 'gaps and overlaps at the provider').toEqual([]);
    expect(wire.gapsBelowMin).toBe(0);
    expect(wire.overlaps).toBe(0);
    for (const account of ['a1', 'a2', 'a3']) expect(slotMinGapMs[account], `slots of ${account}`).toBeGreaterThanOrEqual(MIN_GAP_MS);
    expect(beforeSlot, 'messages at the provider before their slot').toEqual([]);
    expect(kills).toBeGreaterThanOrEqual(20);
    // The kills happened while there was work: a run that finished before them proves nothing.
    expect(killedWhileWorking).toBeLessThan(PER_CAMPAIGN * 3);
  });
});
