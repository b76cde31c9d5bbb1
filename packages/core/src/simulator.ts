import { z } from 'zod';
import { systemClock, type Clock } from './clock.js';
import { TransportError, ValidationError, type TransportErrorKind } from './errors.js';
import { seededRandom } from './random.js';
import type { MediaSpec, ConnectionState } from './types.js';
import type { LookupQuery, NumberCheck, OutboundMessage, SendOptions, SendResult, Transport, TransportEvent, TransportEventListener } from './transport.js';

export interface SimulatorSendRecord {
  to: string;
  text: string;
  media: MediaSpec | null;
  idempotencyKey: string;
  providerMessageId: string;
  /** When the provider accepted it (the simulator's clock). */
  at: number;
}

const KINDS: TransportErrorKind[] = ['transient', 'rate_limited', 'invalid_recipient', 'permanent', 'account', 'ambiguous'];
const range = z.object({ min: z.number().int().nonnegative(), max: z.number().int().nonnegative() }).refine((r) => r.max >= r.min, { message: 'max must be >= min', path: ['max'] });
const rate = z.number().min(0).max(1);

const optionsSchema = z
  .object({
    name: z.string().min(1).default('simulator'),
    seed: z.number().int().default(1),
    clock: z.custom<Clock>((v) => typeof v === 'object' && v !== null && typeof (v as Clock).sleep === 'function', 'must be a Clock').optional(),
    latencyMs: range.default({ min: 0, max: 0 }),
    failureRates: z
      .object({ transient: rate, rate_limited: rate, invalid_recipient: rate, permanent: rate, account: rate, ambiguous: rate })
      .partial()
      .refine((r) => Object.values(r).reduce((s, x) => s + (x ?? 0), 0) <= 1, 'failure rates add up to more than 1')
      .default({}),
    rateLimitRetryAfterMs: z.number().int().nonnegative().default(1_000),
    notOnWhatsApp: z.union([z.array(z.string()), z.custom<(phone: string) => boolean>((v) => typeof v === 'function')]).optional(),
    disconnect: z.array(z.object({ afterSends: z.number().int().positive(), forMs: z.number().int().nonnegative() })).optional(),
    receipts: z.object({ deliveredAfterMs: z.number().int().nonnegative(), readAfterMs: z.number().int().nonnegative().optional(), readRate: rate.default(0) }).optional(),
    lookup: z.boolean().default(true),
    onSend: z.custom<(record: SimulatorSendRecord) => void | Promise<void>>((v) => typeof v === 'function', 'must be a function').optional(),
  })
  .strict();

export type SimulatorOptions = z.input<typeof optionsSchema>;

/**
 * A stand-in for one WhatsApp account: latency, failures by error kind, disconnects and
 * reconnects, delivery and read receipts after delays, optional lookup. Seeded and deterministic:
 * the same seed and the same calls give the same outcomes. Its `sends` are what "WhatsApp" got.
 */
export class SimulatorTransport implements Transport {
  readonly name: string;
  /** Every message the provider accepted, in order. */
  readonly sends: SimulatorSendRecord[] = [];
  /** Typing presences shown: to, ms, at. */
  readonly typings: Array<{ to: string; ms: number; at: number }> = [];
  readonly lookup?: (query: LookupQuery) => Promise<SendResult | null>;
  private readonly opts: z.output<typeof optionsSchema>;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly notOnWhatsApp: (phone: string) => boolean;
  private readonly byKey = new Map<string, SimulatorSendRecord>();
  private readonly listeners = new Set<TransportEventListener>();
  private readonly failing: boolean;
  private connected = true;
  private counter = 0;
  private nextDisconnect = 0;

  constructor(options: SimulatorOptions = {}) {
    const parsed = optionsSchema.safeParse(options);
    if (!parsed.success) throw ValidationError.fromZod('simulator options', parsed.error);
    this.opts = parsed.data;
    this.name = this.opts.name;
    this.clock = this.opts.clock ?? systemClock;
    this.random = seededRandom(this.opts.seed);
    const absent = this.opts.notOnWhatsApp;
    const set = Array.isArray(absent) ? new Set(absent) : null;
    this.notOnWhatsApp = typeof absent === 'function' ? absent : set ? (p) => set.has(p) : () => false;
    this.failing = Object.values(this.opts.failureRates).some((r) => (r ?? 0) > 0);
    if (this.opts.lookup) this.lookup = async (q) => this.find(q.message.idempotencyKey);
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

  async send(message: OutboundMessage, options: SendOptions = {}): Promise<SendResult> {
    const signal = options.signal;
    if (signal?.aborted) throw signal.reason;
    const { min, max } = this.opts.latencyMs;
    if (max > 0) await this.clock.sleep(min + Math.floor(this.random() * (max - min + 1)), signal);
    if (!this.connected) throw new TransportError('account', 'Connection Closed', { accountReason: 'disconnected', providerCode: 428 });
    if (this.notOnWhatsApp(message.to)) throw new TransportError('invalid_recipient', `${message.to} is not on WhatsApp`, { providerCode: 'exists:false' });
    let kind: TransportErrorKind | null = null;
    if (this.failing) {
      const roll = this.random();
      let acc = 0;
      for (const k of KINDS) {
        acc += this.opts.failureRates[k] ?? 0;
        if (roll < acc) {
          kind = k;
          break;
        }
      }
    }
    if (kind !== null && kind !== 'ambiguous') throw this.failure(kind);
    const record = this.accept(message);
    if (this.opts.onSend) await this.opts.onSend(record);
    if (kind === 'ambiguous') throw new TransportError('ambiguous', 'simulated timeout after the message left', { providerCode: 'timeout' });
    return { providerMessageId: record.providerMessageId, acceptedAt: record.at, remoteJid: `${message.to}@s.whatsapp.net` };
  }

  private failure(kind: TransportErrorKind): TransportError {
    switch (kind) {
      case 'rate_limited':
        return new TransportError('rate_limited', 'rate-overlimit', { retryAfterMs: this.opts.rateLimitRetryAfterMs, providerCode: 429 });
      case 'account':
        return new TransportError('account', 'Connection Closed', { accountReason: 'disconnected', providerCode: 428 });
      case 'invalid_recipient':
        return new TransportError('invalid_recipient', 'number is not on WhatsApp', { providerCode: 'exists:false' });
      case 'permanent':
        return new TransportError('permanent', 'simulated permanent failure (bad request)', { providerCode: 400 });
      default:
        return new TransportError('transient', 'simulated transient failure (HTTP 500)', { providerCode: 500 });
    }
  }

  private accept(message: OutboundMessage): SimulatorSendRecord {
    const record: SimulatorSendRecord = {
      to: message.to,
      text: message.text,
      media: message.media ?? null,
      idempotencyKey: message.idempotencyKey,
      providerMessageId: `SIM${(this.opts.seed >>> 0).toString(16).toUpperCase()}X${(++this.counter).toString(16).toUpperCase().padStart(8, '0')}`,
      at: this.clock.now(),
    };
    this.sends.push(record);
    this.byKey.set(message.idempotencyKey, record);
    if (this.opts.receipts && this.listeners.size > 0) this.scheduleReceipts(record);
    const plan = this.opts.disconnect?.[this.nextDisconnect];
    if (plan && this.sends.length >= plan.afterSends) {
      this.nextDisconnect++;
      this.setConnected(false);
      void this.clock.sleep(plan.forMs).then(() => this.setConnected(true));
    }
    return record;
  }

  private scheduleReceipts(record: SimulatorSendRecord): void {
    const r = this.opts.receipts!;
    const read = r.readAfterMs !== undefined && this.random() < r.readRate;
    void this.clock.sleep(r.deliveredAfterMs).then(() => {
      this.emit({ type: 'status', providerMessageId: record.providerMessageId, status: 'delivered', at: this.clock.now() });
      if (read) {
        void this.clock.sleep(Math.max(0, r.readAfterMs! - r.deliveredAfterMs)).then(() =>
          this.emit({ type: 'status', providerMessageId: record.providerMessageId, status: 'read', at: this.clock.now() }),
        );
      }
    });
  }

  private async find(key: string): Promise<SendResult | null> {
    const record = this.byKey.get(key);
    return record ? { providerMessageId: record.providerMessageId, acceptedAt: record.at, remoteJid: `${record.to}@s.whatsapp.net` } : null;
  }

  async connectionState(): Promise<ConnectionState> {
    return this.connected ? 'open' : 'close';
  }

  async checkNumbers(phones: string[]): Promise<NumberCheck[]> {
    return phones.map((phone) => ({ phone, exists: !this.notOnWhatsApp(phone), ...(this.notOnWhatsApp(phone) ? {} : { jid: `${phone}@s.whatsapp.net` }) }));
  }

  async typing(to: string, ms: number): Promise<void> {
    this.typings.push({ to, ms, at: this.clock.now() });
  }

  subscribe(listener: TransportEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Push any event to subscribers, as the provider would (an inbound "SAIR", a logout). */
  inject(event: TransportEvent): void {
    this.emit(event);
  }

  /** Drop or restore the connection; subscribers hear a `connection` event. */
  setConnected(open: boolean): void {
    if (this.connected === open) return;
    this.connected = open;
    this.emit({ type: 'connection', state: open ? 'open' : 'close', detail: open ? 'reconnected' : 'connection lost' });
  }

  private emit(event: TransportEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch {
        // a subscriber's failure is its own
      }
    }
  }
}

export function createSimulatorTransport(options: SimulatorOptions = {}): SimulatorTransport {
  return new SimulatorTransport(options);
}
