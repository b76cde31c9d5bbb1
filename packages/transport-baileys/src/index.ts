import { createHash } from 'node:crypto';
import type { BaileysEventMap, WASocket } from 'baileys';
import {
  TransportError,
  ValidationError,
  type AccountStopReason,
  type ConnectionState,
  type LookupQuery,
  type NumberCheck,
  type OutboundMessage,
  type SendOptions,
  type SendResult,
  type Transport,
  type TransportEvent,
  type TransportEventListener,
} from '@disparo/core';
import { z } from 'zod';

/** The part of a Baileys `WASocket` this transport uses (the host creates it with `makeWASocket`). */
export type BaileysSocket = Pick<WASocket, 'sendMessage' | 'onWhatsApp' | 'sendPresenceUpdate'> & {
  ev: Pick<WASocket['ev'], 'on' | 'off'>;
};

export interface BaileysTransportOptions {
  socket: BaileysSocket;
  /** Name in logs and errors. Default `baileys`. */
  name?: string;
  /** How long an account backs off after `rate-overlimit` (ms). Default 5 minutes. */
  rateLimitBackoffMs?: number;
  /** How long an account holds after a 463 nack (restricted from new chats) when WhatsApp gives no end. Default 6 h. */
  restrictedHoldMs?: number;
  /**
   * Ask `onWhatsApp` before the first send to a number (cached): Baileys itself sends to any jid, so
   * without it a number not on WhatsApp looks sent. Also sends to WhatsApp's canonical jid (Brazilian
   * 9th digit). Default true.
   */
  checkBeforeSend?: boolean;
}

const optionsSchema = z
  .object({
    socket: z.custom<BaileysSocket>(
      (s) =>
        typeof s === 'object' &&
        s !== null &&
        typeof (s as BaileysSocket).sendMessage === 'function' &&
        typeof (s as BaileysSocket).onWhatsApp === 'function' &&
        typeof (s as BaileysSocket).ev?.on === 'function',
      'must be a Baileys socket from makeWASocket (sendMessage, onWhatsApp, ev)',
    ),
    name: z.string().min(1).default('baileys'),
    rateLimitBackoffMs: z.number().int().positive().default(5 * 60_000),
    restrictedHoldMs: z.number().int().positive().default(6 * 3_600_000),
    checkBeforeSend: z.boolean().default(true),
  })
  .strict();

/**
 * The WhatsApp message id for an idempotency key, in the WA-Web format (`3EB0` + 18 upper-case hex):
 * the same on every attempt and after a crash, so receipts correlate before `sendMessage` returns.
 */
export function messageIdFor(idempotencyKey: string): string {
  return `3EB0${createHash('sha256').update(idempotencyKey).digest('hex').slice(0, 18).toUpperCase()}`;
}

/** DisconnectReason codes that need a human (a new QR, another number). Evolution adds 402 and 406. */
const STOP_CODES: Record<number, AccountStopReason> = {
  401: 'logged_out',
  403: 'banned',
  440: 'replaced',
  411: 'unauthorized',
  402: 'restricted',
  406: 'restricted',
};
const STOP_TEXT: Record<AccountStopReason, string> = {
  logged_out: 'the device was unlinked (logged out): pair the number again',
  banned: 'WhatsApp refused the session (403, usually a banned number)',
  replaced: 'another client took over the session (440 conflict)',
  unauthorized: 'multi-device mismatch (411): pair the number again',
  restricted: 'the session cannot reconnect (WhatsApp refused it)',
  disconnected: 'disconnected',
};

interface BoomLike {
  message?: string;
  data?: unknown;
  output?: { statusCode?: number };
}

const statusCodeOf = (e: unknown): number | undefined => (e as BoomLike | undefined)?.output?.statusCode;
const jidOf = (phone: string) => `${phone}@s.whatsapp.net`;
const digitsOf = (jid: string) => jid.split('@')[0]!.split(':')[0]!.replace(/\D/g, '');

/** Brazilian mobiles exist with and without the 9th digit; WhatsApp answers with its canonical one. */
function sameNumber(a: string, b: string): boolean {
  if (a === b) return true;
  if (!a.startsWith('55') || !b.startsWith('55')) return false;
  const strip = (p: string) => (p.length === 13 && p[4] === '9' ? p.slice(0, 4) + p.slice(5) : p);
  return strip(a) === strip(b);
}

/** Classify what `sendMessage` threw (CONTRACTS.md section 2). */
export function classifyBaileysError(error: unknown, rateLimitBackoffMs: number): TransportError {
  if (TransportError.isInstance(error)) return error;
  const e = error as BoomLike;
  const message = typeof e?.message === 'string' ? e.message : String(error);
  const code = statusCodeOf(error);
  if (message === 'rate-overlimit' || e?.data === 429) {
    return new TransportError('rate_limited', 'WhatsApp throttled this session (rate-overlimit)', { retryAfterMs: rateLimitBackoffMs, providerCode: 'rate-overlimit', cause: error });
  }
  if (message === 'Connection Closed' || code === 428) {
    return new TransportError('account', 'the WhatsApp socket is not open (Connection Closed): waiting for it to reconnect', { accountReason: 'disconnected', providerCode: 428, cause: error });
  }
  if (code !== undefined && STOP_CODES[code]) {
    const reason = STOP_CODES[code]!;
    return new TransportError('account', STOP_TEXT[reason], { accountReason: reason, providerCode: code, cause: error });
  }
  if (message === 'Timed Out' || code === 408) {
    // The stanza may have left: reconcile before any resend.
    return new TransportError('ambiguous', 'sendMessage timed out after writing to the socket', { providerCode: 408, cause: error });
  }
  return new TransportError('transient', `sendMessage failed: ${message}`, { ...(code !== undefined ? { providerCode: code } : {}), cause: error });
}

const STATUS: Record<number, 'sent' | 'delivered' | 'read'> = { 2: 'sent', 3: 'delivered', 4: 'read', 5: 'read' };

/**
 * A Transport over a Baileys socket the host owns (login, QR and auth state stay with the host).
 * One per WhatsApp number.
 */
export class BaileysTransport implements Transport {
  readonly name: string;
  private readonly socket: BaileysSocket;
  private readonly opts: z.output<typeof optionsSchema>;
  private state: ConnectionState = 'unknown';
  /** Ids written to this socket or acknowledged on it: the basis of `lookup`. */
  private readonly acked = new Map<string, number>();
  /** onWhatsApp answers: phone -> canonical jid, or null when not on WhatsApp. */
  private readonly known = new Map<string, string | null>();

  constructor(options: BaileysTransportOptions) {
    const parsed = optionsSchema.safeParse(options ?? {});
    if (!parsed.success) throw ValidationError.fromZod('Baileys transport options', parsed.error);
    this.opts = parsed.data;
    this.socket = parsed.data.socket;
    this.name = parsed.data.name;
    // Track the connection and acks for as long as the transport lives, subscribers or not.
    this.socket.ev.on('connection.update', this.trackConnection);
    this.socket.ev.on('messages.update', this.trackAcks);
  }

  private readonly trackConnection = (u: BaileysEventMap['connection.update']) => {
    if (u.connection) this.state = u.connection;
  };

  private readonly trackAcks = (updates: BaileysEventMap['messages.update']) => {
    for (const { key, update } of updates) {
      if (key.fromMe && key.id && typeof update.status === 'number' && update.status >= 2) this.acked.set(key.id, Date.now());
    }
  };

  private async resolveJid(phone: string): Promise<string> {
    if (!this.opts.checkBeforeSend) return jidOf(phone);
    let jid: string | null | undefined = this.known.get(phone);
    if (jid === undefined) {
      const [check]: NumberCheck[] = await this.checkNumbers([phone]);
      const resolved: string | null = check?.exists ? (check.jid ?? jidOf(phone)) : null;
      if (this.known.size >= 50_000) this.known.delete(this.known.keys().next().value as string);
      this.known.set(phone, resolved);
      jid = resolved;
    }
    if (jid === null) throw new TransportError('invalid_recipient', `${phone} is not on WhatsApp (onWhatsApp left it out)`, { providerCode: 'not-on-whatsapp' });
    return jid;
  }

  async send(message: OutboundMessage, options: SendOptions = {}): Promise<SendResult> {
    const jid = await this.resolveJid(message.to);
    const messageId = messageIdFor(message.idempotencyKey);
    const content = message.media
      ? message.media.type === 'document'
        ? { document: { url: message.media.url }, mimetype: message.media.mimeType ?? 'application/octet-stream', fileName: message.media.fileName ?? 'file', caption: message.text }
        : message.media.type === 'audio'
          ? { audio: { url: message.media.url }, mimetype: message.media.mimeType ?? 'audio/ogg; codecs=opus' }
          : message.media.type === 'video'
            ? { video: { url: message.media.url }, caption: message.text }
            : { image: { url: message.media.url }, caption: message.text }
      : { text: message.text };
    options.signal?.throwIfAborted();
    try {
      const sending = this.socket.sendMessage(jid, content, { messageId });
      const result = options.signal ? await abortable(sending, options.signal) : await sending;
      const ts = Number(result?.messageTimestamp ?? 0);
      // Written to the socket: it has left this process (the server ack follows as messages.update).
      this.acked.set(result?.key?.id ?? messageId, ts > 0 ? ts * 1000 : Date.now());
      return {
        providerMessageId: result?.key?.id ?? messageId,
        acceptedAt: ts > 0 ? ts * 1000 : Date.now(),
        remoteJid: result?.key?.remoteJid ?? jid,
      };
    } catch (error) {
      if (options.signal?.aborted && error === options.signal.reason) {
        throw TransportError.isInstance(error) ? error : new TransportError('ambiguous', 'the send was aborted after it was handed to the socket', { cause: error });
      }
      throw classifyBaileysError(error, this.opts.rateLimitBackoffMs);
    }
  }

  async connectionState(): Promise<ConnectionState> {
    return this.state;
  }

  /** Via `onWhatsApp`: a number absent from the answer is not on WhatsApp; `jid` is WhatsApp's canonical one. */
  async checkNumbers(phones: string[]): Promise<NumberCheck[]> {
    if (phones.length === 0) return [];
    let found: Array<{ jid: string; exists: unknown }>;
    try {
      found = ((await this.socket.onWhatsApp(...phones)) ?? []) as Array<{ jid: string; exists: unknown }>;
    } catch (error) {
      throw classifyBaileysError(error, this.opts.rateLimitBackoffMs);
    }
    return phones.map((phone) => {
      const hit = found.find((f) => f.exists !== false && sameNumber(digitsOf(f.jid), phone));
      return hit ? { phone, exists: true, jid: hit.jid } : { phone, exists: false };
    });
  }

  /** Did WhatsApp acknowledge this message on this socket? Only what this process saw: null otherwise. */
  async lookup(query: LookupQuery): Promise<SendResult | null> {
    const id = messageIdFor(query.message.idempotencyKey);
    const at = this.acked.get(id);
    return at === undefined ? null : { providerMessageId: id, acceptedAt: at, remoteJid: jidOf(query.message.to) };
  }

  async typing(to: string, ms: number, options: SendOptions = {}): Promise<void> {
    const jid = jidOf(to);
    try {
      await this.socket.sendPresenceUpdate('composing', jid);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(0, ms));
        options.signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
      });
      await this.socket.sendPresenceUpdate('paused', jid);
    } catch {
      // Presence is cosmetic: a failure here must not fail the send.
    }
  }

  subscribe(listener: TransportEventListener): () => void {
    const emit = (event: TransportEvent) => listener(event);
    const onConnection = (u: BaileysEventMap['connection.update']) => {
      if (u.reachoutTimeLock?.isActive) {
        const ends = u.reachoutTimeLock.timeEnforcementEnds ? new Date(u.reachoutTimeLock.timeEnforcementEnds).getTime() : NaN;
        emit({
          type: 'account_hold',
          until: Number.isFinite(ends) ? ends : Date.now() + this.opts.restrictedHoldMs,
          reason: `WhatsApp restricts new chats (reachout time lock${u.reachoutTimeLock.enforcementType ? `, ${u.reachoutTimeLock.enforcementType}` : ''})`,
        });
      }
      if (!u.connection) return;
      if (u.connection !== 'close') {
        emit({ type: 'connection', state: u.connection });
        return;
      }
      const error = u.lastDisconnect?.error;
      const code = statusCodeOf(error);
      const stop = code !== undefined ? STOP_CODES[code] : undefined;
      const detail = `${code ?? 'no code'}: ${(error as Error | undefined)?.message ?? 'connection closed'}`;
      emit(stop ? { type: 'connection', state: 'close', stopReason: stop, detail: `${STOP_TEXT[stop]} (${detail})` } : { type: 'connection', state: 'close', detail });
    };
    const onCapping = (info: BaileysEventMap['message-capping.update']) => {
      const i = info as unknown as { capping_status?: string; cycle_end_timestamp?: string | number; used_quota?: number; total_quota?: number };
      if (i.capping_status !== 'CAPPED') return;
      const end = Number(i.cycle_end_timestamp) * 1000;
      emit({ type: 'account_hold', until: Number.isFinite(end) && end > 0 ? end : Date.now() + this.opts.restrictedHoldMs, reason: `new-chat message cap reached (${i.used_quota}/${i.total_quota})` });
    };
    const onUpdate = (updates: BaileysEventMap['messages.update']) => {
      for (const { key, update } of updates) {
        if (!key.fromMe || !key.id || typeof update.status !== 'number') continue;
        const at = Number(update.messageTimestamp ?? 0) > 0 ? Number(update.messageTimestamp) * 1000 : Date.now();
        if (update.status === 0) {
          const code = update.messageStubParameters?.[0];
          const text = update.messageStubParameters?.slice(1).join(' ');
          emit({ type: 'status', providerMessageId: key.id, status: 'failed', at, ...(code ? { code } : {}), error: `WhatsApp rejected the message${code ? ` (${code})` : ''}${text ? `: ${text}` : ''}` });
          // 463: the account may not start new chats; retrying counts as more outreach.
          if (code === '463') emit({ type: 'account_hold', until: Date.now() + this.opts.restrictedHoldMs, reason: 'WhatsApp restricted this account from new chats (463)' });
          continue;
        }
        const status = STATUS[update.status];
        if (status) emit({ type: 'status', providerMessageId: key.id, status, at });
      }
    };
    const onUpsert = (u: BaileysEventMap['messages.upsert']) => {
      for (const m of u.messages) {
        if (m.key.fromMe || !m.key.remoteJid?.endsWith('@s.whatsapp.net')) continue;
        const text = m.message?.conversation ?? m.message?.extendedTextMessage?.text;
        if (!text) continue;
        const ts = Number(m.messageTimestamp ?? 0);
        emit({ type: 'inbound', from: digitsOf(m.key.remoteJid), text, at: ts > 0 ? ts * 1000 : Date.now(), ...(m.key.id ? { providerMessageId: m.key.id } : {}) });
      }
    };
    this.socket.ev.on('connection.update', onConnection);
    this.socket.ev.on('message-capping.update', onCapping);
    this.socket.ev.on('messages.update', onUpdate);
    this.socket.ev.on('messages.upsert', onUpsert);
    return () => {
      this.socket.ev.off('connection.update', onConnection);
      this.socket.ev.off('message-capping.update', onCapping);
      this.socket.ev.off('messages.update', onUpdate);
      this.socket.ev.off('messages.upsert', onUpsert);
    };
  }

  async close(): Promise<void> {
    this.socket.ev.off('connection.update', this.trackConnection);
    this.socket.ev.off('messages.update', this.trackAcks);
  }
}

function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => (signal.removeEventListener('abort', onAbort), resolve(v)),
      (e) => (signal.removeEventListener('abort', onAbort), reject(e)),
    );
  });
}

export function createBaileysTransport(options: BaileysTransportOptions): BaileysTransport {
  return new BaileysTransport(options);
}
