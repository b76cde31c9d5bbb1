import { describe, expect, it } from 'vitest';
import {
  createEngine,
  createMemoryStore,
  createSimulatorTransport,
  silentLogger,
  type SimulatorTransport,
  type StateStore,
} from '@disparo/core';
import { VirtualClock, seededRandom } from '@disparo/core/testing';
import { campaignWith, duplicateSends, expectCountersMatchRows, phones, rig, runUntil } from './helpers.js';

/** Count the store calls that commit sends (checkpoints), and those that wrote a group of several ahead. */
function countingStore(store: StateStore) {
  const calls = { checkpoint: 0, groups: 0 };
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (prop === 'checkpoint' && typeof value === 'function') {
        return (...args: unknown[]) => {
          calls.checkpoint++;
          if (((args[0] as { writeAhead?: { items: unknown[] } }).writeAhead?.items.length ?? 0) > 1) calls.groups++;
          return value.apply(target, args);
        };
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store: proxy, calls };
}

describe('grouped checkpoints', () => {
  it('sends every recipient once through groups, with retries and failures, in far fewer store commits', async () => {
    const { store, calls } = countingStore(createMemoryStore());
    const r = rig({
      store,
      accounts: ['a1', 'a2'],
      sim: { latencyMs: { min: 5, max: 20 }, failureRates: { transient: 0.05, rate_limited: 0.02, invalid_recipient: 0.02 } },
      engine: { checkpoints: { groupSize: 25 }, claimSize: 200, failureThreshold: 50 },
    });
    const c = await campaignWith(r.engine, 300, { batchSize: 100, maxAttempts: 3 }, ['a1', 'a2']);
    await r.engine.start(c.id);
    await runUntil(r, 'campaign:completed');
    await r.engine.stop();

    const { counters, counted } = await expectCountersMatchRows(r.store, c.id);
    expect(counters).toEqual(counted);
    expect(counted.pending + counted.sending).toBe(0);
    const sims = Object.values(r.sims);
    expect(duplicateSends(sims)).toEqual([]);
    expect(counted.sent).toBe(sims.reduce((s, sim) => s + sim.sends.length, 0));
    expect(counted.sent).toBeGreaterThan(250);
    // The bulk goes in groups. One by one, the same campaign takes at least one commit per send (300)
    // plus the retries.
    expect(calls.groups).toBeGreaterThan(0);
    expect(calls.checkpoint).toBeLessThan(300 / 2);
  });

  it('a send that fails in a group is judged by its own error, even on its last attempt', async () => {
    const r = rig({ engine: { checkpoints: { groupSize: 10 } } });
    r.sims.a1!.failNext('invalid_recipient');
    r.sims.a1!.failNext('transient');
    const c = await campaignWith(r.engine, 12, { maxAttempts: 1 });
    await r.engine.start(c.id);
    await runUntil(r, 'campaign:completed');
    await r.engine.stop();
    const rows = await r.store.listRecipients(c.id);
    expect(rows[0]).toMatchObject({ status: 'skipped', skipReason: 'not_on_whatsapp' });
    expect(rows[1]!.status).toBe('failed');
    expect(rows[1]!.lastError).not.toContain('max attempts');
    expect(rows.slice(2).map((x) => x.status)).toEqual(Array(10).fill('sent'));
    const { counters, counted } = await expectCountersMatchRows(r.store, c.id);
    expect(counters).toEqual(counted);
  });

  it("keeps each account's pacing: the group reserves consecutive slots and sends at them", async () => {
    const { store, calls } = countingStore(createMemoryStore());
    const r = rig({ store, pacing: { intervalMs: { min: 1_000, max: 2_000 } }, engine: { checkpoints: { groupSize: 10, maxDelayMs: 20_000 } } });
    const c = await campaignWith(r.engine, 40);
    await r.engine.start(c.id);
    await runUntil(r, 'campaign:completed');
    await r.engine.stop();
    const times = r.sims.a1!.sends.map((s) => s.at);
    expect(times).toHaveLength(40);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(1_000);
    // About 20 s of pacing per group of at most 10: groups are used, and bounded by maxDelayMs.
    expect(calls.groups).toBeGreaterThanOrEqual(4);
    expect(calls.groups).toBeLessThan(40);
  });

  for (const lookup of [false, true]) {
    it(`a crash mid-group leaves up to a group in doubt, settled ${lookup ? 'by lookup as sent' : 'as unknown (at-most-once)'}, never sent twice`, async () => {
      const store = createMemoryStore();
      const clockA = new VirtualClock();
      const group = 20;
      // One provider memory for both engines (the lookup asks it), each engine with its own simulator.
      const make = (clock: VirtualClock, seed: number, sims: SimulatorTransport[], hang?: () => boolean) =>
        createEngine({
          store,
          clock,
          logger: silentLogger,
          random: seededRandom(seed),
          leaseMs: 10_000,
          checkpoints: { groupSize: group },
          accounts: ['a1'].map((id) => {
            const sim = createSimulatorTransport({
              seed,
              clock,
              latencyMs: { min: 50, max: 50 },
              lookup: false,
              onSend: hang ? () => (hang() ? new Promise<void>(() => {}) : undefined) : undefined,
            });
            sims.push(sim);
            const transport = lookup
              ? {
                  name: sim.name,
                  send: sim.send.bind(sim),
                  lookup: async (q: { message: { idempotencyKey: string } }) => {
                    const hit = allSims.flatMap((s) => s.sends).find((s) => s.idempotencyKey === q.message.idempotencyKey);
                    return hit ? { status: 'found' as const, sent: { providerMessageId: hit.providerMessageId, acceptedAt: hit.at } } : { status: 'absent' as const };
                  },
                }
              : sim;
            return { id, transport, pacing: { intervalMs: { min: 0, max: 0 } } };
          }),
        });
      const allSims: SimulatorTransport[] = [];
      const simsA: SimulatorTransport[] = [];
      // A dies while sending the 8th message of its second group: 7 sent but not yet recorded, 12 never sent.
      const engineA = make(clockA, 1, simsA, () => simsA[0]!.sends.length >= group + 7);
      allSims.push(...simsA);
      const c = await engineA.createCampaign({ name: 'grouped crash', template: 'Oi', accountIds: ['a1'], batchSize: 100, batchPauseMs: { min: 0, max: 0 }, inDoubt: 'at-most-once' });
      await engineA.addRecipients(c.id, phones(60).map((phone) => ({ phone })));
      await engineA.start(c.id);
      const stopA = clockA.autoAdvance();
      void engineA.run();
      while (simsA[0]!.sends.length < group + 7) await new Promise((res) => setImmediate(res));
      for (let i = 0; i < 20; i++) await new Promise((res) => setImmediate(res));
      stopA();
      const inDoubt = (await store.getCampaign(c.id))!.counters.sending;
      const inDoubtPhones = new Set((await store.listRecipients(c.id, { status: ['sending'] })).map((x) => x.phone));
      const acceptedInDoubt = simsA[0]!.sends.filter((s) => inDoubtPhones.has(s.to)).length;
      expect(acceptedInDoubt).toBeGreaterThan(0);
      expect(inDoubt).toBeGreaterThan(1); // wider than per-message checkpoints (at most 1)
      expect(inDoubt).toBeLessThanOrEqual(group);

      const clockB = new VirtualClock(clockA.now());
      const simsB: SimulatorTransport[] = [];
      const engineB = make(clockB, 2, simsB);
      allSims.push(...simsB);
      const recovered: number[] = [];
      engineB.on('recovery:settled', (e) => recovered.push(e.settled));
      const done = new Promise<void>((resolve) => engineB.on('campaign:completed', () => resolve()));
      const stopB = clockB.autoAdvance();
      void engineB.run();
      await done;
      await engineB.stop();
      stopB();

      expect(duplicateSends(allSims)).toEqual([]);
      const { counters, counted } = await expectCountersMatchRows(store, c.id);
      expect(counters).toEqual(counted);
      const accepted = allSims.reduce((s, sim) => s + sim.sends.length, 0);
      expect(recovered.reduce((s, n) => s + n, 0)).toBe(inDoubt);
      if (lookup) {
        // The sends that left are found and recorded; the rest are sent by B. Nobody is lost.
        expect(counted.unknown).toBe(0);
        expect(counted.sent).toBe(60);
        expect(accepted).toBe(60);
      } else {
        // Without a lookup, the policy marks the whole in-doubt group unknown: none resent.
        expect(counted.unknown).toBe(inDoubt);
        expect(counted.sent + counted.unknown).toBe(60);
        expect(counted.sent).toBe(accepted - acceptedInDoubt);
      }
    });
  }
});

describe('interval-paced accounts claim the next slice while they send', () => {
  it('a slow claim overlaps the sends of the slice before it instead of adding to them', async () => {
    // Claims cost 300 ms each; 100 sends of 10 ms make a slice of about a second. One after the
    // other, ten slices take 10 s of sending plus 3 s of claims; overlapped, the claims after the
    // first are hidden behind the sends.
    const clock = new VirtualClock();
    const memory = createMemoryStore();
    let claims = 0;
    const store = Object.assign(Object.create(memory) as typeof memory, {
      claimRecipients: async (input: Parameters<typeof memory.claimRecipients>[0]) => {
        claims++;
        const rows = await memory.claimRecipients(input);
        await clock.sleep(300);
        return rows;
      },
    });
    const r = rig({ store, clock, sim: { latencyMs: { min: 10, max: 10 } }, engine: { claimSize: 100, checkpoints: { groupSize: 10 } } });
    const c = await campaignWith(r.engine, 1_000, { batchSize: 1_000 });
    await r.engine.start(c.id);
    const started = clock.now();
    await runUntil(r, 'campaign:completed');
    const sends = r.sims.a1!.sends;
    expect(sends).toHaveLength(1_000);
    expect(duplicateSends([r.sims.a1!])).toEqual([]);
    expect(claims).toBeGreaterThanOrEqual(10);
    // 10 s of sends, the first claim, and a tail; 13 s and more when each claim waited for the slice before it.
    expect(sends.at(-1)!.at - started).toBeLessThan(11_000);
    const { counters, counted } = await expectCountersMatchRows(r.store, c.id);
    expect(counters).toEqual(counted);
  });
});
