/**
 * Where an engine run's time goes, as the client and the server see it: runs one account on the store
 * (zero-latency simulator, no pacing, `--group` per checkpoint: 1 is the per-message path) and prints
 * the rate, the Node process's CPU, each StateStore method's calls and time as the engine sees it, each
 * SQL function's calls and total and self time (pg_stat_user_functions), and the WAL written
 * (pg_stat_wal).
 *
 *   tsx bench/timeline.ts [--n 40000] [--group 200]
 */
import pg from 'pg';
import { createPostgresStore } from '../src/index.js';
import { createDatabase, startPostgres } from '../scripts/embedded-pg.js';
import { arg, audience, benchCampaign } from './audience.js';

type Spans = Record<string, { n: number; ms: number }>;

/** Time every method of `store` (its own and its prototypes'), into `spans`. */
function timeMethods(store: object, spans: Spans): void {
  const target = store as Record<string, unknown>;
  const names = new Set<string>();
  for (let o: object | null = store; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
    for (const k of Object.getOwnPropertyNames(o)) if (k !== 'constructor') names.add(k);
  }
  for (const name of names) {
    const method = target[name];
    if (typeof method !== 'function') continue;
    const bound = method.bind(store) as (...a: unknown[]) => unknown;
    target[name] = async (...a: unknown[]) => {
      const t = performance.now();
      try {
        return await bound(...a);
      } finally {
        const s = (spans[name] ??= { n: 0, ms: 0 });
        s.n++;
        s.ms += performance.now() - t;
      }
    };
  }
}

async function main() {
  const n = arg('n', 40_000);
  const groupSize = arg('group', 200);
  const server = await startPostgres();
  try {
    const url = await createDatabase(server.url, `timeline_${process.pid}`);
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    const db = (await admin.query('SELECT current_database() AS d')).rows[0].d;
    await admin.query(`ALTER DATABASE ${db} SET track_functions = 'all'`);
    await admin.query('ALTER SYSTEM SET track_wal_io_timing = on');
    await admin.query('SELECT pg_reload_conf()');
    const pool = new pg.Pool({ connectionString: url, max: 6 });
    const store = createPostgresStore(pool, { schema: 'timeline' });
    await store.migrate();
    const spans: Spans = {};
    timeMethods(store, spans);
    const { engine, campaign: c } = await benchCampaign(store, ['a1'], groupSize);
    await engine.addRecipients(c.id, audience(n));
    for (const k of Object.keys(spans)) delete spans[k];
    await admin.query('SELECT pg_stat_reset()');
    await admin.query("SELECT pg_stat_reset_shared('wal')");
    const done = new Promise<void>((r) => engine.on('campaign:completed', () => r()));
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await engine.start(c.id);
    const running = engine.run();
    await done;
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    await engine.stop();
    await running;
    await pool.end(); // backends flush their function statistics as they exit
    await new Promise((r) => setTimeout(r, 300));
    console.log(JSON.stringify({ n, groupSize, msgPerS: Math.round(n / (ms / 1000)), wallMs: Math.round(ms), nodeCpuMs: Math.round((cpu.user + cpu.system) / 1000) }));
    console.table(Object.entries(spans).sort((a, b) => b[1].ms - a[1].ms).map(([method, s]) => ({ method, calls: s.n, ms: Math.round(s.ms), msPerCall: Number((s.ms / s.n).toFixed(2)) })));
    console.table((await admin.query(`SELECT funcname, calls, round(total_time::numeric / calls, 3) AS total_ms, round(self_time::numeric / calls, 3) AS self_ms, round(total_time::numeric) AS sum_ms FROM pg_stat_user_functions WHERE calls > 0 ORDER BY total_time DESC`)).rows);
    console.table((await admin.query(`SELECT wal_records, wal_fpi, pg_size_pretty(wal_bytes) AS bytes, wal_write, wal_sync, round(wal_write_time::numeric) AS write_ms, round(wal_sync_time::numeric) AS sync_ms FROM pg_stat_wal`)).rows);
    await admin.end();
  } finally {
    await server.stop();
  }
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
