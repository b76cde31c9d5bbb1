import { describe, expect, it } from 'vitest';
import {
  createEngine,
  createMemoryStore,
  createSimulatorTransport,
  silentLogger,
  type MemoryStore,
  type SimulatorTransport,
} from '@disparo/core';
import { VirtualClock, seededRandom } from '@disparo/core/testing';
import { campaignWith, duplicateSends, expectCountersMatchRows, phones, rig, runUntil } from './helpers.js';

/**
 * A crash is an engine whose clock stops: it is frozen at an await point (mid-send, mid-pause)
 * and never runs again, like a killed process. A new engine on the same store takes over.
 */
describe('crash and resume', () => {
  for (const policy of ['at-most-once', 'at-least-once'] as const) {
    it(`resumes from the exact recipient with no duplicate and no loss (${policy})`, async () => {
      const store = createMemoryStore();
      const clockA = new VirtualClock();
      const accountIds = ['a1', 'a2'];
      const simsA: SimulatorTransport[] = [];
      const engineA = createEngine({
        store,
        clock: clockA,
        logger: silentLogger,
        random: seededRandom(1),
        leaseMs: 10_000,
        pollIntervalMs: 1_000,
        // No lookup: in-doubt sends are settled by the campaign's policy.
        accounts: accountIds.map((id, i) => {
          const sim = createSimulatorTransport({ seed: i, clock: clockA, latencyMs: { min: 200, max: 400 }, lookup: false });
          simsA.push(sim);
          return { id, transport: sim, pacing: { intervalMs: { min: 500, max: 1_500 } } };
        }),
      });
      const c = await engineA.createCampaign({ name: 'crash', template: 'Oi {{name|amigo}}', accountIds, batchSize: 25, batchPauseMs: { min: 2_000, max: 3_000 }, inDoubt: policy });
      await engineA.addRecipients(c.id, phones(200).map((phone) => ({ phone })));
      await engineA.start(c.id);

      let sentA = 0;
      engineA.on('message:sent', () => sentA++);
      const stopA = clockA.autoAdvance();
      void engineA.run();
      while (sentA < 70) await new Promise((r) => setTimeout(r, 1));
      // Freeze mid-flight: wait until a send is on the wire (write-ahead done, provider not answered).
      while ((await store.listRecipients(c.id, { status: ['sending'] })).length === 0) await new Promise((r) => setImmediate(r));
      stopA(); // crash: engine A never runs again
      const crashAt = clockA.now();
      const beforeCrash = (await store.getCampaign(c.id))!;
      expect(beforeCrash.counters.sending).toBeGreaterThan(0);
      // Whether a send in doubt is the last open row of its batch: that batch closes only once the send
      // is settled, and then the batch pause the campaign asked for runs before the next send.
      const doubtful = new Set((await store.listRecipients(c.id, { status: ['sending'] })).map((r) => r.batch));
      const endsItsBatch = (await store.listRecipients(c.id, { status: ['pending'] })).every((r) => !doubtful.has(r.batch));

      const clockB = new VirtualClock(crashAt);
      const simsB = accountIds.map((_, i) => createSimulatorTransport({ seed: 10 + i, clock: clockB, lookup: false }));
      const engineB = createEngine({
        store,
        clock: clockB,
        logger: silentLogger,
        random: seededRandom(2),
        leaseMs: 10_000,
        pollIntervalMs: 1_000,
        accounts: accountIds.map((id, i) => ({ id, transport: simsB[i]!, pacing: { intervalMs: { min: 500, max: 1_500 } } })),
      });
      const done = new Promise<void>((resolve) => engineB.on('campaign:completed', () => resolve()));
      const stopB = clockB.autoAdvance();
      void engineB.run();
      await done;
      await engineB.stop();
      stopB();

      // I5: the new engine sent its first message within lease TTL + poll interval (+ one pacing gap,
      // or the batch pause when the crash left its batch's last send in doubt).
      const firstB = Math.min(...simsB.flatMap((s) => s.sends.map((x) => x.at)));
      expect(firstB - crashAt).toBeLessThanOrEqual(10_000 + 1_000 + (endsItsBatch ? 3_000 : 1_500));

      const final = (await store.getCampaign(c.id))!;
      expect(final.status).toBe('completed');
      const { counters, counted } = await expectCountersMatchRows(store, c.id);
      expect(counters).toEqual(counted);
      expect(counted.pending + counted.sending).toBe(0);
      // A's in-flight sends (one per account at most) were never accepted by its frozen simulator.
      const inDoubt = beforeCrash.counters.sending;
      expect(inDoubt).toBeLessThanOrEqual(accountIds.length);
      const allSims = [...simsA, ...simsB];
      // I1: nobody got the message twice; I2: everybody else got it exactly once.
      expect(duplicateSends(allSims)).toEqual([]);
      const accepted = allSims.reduce((s, sim) => s + sim.sends.length, 0);
      if (policy === 'at-most-once') {
        expect(counted.unknown).toBe(inDoubt);
        expect(accepted).toBe(200 - inDoubt);
      } else {
        expect(counted.unknown).toBe(0);
        expect(accepted).toBe(200);
      }
      expect(counted.sent).toBe(accepted);
    });
  }

  it('settles an in-doubt send through the transport lookup instead of guessing', async () => {
    const store = createMemoryStore();
    const clockA = new VirtualClock();
    const clockB = new VirtualClock(clockA.now());
    // One provider for both engines. Engine A dies right after the provider accepted its third
    // message and before A heard back: the provider has it, A never recorded it.
    let crashed = false;
    const provider = createSimulatorTransport({
      seed: 3,
      clock: clockB,
      onSend: () => {
        if (provider.sends.length === 3 && !crashed) {
          crashed = true;
          return new Promise<void>(() => {}); // A hangs here forever: a dead process
        }
      },
    });
    const make = (clock: VirtualClock) =>
      createEngine({ store, clock, logger: silentLogger, leaseMs: 5_000, accounts: [{ id: 'a1', transport: provider, pacing: { intervalMs: { min: 100, max: 100 } } }] });
    const engineA = make(clockA);
    const c = await engineA.createCampaign({ name: 'lookup', template: 'Oi', accountIds: ['a1'], inDoubt: 'at-most-once' });
    await engineA.addRecipients(c.id, phones(6).map((phone) => ({ phone })));
    await engineA.start(c.id);
    const stopA = clockA.autoAdvance();
    void engineA.run();
    while (!crashed) await new Promise((r) => setImmediate(r));
    stopA();
    const inFlight = await store.listRecipients(c.id, { status: ['sending'] });
    expect(inFlight).toHaveLength(1);

    clockB.advanceTo(clockA.now());
    const engineB = make(clockB);
    const done = new Promise<void>((resolve) => engineB.on('campaign:completed', () => resolve()));
    const stopB = clockB.autoAdvance();
    void engineB.run();
    await done;
    await engineB.stop();
    stopB();
    const rows = await store.listRecipients(c.id);
    // Lookup found the accepted message: recorded as sent, not `unknown`, and never resent.
    expect(rows.map((r) => r.status)).toEqual(['sent', 'sent', 'sent', 'sent', 'sent', 'sent']);
    expect(rows.find((r) => r.id === inFlight[0]!.id)!.providerMessageId).toBe(provider.sends[2]!.providerMessageId);
    expect(duplicateSends([provider])).toEqual([]);
    expect(provider.sends).toHaveLength(6);
  });
});

/** `inner` with its send-recording steps (`checkpoint`) routed through `write`. */
function interceptSteps(inner: MemoryStore, write: (step: () => Promise<unknown>) => Promise<unknown>): MemoryStore {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      if (prop !== 'checkpoint') return value.bind(target);
      return (input: unknown) => write(() => value.call(target, input));
    },
  });
}

describe('store failures while sending', () => {
  it('a failed store write (deadlock victim, or a commit whose answer was lost) is retried: nothing is lost or sent twice', async () => {
    const inner = createMemoryStore();
    let calls = 0;
    let failedBefore = 0;
    let failedAfter = 0;
    // Every 7th step fails without writing; every 11th writes, then fails (the answer is lost).
    const store = interceptSteps(inner, async (step) => {
      calls++;
      if (calls % 7 === 0) {
        failedBefore++;
        throw new Error('deadlock detected (simulated)');
      }
      const result = await step();
      if (calls % 11 === 0) {
        failedAfter++;
        throw new Error('connection terminated after commit (simulated)');
      }
      return result;
    });
    const r = rig({ store, accounts: ['a1', 'a2'], pacing: { intervalMs: { min: 100, max: 300 } } });
    const c = await campaignWith(r.engine, 120, {}, ['a1', 'a2']);
    await r.engine.start(c.id);
    await runUntil(r, 'campaign:completed');
    expect(failedBefore).toBeGreaterThan(5);
    expect(failedAfter).toBeGreaterThan(5);
    const sims = Object.values(r.sims);
    expect(duplicateSends(sims)).toEqual([]);
    const { counters, counted } = await expectCountersMatchRows(inner, c.id);
    expect(counters).toEqual(counted);
    expect(counters).toMatchObject({ total: 120, sent: 120, sending: 0, pending: 0, unknown: 0 });
    expect(sims.reduce((n, s) => n + s.sends.length, 0)).toBe(120);
  });
  it('the whole store down from the moment an outcome is recorded: the unsent rest of the slice is handed back when it returns, none stays leased', async () => {
    const inner = createMemoryStore();
    const clock = new VirtualClock();
    let outcomeSteps = 0;
    let downUntil = 0;
    // Every method fails while down (as a database outage does: claims, heartbeats, releases too), for
    // longer than the engine's write retries and shorter than a lease (30 s): leases outlive it.
    const store = new Proxy(inner, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (typeof value !== 'function') return value;
        return async (...args: unknown[]) => {
          const input = args[0] as { writeAhead?: unknown; outcomes?: unknown[] } | undefined;
          if (prop === 'checkpoint' && input && !input.writeAhead && (input.outcomes?.length ?? 0) > 0 && ++outcomeSteps === 3) downUntil = clock.now() + 20_000;
          if (clock.now() < downUntil) throw new Error('connection terminated (simulated)');
          return value.apply(target, args);
        };
      },
    }) as MemoryStore;
    const r = rig({ store, clock, accounts: ['a1'], pacing: { intervalMs: { min: 100, max: 300 } } });
    const c = await campaignWith(r.engine, 30, { batchSize: 30 }, ['a1']);
    await r.engine.start(c.id);
    const failures: string[] = [];
    r.engine.on('error', (e) => failures.push(e.context));
    await runUntil(r, 'campaign:completed', () => true, 10 * 60_000);
    expect(failures.some((f) => f.includes(c.id))).toBe(true); // recording failed past its retries
    expect(downUntil).toBeGreaterThan(0);
    const sims = Object.values(r.sims);
    expect(duplicateSends(sims)).toEqual([]);
    expect(sims.reduce((n, s) => n + s.sends.length, 0)).toBe(30);
    const rows = await inner.listRecipients(c.id);
    expect(rows.filter((x) => x.leaseOwner !== null)).toEqual([]);
    const { counters, counted } = await expectCountersMatchRows(inner, c.id);
    expect(counters).toEqual(counted);
    expect(counters).toMatchObject({ total: 30, sent: 30, sending: 0, pending: 0, unknown: 0 });
  });
  for (const groupSize of [1, 5]) {
    it(`outcomes the store could not take for longer than the write retries are kept and recorded when it is back, without a restart (group ${groupSize})`, async () => {
      const inner = createMemoryStore();
      const clock = new VirtualClock();
      let calls = 0;
      let downUntil = 0;
      let refused = 0;
      // From the 12th step that records sends, the store refuses them for a virtual minute (the
      // engine's own retries give up after about 11 s).
      const store = interceptSteps(inner, async (step) => {
        if (++calls === 12) downUntil = clock.now() + 60_000;
        if (clock.now() < downUntil) {
          refused++;
          throw new Error('connection refused (simulated)');
        }
        return step();
      });
      const r = rig({ store, clock, accounts: ['a1'], pacing: { intervalMs: { min: 100, max: 300 } }, engine: { checkpoints: { groupSize } } });
      const c = await campaignWith(r.engine, 40, {}, ['a1']);
      await r.engine.start(c.id);
      const startedAt = clock.now();
      await runUntil(r, 'campaign:completed', () => true, 10 * 60_000);
      expect(refused).toBeGreaterThan(7);
      expect(clock.now() - startedAt).toBeGreaterThan(60_000);
      const sims = Object.values(r.sims);
      expect(duplicateSends(sims)).toEqual([]);
      expect(sims.reduce((n, s) => n + s.sends.length, 0)).toBe(40);
      const { counters, counted } = await expectCountersMatchRows(inner, c.id);
      expect(counters).toEqual(counted);
      expect(counters).toMatchObject({ total: 40, sent: 40, sending: 0, pending: 0, unknown: 0 });
    });
  }
});
