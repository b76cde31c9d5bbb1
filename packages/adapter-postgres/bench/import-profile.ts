/**
 * Where an import's time goes: runs engine.addRecipients of `--n` rows (the bench's audience, chunks
 * of `--chunk`) into PostgreSQL with COPY, timing each store call, then prints per-statement totals
 * (pg_stat_statements, nested statements of _import_staged included) and, with `--plans`, the plans
 * and timings of one more chunk's statements (auto_explain, nested).
 *
 *   tsx bench/import-profile.ts [--n 200000] [--chunk 20000] [--plans]
 */
import pg from 'pg';
import { createEngine, createSimulatorTransport, silentLogger } from '@disparo/core';
import { createPostgresStore } from '../src/index.js';
import { createDatabase, startPostgres } from '../scripts/embedded-pg.js';
import { arg, audience } from './audience.js';



async function main() {
  const n = arg('n', 200_000);
  const chunkSize = arg('chunk', 20_000);
  const server = await startPostgres({ useEnv: false, settings: { shared_preload_libraries: 'pg_stat_statements,auto_explain', 'pg_stat_statements.track': 'all' } });
  try {
    const url = await createDatabase(server.url, `imp_${process.pid}`);
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    const plans: string[] = [];
    let explain = false;
    pool.on('connect', (c) => {
      c.on('notice', (m) => {
        if (explain) plans.push(String(m.message));
      });
    });
    const store = createPostgresStore(pool, { schema: 'imp' });
    await store.migrate();
    await pool.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    // The engine hands a store with recipientBuffer its chunks through addRecipientBuffer (COPY), others through addRecipients.
    let storeMs = 0;
    const timed = <A extends unknown[], R>(fn: (...a: A) => Promise<R>) => async (...a: A): Promise<R> => {
      const t = performance.now();
      try {
        return await fn(...a);
      } finally {
        storeMs += performance.now() - t;
      }
    };
    store.addRecipients = timed(store.addRecipients.bind(store));
    if (store.addRecipientBuffer) store.addRecipientBuffer = timed(store.addRecipientBuffer.bind(store));
    const engine = createEngine({ store, logger: silentLogger, accounts: [{ id: 'a1', transport: createSimulatorTransport(), pacing: { intervalMs: { min: 0, max: 0 } } }] });
    const c = await engine.createCampaign({ name: 'import', templates: ['Oi'], accountIds: ['a1'], batchSize: 10_000 });
    await pool.query('SELECT pg_stat_statements_reset()');
    const t0 = performance.now();
    const r = await engine.addRecipients(c.id, audience(n), { chunkSize });
    const total = performance.now() - t0;
    const stats = await pool.query(
      `SELECT calls, round(total_exec_time::numeric, 1) AS total_ms, rows, left(regexp_replace(query, '\\s+', ' ', 'g'), 90) AS q FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 15`,
    );
    console.table(stats.rows);
    console.log(JSON.stringify({ n, chunkSize, inserted: r.inserted, duplicates: r.duplicates, totalMs: Math.round(total), storeMs: Math.round(storeMs) }));
    if (process.argv.includes('--plans')) {
      await pool.query(`ALTER DATABASE "imp_${process.pid}" SET auto_explain.log_min_duration = 0`);
      await pool.query(`ALTER DATABASE "imp_${process.pid}" SET auto_explain.log_analyze = on`);
      await pool.query(`ALTER DATABASE "imp_${process.pid}" SET auto_explain.log_nested_statements = on`);
      await pool.query(`ALTER DATABASE "imp_${process.pid}" SET auto_explain.log_level = notice`);
      const p2 = new pg.Pool({ connectionString: url, max: 1 });
      p2.on('connect', (cl) => cl.on('notice', (m) => plans.push(String(m.message))));
      const s2 = createPostgresStore(p2, { schema: 'imp' });
      const rows = [...audience(chunkSize, n)].map((x) => ({ phone: x.phone.replace(/\D/g, ''), vars: x.vars }));
      await s2.addRecipients(c.id, rows, Date.now());
      console.log(plans.join('\n----\n'));
      await p2.end();
    }
    await pool.end();
  } finally {
    await server.stop();
  }
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
