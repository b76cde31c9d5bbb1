/**
 * Real processes, real PostgreSQL: three workers share one schema and run three campaigns over three
 * accounts; a controller SIGKILLs random workers at random moments (at least 20 times) and starts new
 * ones. The provider's side is an HTTP sink in this process, so sends survive the kills and are counted
 * where the workers cannot lie. Checks I1 (no recipient sent twice), I2 (every row terminal, counters =
 * rows), I3 (no two sends of one account closer than its minimum gap, across workers) and I5 (every
 * campaign completes).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { createEngine, createSimulatorTransport, silentLogger } from '@disparo/core';
import { samplePhones } from '@disparo/core/testing';
import { createPostgresStore, type PostgresStore } from '@disparo/adapter-postgres';
import { inspector, pool, testDatabase } from './support.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const WORKER = fileURLToPath(new URL('./crash/worker.ts', import.meta.url));
const SCHEMA = 'crash';
const MIN_GAP_MS = 60;
const MAX_GAP_MS = 90;
const LEASE_MS = 2_000;
const POLL_MS = 250;
const KILLS = 22;
const PER_CAMPAIGN = 400;

interface SinkSend {
  account: string;
  worker: string;
  key: string;
  providerMessageId: string;
  /** When the worker's transport accepted it (its clock: the same machine's). */
  sentAt: number;
  /** When the sink heard of it. */
  at: number;
}

interface Slot {
  account: string;
  recipientId: string;
  slotAt: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('crash recovery across real worker processes (SIGKILL, PostgreSQL)', () => {
  let url = '';
  let db: pg.Pool;
  let store: PostgresStore;
  let sink: Server;
  let sinkUrl = '';
  const sends: SinkSend[] = [];
  const slots: Slot[] = [];
  const byKey = new Map<string, SinkSend>();
  const children = new Set<ChildProcess>();
  let spawned = 0;

  beforeAll(async () => {
    url = await testDatabase('crash');
    db = pool(url, 4);
    store = createPostgresStore(db, { schema: SCHEMA });
    await store.migrate();
    sink = createServer((req, res) => {
      const u = new URL(req.url ?? '/', 'http://sink');
      if (req.method === 'POST' && u.pathname === '/send') {
        let body = '';
        req.on('data', (c) => (body += c));
        req.on('end', () => {
          const s = { ...(JSON.parse(body) as Omit<SinkSend, 'at'>), at: Date.now() };
          sends.push(s);
          if (!byKey.has(s.key)) byKey.set(s.key, s);
          res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        });
        return;
      }
      if (req.method === 'POST' && u.pathname === '/slot') {
        let body = '';
        req.on('data', (c) => (body += c));
        req.on('end', () => {
          slots.push(JSON.parse(body) as Slot);
          res.writeHead(200).end();
        });
        return;
      }
      if (req.method === 'GET' && u.pathname === '/lookup') {
        const s = byKey.get(u.searchParams.get('key') ?? '');
        if (!s) return void res.writeHead(404).end();
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ providerMessageId: s.providerMessageId, at: s.at }));
        return;
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', () => r()));
    sinkUrl = `http://127.0.0.1:${(sink.address() as { port: number }).port}`;
  });

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await new Promise<void>((r) => sink?.close(() => r()));
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
        SINK_URL: sinkUrl,
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
    return child;
  };

  it('survives 20+ SIGKILLs: nothing sent twice, nothing lost, pacing held, every campaign completed', { timeout: 240_000 }, async () => {
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
    while (kills < KILLS) {
      await sleep(rnd(400, 1_000));
      const live = [...children];
      const victim = live[Math.floor(Math.random() * live.length)];
      if (victim) {
        victim.kill('SIGKILL');
        kills++;
      }
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

    // I3: per account, across every worker, no two send slots closer than the minimum gap; and no send
    // before its slot (the send itself is stamped a little later, by however busy its process was).
    const minGaps: Record<string, number> = {};
    for (const account of ['a1', 'a2', 'a3']) {
      const times = slots.filter((s) => s.account === account).map((s) => s.slotAt).sort((a, b) => a - b);
      const gaps = times.slice(1).map((t, i) => t - times[i]!);
      minGaps[account] = Math.min(...gaps);
      expect(minGaps[account], `account ${account}`).toBeGreaterThanOrEqual(MIN_GAP_MS);
    }
    let maxLagMs = 0;
    for (const s of sends) {
      const [cid, phone] = s.key.split(':');
      const row = (await raw.recipients(cid!)).find((r) => r.phone === phone)!;
      const own = slots.filter((x) => x.recipientId === row.id && x.slotAt <= s.sentAt);
      expect(own.length, `send ${s.key} had no slot before it`).toBeGreaterThan(0);
      maxLagMs = Math.max(maxLagMs, s.sentAt - Math.max(...own.map((x) => x.slotAt)));
    }

    console.log(
      JSON.stringify({ crashTest: { kills, workersStarted: spawned, sends: sends.length, sendsBeforeLastKill: killedWhileWorking, inDoubtLeftUnknown: unknown, minGapMs: minGaps, maxSendLagMs: maxLagMs } }),
    );
    expect(kills).toBeGreaterThanOrEqual(20);
    // The kills happened while there was work: a run that finished before them proves nothing.
    expect(killedWhileWorking).toBeLessThan(PER_CAMPAIGN * 3);
  });
});
