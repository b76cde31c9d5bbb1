import { describe, expect, it } from 'vitest';
import { createEngine, createMemoryStore, silentLogger, TransportError, type Engine, type MemoryStore, type Transport } from '@disparo/core';
import { VirtualClock, seededRandom } from '@disparo/core/testing';
import { campaignWith, expectCountersMatchRows, runCampaign, unhandledRejections, wrapStore } from './helpers.js';

/**
 * Rate-paced accounts (`pacing: { ratePerSecond, maxInFlight }`) when the provider or the store
 * misbehaves: a rate limit during a database blip, failures that race each other's recording, a long
 * pacing wait, a cooldown that ends on a still-broken account, a write-ahead whose commit was not heard.
 * Everything runs on virtual time, and every run is bounded: a campaign that never completes fails
 * its test instead of hanging it.
 */

type OutboundMessage = Parameters<Transport['send']>[0];

/** A provider on the virtual clock: every send takes `latencyMs(message)`, then `answer` decides (return = accepted, throw = failure). */
function provider(clock: VirtualClock, latencyMs: (m: OutboundMessage) => number, answer: (m: OutboundMessage, call: number) => void) {
  const sends: Array<{ to: string; at: number; answeredAt: number; ok: boolean }> = [];
  const calls = new Map<string, number>();
  const transport: Transport = {
    name: 'scripted',
    async send(message) {
      const call = (calls.get(message.to) ?? 0) + 1;
      calls.set(message.to, call);
      const send = { to: message.to, at: clock.now(), answeredAt: Number.NaN, ok: false };
      sends.push(send);
      await clock.sleep(latencyMs(message));
      send.answeredAt = clock.now();
      answer(message, call);
      send.ok = true;
      return { providerMessageId: `pm-${message.to}-${call}`, acceptedAt: clock.now() };
    },
  };
  return { transport, sends, calls };
}

function engineFor(o: { clock: VirtualClock; store: MemoryStore; transport: Transport; rate: number; window: number; failureThreshold?: number; cooldownMs?: number }): Engine {
  return createEngine({
    store: o.store,
    clock: o.clock,
    logger: silentLogger,
    random: seededRandom(11),
    pollIntervalMs: 1_000,
    ...(o.failureThreshold !== undefined ? { failureThreshold: o.failureThreshold } : {}),
    ...(o.cooldownMs !== undefined ? { cooldownMs: o.cooldownMs } : {}),
    accounts: [{ id: 'a1', transport: o.transport, pacing: { ratePerSecond: o.rate, maxInFlight: o.window } }],
  });
}

/** Unhandled rejections seen while a test runs. */
const rejections = unhandledRejections();

describe('rate-paced accounts when the provider or the store fails', () => {
  // A user sees: a 130429 "too many messages" answered while the database blips once, and the worker
  // process dies of an unhandled rejection, the recipient stuck `sending`, the campaign never done.
  it('a rate limit while the store fails to record the backoff: no unhandled rejection, and every recipient is sent', async () => {
    const clock = new VirtualClock();
    const memory = createMemoryStore();
    let blips = 0;
    const store = wrapStore(memory, {
      async updateAccount(id, patch, now) {
        if (patch.nextSendAtAtLeast !== undefined && blips++ === 0) throw new Error('connection reset by peer');
        return memory.updateAccount(id, patch, now);
      },
    });
    let limited = 0;
    const p = provider(clock, () => 50, () => {
      if (limited++ === 0) throw new TransportError('rate_limited', '(#130429) Rate limit hit', { retryAfterMs: 2_000, providerCode: 130429 });
    });
    const engine = engineFor({ clock, store, transport: p.transport, rate: 20, window: 4 });
    const c = await campaignWith(engine, 6, { batchSize: 6 });
    await engine.start(c.id);

    const completed = await runCampaign(engine, clock, 120_000);

    expect(rejections.seen).toEqual([]);
    expect(blips).toBeGreaterThanOrEqual(1);
    expect(completed).toBe(true);
    const { counters, counted } = await expectCountersMatchRows(store, c.id);
    expect(counters).toEqual(counted);
    expect(counted).toMatchObject({ total: 6, sent: 6, sending: 0, pending: 0 });
    // One answer was the rate limit; each recipient was accepted once.
    expect(p.sends.filter((s) => s.ok)).toHaveLength(6);
    // And the provider's retry-after was honoured: the limited recipient went again only 2 s later, and
    // meanwhile only the sends already on their way (the rest of the first window) left.
    const answer = p.sends[0]!;
    expect(answer.ok).toBe(false);
    const retry = p.sends.find((s, i) => i > 0 && s.to === answer.to)!;
    expect(retry.at - answer.answeredAt).toBeGreaterThanOrEqual(2_000);
    const during = p.sends.filter((s) => s.at > answer.answeredAt && s.at < answer.answeredAt + 2_000);
    expect(during.length).toBeLessThanOrEqual(3);
  });

  // A user sees: one recipient's transient failure (to be retried) and another's permanent failure
  // while the database drops one write; the retried recipient is never sent again, stays `pending`
  // under this worker's lease forever, and the campaign never completes.
  it('a retry whose return to pending is recorded late (the store failed that write once) is still sent, and the campaign completes', async () => {
    const clock = new VirtualClock();
    const memory = createMemoryStore();
    let dropped = 0;
    const store = wrapStore(memory, {
      async checkpoint(input) {
        // The flush that carries the permanent failure: its first try fails (the recorder retries ~200 ms later).
        if (!input.writeAhead && input.outcomes?.some((o) => o.status === 'failed') && dropped++ === 0) throw new Error('deadlock detected');
        return memory.checkpoint(input);
      },
    });
    const c0 = { a: '', b: '' };
    const p = provider(clock, () => 30, (m, call) => {
      if (m.to === c0.a && call === 1) throw new TransportError('transient', 'HTTP 503');
      if (m.to === c0.b) throw new TransportError('permanent', '(#131026) Message undeliverable', { providerCode: 131026 });
    });
    const engine = engineFor({ clock, store, transport: p.transport, rate: 100, window: 16 });
    const c = await campaignWith(engine, 2, { batchSize: 2, maxAttempts: 3, retryBackoffMs: { min: 10, max: 10 } });
    const [a, b] = await store.listRecipients(c.id);
    c0.a = a!.phone;
    c0.b = b!.phone;
    await engine.start(c.id);

    const completed = await runCampaign(engine, clock, 120_000);

    expect(dropped).toBeGreaterThanOrEqual(1);
    expect(completed).toBe(true);
    const rows = new Map((await store.listRecipients(c.id)).map((r) => [r.phone, r]));
    expect(rows.get(c0.a)).toMatchObject({ status: 'sent', attempts: 2 });
    expect(rows.get(c0.b)).toMatchObject({ status: 'failed', attempts: 1 });
    expect(p.calls.get(c0.a)).toBe(2);
    expect(p.calls.get(c0.b)).toBe(1);
    expect(rejections.seen).toEqual([]);
  });

  // A user sees: after a 130429 with a 5 s retry-after, messages the provider already accepted stay
  // `sending` for ~5 s; their "delivered" webhooks, which Meta posts within a second, find the row
  // not yet sent and are lost, and the window stays full meanwhile.
  it('while the account waits out a rate limit, the outcomes of sends still on the wire reach the store within moments of their answers', async () => {
    const clock = new VirtualClock();
    const memory = createMemoryStore();
    /** When each `sent` outcome reached the store, by recipient id. */
    const recordedAt = new Map<string, number>();
    const store = wrapStore(memory, {
      async checkpoint(input) {
        for (const o of input.outcomes ?? []) if (o.status === 'sent' && !recordedAt.has(o.recipientId)) recordedAt.set(o.recipientId, clock.now());
        return memory.checkpoint(input);
      },
    });
    let limited = 0;
    const p = provider(clock, () => 100, () => {
      if (limited++ === 0) throw new TransportError('rate_limited', '(#130429) Rate limit hit', { retryAfterMs: 5_000, providerCode: 130429 });
    });
    const engine = engineFor({ clock, store, transport: p.transport, rate: 100, window: 16 });
    const c = await campaignWith(engine, 40, { batchSize: 40 });
    const phoneOf = new Map((await store.listRecipients(c.id)).map((r) => [r.id, r.phone]));
    await engine.start(c.id);

    const completed = await runCampaign(engine, clock, 120_000);

    expect(completed).toBe(true);
    // The first send was limited, and sends already on the wire came back during the 5 s wait.
    const limitedAt = p.sends[0]!.answeredAt;
    expect(p.sends[0]!.ok).toBe(false);
    expect(p.sends.filter((s) => s.ok && s.answeredAt > limitedAt && s.answeredAt < limitedAt + 5_000).length).toBeGreaterThan(0);
    const answered = new Map(p.sends.filter((s) => s.ok).map((s) => [s.to, s.answeredAt]));
    const lags = [...recordedAt].map(([id, at]) => ({ phone: phoneOf.get(id)!, lagMs: at - answered.get(phoneOf.get(id)!)! }));
    expect(lags).toHaveLength(40);
    // RECORD_WITHIN_MS is 50 ms; allow 200 ms of virtual time.
    expect(lags.filter((l) => l.lagMs > 200)).toEqual([]);
  });

  // A user sees: an account disabled for failing comes back from its cooldown still broken, and
  // instead of one probe message, a window's worth goes out at once: dozens of recipients failed for
  // good by an account known to be broken, and "account disabled" raised again and again.
  it('after a cooldown, a still-broken account sends one probe: it fails, the account is disabled again, and no other recipient is failed', async () => {
    const clock = new VirtualClock();
    const store = createMemoryStore();
    const p = provider(clock, () => 100, () => {
      throw new TransportError('permanent', '(#131000) Something went wrong', { providerCode: 131000 });
    });
    const cooldownMs = 30_000;
    const engine = engineFor({ clock, store, transport: p.transport, rate: 1_000, window: 64, failureThreshold: 5, cooldownMs });
    const disabled: Array<{ at: number; until: number | null }> = [];
    const failed: number[] = [];
    engine.on('account:disabled', (e) => disabled.push({ at: clock.now(), until: e.until }));
    engine.on('message:failed', () => failed.push(clock.now()));
    const c = await campaignWith(engine, 500, { batchSize: 500 });
    await engine.start(c.id);

    // Until 20 s after the first cooldown ended: the probe and its outcome, well before a second cooldown could end.
    await runCampaign(engine, clock, 120_000, () => disabled.length > 0 && clock.now() > disabled[0]!.until! + 20_000);

    expect(disabled.length).toBeGreaterThan(0);
    const cooldownEnd = Math.max(...disabled.filter((d) => d.at < disabled[0]!.at + 1_000).map((d) => d.until!));
    expect(clock.now()).toBeGreaterThan(cooldownEnd + 20_000);
    const after = (t: number) => t >= cooldownEnd && t < cooldownEnd + 20_000;
    // Nothing left during the cooldown.
    expect(p.sends.filter((s) => s.at > disabled[0]!.at + 1_000 && s.at < cooldownEnd)).toEqual([]);
    // One probe, one recipient failed by it, one "disabled" again.
    expect(p.sends.filter((s) => after(s.at))).toHaveLength(1);
    expect(failed.filter(after)).toHaveLength(1);
    expect(disabled.filter((d) => after(d.at))).toHaveLength(1);
    expect((await store.getAccount('a1'))!.state).toBe('disabled');
  });

  // A user sees: the database commits a group of sends written ahead but the answer is lost, then stays
  // down for the recorder's ~11 s of retries; once it is back, those recipients stay `sending`
  // forever (their lease renewed by the heartbeat, the account's window full), and the campaign
  // never completes, or they end `unknown` although they were never sent.
  it('a write-ahead committed but not heard, then a store down through every retry: once it recovers, each recipient is sent exactly once', async () => {
    const clock = new VirtualClock();
    const memory = createMemoryStore();
    /** Store calls still to fail once the first write-ahead arrives: its own try (committed, answer lost) and the recorder's 6 retries. */
    let failing = -1;
    const store = wrapStore(memory, {
      async checkpoint(input) {
        if (failing < 0 && input.writeAhead) failing = 7;
        if (failing > 0) {
          if (failing-- === 7) await memory.checkpoint(input);
          throw new Error('server closed the connection unexpectedly');
        }
        return memory.checkpoint(input);
      },
    });
    const p = provider(clock, () => 50, () => undefined);
    const engine = engineFor({ clock, store, transport: p.transport, rate: 100, window: 8 });
    const c = await campaignWith(engine, 20, { batchSize: 20 });
    await engine.start(c.id);

    const completed = await runCampaign(engine, clock, 300_000);

    expect(failing).toBe(0);
    expect(completed).toBe(true);
    const { counters, counted } = await expectCountersMatchRows(store, c.id);
    expect(counters).toEqual(counted);
    expect(counted).toMatchObject({ total: 20, sent: 20, sending: 0, unknown: 0 });
    // Every recipient reached the provider once.
    expect(p.calls.size).toBe(20);
    expect([...p.calls.values()].filter((n) => n !== 1)).toEqual([]);
  });
});
