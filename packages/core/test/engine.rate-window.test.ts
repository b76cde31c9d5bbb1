import { describe, expect, it } from 'vitest';
import { createEngine, createMemoryStore, createSimulatorTransport, silentLogger, type SimulatorTransport } from '@disparo/core';
import { VirtualClock, seededRandom } from '@disparo/core/testing';
import { campaignWith, duplicateSends, expectCountersMatchRows, runUntil } from './helpers.js';

/** The most messages the provider accepted in any window of `ms` (sliding). */
function maxInWindow(times: number[], ms: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i]! - sorted[j]! >= ms) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

/** The most sends of one account on the wire at once, from their start and answer times. */
function maxOnWire(spans: Array<{ start: number; end: number }>): number {
  const points = spans.flatMap((s) => [
    { at: s.start, d: 1 },
    { at: s.end, d: -1 },
  ]);
  points.sort((a, b) => a.at - b.at || a.d - b.d);
  let now = 0;
  let best = 0;
  for (const p of points) best = Math.max(best, (now += p.d));
  return best;
}

/** A rate-paced account on the virtual clock whose provider records how long each send was on the wire. */
function rig(options: { rate: number; window: number; latency: { min: number; max: number }; failureRates?: Record<string, number>; claimSize?: number }) {
  const clock = new VirtualClock();
  const store = createMemoryStore();
  const sim = createSimulatorTransport({ seed: 5, clock, latencyMs: options.latency, failureRates: options.failureRates ?? {}, rateLimitRetryAfterMs: 1_000 });
  const spans: Array<{ to: string; start: number; end: number }> = [];
  const transport = {
    name: sim.name,
    async send(message: Parameters<SimulatorTransport['send']>[0], opts?: Parameters<SimulatorTransport['send']>[1]) {
      const span = { to: message.to, start: clock.now(), end: Number.POSITIVE_INFINITY };
      spans.push(span);
      try {
        return await sim.send(message, opts);
      } finally {
        span.end = clock.now();
      }
    },
  };
  const engine = createEngine({
    store,
    clock,
    logger: silentLogger,
    random: seededRandom(3),
    claimSize: options.claimSize ?? 2_000,
    accounts: [{ id: 'a1', transport, pacing: { ratePerSecond: options.rate, maxInFlight: options.window } }],
  });
  return { clock, store, engine, sim, spans, sims: { a1: sim } };
}

/** `n` sends, each recipient once, never more than `rate` in a second, and at least `atLeast` per second from the first to the last. */
function expectAllSentAtRate(sim: SimulatorTransport, n: number, rate: number, atLeast: number): void {
  const times = sim.sends.map((s) => s.at);
  expect(sim.sends).toHaveLength(n);
  expect(duplicateSends([sim])).toEqual([]);
  expect(maxInWindow(times, 1_000)).toBeLessThanOrEqual(rate);
  expect(n / ((times.at(-1)! - times[0]!) / 1_000)).toBeGreaterThanOrEqual(atLeast);
}

/**
 * Four accounts at 1,000/s, W 256, on a memory store whose claims take `claimMs(rows claimed)` of
 * virtual time, as a database's do.
 */
function fourAccountsWithSlowClaims(o: { claimMs: (rows: number) => number; claimSize: number; latency: { min: number; max: number }; seed: number }) {
  const clock = new VirtualClock();
  const memory = createMemoryStore();
  const store = Object.assign(Object.create(memory) as typeof memory, {
    claimRecipients: async (input: Parameters<typeof memory.claimRecipients>[0]) => {
      const rows = await memory.claimRecipients(input);
      await clock.sleep(o.claimMs(rows.length));
      return rows;
    },
  });
  const ids = ['a1', 'a2', 'a3', 'a4'];
  const sims = ids.map((id, i) => createSimulatorTransport({ seed: o.seed + i, clock, latencyMs: o.latency, messageIdPrefix: `${id}-` }));
  const engine = createEngine({
    store,
    clock,
    logger: silentLogger,
    random: seededRandom(3),
    claimSize: o.claimSize,
    accounts: ids.map((id, i) => ({ id, transport: sims[i]!, pacing: { ratePerSecond: 1_000, maxInFlight: 256 } })),
  });
  return { clock, sims, engine, ids };
}

describe('rate-paced accounts: an in-flight window and a rate', () => {
  it('80 per second with 150 ms of latency: sends overlap on the wire, the rate is held in every second, and it is nearly used', async () => {
    const r = rig({ rate: 80, window: 16, latency: { min: 150, max: 150 } });
    const c = await campaignWith(r.engine, 1_200, { batchSize: 1_200 });
    await r.engine.start(c.id);
    const started = r.clock.now();
    await runUntil(r, 'campaign:completed');
    const elapsed = (r.sim.sends.at(-1)!.at - r.sim.sends[0]!.at) / 1_000;
    const times = r.sim.sends.map((s) => s.at);
    expect(r.sim.sends).toHaveLength(1_200);
    expect(duplicateSends([r.sim])).toEqual([]);
    expect(maxInWindow(times, 1_000)).toBeLessThanOrEqual(80);
    expect(1_200 / elapsed).toBeGreaterThanOrEqual(76);
    // One send after another's answer could only reach 1000 / 150 = 6.7 per second.
    expect(maxOnWire(r.spans)).toBeGreaterThan(1);
    expect(maxOnWire(r.spans)).toBeLessThanOrEqual(16);
    const { counters, counted } = await expectCountersMatchRows(r.store, c.id);
    expect(counters).toEqual(counted);
    expect(counted.sent).toBe(1_200);
    expect(r.clock.now() - started).toBeLessThan(60_000);
  });

  it('1,000 per second with a window of 256 over slices of 200: the window stays full from one slice to the next', async () => {
    // Each tick claims 200 (the default claimSize), a fifth of a second at this rate, while an answer
    // takes 100-200 ms: a tick that waited for every answer before claiming again would idle for a
    // round trip per slice and reach about 500 per second.
    const r = rig({ rate: 1_000, window: 256, latency: { min: 100, max: 200 }, claimSize: 200 });
    const c = await campaignWith(r.engine, 6_000, { batchSize: 6_000 });
    await r.engine.start(c.id);
    await runUntil(r, 'campaign:completed');
    expectAllSentAtRate(r.sim, 6_000, 1_000, 950);
    const { counters, counted } = await expectCountersMatchRows(r.store, c.id);
    expect(counters).toEqual(counted);
    expect(counted.sent).toBe(6_000);
  });

  it('1,000 per second over batches of 1,000 with no pause between them: the window stays full across every boundary', async () => {
    // Five boundaries. A batch that had to see its last answers (100-200 ms after the last send)
    // before the next one could start left the window empty for a round trip at each: about 860 per second.
    const r = rig({ rate: 1_000, window: 256, latency: { min: 100, max: 200 }, claimSize: 200 });
    const c = await campaignWith(r.engine, 6_000, { batchSize: 1_000 });
    const completed: number[] = [];
    r.engine.on('batch:completed', (e) => completed.push(e.batch!.batch));
    await r.engine.start(c.id);
    await runUntil(r, 'campaign:completed');
    expectAllSentAtRate(r.sim, 6_000, 1_000, 950);
    // Every batch still closes, in order, once its last outcome is recorded.
    expect(completed).toEqual([1, 2, 3, 4, 5, 6]);
    const batches = await r.store.listBatches(c.id);
    expect(batches.every((b) => b.finishedAt !== null)).toBe(true);
    const { counters, counted } = await expectCountersMatchRows(r.store, c.id);
    expect(counters).toEqual(counted);
    expect(counted.sent).toBe(6_000);
  });

  it('with a pause between batches, the next batch starts only after the last answer of the one before and the pause', async () => {
    const r = rig({ rate: 1_000, window: 256, latency: { min: 100, max: 200 }, claimSize: 200 });
    const c = await campaignWith(r.engine, 3_000, { batchSize: 1_000, batchPauseMs: { min: 2_000, max: 2_000 } });
    await r.engine.start(c.id);
    await runUntil(r, 'campaign:completed');
    const batchOf = new Map((await r.store.listRecipients(c.id)).map((x) => [x.phone, x.batch]));
    const ends = new Map<number, number>();
    const starts = new Map<number, number>();
    for (const s of r.spans) {
      const b = batchOf.get(s.to)!;
      ends.set(b, Math.max(ends.get(b) ?? 0, s.end));
      starts.set(b, Math.min(starts.get(b) ?? Number.POSITIVE_INFINITY, s.start));
    }
    expect(r.sim.sends).toHaveLength(3_000);
    expect(starts.get(2)! - ends.get(1)!).toBeGreaterThanOrEqual(2_000);
    expect(starts.get(3)! - ends.get(2)!).toBeGreaterThanOrEqual(2_000);
  });

  it('an account that comes back from a cooldown while the others send joins within a slice, not when the batch ends', async () => {
    const clock = new VirtualClock();
    const store = createMemoryStore();
    const sims = { a1: createSimulatorTransport({ seed: 1, clock, latencyMs: { min: 100, max: 100 } }), a2: createSimulatorTransport({ seed: 2, clock, latencyMs: { min: 100, max: 100 } }) };
    const engine = createEngine({
      store,
      clock,
      logger: silentLogger,
      random: seededRandom(3),
      claimSize: 200,
      accounts: (['a1', 'a2'] as const).map((id) => ({ id, transport: sims[id], pacing: { ratePerSecond: 100, maxInFlight: 16 } })),
    });
    const c = await campaignWith(engine, 3_000, { batchSize: 3_000 }, ['a1', 'a2']);
    await engine.ready();
    const back = clock.now() + 3_000;
    await store.updateAccount('a2', { state: 'disabled', disabledUntil: back, disabledReason: 'cooldown' }, clock.now());
    await engine.start(c.id);
    await runUntil({ engine, clock }, 'campaign:completed');
    expect(sims.a1.sends.length + sims.a2.sends.length).toBe(3_000);
    // a1 alone takes 30 s for the batch; a2 is back after 3 s and claims come every 2 s (200 at 100/s).
    expect(sims.a2.sends[0]!.at).toBeGreaterThanOrEqual(back);
    expect(sims.a2.sends[0]!.at).toBeLessThan(back + 3_000);
    expect(sims.a2.sends.length).toBeGreaterThan(1_000);
  });

  it('four accounts drawing on one queue while each claim takes 150 ms: the next slice is claimed early enough that no window runs dry', async () => {
    // 4 x 1,000/s empty a window's worth (256) in 64 ms, less than a claim takes here: a claim started
    // only then (as it was) left every account idle for the rest of it, at every slice.
    const { clock, sims, engine, ids } = fourAccountsWithSlowClaims({ claimMs: () => 150, claimSize: 2_000, latency: { min: 100, max: 200 }, seed: 10 });
    const c = await campaignWith(engine, 20_000, { batchSize: 10_000 }, ids);
    await engine.start(c.id);
    await runUntil({ engine, clock }, 'campaign:completed');
    const times = sims.flatMap((sim) => sim.sends.map((x) => x.at)).sort((a, b) => a - b);
    expect(times).toHaveLength(20_000);
    expect(duplicateSends(sims)).toEqual([]);
    // 3,880 is the ceiling (0.97 of the rate); the first 100 ms fill the windows. 3,640 before.
    expect(20_000 / ((times.at(-1)! - times[0]!) / 1_000)).toBeGreaterThanOrEqual(3_750);
    for (const sim of sims) expect(maxInWindow(sim.sends.map((x) => x.at), 1_000)).toBeLessThanOrEqual(1_000);
  });

  it("the first sends wait only for a claim of the accounts' windows, not of a whole slice", async () => {
    // A claim here costs 50 us a row: a slice of 4,000 takes 200 ms, four windows of 256 take 51 ms.
    const { clock, sims, engine, ids } = fourAccountsWithSlowClaims({ claimMs: (rows) => rows * 0.05, claimSize: 4_000, latency: { min: 100, max: 100 }, seed: 20 });
    const c = await campaignWith(engine, 8_000, { batchSize: 8_000 }, ids);
    await engine.ready();
    const started = clock.now();
    await engine.start(c.id);
    await runUntil({ engine, clock }, 'campaign:completed');
    const first = Math.min(...sims.flatMap((sim) => sim.sends.map((x) => x.at)));
    expect(sims.reduce((n, sim) => n + sim.sends.length, 0)).toBe(8_000);
    // The provider accepts a send 100 ms after it leaves; it left after the first claim (a slice first: 300 ms).
    expect(first - started).toBeLessThan(200);
    expect(first - started).toBeGreaterThanOrEqual(51 + 100);
  });

  it('a pause from another process stops the slices that follow: the sender claims no more once the campaign is not running', async () => {
    const r = rig({ rate: 1_000, window: 256, latency: { min: 100, max: 200 }, claimSize: 200 });
    // Another process (an API server) shares the store and pauses the campaign; this worker's own
    // engine is not told, so only what it reads from the store can stop it.
    const admin = createEngine({ store: r.store, clock: r.clock, logger: silentLogger, accounts: [] });
    const c = await campaignWith(r.engine, 6_000, { batchSize: 6_000 });
    await r.engine.start(c.id);
    let sentAtPause = -1;
    r.engine.on('message:sent', () => {
      if (r.sim.sends.length >= 1_000 && sentAtPause < 0) {
        sentAtPause = r.sim.sends.length;
        void admin.pause(c.id);
      }
    });
    const stopClock = r.clock.autoAdvance();
    const running = r.engine.run();
    const until = r.clock.now() + 8_000;
    while (r.clock.now() < until) await new Promise((res) => setTimeout(res, 5));
    await r.engine.stop();
    await running;
    stopClock();
    expect(sentAtPause).toBeGreaterThanOrEqual(1_000);
    // Sends already written ahead (a window) and those leaving until the next claim reads the status
    // (a slice) may still go; what the queue holds then, and the thousands that would fit in the
    // seconds after, do not.
    expect(r.sim.sends.length - sentAtPause).toBeLessThanOrEqual(256 + 200);
    expect((await r.store.getCampaign(c.id))!.status).toBe('paused');
    const { counters, counted } = await expectCountersMatchRows(r.store, c.id);
    expect(counters).toEqual(counted);
  });

  it("a receipt that comes 100 ms after the provider's answer finds the outcome recorded, even when few sends are on the wire", async () => {
    // 20 per second with a window of 32: an eighth of the window (4 answers) takes 200 ms to come back,
    // so outcomes waiting for it would still be `sending` when the receipt arrives, and it would be lost.
    const clock = new VirtualClock();
    const store = createMemoryStore();
    const sim = createSimulatorTransport({ seed: 9, clock, latencyMs: { min: 50, max: 50 }, failureRates: {} });
    let engine: ReturnType<typeof createEngine>;
    const transport = {
      name: sim.name,
      async send(message: Parameters<SimulatorTransport['send']>[0], opts?: Parameters<SimulatorTransport['send']>[1]) {
        const sent = await sim.send(message, opts);
        // The provider's "delivered" webhook, 100 ms after its answer.
        clock.setTimer(100, () => void engine.applyStatusUpdates([{ providerMessageId: sent.providerMessageId, status: 'delivered', at: clock.now() }]));
        return sent;
      },
    };
    engine = createEngine({ store, clock, logger: silentLogger, random: seededRandom(4), accounts: [{ id: 'a1', transport, pacing: { ratePerSecond: 20, maxInFlight: 32 } }] });
    const c = await campaignWith(engine, 30, { batchSize: 30 });
    await engine.start(c.id);
    await runUntil({ engine, clock }, 'campaign:completed');
    // The last receipts are due 100 ms after the last answers.
    await clock.advance(200);
    const { counted } = await expectCountersMatchRows(store, c.id);
    expect(counted).toMatchObject({ delivered: 30, sent: 0 });
  });

  it('never more on the wire than the window, even when the rate would allow more', async () => {
    const r = rig({ rate: 1_000, window: 8, latency: { min: 100, max: 200 } });
    const c = await campaignWith(r.engine, 600, { batchSize: 600 });
    await r.engine.start(c.id);
    await runUntil(r, 'campaign:completed');
    expect(r.sim.sends).toHaveLength(600);
    expect(maxOnWire(r.spans)).toBe(8);
  });

  it('"too fast" answers slow the account down instead of failing recipients', async () => {
    const r = rig({ rate: 100, window: 10, latency: { min: 50, max: 50 }, failureRates: { rate_limited: 0.05 } });
    const c = await campaignWith(r.engine, 400, { batchSize: 400, maxAttempts: 1 });
    const limited: number[] = [];
    r.engine.on('message:retrying', (e) => e.kind === 'rate_limited' && limited.push(e.attempt));
    await r.engine.start(c.id);
    await runUntil(r, 'campaign:completed');
    const { counted } = await expectCountersMatchRows(r.store, c.id);
    // Rate limits consume no attempt: with one attempt each, every recipient was still sent.
    expect(limited.length).toBeGreaterThan(5);
    expect(counted).toMatchObject({ sent: 400, failed: 0 });
    expect(duplicateSends([r.sim])).toEqual([]);
  });
});
