/**
 * Core benchmarks: the engine on MemoryStore and a zero-latency simulator, no pacing, so the
 * figure is the engine's own overhead per message. Prints one JSON object per line.
 *
 *   pnpm --filter @disparo/core bench [--n 200000]
 */
import { createEngine, createMemoryStore, createSimulatorTransport, silentLogger } from '../src/index.js';
import { sendWindowState } from '../src/domain/calendar.js';

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

/**
 * When a paused campaign's send window opens next, asked on every poll: a window open one hour on
 * Mondays, asked at each of the week's minutes (the worst case is the day after it closed).
 */
function sendWindowBench() {
  const window = { start: '09:00', end: '10:00', timeZone: 'America/Sao_Paulo', days: [1] };
  const monday = Date.UTC(2026, 10, 2, 14, 0); // Mon 2 Nov 2026 11:00 in São Paulo, just after it closed
  const minutes = 7 * 24 * 60;
  for (let m = 0; m < 1_000; m++) sendWindowState(window, monday + m * 600_000); // warm-up (JIT, time zone data)
  let worst = 0;
  const started = performance.now();
  for (let m = 0; m < minutes; m++) {
    const t = performance.now();
    sendWindowState(window, monday + m * 60_000);
    worst = Math.max(worst, performance.now() - t);
  }
  const perCall = (performance.now() - started) / minutes;
  console.log(JSON.stringify({ bench: 'calendar.send-window.weekly', value: Math.round(perCall * 1000) / 1000, unit: 'ms/call', worstMs: Math.round(worst * 1000) / 1000, calls: minutes, target: 0.1, note: 'a window open one hour a week, asked at every minute of the week' }));
}

async function main() {
  sendWindowBench();
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
