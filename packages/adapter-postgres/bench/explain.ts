/**
 * The plan and time of every statement inside one checkpoint (auto_explain, nested statements):
 * a per-message loop of `--calls` checkpoints (outcome of the previous send + write-ahead of the next),
 * `--group` items each; the last call's plans are printed.
 */
import pg from 'pg';
import { createPostgresStore } from '../src/index.js';
import { calls } from '../src/calls.js';
import { createDatabase, startPostgres } from '../scripts/embedded-pg.js';
import { arg } from './audience.js';

async function main() {
  const group = arg('group', 1);
  const nCalls = arg('calls', 200);
  const server = await startPostgres({ useEnv: false, settings: { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.track': 'all', track_functions: 'all' } });
  try {
    const url = await createDatabase(server.url, `ex_${process.pid}`);
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    const store = createPostgresStore(pool, { schema: 'ex' });
    await store.migrate();
    const now = Date.now();
    await store.upsertAccount('a1', { intervalMs: { min: 0, max: 0 } } as never, now);
    await store.createCampaign({ id: 'c1', name: 'c', templates: ['x'], media: null, accountIds: ['a1'], settings: { batchSize: 100_000 } as never, status: 'draft', scheduledAt: null, metadata: {}, now });
    const n = group * (nCalls + 1);
    await store.addRecipients('c1', Array.from({ length: n }, (_, i) => ({ phone: `5511${9_0000_0000 + i}`, vars: {} })), now);
    const rows = await store.claimRecipients({ campaignId: 'c1', batch: 1, owner: 'w', limit: n, now, leaseMs: 600_000 });
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const plans: string[] = [];
    c.on('notice', (m) => plans.push(String(m.message)));
    const run = async (k: number) => {
      const items = rows.slice(k * group, (k + 1) * group);
      const prev = k > 0 ? rows.slice((k - 1) * group, k * group) : [];
      const call = calls.checkpoint({
        owner: 'w', now: Date.now(), leaseMs: 600_000,
        outcomes: prev.map((r) => ({ recipientId: r.id, campaignId: 'c1', status: 'sent', attempts: 1, at: Date.now(), accountId: 'a1', providerMessageId: `p${r.id}`, accountEffect: 'success', accountNextSendAt: Date.now() })),
        writeAhead: { accountId: 'a1', maxInFlight: Math.max(1, group), items: items.map((r) => ({ recipientId: r.id, campaignId: 'c1', text: 'hello there', attempt: 1, gapMs: 0, leadMs: 0 })) },
      });
      const names = Object.keys(call.args);
      const params = names.map((x) => { const v = call.args[x]; return v !== null && typeof v === 'object' ? JSON.stringify(v) : v; });
      await c.query(`SELECT ex.checkpoint(${names.map((x, i) => `${x} => $${i + 1}`).join(', ')}) AS value`, params);
    };
    await c.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    await c.query('SELECT pg_stat_statements_reset()');
    if (process.argv.includes('--async')) await c.query('SET synchronous_commit = off');
    const t0 = performance.now();
    for (let k = 0; k < nCalls - 1; k++) await run(k);
    const per = (performance.now() - t0) / (nCalls - 1);
    const stats = await c.query(`SELECT calls, round(mean_exec_time::numeric, 4) AS mean_ms, round(total_exec_time::numeric, 1) AS total_ms, left(regexp_replace(query, '\\s+', ' ', 'g'), 70) AS q FROM pg_stat_statements WHERE calls >= ${nCalls - 5} ORDER BY total_exec_time DESC LIMIT 20`);
    console.table(stats.rows);
    if (!process.argv.includes('--plans')) { console.log(JSON.stringify({ group, msPerCall: Number(per.toFixed(3)) })); await c.end(); await pool.end(); return; }
    await c.query(`LOAD 'auto_explain'`);
    await c.query(`SET auto_explain.log_min_duration = 0; SET auto_explain.log_analyze = on; SET auto_explain.log_nested_statements = on; SET client_min_messages = log`);
    await run(nCalls - 1);
    await new Promise((r) => setTimeout(r, 200));
    console.log(plans.join('\n----\n'));
    console.log(JSON.stringify({ group, msPerCall: Number(per.toFixed(3)) }));
    await c.end();
    await pool.end();
  } finally {
    await server.stop();
  }
}
main().catch((e) => { console.error(e); process.exit(1); });
