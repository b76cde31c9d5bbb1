import { z } from 'zod';
import { systemClock, type Clock } from '../../clock.js';
import { TransportError, ValidationError, type TransportErrorKind } from '../../errors.js';
import type { ConnectionState } from '../../domain/types.js';
import { seededRandom } from '../../random.js';
import { raceAbort } from '../abort.js';
import { checkOutbound, outboundMessageSchema } from '../message.js';
import type { LookupQuery, LookupResult, NumberCheck, OutboundMessage, SendOptions, SendResult, Transport, TransportEvent, TransportEventListener } from '../contract.js';
import { KINDS, hex8, invalidOptions, optionsSchema, type SimulatorOptions, type SimulatorScriptedFailure, type SimulatorSendRecord } from './simulator-options.js';

export type { SimulatorOptions, SimulatorScriptedFailure, SimulatorSendRecord } from './simulator-options.js';

/**
 * A stand-in for one WhatsApp account: latency, failures by error kind, disconnects and
 * reconnects, delivery and read receipts after delays, lookup by idempotency key, typing.
 * Seeded and deterministic: the same seed and the same calls give the same outcomes.
 * Its `sends` are what "WhatsApp" accepted.
 */
export class SimulatorTransport implements Transport {
  readonly name: string;
  /** Every message the provider accepted, in order (ambiguous ones included). */
  readonly sends: SimulatorSendRecord[] = [];
  /** Typing presences shown: to, ms, at. */
  readonly typings: Array<{ to: string; ms: number; at: number }> = [];
  /** Present unless `lookup: false`, so the engine sees a transport without lookup. */
  declare readonly lookup?: (query: LookupQuery) => Promise<LookupResult>;

  private readonly opts: z.output<typeof optionsSchema>;
  private readonly clock: Clock;
  // Separate streams, so configuring latency or subscribing to receipts does not shift send outcomes.
  private readonly outcomeRandom: () => number;
  private readonly latencyRandom: () => number;
  private readonly receiptRandom: () => number;
  private readonly latencyMin: number;
  private readonly latencySpan: number;
  private readonly thresholds: Array<[TransportErrorKind, number]>;
  private readonly absentSet: Set<string>;
  private readonly absentPredicate: ((phone: string) => boolean) | null;
  private readonly outages: Array<{ afterSends: number; forMs: number }>;
  private readonly idPrefix: string;
  private readonly byKey = new Map<string, SimulatorSendRecord>();
  private readonly listeners = new Set<TransportEventListener>();
  private readonly scripted: Array<{ kind: TransportErrorKind } & SimulatorScriptedFailure> = [];
  // Receipts and reconnects wait in one queue behind a single clock sleep: thousands of pending
  // receipts cost one timer (and one abort listener), not one each.
  private readonly timers: Array<{ at: number; fn: () => void }> = [];
  private timersHead = 0;
  private armed: { at: number; controller: AbortController } | null = null;
  private firing = false;
  private holds = 0;
  private connected = true;
  private counter = 0;
  private nextOutage = 0;

  constructor(options: SimulatorOptions = {}) {
    const parsed = optionsSchema.safeParse(options ?? {});
    if (!parsed.success) throw invalidOptions(parsed.error);
    const o = parsed.data;
    this.opts = o;
    this.name = o.name;
    this.clock = o.clock ?? systemClock;
    this.outcomeRandom = seededRandom(o.seed);
    this.latencyRandom = seededRandom(o.seed ^ 0x9e3779b9);
    this.receiptRandom = seededRandom(o.seed ^ 0x85ebca6b);
    this.latencyMin = o.latencyMs.min;
    this.latencySpan = o.latencyMs.max - o.latencyMs.min;
    let acc = 0;
    this.thresholds = [];
    for (const kind of KINDS) {
      const rate = o.failureRates[kind] ?? 0;
      if (rate > 0) this.thresholds.push([kind, (acc += rate)]);
    }
    const absent = o.notOnWhatsApp;
    this.absentSet = new Set(Array.isArray(absent) ? absent : []);
    this.absentPredicate = typeof absent === 'function' ? absent : null;
    this.outages = o.disconnect === undefined ? [] : (Array.isArray(o.disconnect) ? [...o.disconnect] : [o.disconnect]).sort((a, b) => a.afterSends - b.afterSends);
    this.idPrefix = o.messageIdPrefix ?? `SIM${hex8(o.seed)}`;
    if (o.lookup !== 'none') this.lookup = async (query) => this.find(query.message.idempotencyKey, o.lookup);
  }

  get sendCount(): number {
    return this.sends.length;
  }

  /** How many times each idempotency key was accepted (more than 1 is a duplicate). */
  countByKey(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const s of this.sends) counts.set(s.idempotencyKey, (counts.get(s.idempotencyKey) ?? 0) + 1);
    return counts;
  }

  /** Idempotency keys accepted more than once. */
  duplicates(): string[] {
    const out: string[] = [];
    for (const [key, n] of this.countByKey()) if (n > 1) out.push(key);
    return out;
  }

  async send(message: OutboundMessage, options?: SendOptions): Promise<SendResult> {
    const signal = options?.signal;
    if (signal?.aborted) throw signal.reason;
    checkOutbound(outboundMessageSchema, message, `[simulator] ${this.name}`);
    // Zero latency takes no timer at all: the engine benchmark runs through this path.
    if (this.latencySpan > 0 || this.latencyMin > 0) {
      const ms = this.latencySpan > 0 ? this.latencyMin + Math.floor(this.latencyRandom() * (this.latencySpan + 1)) : this.latencyMin;
      await this.clock.sleep(ms, signal);
    }
    if (!this.connected) throw new TransportError('account', 'Connection Closed (simulated)', { accountReason: 'disconnected', providerCode: 428 });

    let kind: TransportErrorKind | null = null;
    let scripted: SimulatorScriptedFailure | undefined;
    if (this.scripted.length > 0) {
      const next = this.scripted.shift()!;
      kind = next.kind;
      scripted = next;
    } else if (this.isAbsent(message.to)) {
      throw new TransportError('invalid_recipient', `${message.to} is not on WhatsApp (simulated)`, { providerCode: 'exists:false' });
    } else if (this.thresholds.length > 0) {
      const roll = this.outcomeRandom();
      for (const [k, upTo] of this.thresholds) {
        if (roll < upTo) {
          kind = k;
          break;
        }
      }
    }
    if (kind !== null && kind !== 'ambiguous') throw this.failure(kind, scripted);

    const record = this.accept(message);
    if (this.opts.onSend) {
      const pending = this.opts.onSend(record);
      if (pending) await (signal ? raceAbort(pending, signal) : pending);
    }
    if (this.holds > 0) {
      // The request left and was accepted, but the reply never comes: only the caller's signal ends it.
      this.holds--;
      await (signal ? raceAbort(new Promise<never>(() => {}), signal) : new Promise<never>(() => {}));
    }
    if (kind === 'ambiguous') throw new TransportError('ambiguous', 'simulated timeout after the message left', { providerCode: 'timeout' });
    return { providerMessageId: record.providerMessageId, acceptedAt: record.at, remoteJid: `${record.to}@s.whatsapp.net` };
  }

  async connectionState(): Promise<ConnectionState> {
    return this.connected ? 'open' : 'close';
  }

  async checkNumbers(phones: string[]): Promise<NumberCheck[]> {
    return phones.map((phone) => (this.isAbsent(phone) ? { phone, exists: false } : { phone, exists: true, jid: `${phone}@s.whatsapp.net` }));
  }

  async typing(to: string, ms: number, options?: SendOptions): Promise<void> {
    if (options?.signal?.aborted) return;
    this.typings.push({ to, ms, at: this.clock.now() });
  }

  subscribe(listener: TransportEventListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Stop pending receipts and reconnects and drop subscribers. Sends still work (a test may keep using it). */
  async close(): Promise<void> {
    this.armed?.controller.abort(new Error('simulator closed'));
    this.armed = null;
    this.timers.length = 0;
    this.timersHead = 0;
    this.listeners.clear();
  }

  // ---- test controls --------------------------------------------------------

  /** Push any event to subscribers, as the provider would (an inbound "SAIR", a logout). */
  inject(event: TransportEvent): void {
    this.emit(event);
  }

  /** Drop or restore the connection; subscribers hear a `connection` event when it changes. */
  setConnected(open: boolean): void {
    if (this.connected === open) return;
    this.connected = open;
    this.emit({ type: 'connection', state: open ? 'open' : 'close', detail: open ? 'reconnected (simulated)' : 'connection lost (simulated)' });
  }

  /** Make the next send (after latency, while connected) fail with `kind`; queued calls apply in order. */
  failNext(kind: TransportErrorKind, failure: SimulatorScriptedFailure = {}): void {
    if (!(KINDS as readonly string[]).includes(kind)) throw new ValidationError(`Invalid failNext kind "${String(kind)}"`, [{ path: 'kind', message: `must be one of ${KINDS.join(', ')}` }]);
    this.scripted.push({ kind, ...failure });
  }

  /** Numbers that are not on WhatsApp from now on (added to `notOnWhatsApp`). */
  markNotOnWhatsApp(...phones: string[]): void {
    for (const phone of phones) this.absentSet.add(phone);
  }

  /** The next accepted send never gets its reply: it settles only when its signal aborts (a send timeout). */
  holdNext(): void {
    this.holds++;
  }

  // ---- internals ------------------------------------------------------------

  private isAbsent(phone: string): boolean {
    return this.absentSet.has(phone) || (this.absentPredicate !== null && this.absentPredicate(phone));
  }

  private failure(kind: TransportErrorKind, scripted?: SimulatorScriptedFailure): TransportError {
    const extra = { ...(scripted?.scope ? { scope: scripted.scope } : {}), ...(scripted?.optOut ? { optOut: true } : {}) };
    switch (kind) {
      case 'rate_limited': {
        const retryAfterMs = scripted?.retryAfterMs === undefined ? this.opts.rateLimitRetryAfterMs : scripted.retryAfterMs;
        return new TransportError('rate_limited', 'rate-overlimit (simulated)', { ...(retryAfterMs === null ? {} : { retryAfterMs }), providerCode: 429, ...extra });
      }
      case 'account':
        return new TransportError('account', 'account unavailable (simulated)', { accountReason: scripted?.accountReason ?? 'disconnected', providerCode: 428 });
      case 'invalid_recipient':
        return new TransportError('invalid_recipient', 'number is not on WhatsApp (simulated)', { providerCode: 'exists:false', ...extra });
      case 'permanent':
        return new TransportError('permanent', scripted?.scope === 'campaign' ? 'template rejected (simulated)' : 'bad request (simulated)', { providerCode: 400, ...extra });
      case 'ambiguous':
        return new TransportError('ambiguous', 'simulated timeout after the message left', { providerCode: 'timeout' });
      default:
        return new TransportError('transient', 'internal server error (simulated)', { providerCode: 500 });
    }
  }

  private accept(message: OutboundMessage): SimulatorSendRecord {
    const record: SimulatorSendRecord = {
      to: message.to,
      text: message.text,
      media: message.media ?? null,
      idempotencyKey: message.idempotencyKey,
      providerMessageId: this.idPrefix + hex8(++this.counter),
      at: this.clock.now(),
    };
    this.sends.push(record);
    // The first acceptance answers lookups: that is the message the recipient saw first.
    if (!this.byKey.has(record.idempotencyKey)) this.byKey.set(record.idempotencyKey, record);
    if (this.opts.receipts && this.listeners.size > 0) this.scheduleReceipts(record);
    const outage = this.outages[this.nextOutage];
    if (outage && this.sends.length >= outage.afterSends) {
      this.nextOutage++;
      this.setConnected(false);
      this.later(outage.forMs, () => this.setConnected(true));
    }
    return record;
  }

  private scheduleReceipts(record: SimulatorSendRecord): void {
    const r = this.opts.receipts!;
    const readRate = r.readRate ?? (r.readAfterMs === undefined ? 0 : 1);
    const read = r.readAfterMs !== undefined && this.receiptRandom() < readRate;
    const id = record.providerMessageId;
    this.later(r.deliveredAfterMs, () => {
      this.emit({ type: 'status', providerMessageId: id, status: 'delivered', at: this.clock.now() });
      if (read) this.later(r.readAfterMs! - r.deliveredAfterMs, () => this.emit({ type: 'status', providerMessageId: id, status: 'read', at: this.clock.now() }));
    });
  }

  /** Run `fn` after `ms` on the clock, unless `close()` comes first. Same-time callbacks run in call order. */
  private later(ms: number, fn: () => void): void {
    const timer = { at: this.clock.now() + ms, fn };
    // Delays are mostly equal, so the new timer usually belongs at the end: search from there.
    let i = this.timers.length;
    while (i > this.timersHead && this.timers[i - 1]!.at > timer.at) i--;
    this.timers.splice(i, 0, timer);
    if (!this.firing && (this.armed === null || timer.at < this.armed.at)) this.arm();
  }

  private arm(): void {
    this.armed?.controller.abort();
    this.armed = null;
    const first = this.timers[this.timersHead];
    if (!first) return;
    const armed = { at: first.at, controller: new AbortController() };
    this.armed = armed;
    this.clock.sleep(Math.max(0, first.at - this.clock.now()), armed.controller.signal).then(
      () => {
        if (this.armed !== armed) return;
        this.armed = null;
        this.firing = true;
        try {
          const now = this.clock.now();
          while (this.timersHead < this.timers.length && this.timers[this.timersHead]!.at <= now) this.timers[this.timersHead++]!.fn();
        } finally {
          this.firing = false;
          // Drop fired timers in bulk rather than shifting one at a time.
          if (this.timersHead > 1_024 && this.timersHead * 2 > this.timers.length) {
            this.timers.splice(0, this.timersHead);
            this.timersHead = 0;
          }
        }
        this.arm();
      },
      () => undefined,
    );
  }

  private find(key: string, mode: z.output<typeof optionsSchema>['lookup']): LookupResult {
    if (mode === 'blind') return { status: 'unknown', reason: 'the simulated provider keeps no record of sent messages' };
    const record = this.byKey.get(key);
    if (record) return { status: 'found', sent: { providerMessageId: record.providerMessageId, acceptedAt: record.at, remoteJid: `${record.to}@s.whatsapp.net` } };
    return mode === 'full' ? { status: 'absent' } : { status: 'unknown', reason: 'the simulated provider cannot prove a message was never sent' };
  }

  private emit(event: TransportEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch {
        // A subscriber's failure is its own; the provider keeps talking to the others.
      }
    }
  }
}

export function createSimulatorTransport(options: SimulatorOptions = {}): SimulatorTransport {
  return new SimulatorTransport(options);
}
