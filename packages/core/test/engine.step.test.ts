import { describe, expect, it } from 'vitest';
import { createEngine, silentLogger } from '@disparo/core';
import { seededRandom } from '@disparo/core/testing';
import { campaignWith, duplicateSends, expectCountersMatchRows, rig } from './helpers.js';

describe('step mode', () => {
  it('does one batch per call and reports what is left and when to call again', async () => {
    const r = rig({ pacing: { intervalMs: { min: 1_000, max: 2_000 } } });
    const c = await campaignWith(r.engine, 35, { batchSize: 10, batchPauseMs: { min: 60_000, max: 60_000 } });
    await r.engine.start(c.id);
    const stopClock = r.clock.autoAdvance();
    const results = [];
    for (let i = 0; i < 20; i++) {
      const res = await r.engine.step({ campaignId: c.id, maxBatches: 1, budgetMs: 120_000 });
      results.push(res);
      if (res.done) break;
      // The host sleeps until continueAt (a cron tick, a delayed webhook).
      if (res.continueAt !== null && res.continueAt > r.clock.now()) await r.clock.advanceTo(res.continueAt);
    }
    stopClock();
    const last = results.at(-1)!;
    expect(last).toMatchObject({ done: true, status: 'completed', remaining: 0, continueAt: null });
    expect(results.reduce((s, x) => s + x.processed, 0)).toBe(35);
    // Batches of 10 with a 60 s pause between them: no call crossed a batch boundary.
    expect(results.filter((x) => x.processed > 0).map((x) => x.processed)).toEqual([10, 10, 10, 5]);
    expect(r.sims.a1!.sends).toHaveLength(35);
    // The finished campaign reports the batch it ended in, not one past the last.
    expect(await r.engine.progress(c.id)).toMatchObject({ currentBatch: 4, totalBatches: 4, percent: 100 });
  });

  it('a step whose budget ends before the next slot returns continueAt at that slot', async () => {
    const r = rig({ pacing: { intervalMs: { min: 30_000, max: 30_000 } } });
    const c = await campaignWith(r.engine, 5);
    await r.engine.start(c.id);
    const stopClock = r.clock.autoAdvance();
    const first = await r.engine.step({ campaignId: c.id, budgetMs: 10_000 });
    stopClock();
    expect(first.processed).toBe(1);
    expect(first.done).toBe(false);
    expect(first.remaining).toBe(4);
    expect(first.continueAt).toBeGreaterThanOrEqual(r.clock.now());
    // Nothing is left leased: the next invocation (maybe another process) can take it all.
    const rows = await r.store.listRecipients(c.id, { status: ['pending'] });
    expect(rows.every((x) => x.leaseOwner === null)).toBe(true);
  });

  it('overlapping and duplicate step calls never double-send', async () => {
    const r = rig({ accounts: ['a1', 'a2'], sim: { latencyMs: { min: 50, max: 300 } }, pacing: { intervalMs: { min: 100, max: 400 } } });
    const other = createEngine({ store: r.store, clock: r.clock, logger: silentLogger, random: seededRandom(3), accounts: [{ id: 'a1', transport: r.sims.a1!, pacing: { intervalMs: { min: 100, max: 400 } } }, { id: 'a2', transport: r.sims.a2!, pacing: { intervalMs: { min: 100, max: 400 } } }] });
    const c = await campaignWith(r.engine, 80, { batchSize: 20, batchPauseMs: { min: 0, max: 0 } }, ['a1', 'a2']);
    await r.engine.start(c.id);
    const stopClock = r.clock.autoAdvance();
    for (let round = 0; round < 30; round++) {
      const calls = [
        r.engine.step({ campaignId: c.id, budgetMs: 3_000 }),
        r.engine.step({ campaignId: c.id, budgetMs: 2_000 }),
        other.step({ campaignId: c.id, budgetMs: 4_000 }),
      ];
      const res = await Promise.all(calls);
      if (res.some((x) => x.done)) break;
    }
    stopClock();
    expect((await r.store.getCampaign(c.id))!.status).toBe('completed');
    expect(duplicateSends([r.sims.a1!, r.sims.a2!])).toEqual([]);
    expect(r.sims.a1!.sends.length + r.sims.a2!.sends.length).toBe(80);
    const { counters, counted } = await expectCountersMatchRows(r.store, c.id);
    expect(counters).toEqual(counted);
  });
});
