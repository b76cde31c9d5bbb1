import { z } from 'zod';
import {
  systemClock,
  TransportError,
  ValidationError,
  type AccountStopReason,
  type ConnectionState,
  type LookupQuery,
  type LookupResult,
  type NumberCheck,
  type OutboundMessage,
  type SendOptions,
  type SendResult,
  type Transport,
  type TransportEvent,
  type TransportEventListener,
  outboundMessageSchema,
  checkOutbound,
  raceAbort,
  jidFromPhone,
  normalizeJid,
  numberVariants,
  phoneFromJid,
} from '@disparo/core/transport';
import type { BaileysEventMap } from 'baileys';
import { classifyBaileysError, type Operation } from './classify.js';
import { mapConnectionUpdate, mapMessageCapping, mapMessagesUpdate, mapMessagesUpsert, type HoldChange, type MapContext } from './events.js';
import { messageContent } from './message-content.js';
import { messageIdFor } from './message-id.js';
import { parseOptions, socketSchema, typingMsFor, type BaileysTransportOptions, type ResolvedOptions } from './options.js';
import type { BaileysSocket } from './types.js';

/** One Baileys socket (one WhatsApp number) as a Disparo `Transport`. */
export interface BaileysTransport extends Transport {
  readonly name: 'baileys';
  send(message: OutboundMessage, options?: SendOptions): Promise<SendResult>;
  connectionState(): Promise<ConnectionState>;
  checkNumbers(phones: string[]): Promise<NumberCheck[]>;
  lookup(query: LookupQuery): Promise<LookupResult>;
  subscribe(listener: TransportEventListener): () => void;
  typing(to: string, ms: number, options?: SendOptions): Promise<void>;
  /**
   * Hand over the socket the host made after a reconnect (Baileys needs a new `makeWASocket` for
   * every connection). Listeners move to the new socket; subscribers keep their subscription.
   */
  useSocket(socket: BaileysSocket): void;
  /** The socket in use. */
  readonly socket: BaileysSocket;
  /** Stop listening to the socket and drop subscribers. The socket itself stays the host's (it is not closed). */
  close(): Promise<void>;
}

type Outbound = z.output<typeof outboundMessageSchema>;

const phonesSchema = z.array(z.string().regex(/^\d{6,20}$/, 'must be E.164 digits without +'));

interface Seen {
  remoteJid: string;
  /** Epoch ms (our clock) at which it was first seen. */
  at: number;
}

/**
 * A `Transport` over a Baileys socket the host created with `makeWASocket`. The host keeps login,
 * QR codes, auth state and the reconnect loop; hand each new socket over with `useSocket`.
 * See the package README for the event and error mapping.
 */
export function createBaileysTransport(options: BaileysTransportOptions): BaileysTransport {
  const o: ResolvedOptions = parseOptions(options);
  const clock = o.clock ?? systemClock;
  let socket: BaileysSocket = o.socket;
  let state: ConnectionState | null = null;
  let stopReason: AccountStopReason | null = null;
  let lastCloseCode: number | undefined;
  const listeners = new Set<TransportEventListener>();
  /** phone -> canonical JID from a positive number check, and when it was checked. */
  const numbers = new Map<string, { jid: string; at: number }>();
  /** Message ids known to have gone out (sendMessage resolved, own upsert, or a server ack). */
  const seen = new Map<string, Seen>();
  /** Active holds by source. */
  const holds = new Map<HoldChange['source'], { until: number; reason: string }>();
  let detach: (() => void) | null = null;

  const where = (to?: string) => `[baileys]${to ? ` ${to}` : ''}`;
  const ctx = (): MapContext => ({ now: clock.now(), restrictionHoldMs: o.restrictionHoldMs });
  const classify = (error: unknown, operation: Operation, to?: string) =>
    classifyBaileysError(error, { operation, rateLimitBackoffMs: o.rateLimitBackoffMs, knownStopReason: stopReason ?? undefined, where: where(to) });

  const remember = (id: string, remoteJid: string, at: number) => {
    if (seen.has(id)) return;
    seen.set(id, { remoteJid: normalizeJid(remoteJid), at });
    if (seen.size > o.lookupMemory) seen.delete(seen.keys().next().value!);
  };
  const rememberNumber = (phone: string, jid: string) => {
    numbers.delete(phone);
    numbers.set(phone, { jid: normalizeJid(jid), at: clock.now() });
    if (numbers.size > 50_000) numbers.delete(numbers.keys().next().value!);
  };
  const knownJid = (phone: string): string | null => {
    const hit = numbers.get(phone);
    if (!hit) return null;
    if (clock.now() - hit.at > o.numberCacheTtlMs) {
      numbers.delete(phone);
      return null;
    }
    return hit.jid;
  };

  const emit = (events: TransportEvent[]) => {
    for (const event of events) {
      for (const listener of [...listeners]) {
        try {
          listener(event);
        } catch {
          // A subscriber's failure is its own; the others still hear the socket.
        }
      }
    }
  };
  const applyHolds = (changes: HoldChange[]) => {
    for (const h of changes) {
      if (h.until === null) holds.delete(h.source);
      else holds.set(h.source, { until: Math.max(h.until, holds.get(h.source)?.until ?? 0), reason: h.reason });
    }
  };
  const activeHold = (): { until: number; reason: string } | null => {
    const now = clock.now();
    let best: { until: number; reason: string } | null = null;
    for (const [source, h] of holds) {
      if (h.until <= now) holds.delete(source);
      else if (!best || h.until > best.until) best = h;
    }
    return best;
  };

  const handlers = {
    'connection.update': (update: BaileysEventMap['connection.update']) => {
      const mapped = mapConnectionUpdate(update ?? {}, ctx());
      if (mapped.state) state = mapped.state;
      if (mapped.stopReason !== undefined) stopReason = mapped.stopReason;
      if (mapped.state === 'close') lastCloseCode = mapped.code;
      applyHolds(mapped.holds);
      emit(mapped.events);
    },
    'messages.update': (updates: BaileysEventMap['messages.update']) => {
      const c = ctx();
      const mapped = mapMessagesUpdate(updates, c);
      for (const u of updates ?? []) if (u?.key?.id && mapped.acked.includes(u.key.id) && u.key.remoteJid) remember(u.key.id, u.key.remoteJid, c.now);
      applyHolds(mapped.holds);
      emit(mapped.events);
    },
    'messages.upsert': (upsert: BaileysEventMap['messages.upsert']) => {
      const c = ctx();
      const mapped = mapMessagesUpsert(upsert, c);
      for (const own of mapped.own) remember(own.id, own.remoteJid, c.now);
      emit(mapped.events);
    },
    'message-capping.update': (info: BaileysEventMap['message-capping.update']) => {
      const mapped = mapMessageCapping(info ?? {}, ctx());
      applyHolds(mapped.holds);
      emit(mapped.events);
    },
  };

  const attach = (s: BaileysSocket) => {
    detach?.();
    const safe =
      <A>(fn: (arg: A) => void) =>
      (arg: A) => {
        try {
          fn(arg);
        } catch {
          // A malformed event must not break the host's socket.
        }
      };
    const c = safe(handlers['connection.update']);
    const u = safe(handlers['messages.update']);
    const m = safe(handlers['messages.upsert']);
    const k = safe(handlers['message-capping.update']);
    s.ev.on('connection.update', c);
    s.ev.on('messages.update', u);
    s.ev.on('messages.upsert', m);
    s.ev.on('message-capping.update', k);
    detach = () => {
      s.ev.off('connection.update', c);
      s.ev.off('messages.update', u);
      s.ev.off('messages.upsert', m);
      s.ev.off('message-capping.update', k);
      detach = null;
    };
    // A socket handed over after it opened emits no `open`: read its websocket.
    if (s.ws?.isOpen === true && state !== 'open') handlers['connection.update']({ connection: 'open' });
  };
  attach(socket);

  /** Where to send: a JID as given, the canonical JID a number check returned, or (no check) the plain number. */
  const resolveJid = async (m: Outbound, signal: AbortSignal | undefined): Promise<string> => {
    if (m.to.includes('@')) return m.to;
    const known = knownJid(m.to);
    if (known) return known;
    if (!o.checkBeforeSend) return jidFromPhone(m.to);
    let results: Awaited<ReturnType<BaileysSocket['onWhatsApp']>>;
    try {
      results = await raceAbort(socket.onWhatsApp(m.to), signal);
    } catch (error) {
      if (signal?.aborted && error === signal.reason) throw error;
      // Nothing was sent yet: a timeout here is only transient.
      throw classify(error, 'read', m.to);
    }
    if (results === undefined) throw new TransportError('transient', `${where(m.to)}: the number check got no answer from WhatsApp`);
    const hit = results.find((r) => r.exists && numberVariants(m.to).includes(phoneFromJid(r.jid) ?? ''));
    if (!hit) throw new TransportError('invalid_recipient', `${where(m.to)}: ${m.to} is not on WhatsApp (onWhatsApp found no account)`, { providerCode: 'not_on_whatsapp' });
    rememberNumber(m.to, hit.jid);
    return normalizeJid(hit.jid);
  };

  const presence = async (type: 'composing' | 'paused', jid: string) => {
    try {
      await socket.sendPresenceUpdate(type, jid);
    } catch {
      // Best effort: a missed "typing…" changes nothing.
    }
  };

  const transport: BaileysTransport = {
    name: 'baileys',
    get socket() {
      return socket;
    },

    async send(message, sendOptions = {}) {
      const signal = sendOptions.signal;
      if (signal?.aborted) throw signal.reason;
      const m = checkOutbound(outboundMessageSchema, message, where());
      if (o.enforceHolds) {
        const hold = activeHold();
        if (hold) throw new TransportError('rate_limited', `${where(m.to)}: account on hold: ${hold.reason}`, { retryAfterMs: Math.max(0, hold.until - clock.now()), providerCode: 'hold' });
      }
      if (state === 'close') {
        const accountReason = stopReason ?? 'disconnected';
        const hint = stopReason ? `the account needs a human (${stopReason})` : 'waiting for the socket to reconnect';
        throw new TransportError('account', `${where(m.to)}: the socket is closed${lastCloseCode !== undefined ? ` (${lastCloseCode})` : ''}; ${hint}`, {
          accountReason,
          providerCode: lastCloseCode ?? 428,
        });
      }

      const id = messageIdFor(m.idempotencyKey);
      const jid = await resolveJid(m, signal);

      const typingMs = typingMsFor(message, o.typingBeforeSend);
      if (typingMs > 0) {
        await presence('composing', jid);
        try {
          await clock.sleep(typingMs, signal);
        } catch (error) {
          await presence('paused', jid);
          throw signal?.aborted ? signal.reason : error;
        }
        await presence('paused', jid);
      }
      if (signal?.aborted) throw signal.reason;

      let result: Awaited<ReturnType<BaileysSocket['sendMessage']>>;
      try {
        result = await raceAbort(socket.sendMessage(jid, messageContent(m), { messageId: id }), signal);
      } catch (error) {
        if (signal?.aborted && error === signal.reason) throw error;
        throw classify(error, 'send', m.to);
      }
      const providerMessageId = result?.key?.id ?? id;
      const remoteJid = normalizeJid(result?.key?.remoteJid ?? jid);
      const acceptedAt = clock.now();
      remember(providerMessageId, remoteJid, acceptedAt);
      return { providerMessageId, acceptedAt, remoteJid };
    },

    async connectionState() {
      return state ?? 'unknown';
    },

    async checkNumbers(phones) {
      const list = phonesSchema.safeParse(phones);
      if (!list.success) throw ValidationError.fromZod('phones to check', list.error, 'phones');
      const unique = [...new Set(list.data)];
      const found = new Map<string, NumberCheck>();
      for (let i = 0; i < unique.length; i += o.numberCheckChunk) {
        const chunk = unique.slice(i, i + o.numberCheckChunk);
        let results: Awaited<ReturnType<BaileysSocket['onWhatsApp']>>;
        try {
          results = await socket.onWhatsApp(...chunk);
        } catch (error) {
          throw classify(error, 'read');
        }
        if (results === undefined) throw new TransportError('transient', `${where()}: the number check got no answer from WhatsApp`);
        for (const phone of chunk) {
          const variants = numberVariants(phone);
          // Absent from the answer = not on WhatsApp (Baileys filters those out; `exists:false` never appears).
          const hit = results.find((r) => r.exists && variants.includes(phoneFromJid(r.jid) ?? ''));
          if (!hit) {
            numbers.delete(phone);
            found.set(phone, { phone, exists: false });
            continue;
          }
          rememberNumber(phone, hit.jid);
          const check: NumberCheck = { phone, exists: true };
          if (phoneFromJid(hit.jid) !== phone) check.jid = normalizeJid(hit.jid);
          found.set(phone, check);
        }
      }
      return list.data.map((phone) => found.get(phone)!);
    },

    async lookup(query) {
      const key = query?.message?.idempotencyKey;
      if (typeof key !== 'string' || key.length === 0 || typeof query.message.to !== 'string') {
        throw new ValidationError('Invalid lookup query: message.to and message.idempotencyKey are required', [{ path: 'message.idempotencyKey', message: 'required' }]);
      }
      const id = messageIdFor(key);
      const hit = seen.get(id);
      if (hit) return { status: 'found', sent: { providerMessageId: id, acceptedAt: hit.at, remoteJid: hit.remoteJid } };
      // Not seen by this socket, nor (below) in the host's store: that proves nothing. The process that
      // sent it may have died before the socket or the store recorded it.
      const cannotTell = (why: string): LookupResult => ({ status: 'unknown', reason: why });
      if (!o.getMessage) return cannotTell('this socket did not see it leave, and no getMessage store was given');
      const to = query.message.to;
      const jids = to.includes('@') ? [to] : [...new Set([knownJid(to), ...numberVariants(to).map(jidFromPhone)].filter((j): j is string => typeof j === 'string'))];
      for (const remoteJid of jids) {
        let stored: unknown;
        try {
          stored = await o.getMessage({ remoteJid, id, fromMe: true });
        } catch (error) {
          throw new TransportError('transient', `${where(to)}: getMessage failed during lookup (${error instanceof Error ? error.message : String(error)})`, { cause: error });
        }
        if (stored) {
          const acceptedAt = Number.isFinite(query.since) ? query.since : clock.now();
          remember(id, remoteJid, acceptedAt);
          return { status: 'found', sent: { providerMessageId: id, acceptedAt, remoteJid: normalizeJid(remoteJid) } };
        }
      }
      return cannotTell('neither this socket nor the getMessage store has it');
    },

    subscribe(listener) {
      if (typeof listener !== 'function') throw new ValidationError('subscribe: listener must be a function', [{ path: 'listener', message: 'must be a function' }]);
      const entry: TransportEventListener = (event) => listener(event);
      listeners.add(entry);
      return () => {
        listeners.delete(entry);
      };
    },

    async typing(to, ms, typingOptions = {}) {
      const signal = typingOptions.signal;
      if (!(ms > 0) || signal?.aborted || typeof to !== 'string') return;
      const jid = to.includes('@') ? to : /^\d{6,20}$/.test(to) ? (knownJid(to) ?? jidFromPhone(to)) : null;
      if (!jid) return;
      await presence('composing', jid);
      try {
        await clock.sleep(Math.min(Math.round(ms), 300_000), signal);
      } catch {
        // Aborted: stop showing "typing…" now.
      }
      await presence('paused', jid);
    },

    useSocket(next) {
      const parsed = socketSchema.safeParse(next);
      if (!parsed.success) throw ValidationError.fromZod('Baileys socket', parsed.error, 'socket');
      if (next === socket && detach) return;
      socket = next;
      attach(next);
    },

    async close() {
      detach?.();
      listeners.clear();
      seen.clear();
      numbers.clear();
      holds.clear();
    },
  };
  return transport;
}
