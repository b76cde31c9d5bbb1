import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../src/testing/virtual-clock.js';
import { TransportError, ValidationError, type TransportErrorKind } from '../src/errors.js';
import { normalizePhone } from '../src/domain/phone.js';
import { createSimulatorTransport, type SimulatorOptions, type SimulatorTransport } from '../src/transport/simulator/simulator.js';
import { samplePhones } from '../src/testing/fixtures.js';
import { describeTransport, type TransportCapability, type TransportHarness } from '../src/testing/transport-suite/suite.js';
import type { OutboundMessage, TransportEvent } from '../src/transport/contract.js';

const RETRY_AFTER_MS = 2_500;

function harness(sim: SimulatorTransport): TransportHarness {
  return {
    transport: sim,
    // The simulator keeps a record of everything it accepted.
    lookupProvesAbsence: true,
    script: {
      failNext(kind) {
        sim.failNext(kind, { retryAfterMs: RETRY_AFTER_MS });
        return kind === 'rate_limited' ? { retryAfterMs: RETRY_AFTER_MS } : undefined;
      },
      markNotOnWhatsApp: (phone) => sim.markNotOnWhatsApp(phone),
      disconnect: () => sim.setConnected(false),
      reconnect: () => sim.setConnected(true),
      received: () => sim.sends.map((s) => ({ to: s.to, text: s.text, idempotencyKey: s.idempotencyKey })),
      holdNext: () => sim.holdNext(),
      emitInbound: (from, text) => sim.inject({ type: 'inbound', from, text, at: Date.now() }),
    },
    close: () => sim.close(),
  };
}

const EVERYTHING: TransportCapability[] = [
  'failNext',
  'markNotOnWhatsApp',
  'disconnect',
  'reconnect',
  'received',
  'holdNext',
  'emitInbound',
  'connectionState',
  'checkNumbers',
  'lookup',
  'subscribe',
  'typing',
];

// The full suite, with every capability required so nothing silently skips.
describeTransport('simulator', () => harness(createSimulatorTransport({ seed: 42 })), { require: EVERYTHING });
// A bare harness (no script, no lookup): the suite must skip what it cannot drive, not fail.
describeTransport('simulator (bare)', () => ({ transport: createSimulatorTransport({ seed: 7, lookup: false }) }));
// A provider that keeps no record of what it sent: its lookup finds what it can and never claims absence.
describeTransport('simulator (found-only lookup)', () => ({ transport: createSimulatorTransport({ seed: 8, lookup: 'found-only' }) }));

// ---- simulator-specific behaviour, on virtual time ------------------------------------------

const PHONES = samplePhones(50, 3);
let keys = 0;
const msg = (i = 0, overrides: Partial<OutboundMessage> = {}): OutboundMessage => ({
  to: PHONES[i % PHONES.length]!,
  text: `Oi ${i}`,
  idempotencyKey: `c1:r${++keys}`,
  ...overrides,
});

async function outcome(promise: Promise<unknown>): Promise<string> {
  try {
    const r = (await promise) as { providerMessageId: string };
    return `ok:${r.providerMessageId}`;
  } catch (error) {
    if (TransportError.isInstance(error)) return error.kind;
    throw error;
  }
}

function validationError(options: unknown): ValidationError {
  try {
    createSimulatorTransport(options as SimulatorOptions);
  } catch (error) {
    if (ValidationError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected a ValidationError');
}

/** Whether `promise` has settled after the microtasks and one macrotask turn run. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise<void>((r) => setImmediate(r));
  return done;
}

describe('SimulatorTransport options', () => {
  it.each([
    [{ latencyMs: { min: 300, max: 100 } }, 'latencyMs.max'],
    [{ latencyMs: { min: -1, max: 100 } }, 'latencyMs.min'],
    [{ failureRates: { transient: 1.5 } }, 'failureRates.transient'],
    [{ failureRates: { transient: 0.6, permanent: 0.6 } }, 'failureRates'],
    [{ failureRates: { flaky: 0.1 } }, 'failureRates.flaky'],
    [{ latency: { min: 0, max: 0 } }, 'latency'],
    [{ seed: 1.5 }, 'seed'],
    [{ seed: '7' }, 'seed'],
    [{ clock: { now: 1 } }, 'clock'],
    [{ notOnWhatsApp: 'all' }, 'notOnWhatsApp'],
    [{ disconnect: { afterSends: 0, forMs: 10 } }, 'disconnect.afterSends'],
    [{ receipts: { deliveredAfterMs: 1_000, readAfterMs: 500 } }, 'receipts.readAfterMs'],
    [{ rateLimitRetryAfterMs: -5 }, 'rateLimitRetryAfterMs'],
    [{ onSend: 'http://sink' }, 'onSend'],
  ])('rejects %j naming %s', (options, field) => {
    const error = validationError(options);
    expect(error.field).toBe(field);
    expect(error.message).toContain(field);
  });

  it('takes no options at all', async () => {
    const sim = createSimulatorTransport();
    expect(sim.name).toBe('simulator');
    expect((await sim.send(msg())).providerMessageId).toMatch(/^SIM[0-9A-F]{16}$/);
  });
});

describe('SimulatorTransport latency', () => {
  it('takes no timer at all when latency is zero', async () => {
    const clock = new VirtualClock();
    const sim = createSimulatorTransport({ seed: 1, clock });
    const sends = Array.from({ length: 1_000 }, (_, i) => sim.send(msg(i)));
    expect(clock.pending).toBe(0);
    const results = await Promise.all(sends);
    expect(new Set(results.map((r) => r.providerMessageId)).size).toBe(1_000);
    expect(results.every((r) => r.acceptedAt === clock.now())).toBe(true);
  });

  it('answers after a latency drawn within the range, on the clock', async () => {
    const clock = new VirtualClock();
    const sim = createSimulatorTransport({ seed: 1, clock, latencyMs: { min: 100, max: 300 } });
    const latencies: number[] = [];
    for (let i = 0; i < 40; i++) {
      const start = clock.now();
      const pending = sim.send(msg(i));
      expect(await settled(pending)).toBe(false);
      await clock.advance(99);
      expect(await settled(pending)).toBe(false);
      await clock.advance(201);
      const result = await pending;
      latencies.push(result.acceptedAt - start);
    }
    expect(Math.min(...latencies)).toBeGreaterThanOrEqual(100);
    expect(Math.max(...latencies)).toBeLessThanOrEqual(300);
    expect(new Set(latencies).size).toBeGreaterThan(5); // drawn, not fixed
  });

  it('a fixed latency is exactly that', async () => {
    const clock = new VirtualClock();
    const sim = createSimulatorTransport({ clock, latencyMs: { min: 250, max: 250 } });
    const start = clock.now();
    const pending = sim.send(msg());
    await clock.advance(250);
    expect((await pending).acceptedAt).toBe(start + 250);
  });

  it('an abort during latency rejects with the reason and the provider gets nothing', async () => {
    const clock = new VirtualClock();
    const sim = createSimulatorTransport({ clock, latencyMs: { min: 1_000, max: 1_000 } });
    const controller = new AbortController();
    const pending = sim.send(msg(), { signal: controller.signal });
    await clock.advance(500);
    const reason = new Error('engine stopping');
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    expect(clock.pending).toBe(0);
    await clock.advance(1_000);
    expect(sim.sendCount).toBe(0);
  });
});

describe('SimulatorTransport receipts', () => {
  it('emits delivered and read status events after their delays', async () => {
    const clock = new VirtualClock();
    const sim = createSimulatorTransport({ clock, receipts: { deliveredAfterMs: 1_000, readAfterMs: 5_000 } });
    const events: Array<TransportEvent & { type: 'status' }> = [];
    sim.subscribe((e) => e.type === 'status' && events.push(e));
    const t0 = clock.now();
    const { providerMessageId } = await sim.send(msg());
    await clock.advance(999);
    expect(events).toEqual([]);
    await clock.advance(1);
    expect(events).toEqual([{ type: 'status', providerMessageId, status: 'delivered', at: t0 + 1_000 }]);
    await clock.advance(3_999);
    expect(events).toHaveLength(1);
    await clock.advance(1);
    expect(events[1]).toEqual({ type: 'status', providerMessageId, status: 'read', at: t0 + 5_000 });
  });

  it('reads about readRate of the messages and never reads without readAfterMs', async () => {
    const clock = new VirtualClock();
    const partly = createSimulatorTransport({ seed: 9, clock, receipts: { deliveredAfterMs: 10, readAfterMs: 20, readRate: 0.3 } });
    const never = createSimulatorTransport({ seed: 9, clock, receipts: { deliveredAfterMs: 10 } });
    const count = { partly: { delivered: 0, read: 0 }, never: { delivered: 0, read: 0 } };
    partly.subscribe((e) => e.type === 'status' && count.partly[e.status as 'delivered' | 'read']++);
    never.subscribe((e) => e.type === 'status' && count.never[e.status as 'delivered' | 'read']++);
    for (let i = 0; i < 400; i++) {
      await partly.send(msg(i));
      await never.send(msg(i));
    }
    await clock.advance(100);
    expect(count.partly.delivered).toBe(400);
    expect(count.partly.read).toBeGreaterThan(80);
    expect(count.partly.read).toBeLessThan(160);
    expect(count.never).toEqual({ delivered: 400, read: 0 });
  });

  it('thousands of pending receipts share one timer and arrive in order', async () => {
    const clock = new VirtualClock();
    const sim = createSimulatorTransport({ clock, receipts: { deliveredAfterMs: 1_000, readAfterMs: 1_500 } });
    const events: Array<TransportEvent & { type: 'status' }> = [];
    sim.subscribe((e) => e.type === 'status' && events.push(e));
    for (let i = 0; i < 5_000; i++) {
      await sim.send(msg(i));
      if (i % 100 === 99) await clock.advance(10);
    }
    expect(clock.pending).toBe(1);
    await clock.advance(2_000);
    expect(clock.pending).toBe(0);
    const delivered = events.filter((e) => e.status === 'delivered');
    expect(delivered.map((e) => e.providerMessageId)).toEqual(sim.sends.map((s) => s.providerMessageId));
    expect(delivered.every((e, i) => e.at === sim.sends[i]!.at + 1_000)).toBe(true);
    expect(events.filter((e) => e.status === 'read')).toHaveLength(5_000);
    expect(events.map((e) => e.at)).toEqual([...events.map((e) => e.at)].sort((a, b) => a - b));
  });

  it('close() cancels pending receipts', async () => {
    const clock = new VirtualClock();
    const sim = createSimulatorTransport({ clock, receipts: { deliveredAfterMs: 1_000 } });
    const events: TransportEvent[] = [];
    sim.subscribe((e) => events.push(e));
    await sim.send(msg());
    expect(clock.pending).toBe(1);
    await sim.close();
    await clock.advance(5_000);
    expect(events).toEqual([]);
    expect(clock.pending).toBe(0);
  });
});

describe('SimulatorTransport connection', () => {
  it('disconnects after the scheduled send, fails sends with account/disconnected, then reconnects', async () => {
    const clock = new VirtualClock();
    const sim = createSimulatorTransport({ clock, disconnect: { afterSends: 2, forMs: 5_000 } });
    const events: TransportEvent[] = [];
    sim.subscribe((e) => events.push(e));
    await sim.send(msg(0));
    expect(await sim.connectionState()).toBe('open');
    await sim.send(msg(1));
    expect(await sim.connectionState()).toBe('close');
    const error = await sim.send(msg(2)).catch((e: unknown) => e);
    expect(TransportError.isInstance(error) && error.kind).toBe('account');
    expect((error as TransportError).accountReason).toBe('disconnected');
    expect(sim.sendCount).toBe(2);
    await clock.advance(4_999);
    expect(await sim.connectionState()).toBe('close');
    await clock.advance(1);
    expect(await sim.connectionState()).toBe('open');
    expect(events.map((e) => e.type === 'connection' && e.state)).toEqual(['close', 'open']);
    await sim.send(msg(3));
    expect(sim.sendCount).toBe(3);
  });

  it('follows a list of outages, counted in total accepted sends', async () => {
    const clock = new VirtualClock();
    const sim = createSimulatorTransport({
      clock,
      disconnect: [
        { afterSends: 4, forMs: 100 },
        { afterSends: 1, forMs: 50 },
      ],
    });
    const states: string[] = [];
    sim.subscribe((e) => e.type === 'connection' && states.push(e.state));
    const log: string[] = [];
    for (let i = 0; i < 8; i++) {
      log.push(await outcome(sim.send(msg(i))).then((o) => (o.startsWith('ok') ? 'ok' : o)));
      await clock.advance(60);
    }
    // outage after send 1 (50 ms: over before the next send); after send 4 (100 ms: one send refused)
    expect(log).toEqual(['ok', 'ok', 'ok', 'ok', 'account', 'ok', 'ok', 'ok']);
    expect(states).toEqual(['close', 'open', 'close', 'open']);
  });

  it('setConnected flips the state and tells subscribers only on a change', async () => {
    const sim = createSimulatorTransport();
    const events: TransportEvent[] = [];
    sim.subscribe((e) => events.push(e));
    sim.setConnected(false);
    sim.setConnected(false);
    expect(await sim.connectionState()).toBe('close');
    sim.setConnected(true);
    expect(events).toEqual([
      { type: 'connection', state: 'close', detail: expect.any(String) },
      { type: 'connection', state: 'open', detail: expect.any(String) },
    ]);
  });
});

describe('SimulatorTransport determinism and failures', () => {
  const rates = { transient: 0.1, rate_limited: 0.05, invalid_recipient: 0.05, permanent: 0.05, account: 0.05, ambiguous: 0.05 };

  async function run(options: SimulatorOptions, n: number): Promise<string[]> {
    const clock = new VirtualClock();
    const sim = createSimulatorTransport({ clock, ...options });
    const stop = clock.autoAdvance();
    try {
      const out: string[] = [];
      for (let i = 0; i < n; i++) out.push(await outcome(sim.send({ to: PHONES[i % PHONES.length]!, text: 'x', idempotencyKey: `k${i}` })));
      return out;
    } finally {
      stop();
    }
  }

  it('the same seed and calls give the same outcomes, ids and latencies; another seed does not', async () => {
    const a = await run({ seed: 11, failureRates: rates, latencyMs: { min: 0, max: 50 } }, 300);
    const b = await run({ seed: 11, failureRates: rates, latencyMs: { min: 0, max: 50 } }, 300);
    const c = await run({ seed: 12, failureRates: rates, latencyMs: { min: 0, max: 50 } }, 300);
    expect(a).toEqual(b);
    expect(c).not.toEqual(a);
  });

  it('latency settings do not shift the sequence of outcomes', async () => {
    const kinds = (xs: string[]) => xs.map((x) => (x.startsWith('ok') ? 'ok' : x));
    expect(kinds(await run({ seed: 5, failureRates: rates }, 200))).toEqual(kinds(await run({ seed: 5, failureRates: rates, latencyMs: { min: 10, max: 90 } }, 200)));
  });

  it('respects the failure rates roughly over many sends', async () => {
    const n = 20_000;
    const sim = createSimulatorTransport({ seed: 3, failureRates: rates, rateLimitRetryAfterMs: 750 });
    const counts = new Map<string, number>();
    const retryAfter = new Set<number | undefined>();
    for (let i = 0; i < n; i++) {
      try {
        await sim.send({ to: PHONES[i % PHONES.length]!, text: 'x', idempotencyKey: `k${i}` });
        counts.set('ok', (counts.get('ok') ?? 0) + 1);
      } catch (error) {
        if (!TransportError.isInstance(error)) throw error;
        counts.set(error.kind, (counts.get(error.kind) ?? 0) + 1);
        if (error.kind === 'rate_limited') retryAfter.add(error.retryAfterMs);
      }
    }
    for (const [kind, rate] of Object.entries(rates)) {
      const share = (counts.get(kind) ?? 0) / n;
      expect(Math.abs(share - rate), `${kind}: ${share}`).toBeLessThan(0.01);
    }
    expect((counts.get('ok') ?? 0) / n).toBeGreaterThan(0.63);
    expect((counts.get('ok') ?? 0) / n).toBeLessThan(0.67);
    expect([...retryAfter]).toEqual([750]);
    // Ambiguous sends were accepted too.
    expect(sim.sendCount).toBe((counts.get('ok') ?? 0) + (counts.get('ambiguous') ?? 0));
  });

  it('rateLimitRetryAfterMs: null gives rate limits without a retry-after', async () => {
    const sim = createSimulatorTransport({ failureRates: { rate_limited: 1 }, rateLimitRetryAfterMs: null });
    const error = (await sim.send(msg()).catch((e: unknown) => e)) as TransportError;
    expect(error.kind).toBe('rate_limited');
    expect(error.retryAfterMs).toBeUndefined();
  });

  it('failNext queues one-shot failures in order, before the random roll', async () => {
    const sim = createSimulatorTransport();
    const queue: TransportErrorKind[] = ['permanent', 'rate_limited', 'account'];
    for (const kind of queue) sim.failNext(kind, kind === 'account' ? { accountReason: 'banned' } : {});
    const errors = [];
    for (let i = 0; i < 3; i++) errors.push((await sim.send(msg(i)).catch((e: unknown) => e)) as TransportError);
    expect(errors.map((e) => e.kind)).toEqual(queue);
    expect(errors[1]!.retryAfterMs).toBe(1_000);
    expect(errors[2]!.accountReason).toBe('banned');
    expect(await outcome(sim.send(msg(4)))).toMatch(/^ok:/);
    expect(() => sim.failNext('flaky' as TransportErrorKind)).toThrow(ValidationError);
  });

  it('provider message ids come from the seed and a counter', async () => {
    const a = createSimulatorTransport({ seed: 255 });
    const b = createSimulatorTransport({ seed: 256 });
    const named = createSimulatorTransport({ seed: 255, messageIdPrefix: 'RUN2-' });
    expect((await a.send(msg())).providerMessageId).toBe('SIM000000FF00000001');
    expect((await a.send(msg())).providerMessageId).toBe('SIM000000FF00000002');
    expect((await b.send(msg())).providerMessageId).toBe('SIM0000010000000001');
    expect((await named.send(msg())).providerMessageId).toBe('RUN2-00000001');
  });
});

describe('SimulatorTransport hooks, lookup and introspection', () => {
  it('calls onSend for every accepted send (ambiguous included) and waits for it', async () => {
    const clock = new VirtualClock();
    const seen: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const sim = createSimulatorTransport({
      clock,
      notOnWhatsApp: [PHONES[1]!],
      onSend: (record) => {
        seen.push(record.idempotencyKey);
        if (record.idempotencyKey === 'slow') return gate;
      },
    });
    await sim.send(msg(0, { idempotencyKey: 'first' }));
    await sim.send(msg(1, { idempotencyKey: 'absent' })).catch(() => undefined);
    sim.failNext('transient');
    await sim.send(msg(2, { idempotencyKey: 'failed' })).catch(() => undefined);
    sim.failNext('ambiguous');
    await sim.send(msg(3, { idempotencyKey: 'maybe' })).catch(() => undefined);
    const slow = sim.send(msg(4, { idempotencyKey: 'slow' }));
    expect(await settled(slow)).toBe(false);
    expect(sim.sends.map((s) => s.idempotencyKey)).toEqual(['first', 'maybe', 'slow']); // accepted before the hook runs
    release();
    await slow;
    expect(seen).toEqual(['first', 'maybe', 'slow']);
  });

  it('an ambiguous send throws, but the provider has it and lookup finds it', async () => {
    const sim = createSimulatorTransport({ failureRates: { ambiguous: 1 } });
    const m = msg(0);
    const error = await sim.send(m).catch((e: unknown) => e);
    expect(TransportError.isInstance(error) && error.kind).toBe('ambiguous');
    expect(sim.sends).toHaveLength(1);
    const found = await sim.lookup!({ message: m, since: 0 });
    expect(found).toEqual({ status: 'found', sent: { providerMessageId: sim.sends[0]!.providerMessageId, acceptedAt: sim.sends[0]!.at, remoteJid: `${m.to}@s.whatsapp.net` } });
    // The simulator keeps a record of everything it sent, so it can prove a message never left.
    expect(await sim.lookup!({ message: msg(1), since: 0 })).toEqual({ status: 'absent' });
  });

  it('a lookup that cannot prove absence says unknown; a blind one never finds anything', async () => {
    const foundOnly = createSimulatorTransport({ lookup: 'found-only' });
    const m = msg(0);
    await foundOnly.send(m);
    expect((await foundOnly.lookup!({ message: m, since: 0 })).status).toBe('found');
    expect((await foundOnly.lookup!({ message: msg(1), since: 0 })).status).toBe('unknown');
    const blind = createSimulatorTransport({ lookup: 'blind' });
    await blind.send(m);
    expect((await blind.lookup!({ message: m, since: 0 })).status).toBe('unknown');
  });

  it('has no lookup at all with lookup: false', () => {
    expect(createSimulatorTransport({ lookup: false }).lookup).toBeUndefined();
    expect('lookup' in createSimulatorTransport({ lookup: false })).toBe(false);
  });

  it('lookup answers with the first acceptance of a key sent twice; countByKey and duplicates show it', async () => {
    const sim = createSimulatorTransport();
    const m = msg(0);
    const first = await sim.send(m);
    await sim.send(msg(1));
    await sim.send(m);
    expect(await sim.lookup!({ message: m, since: 0 })).toMatchObject({ status: 'found', sent: { providerMessageId: first.providerMessageId } });
    expect(sim.countByKey().get(m.idempotencyKey)).toBe(2);
    expect(sim.duplicates()).toEqual([m.idempotencyKey]);
  });

  it('notOnWhatsApp (list or predicate) fails sends with invalid_recipient and shows in checkNumbers', async () => {
    const byList = createSimulatorTransport({ notOnWhatsApp: [PHONES[0]!] });
    const byPredicate = createSimulatorTransport({ notOnWhatsApp: (p) => p.endsWith('7') });
    const error = (await byList.send(msg(0)).catch((e: unknown) => e)) as TransportError;
    expect(error.kind).toBe('invalid_recipient');
    expect(byList.sendCount).toBe(0);
    expect(await byList.checkNumbers([PHONES[0]!, PHONES[1]!])).toEqual([
      { phone: PHONES[0], exists: false },
      { phone: PHONES[1], exists: true, jid: `${PHONES[1]}@s.whatsapp.net` },
    ]);
    const checks = await byPredicate.checkNumbers(PHONES);
    expect(checks.map((c) => c.exists)).toEqual(PHONES.map((p) => !p.endsWith('7')));
    byList.markNotOnWhatsApp(PHONES[1]!);
    expect((await byList.checkNumbers([PHONES[1]!]))[0]!.exists).toBe(false);
  });

  it('holdNext: the provider accepts but never answers until the signal aborts', async () => {
    const sim = createSimulatorTransport();
    sim.holdNext();
    const controller = new AbortController();
    const pending = sim.send(msg(0), { signal: controller.signal });
    expect(await settled(pending)).toBe(false);
    expect(sim.sendCount).toBe(1);
    const reason = new TransportError('ambiguous', 'timed out');
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    expect(await outcome(sim.send(msg(1)))).toMatch(/^ok:/); // only the next one was held
  });

  it('records typing with the clock time', async () => {
    const clock = new VirtualClock();
    const sim = createSimulatorTransport({ clock });
    await sim.typing(PHONES[0]!, 1_200);
    expect(sim.typings).toEqual([{ to: PHONES[0], ms: 1_200, at: clock.now() }]);
  });

  it('inject reaches every subscriber, even when one throws; unsubscribe stops delivery', async () => {
    const sim = createSimulatorTransport();
    const got: TransportEvent[] = [];
    sim.subscribe(() => {
      throw new Error('broken listener');
    });
    const off = sim.subscribe((e) => got.push(e));
    const sair: TransportEvent = { type: 'inbound', from: PHONES[0]!, text: 'SAIR', at: 1 };
    sim.inject(sair);
    off();
    sim.inject({ ...sair, text: 'again' });
    expect(got).toEqual([sair]);
  });

  it('records what was accepted: to, text, key, id, time and media', async () => {
    const clock = new VirtualClock();
    const sim = createSimulatorTransport({ clock });
    const media = { url: 'https://example.com/a.jpg', type: 'image' as const };
    const r = await sim.send(msg(0, { text: 'Olá', media, idempotencyKey: 'c9:r1' }));
    expect(sim.sends).toEqual([{ to: PHONES[0], text: 'Olá', media, idempotencyKey: 'c9:r1', providerMessageId: r.providerMessageId, at: clock.now() }]);
    expect(r.acceptedAt).toBe(clock.now());
  });
});

describe('samplePhones', () => {
  it('gives distinct, valid Brazilian mobiles in E.164 digits, deterministic per seed', () => {
    const phones = samplePhones(2_000, 5);
    expect(new Set(phones).size).toBe(2_000);
    for (const phone of phones) {
      expect(phone).toMatch(/^55[1-9][1-9]9\d{8}$/);
      expect(normalizePhone(phone)).toBe(phone);
      const parsed = parsePhoneNumberFromString(`+${phone}`);
      expect(parsed?.isValid(), phone).toBe(true);
      expect(parsed?.getType(), phone).toBe('MOBILE');
    }
    expect(samplePhones(10, 5)).toEqual(phones.slice(0, 10));
    expect(samplePhones(10, 6)).not.toEqual(samplePhones(10, 5));
    expect(samplePhones(0)).toEqual([]);
    expect(() => samplePhones(-1)).toThrow(RangeError);
  });
});
