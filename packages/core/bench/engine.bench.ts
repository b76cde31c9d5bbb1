/**
 * Core benchmarks: the engine on MemoryStore and a zero-latency simulator, no pacing, so the
 * figure is the engine's own overhead per message. Prints one JSON object per line.
 *
 *   pnpm --filter @disparo/core bench [--n 200000]
 */
import { createEngine, createMemoryStore, createSimulatorTransport, silentLogger } from '../src/index.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};

function* audience(n: number) {
  for (let i = 0; i < n; i++) yield { phone: `55119${String(10_000_000 + i).padStart(8, '0')}`, vars: { name: `c${i}` } };
}

async function runOnce(n: number, accounts: number) {
  const store = createMemoryStore();
  const ids = Array.from({ length: accounts }, (_, i) => `acct-${i}`);
  const engine = createEngine({
    store,
    logger: silentLogger,
    pollIntervalMs: 50,
    claimSize: 2_000,
    accounts: ids.map((id, i) => ({ id, transport: createSimulatorTransport({ seed: i }), pacing: { intervalMs: { min: 0, max: 0 } } })),
  });
  const campaign = await engine.createCampaign({ name: 'bench', template: 'Oi {{name}}, {tudo bem|como vai}?', accountIds: ids, batchSize: 10_000, batchPauseMs: { min: 0, max: 0 } });
  await engine.addRecipients(campaign.id, audience(n));
  const rssBefore = process.memoryUsage().rss;
  let peakRss = rssBefore;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);
  const done = new Promise<void>((resolve) => engine.on('campaign:completed', () => resolve()));
  const started = performance.now();
  await engine.start(campaign.id);
  const running = engine.run();
  await done;
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  await engine.stop();
  await running;
  const final = (await store.getCampaign(campaign.id))!;
  if (final.counters.sent !== n) throw new Error(`expected ${n} sent, got ${JSON.stringify(final.counters)}`);
  return { rate: n / seconds, seconds, peakRss };
}

async function main() {
  const n = arg('n', 200_000);
  await runOnce(20_000, 1); // warm-up (JIT)
  const baseline = process.memoryUsage().rss;
  const runs = [];
  for (let i = 0; i < 3; i++) runs.push(await runOnce(n, 1));
  const median = runs.map((r) => r.rate).sort((a, b) => a - b)[1]!;
  console.log(JSON.stringify({ bench: 'engine.memory.throughput', value: Math.round(median), unit: 'msg/s', n, accounts: 1, runs: runs.map((r) => Math.round(r.rate)) }));
  const multi = await runOnce(n, 4);
  console.log(JSON.stringify({ bench: 'engine.memory.throughput.4-accounts', value: Math.round(multi.rate), unit: 'msg/s', n, accounts: 4 }));
  global.gc?.();
  const peak = Math.max(...runs.map((r) => r.peakRss));
  console.log(JSON.stringify({ bench: 'engine.memory.rss-per-100k', value: Math.round(((peak - Math.min(baseline, peak)) / 1024 / 1024) * (100_000 / n) * 10) / 10, unit: 'MB', note: 'RSS growth over the process baseline while importing and running, per 100k recipients (MemoryStore keeps every row in memory)', peakRssMb: Math.round(peak / 1024 / 1024) }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
