/**
 * One Cloud API number driven at its configured rate by the real engine on a real store, through the
 * fake Graph server, measured where Meta counts: at the server. Shared by the engine test
 * (`cloud-api.engine.test.ts`) and the bench (`bench/throughput.bench.ts`).
 */
import { createEngine, silentLogger, type StateStore } from '@disparo/core';
import { createCloudApiTransport } from '@disparo/transport-cloud-api';
import type { FakeGraph } from './fake-graph.js';

/** A fake Graph server in another process (the bench's `GraphProcess`), already set to the number's rate and latency. */
export interface RemoteGraph {
  address: { url: string; accessToken: string; appSecret: string; version: string };
  /** What it recorded, as a FakeGraph to read. */
  record(): Promise<FakeGraph>;
}

export interface ThroughputOptions {
  /** The fake Graph server: in this process (set here to the rate and latency below), or in another. */
  fake: FakeGraph | RemoteGraph;
  store: StateStore;
  phoneNumberId: string;
  /** The account's `pacing.ratePerSecond`, and the fake number's limit (Meta's: 130429 past it). */
  ratePerSecond: number;
  maxInFlight: number;
  messages: number;
  /** The fake's answer time for each send. */
  latencyMs: number;
  /** Give up (and say so) after this long. */
  timeoutMs?: number;
  /** The engine's lease slice (its `claimSize`). */
  claimSize?: number;
}

export interface ThroughputResult {
  /** Messages Meta accepted, per second, from the first to the last (at the server). */
  sustained: number;
  /** The most send requests that arrived at the server within any 1 s (refused ones included). */
  maxArrivalsPerSecond: number;
  /** The most messages accepted within any 1 s. */
  maxAcceptedPerSecond: number;
  /** The most send requests open at the server at once (the in-flight window actually used). */
  maxConcurrent: number;
  /** Messages accepted. */
  accepted: number;
  /** Recipients of the campaign that Meta accepted no message for. */
  missing: number;
  /** Sends Meta refused with 130429 (too fast). */
  throttled: number;
  /** Recipients that reached the server more than once. */
  duplicates: number;
  /** Wall time from start() to the campaign's completion. */
  elapsedMs: number;
  /** CPU this process used meanwhile (engine, HTTP client and the fake server together), in cores. */
  cpuCores: number;
  counters: { sent: number; failed: number; unknown: number; pending: number };
  /** What the server recorded (for per-second figures). */
  server: FakeGraph;
}

/** Run one campaign of `messages` recipients on one rate-paced account and measure it at the server. */
export async function runThroughput(o: ThroughputOptions): Promise<ThroughputResult> {
  const local = 'numbers' in o.fake ? o.fake : null;
  if (local) {
    const number = local.numbers.get(o.phoneNumberId);
    if (!number) throw new Error(`the fake has no number ${o.phoneNumberId}`);
    number.throughputPerSecond = o.ratePerSecond;
    local.latencyMs = o.latencyMs;
  }
  const server = local ?? (o.fake as RemoteGraph).address;
  const transport = createCloudApiTransport({
    phoneNumberId: o.phoneNumberId,
    accessToken: server.accessToken,
    appSecret: server.appSecret,
    apiVersion: server.version,
    baseUrl: server.url,
    timeoutMs: 10_000,
  });
  // Counts sends begun and settled, to tell a stuck send from a stuck engine when a run times out.
  const calls = { begun: 0, settled: 0 };
  const counted = new Proxy(transport, {
    get(target, key, receiver) {
      if (key !== 'send') return Reflect.get(target, key, receiver);
      return async (...args: Parameters<typeof transport.send>) => {
        calls.begun++;
        try {
          return await target.send(...args);
        } finally {
          calls.settled++;
        }
      };
    },
  });
  const engine = createEngine({
    store: o.store,
    logger: silentLogger,
    ...(o.claimSize ? { claimSize: o.claimSize } : {}),
    accounts: [{ id: `cloud-${o.phoneNumberId}`, transport: counted, pacing: { ratePerSecond: o.ratePerSecond, maxInFlight: o.maxInFlight } }],
  });
  const campaign = await engine.createCampaign({
    name: `throughput ${o.ratePerSecond}`,
    template: 'Olá {{name|cliente}}, seu pedido saiu para entrega.',
    accountIds: [`cloud-${o.phoneNumberId}`],
    batchSize: Math.min(o.messages, 10_000),
    batchPauseMs: { min: 0, max: 0 },
  });
  // Distinct Brazilian mobiles (not @disparo/core/testing's samplePhones: that entry point needs vitest, and the bench runs without it).
  const phones = Array.from({ length: o.messages }, (_, i) => `551197${String(i).padStart(7, '0')}`);
  await engine.addRecipients(campaign.id, phones.map((phone, i) => ({ phone, vars: { name: `Cliente ${i}` } })));
  if (local && local.messages(o.phoneNumberId).length > 0) throw new Error('runThroughput measures a number with no earlier messages');

  const completed = new Promise<void>((resolve) =>
    engine.on('campaign:completed', ({ campaign: c }) => {
      if (c.id === campaign.id) resolve();
    }),
  );
  const started = Date.now();
  const cpu = process.cpuUsage();
  await engine.start(campaign.id);
  const run = engine.run();
  const timeoutMs = o.timeoutMs ?? 120_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([completed.then(() => 'completed' as const), new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)))]);
  clearTimeout(timer);
  const elapsedMs = Date.now() - started;
  const used = process.cpuUsage(cpu);
  if (outcome === 'timeout') {
    // Say what is stuck before stopping (a stalled engine may not stop either).
    const progress = await engine.progress(campaign.id);
    const stopped = await Promise.race([engine.stop().then(() => run).then(() => true), new Promise<false>((resolve) => setTimeout(() => resolve(false), 5_000).unref())]);
    await transport.close();
    const fake = local ?? (await (o.fake as RemoteGraph).record());
    const atServer = { requests: fake.arrivals(o.phoneNumberId).length, accepted: fake.messages(o.phoneNumberId).length, lastRequestMsAgo: Date.now() - Math.max(0, ...fake.arrivals(o.phoneNumberId)) };
    throw new Error(`the campaign did not complete within ${timeoutMs} ms: ${JSON.stringify({ counters: progress.counters, atServer, sends: calls, engineStopped: stopped })}`);
  }
  await engine.stop();
  await run;
  await transport.close();
  const progress = await engine.progress(campaign.id);

  const fake = local ?? (await (o.fake as RemoteGraph).record());
  const accepted = fake.messages(o.phoneNumberId);
  const seen = new Map<string, number>();
  for (const m of accepted) seen.set(m.to, (seen.get(m.to) ?? 0) + 1);
  return {
    sustained: fake.sustainedRate(o.phoneNumberId),
    maxArrivalsPerSecond: fake.maxInWindow(o.phoneNumberId, 1_000, 'arrivals'),
    maxAcceptedPerSecond: fake.maxInWindow(o.phoneNumberId, 1_000),
    maxConcurrent: fake.maxConcurrentSends(o.phoneNumberId),
    accepted: accepted.length,
    missing: phones.filter((p) => !seen.has(p)).length,
    throttled: fake.rejected.filter((r) => r.phoneNumberId === o.phoneNumberId && r.code === 130429).length,
    duplicates: [...seen.values()].filter((n) => n > 1).length,
    elapsedMs,
    cpuCores: Number(((used.user + used.system) / 1_000 / elapsedMs).toFixed(2)),
    server: fake,
    counters: { sent: progress.sent, failed: progress.counters.failed, unknown: progress.counters.unknown, pending: progress.counters.pending },
  };
}
