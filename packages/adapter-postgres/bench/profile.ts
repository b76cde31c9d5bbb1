/**
 * Where a per-message run spends its time inside PostgreSQL: runs the engine on the store (one
 * account, zero-latency simulator, W = 1 or grouped) with track_functions = all, then prints each
 * function's calls and its total and self time per call (pg_stat_user_functions).
 *
 *   tsx bench/profile.ts [--n 5000] [--group 1]
 */
import pg from 'pg';
import { createEngine, createSimulatorTransport, silentLogger } from '@disparo/core';
import { createPostgresStore } from '../src/index.js';
import { createDatabase, startPostgres } from '../scripts/embedded-pg.js';
import { arg } from './audience.js';


async function main() {
  const n = arg('n', 5_000);
  const groupSize = arg('group', 1);
  const server = await startPostgres();
  try {
    const url = await createDatabase(server.url, `prof_${process.pid}`);
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    const db = (await admin.query('SELECT current_database() AS d')).rows[0].d;
    await admin.query(`ALTER DATABASE ${db} SET track_functions = 'all'`);
    const pool = new pg.Pool({ connectionString: url, max: 6 });
    const store = createPostgresStore(pool, { schema: 'prof' });
    await store.migrate();
    const engine = createEngine({
      store,
      logger: silentLogger,
      pollIntervalMs: 100,
      claimSize: groupSize > 1 ? 2_000 : 500,
      checkpoints: { groupSize },
      accounts: [{ id: 'a1', transport: createSimulatorTransport({ seed: 1 }), pacing: { intervalMs: { min: 0, max: 0 } } }],
    });
    const c = await engine.createCampaign({ name: 'p', templates: ['Oi {{name}}'], accountIds: ['a1'], batchSize: 10_000, batchPauseMs: { min: 0, max: 0 } });
    await engine.addRecipients(c.id, Array.from({ length: n }, (_, i) => ({ phone: `55119${String(10_000_000 + i)}`, vars: { name: `c${i}` } })));
    await admin.query('SELECT pg_stat_reset()');
    const done = new Promise<void>((r) => engine.on('campaign:completed', () => r()));
    const t0 = performance.now();
    await engine.start(c.id);
    const running = engine.run();
    await done;
    const secs = (performance.now() - t0) / 1000;
    await engine.stop();
    await running;
    await new Promise((r) => setTimeout(r, 800)); // stats are flushed by backends at most every second
    await pool.end();
    await new Promise((r) => setTimeout(r, 300));
    const rows = (await admin.query(`SELECT funcname, calls, round(total_time::numeric / calls, 4) AS total_ms, round(self_time::numeric / calls, 4) AS self_ms, round(total_time::numeric) AS sum_ms FROM pg_stat_user_functions WHERE calls > 0 ORDER BY total_time DESC`)).rows;
    console.log(JSON.stringify({ n, groupSize, msgPerS: Math.round(n / secs), wallMsPerMsg: Number(((secs * 1000) / n).toFixed(3)) }));
    console.table(rows);
    await admin.end();
  } finally {
    await server.stop();
  }
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
