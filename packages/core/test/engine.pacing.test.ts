import { describe, expect, it } from 'vitest';
import { createEngine, createSimulatorTransport, silentLogger } from '@disparo/core';
import { VirtualClock, seededRandom } from '@disparo/core/testing';
import { campaignWith, rig, runUntil } from './helpers.js';

const gapsOf = (times: number[]) => times.slice(1).map((t, i) => t - times[i]!);

describe('pacing on the virtual clock', () => {
  it('never sends closer than the minimum, spreads gaps over min..max, and pauses between batches', async () => {
    const r = rig({ pacing: { intervalMs: { min: 5_000, max: 15_000 } } });
    const c = await campaignWith(r.engine, 120, { batchSize: 30, batchPauseMs: { min: 40_000, max: 60_000 } });
    await r.engine.start(c.id);
    await runUntil(r, 'campaign:completed');

    const times = r.sims.a1!.sends.map((s) => s.at);
    expect(times).toHaveLength(120);
    const gaps = gapsOf(times);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(5_000);
    // Gaps inside a batch are spread over the interval, not stuck at one value.
    const inBatch = gaps.filter((_, i) => (i + 1) % 30 !== 0);
    expect(Math.max(...inBatch)).toBeLessThanOrEqual(15_000);
    const buckets = new Set(inBatch.map((g) => Math.floor((g - 5_000) / 2_000))); // five 2 s buckets
    expect(buckets.size).toBe(5);
    const mean = inBatch.reduce((s, g) => s + g, 0) / inBatch.length;
    expect(mean).toBeGreaterThan(8_500);
    expect(mean).toBeLessThan(11_500);
    // Between batches (every 30th gap) the campaign pauses 40-60 s on top.
    const boundaries = gaps.filter((_, i) => (i + 1) % 30 === 0);
    expect(boundaries).toHaveLength(3);
    for (const g of boundaries) expect(g).toBeGreaterThanOrEqual(40_000);
    const batches = await r.store.listBatches(c.id);
    expect(batches.map((b) => b.sent)).toEqual([30, 30, 30, 30]);
  });

  it('holds the account minimum across two engines sharing one store (I3)', async () => {
    const clock = new VirtualClock();
    const a = rig({ clock, pacing: { intervalMs: { min: 3_000, max: 4_000 } }, seed: 1 });
    const sim2 = createSimulatorTransport({ seed: 99, clock });
    const b = {
      engine: createEngine({
        store: a.store,
        clock,
        logger: silentLogger,
        random: seededRandom(2),
        accounts: [{ id: 'a1', transport: sim2, pacing: { intervalMs: { min: 3_000, max: 4_000 } } }],
      }),
    };
    const c = await campaignWith(a.engine, 60, { batchSize: 60 });
    await a.engine.start(c.id);
    const stopClock = clock.autoAdvance();
    const done = new Promise<void>((resolve) => a.engine.on('campaign:completed', () => resolve()));
    const doneB = new Promise<void>((resolve) => b.engine.on('campaign:completed', () => resolve()));
    void a.engine.run();
    void b.engine.run();
    await Promise.race([done, doneB]);
    await Promise.all([a.engine.stop(), b.engine.stop()]);
    stopClock();

    const all = [...a.sims.a1!.sends, ...sim2.sends].sort((x, y) => x.at - y.at);
    expect(all).toHaveLength(60);
    expect(new Set(all.map((s) => s.idempotencyKey)).size).toBe(60);
    expect(a.sims.a1!.sends.length).toBeGreaterThan(0);
    expect(sim2.sends.length).toBeGreaterThan(0);
    expect(Math.min(...gapsOf(all.map((s) => s.at)))).toBeGreaterThanOrEqual(3_000);
  });

  it('an hourly cap holds the account until the next hour', async () => {
    const r = rig();
    const sim = createSimulatorTransport({ seed: 5, clock: r.clock });
    await r.engine.addAccount({ id: 'capped', transport: sim, pacing: { intervalMs: { min: 1_000, max: 1_000 }, hourlyCap: 10 } });
    const c = await campaignWith(r.engine, 25, { batchSize: 100 }, ['capped']);
    await r.engine.start(c.id);
    await runUntil(r, 'campaign:completed');
    const perHour = new Map<number, number>();
    for (const s of sim.sends) perHour.set(Math.floor(s.at / 3_600_000), (perHour.get(Math.floor(s.at / 3_600_000)) ?? 0) + 1);
    expect(sim.sends).toHaveLength(25);
    expect(Math.max(...perHour.values())).toBeLessThanOrEqual(10);
    expect(perHour.size).toBeGreaterThanOrEqual(3);
  });
});
