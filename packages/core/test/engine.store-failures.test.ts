import { describe, expect, it } from 'vitest';
import {
  createEngine,
  createMemoryStore,
  createSimulatorTransport,
  silentLogger,
  type Engine,
  type MemoryStore,
  type SimulatorTransport,
  type StepResult,
  type Transport,
} from '@disparo/core';
import { VirtualClock, seededRandom } from '@disparo/core/testing';
import { campaignWith, duplicateSends, expectCountersMatchRows, realSleep, rig, runCampaign, unhandledRejections, wrapStore } from './helpers.js';

/**
 * Interval-paced accounts and step() when the store or the host misbehaves: a retry whose outcome is
 * kept in memory while the store is down, a failed group's unsent rest taken by another account
 * while its return to pending is still being retried, and stop() called while a step() has a send on
 * the wire. Everything runs on virtual time, and every wait is bounded (virtual budget and a real-time
 * cap): a campaign that never completes fails its test instead of hanging it.
 */

/** Unhandled rejections seen while a test runs. */
const rejections = unhandledRejections();

describe('interval-paced accounts and step() when the store or the host fails', () => {
  // A user sees: one transient provider error (503) while the database is down for ~20 s; once the
  // database is back, that recipient is never sent again: it stays `pending`, leased to the worker
  // (the heartbeat renewing its lease), and the campaign shows "running" forever.
  it('a retry kept in memory while the store was down is sent once the store recovers, and the campaign completes', async () => {
    const clock = new VirtualClock();
    const memory = createMemoryStore();
    /** Store calls refused once the retry's outcome first reaches the store: the sender's flush (7 tries) and the run's last flush (7 tries). */
    let refusing = -1;
    let refused = 0;
    const store = wrapStore(memory, {
      async checkpoint(input) {
        if (refusing < 0 && input.outcomes?.some((o) => o.status === 'pending' && o.keepLease)) refusing = 14;
        if (refusing > 0) {
          refusing--;
          refused++;
          throw new Error('server closed the connection unexpectedly');
        }
        return memory.checkpoint(input);
      },
    });
    const r = rig({ store, pacing: { intervalMs: { min: 0, max: 0 } } });
    r.sims.a1!.failNext('transient');
    const c = await campaignWith(r.engine, 1, { maxAttempts: 3, retryBackoffMs: { min: 10, max: 10 } });
    await r.engine.start(c.id);

    const completed = await runCampaign(r.engine, r.clock, 600_000);

    // The store did refuse both rounds of retries (the outcome was kept for the next tick).
    expect(refused).toBe(14);
    const [row] = await memory.listRecipients(c.id);
    expect({ status: row!.status, attempts: row!.attempts, completed }).toEqual({ status: 'sent', attempts: 2, completed: true });
    expect(r.sims.a1!.sends).toHaveLength(1);
    const { counters, counted } = await expectCountersMatchRows(memory, c.id);
    expect(counters).toEqual(counted);
    expect(rejections.seen).toEqual([]);
  });

  // A user sees: a2 sends messages that a1 had written ahead in a group a1 could not finish (its 2nd
  // send failed, and the database answered the write that records it with an error, after a while);
  // a1's late "back to pending" then lands and a message WhatsApp had already accepted shows `pending`
  // again (a crash at that moment would send it twice).
  it("a failed group's unsent rest is never put back to pending after another account's send of it was accepted", async () => {
    const memory = createMemoryStore();
    const clock = new VirtualClock();
    const sims: Record<string, SimulatorTransport> = {};
    const phoneOf = new Map<string, string>();
    /** The rows of a1's first group (written ahead together). */
    const a1Group: string[] = [];
    const a2TookA1Group = () => sims.a2!.sends.some((s) => a1Group.slice(2).some((id) => phoneOf.get(id) === s.to));
    /** After each store checkpoint: rows `pending` although a simulator had already accepted their phone. */
    const pendingAfterAccepted: Array<{ phone: string; at: number }> = [];
    let failed = 0;
    const store = wrapStore(memory, {
      async checkpoint(input) {
        if (a1Group.length === 0 && input.writeAhead?.accountId === 'a1') a1Group.push(...input.writeAhead.items.map((i) => i.recipientId));
        // The write carrying a1's failed send (its retry) fails once, after a lock wait of up to 3 s
        // (it gives up early once a2 has sent one of a1's group: the moment the race matters).
        if (failed === 0 && input.outcomes?.some((o) => o.status === 'pending' && o.keepLease && o.accountId === 'a1' && o.error !== undefined)) {
          failed++;
          const until = clock.now() + 3_000;
          while (!a2TookA1Group() && clock.now() < until) await clock.sleep(10);
          throw new Error('canceling statement due to lock timeout');
        }
        const result = await memory.checkpoint(input);
        const accepted = new Set(Object.values(sims).flatMap((s) => s.sends.map((x) => x.to)));
        const rows = await memory.listRecipients(campaignId, { status: ['pending'], limit: 1_000 });
        for (const row of rows) if (accepted.has(row.phone) && !pendingAfterAccepted.some((x) => x.phone === row.phone)) pendingAfterAccepted.push({ phone: row.phone, at: clock.now() });
        return result;
      },
    });
    let campaignId = '';
    let a1Accepted = 0;
    const r = rig({
      store,
      clock,
      accounts: ['a1', 'a2'],
      pacing: { intervalMs: { min: 100, max: 100 } },
      engine: { checkpoints: { groupSize: 5 } },
      // a1's 2nd send in its first group fails (transient: to be retried).
      simFor: { a1: { onSend: () => void (++a1Accepted === 1 && sims.a1!.failNext('transient')) } },
    });
    Object.assign(sims, r.sims);
    const c = await campaignWith(r.engine, 20, { batchSize: 20, maxAttempts: 3, retryBackoffMs: { min: 10, max: 10 } }, ['a1', 'a2']);
    campaignId = c.id;
    for (const row of await memory.listRecipients(c.id)) phoneOf.set(row.id, row.phone);
    await r.engine.start(c.id);

    const completed = await runCampaign(r.engine, clock, 300_000);

    expect(failed).toBe(1);
    // No recipient was ever back to `pending` after the provider had accepted it.
    expect(pendingAfterAccepted).toEqual([]);
    expect(completed).toBe(true);
    // Every recipient sent exactly once, across both accounts.
    expect(duplicateSends(Object.values(sims))).toEqual([]);
    expect(sims.a1!.sends.length + sims.a2!.sends.length).toBe(20);
    const { counters, counted } = await expectCountersMatchRows(memory, c.id);
    expect(counters).toEqual(counted);
    expect(counted).toMatchObject({ total: 20, sent: 20, pending: 0, sending: 0 });
    expect(rejections.seen).toEqual([]);
  });

  // A user sees: a host (a cron function) calls engine.stop() and then closes its database pool while a
  // step() has a message on the wire; stop() returned at once, the step was still sending, and the
  // accepted message stayed `sending`, to be settled later as "in doubt".
  it('stop() waits for a step() under way: when it resolves, the step has settled and its send is recorded', async () => {
    const clock = new VirtualClock();
    const store = createMemoryStore();
    const sim = createSimulatorTransport({ seed: 5, clock, latencyMs: { min: 2_000, max: 2_000 } });
    let onWire = 0;
    const transport: Transport = {
      name: 'slow',
      send(message, options) {
        onWire++;
        return sim.send(message, options);
      },
    };
    const engine = createEngine({
      store,
      clock,
      logger: silentLogger,
      random: seededRandom(7),
      pollIntervalMs: 1_000,
      accounts: [{ id: 'a1', transport, pacing: { intervalMs: { min: 0, max: 0 } } }],
    });
    const c = await campaignWith(engine, 3);
    await engine.start(c.id);

    // The step runs on its own until its first send is on the wire (2 s of virtual latency; the clock
    // is not advanced until then).
    let stepSettled = false;
    const stepping: Promise<StepResult | unknown> = engine.step({ campaignId: c.id, budgetMs: 60_000 }).then(
      (res) => res,
      (error: unknown) => error,
    );
    void stepping.finally(() => (stepSettled = true));
    const wireDeadline = Date.now() + 5_000;
    while (onWire === 0 && Date.now() < wireDeadline) await realSleep(5);
    expect(onWire).toBe(1);

    // The host stops the engine; virtual time moves on so that the send can come back.
    let stopSettled = false;
    const stopping = engine.stop().finally(() => (stopSettled = true));
    const stopClock = clock.autoAdvance();
    try {
      await Promise.race([stopping, realSleep(10_000)]);
      expect(stopSettled).toBe(true);
      // When stop() resolves: the step has settled, and nothing is left `sending`.
      const settledAtStop = stepSettled;
      const sendingAtStop = (await store.listRecipients(c.id, { status: ['sending'] })).map((x) => x.phone);
      expect({ stepSettled: settledAtStop, sending: sendingAtStop }).toEqual({ stepSettled: true, sending: [] });
      // The message the provider accepted is recorded as sent.
      expect(sim.sends).toHaveLength(1);
      const [sent] = await store.listRecipients(c.id, { status: ['sent'] });
      expect(sent?.phone).toBe(sim.sends[0]!.to);
    } finally {
      // Either way, let the step finish before the test ends (bounded).
      await Promise.race([stepping, realSleep(5_000)]);
      stopClock();
    }
  });
});
