/**
 * The per-message checkpoint alone, through the store (codec, pool, SQL function), against the raw
 * per-row reference, in turns on one server: `--rounds` rounds of `--calls` checkpoints (outcome of
 * the previous send + write-ahead of the next, as a W = 1 sender makes them), each round once with
 * synchronous_commit on (what the benches measure) and once off (the CPU cost without the WAL flush).
 * Prints one JSON line per round, then the WAL bytes and full-page images per call, the server
 * process's CPU per call (/proc, Linux), and the medians.
 *
 *   tsx bench/micro.ts [--calls 3000] [--rounds 3] [--cpu] [--baseline DIR]
 *   --cpu: only the runs with synchronous_commit off; --baseline DIR: also run, in turn, a schema whose
 *   functions are replaced by DIR's `<name>.sql` files (e.g. the previous commit's), for an A/B on one server;
 *   PERF=out.data: record the server process of the first run with `perf record --call-graph dwarf`.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';
import { createPostgresStore } from '../src/index.js';
import { createDatabase, startPostgres } from '../scripts/embedded-pg.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const walBytes: Record<string, number[]> = {};
/** CPU time of the server process serving one connection (user + system), in ms, from /proc (Linux). */
const backendCpuMs = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
};
const backendCpu: Record<string, number[]> = {};
let perfDone = false;
async function lsn(c: { query: (q: string) => Promise<{ rows: any[] }> }): Promise<{ lsn: string; fpi: number }> {
  const r = (await c.query('SELECT pg_current_wal_insert_lsn()::text AS lsn, (SELECT wal_fpi FROM pg_stat_wal)::bigint AS fpi')).rows[0];
  return { lsn: r.lsn, fpi: Number(r.fpi) };
}
async function walPer(c: { query: (q: string) => Promise<{ rows: any[] }> }, from: { lsn: string; fpi: number }, n: number, key: string) {
  const r = (await c.query(`SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '${from.lsn}')::bigint AS d, (SELECT wal_fpi FROM pg_stat_wal)::bigint AS fpi`)).rows[0];
  (walBytes[key] ??= []).push(Math.round(Number(r.d) / n), Number(((Number(r.fpi) - from.fpi) / n).toFixed(2)));
}

async function rawPerRow(url: string, rows: number, async: boolean): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  if (async) await c.query('SET synchronous_commit = off');
  await c.query('DROP TABLE IF EXISTS raw_rows; CREATE TABLE raw_rows (id bigint PRIMARY KEY, status text NOT NULL, at bigint)');
  await c.query(`INSERT INTO raw_rows SELECT g, 'pending', NULL FROM generate_series(1, ${rows}) g`);
  const w0 = await lsn(c);
  const t0 = performance.now();
  for (let n = 1; n <= rows; n++) {
    await c.query('BEGIN');
    await c.query(`UPDATE raw_rows SET status = 'sent', at = $2 WHERE id = $1`, [n, Date.now()]);
    await c.query('COMMIT');
  }
  const ms = (performance.now() - t0) / rows;
  await walPer(c, w0, rows, 'raw');
  await c.end();
  return ms;
}

/** `--baseline DIR`: function files (`<name>.sql`) that replace the shipped ones in a second schema, run in turn with the shipped ones. */
const baselineDir = (() => {
  const i = process.argv.indexOf('--baseline');
  return i >= 0 ? process.argv[i + 1]! : null;
})();

async function checkpoints(url: string, schema: string, n: number, async: boolean, baseline = false): Promise<number> {
  const pool = new pg.Pool({ connectionString: url, max: 1, ...(async ? { options: '-c synchronous_commit=off' } : {}) });
  const store = createPostgresStore(pool, { schema });
  await store.migrate();
  if (baseline && baselineDir) {
    for (const f of readdirSync(baselineDir).filter((x) => x.endsWith('.sql'))) await pool.query(readFileSync(`${baselineDir}/${f}`, 'utf8').replaceAll(':DISPARO_SCHEMA', `"${schema}"`));
  }
  const now = Date.now();
  await store.upsertAccount('a1', { intervalMs: { min: 0, max: 0 } } as never, now);
  await store.createCampaign({ id: 'c1', name: 'c', templates: ['x'], media: null, accountIds: ['a1'], settings: { batchSize: 100_000 } as never, status: 'draft', scheduledAt: null, metadata: {}, now });
  await store.addRecipients('c1', Array.from({ length: n + 1 }, (_, i) => ({ phone: `5511${9_0000_0000 + i}`, vars: {} })), now);
  const rows = await store.claimRecipients({ campaignId: 'c1', batch: 1, owner: 'w', limit: n + 1, now, leaseMs: 600_000 });
  const w0 = await lsn(pool);
  const pid = Number((await pool.query('SELECT pg_backend_pid() AS p')).rows[0].p);
  // PERF=out.data: record the server process with perf (Linux, call graphs) while the loop runs.
  const perf = process.env.PERF && !baseline && !perfDone ? spawn('perf', ['record', '-q', '--call-graph', 'dwarf,16384', '-F', '2000', '-p', String(pid), '-o', process.env.PERF], { stdio: 'inherit' }) : null;
  if (perf) {
    perfDone = true;
    await new Promise((r) => setTimeout(r, 500));
  }
  const cpu0 = backendCpuMs(pid);
  const t0 = performance.now();
  for (let k = 0; k < n; k++) {
    const prev = k > 0 ? rows[k - 1]! : null;
    const r = rows[k]!;
    const at = Date.now();
    const res = await store.checkpoint({
      owner: 'w',
      now: at,
      leaseMs: 600_000,
      outcomes: prev
        ? [{ recipientId: prev.id, campaignId: 'c1', status: 'sent', attempts: 1, at, accountId: 'a1', providerMessageId: `p${prev.id}`, accountEffect: 'success', accountNextSendAt: at }]
        : [],
      writeAhead: { accountId: 'a1', maxInFlight: 1, items: [{ recipientId: r.id, campaignId: 'c1', text: `Oi c${k}, tudo bem?`, attempt: 1, gapMs: 0, leadMs: 0 }] },
    });
    if (!res.grants[0]!.granted || (prev && !res.outcomes[0]!.applied)) throw new Error(`checkpoint ${k}: ${JSON.stringify(res)}`);
  }
  const ms = (performance.now() - t0) / n;
  if (perf) {
    perf.kill('SIGINT');
    await new Promise((r) => perf.once('exit', r));
  }
  (backendCpu[baseline ? 'base' : 'new'] ??= []).push(Number(((backendCpuMs(pid) - cpu0) / n).toFixed(4)));
  await walPer(pool, w0, n, 'cp');
  const c = (await store.getCampaign('c1'))!;
  if (c.counters.sent !== n - 1 || c.counters.sending !== 1) throw new Error(`counters ${JSON.stringify(c.counters)}`);
  await pool.end();
  return ms;
}

async function main() {
  const n = arg('calls', 3_000);
  const rounds = arg('rounds', 3);
  const cpuOnly = process.argv.includes('--cpu');
  const server = await startPostgres();
  try {
    const url = await createDatabase(server.url, `micro_${process.pid}`);
    const out: Record<string, number[]> = { raw: [], cp: [], rawAsync: [], cpAsync: [] };
    for (let i = 0; i < rounds; i++) {
      const r: Record<string, number> = cpuOnly
        ? { raw: 0, cp: 0, rawAsync: await rawPerRow(url, n, true), cpAsync: await checkpoints(url, `m${i}a`, n, true) }
        : {
            raw: await rawPerRow(url, n, false),
            cp: await checkpoints(url, `m${i}s`, n, false),
            rawAsync: await rawPerRow(url, n, true),
            cpAsync: await checkpoints(url, `m${i}a`, n, true),
          };
      if (baselineDir) {
        if (!cpuOnly) r.cpBase = await checkpoints(url, `m${i}sb`, n, false, true);
        r.cpAsyncBase = await checkpoints(url, `m${i}ab`, n, true, true);
      }
      for (const k of Object.keys(r)) (out[k] ??= []).push(r[k]!);
      console.log(JSON.stringify({ round: i, ...Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Number(v.toFixed(3))])), ratio: Number((r.raw! / r.cp!).toFixed(2)) }));
    }
    const m = Object.fromEntries(Object.entries(out).map(([k, v]) => [k, Number(median(v).toFixed(3))]));
    console.log(JSON.stringify({ walBytesAndFpiPerCall: walBytes }));
    console.log(JSON.stringify({ backendCpuMsPerCall: backendCpu }));
    console.log(JSON.stringify({ median: m, ratios: out.raw!.map((x, i) => Number((x / out.cp![i]!).toFixed(2))), ...(baselineDir ? { cpuVsBase: out.cpAsync!.map((x, i) => Number((x / out.cpAsyncBase![i]!).toFixed(2))) } : {}) }));
  } finally {
    await server.stop();
  }
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
