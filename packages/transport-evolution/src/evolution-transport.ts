import { z } from 'zod';
import {
  TransportError,
  ValidationError,
  type ConnectionState,
  type LookupQuery,
  type LookupResult,
  type NumberCheck,
  type OutboundMessage,
  type SendOptions,
  type SendResult,
  type Transport,
  type TransportEvent,
} from '@disparo/core/transport';
import { classifyEvolutionError, type Operation } from './classify.js';
import { request, type HttpCall, type HttpClient, type HttpResult } from './http.js';
import { MEDIA_MESSAGE_TYPES, fileNameFromUrl, validate, jidFromPhone, messageText, normalizeJid, numberVariants, outboundMessageSchema, checkOutbound, phoneFromJid, sameText, timestampMs } from '@disparo/core/transport';
import { connectionSchema, optionsSchema, type EvolutionConnectionOptions, type EvolutionTransportOptions, type ResolvedOptions } from './options.js';
import { parseEvolutionWebhook, type SentRecord } from './webhook.js';
import { verifyWebhookAuth, type WebhookHeaders } from './webhook-auth.js';
import { webhookSetRequest, type WebhookSetInput } from './webhook-set.js';

/** One Evolution instance (one WhatsApp number) as a Disparo `Transport`. */
export interface EvolutionTransport extends Transport {
  readonly name: 'evolution';
  readonly instance: string;
  send(message: OutboundMessage, options?: SendOptions): Promise<SendResult>;
  connectionState(): Promise<ConnectionState>;
  checkNumbers(phones: string[]): Promise<NumberCheck[]>;
  lookup(query: LookupQuery): Promise<LookupResult>;
  parseWebhook(body: unknown, headers?: WebhookHeaders | Headers): TransportEvent[];
  typing(to: string, ms: number, options?: SendOptions): Promise<void>;
  /**
   * `POST /webhook/set/{instance}` with this transport's own `jwtKey`/`secret` (unless given),
   * so the webhooks Evolution sends are the ones `parseWebhook` accepts.
   */
  registerWebhook(input: WebhookSetInput): Promise<unknown>;
  close(): Promise<void>;
}

/** Numbers per `whatsappNumbers` call. */
const NUMBER_CHECK_CHUNK = 100;
/** `findMessages` page size (Evolution's `offset`) and how many pages a lookup reads per chat. */
const LOOKUP_PAGE_SIZE = 50;
const LOOKUP_MAX_PAGES = 4;
/** Outgoing messages remembered from `send.message` webhooks for `lookup`. */
const SENT_MEMORY = 1_000;

const sendResponseSchema = z.object({
  key: z.object({ id: z.string().min(1), remoteJid: z.string().min(1) }),
  messageTimestamp: z.unknown().optional(),
});

const connectionStateSchema = z.object({ instance: z.object({ state: z.string() }) });

const numberResultSchema = z.array(
  z.object({
    jid: z.string().nullish(),
    exists: z.boolean(),
    number: z.string().nullish(),
  }),
);

const findMessagesSchema = z.object({
  messages: z.object({
    pages: z.number().nullish(),
    records: z.array(
      z.object({
        key: z.object({ id: z.string().min(1), remoteJid: z.string().nullish(), fromMe: z.boolean().nullish() }),
        message: z.unknown().optional(),
        messageType: z.string().nullish(),
        messageTimestamp: z.unknown().optional(),
      }),
    ),
  }),
});

function makeClient(o: z.output<typeof connectionSchema>): HttpClient {
  const fetchImpl = o.fetch ?? ((input: string, init: RequestInit) => globalThis.fetch(input, init));
  return { baseUrl: o.baseUrl, apiKey: o.apiKey, instance: o.instance, fetch: fetchImpl };
}

async function call(client: HttpClient, c: HttpCall, rateLimitBackoffMs: number): Promise<HttpResult> {
  const res = await request(client, c);
  if (res.status >= 200 && res.status < 300) return res;
  throw classifyEvolutionError({
    status: res.status,
    body: res.json,
    operation: c.operation,
    instance: client.instance,
    retryAfter: res.headers.get('retry-after'),
    rateLimitBackoffMs,
    route: res.route,
  });
}

/** An unexpected 2xx body: for a send the message went out (we just cannot read its id). */
function unreadable(client: HttpClient, res: HttpResult, operation: Operation, what: string): TransportError {
  const kind = operation === 'send' ? 'ambiguous' : 'transient';
  return new TransportError(kind, `[evolution] ${client.instance} ${res.route}: HTTP ${res.status} without ${what}: ${res.text.slice(0, 200)}`, { providerCode: res.status });
}

/**
 * `POST /webhook/set/{instance}`: register (or replace) the instance's webhook. Returns Evolution's
 * answer (the stored webhook). See `webhookSetRequest` for the body.
 */
export async function registerEvolutionWebhook(connection: EvolutionConnectionOptions, input: WebhookSetInput): Promise<unknown> {
  const o = validate(connectionSchema, connection, 'Evolution connection');
  const body = webhookSetRequest(input);
  const res = await call(makeClient(o), { method: 'POST', route: '/webhook/set', body, operation: 'read', timeoutMs: o.timeoutMs }, 300_000);
  return res.json;
}

/**
 * A `Transport` for one Evolution API v2 instance (one sender account). See the README for the
 * error mapping and how to register the webhook.
 */
export function createEvolutionTransport(options: EvolutionTransportOptions): EvolutionTransport {
  const o: ResolvedOptions = validate(optionsSchema, options, 'Evolution transport options');
  const client = makeClient(o);
  const now = o.clock ? () => o.clock!.now() : Date.now;
  /** phone -> the JID Evolution used for it (from sends and number checks), for lookups. */
  const knownJids = new Map<string, string>();
  /** Outgoing messages seen in webhooks, newest last. */
  const sent = new Map<string, SentRecord>();

  const rememberJid = (phone: string, jid: string) => {
    if (knownJids.size >= 10_000) knownJids.delete(knownJids.keys().next().value!);
    knownJids.set(phone, normalizeJid(jid));
  };
  const rememberSent = (record: SentRecord) => {
    sent.delete(record.providerMessageId);
    sent.set(record.providerMessageId, record);
    if (sent.size > SENT_MEMORY) sent.delete(sent.keys().next().value!);
  };
  const run = (c: HttpCall) => call(client, c, o.rateLimitBackoffMs);

  const delayFor = (message: OutboundMessage): number => {
    const raw = typeof o.delayMs === 'function' ? o.delayMs(message) : o.delayMs;
    return Number.isFinite(raw) && raw > 0 ? Math.min(Math.round(raw), 300_000) : 0;
  };

  const candidatesFor = (to: string): string[] => {
    if (to.includes('@')) return [normalizeJid(to)];
    const list = [knownJids.get(to), ...numberVariants(to).map(jidFromPhone)].filter((j): j is string => typeof j === 'string');
    return [...new Set(list)];
  };

  const matches = (message: OutboundMessage, record: { text: string | null; messageType: string | null | undefined }): boolean => {
    const media = message.media;
    if (media && record.messageType && !MEDIA_MESSAGE_TYPES[media.type].includes(record.messageType)) return false;
    if (message.text.trim().length === 0) return Boolean(media);
    return record.text !== null && sameText(record.text, message.text);
  };

  const transport: EvolutionTransport = {
    name: 'evolution',
    instance: o.instance,

    async send(message, sendOptions = {}) {
      const m = checkOutbound(outboundMessageSchema, message, `[evolution] ${o.instance}`);
      const delay = delayFor(message);
      let route: string;
      let body: Record<string, unknown>;
      if (m.media) {
        const caption = m.text.trim().length > 0 ? m.text : undefined;
        const fileName = m.media.fileName ?? (m.media.type === 'document' ? fileNameFromUrl(m.media.url) : undefined);
        route = '/message/sendMedia';
        body = {
          number: m.to,
          mediatype: m.media.type,
          ...(m.media.mimeType ? { mimetype: m.media.mimeType } : {}),
          ...(caption ? { caption } : {}),
          media: m.media.url,
          ...(fileName ? { fileName } : {}),
          ...(delay > 0 ? { delay } : {}),
        };
      } else {
        route = '/message/sendText';
        body = { number: m.to, text: m.text, ...(delay > 0 ? { delay } : {}), ...(o.linkPreview !== undefined ? { linkPreview: o.linkPreview } : {}) };
      }
      // Evolution holds the call open while it shows "typing…": the timeout must cover that too.
      const res = await run({ method: 'POST', route, body, operation: 'send', timeoutMs: o.timeoutMs + delay, signal: sendOptions.signal });
      const parsed = sendResponseSchema.safeParse(res.json);
      if (!parsed.success) throw unreadable(client, res, 'send', 'a message key; the message was probably sent');
      const remoteJid = normalizeJid(parsed.data.key.remoteJid);
      if (!m.to.includes('@')) rememberJid(m.to, remoteJid);
      return { providerMessageId: parsed.data.key.id, acceptedAt: timestampMs(parsed.data.messageTimestamp) ?? now(), remoteJid };
    },

    async connectionState() {
      const res = await run({ method: 'GET', route: '/instance/connectionState', operation: 'read', timeoutMs: o.timeoutMs });
      const parsed = connectionStateSchema.safeParse(res.json);
      if (!parsed.success) throw unreadable(client, res, 'read', 'instance.state');
      const state = parsed.data.instance.state.toLowerCase();
      if (state === 'open' || state === 'connecting' || state === 'close') return state;
      if (state === 'refused') return 'close';
      return 'unknown';
    },

    async checkNumbers(phones) {
      const list = z.array(z.string().regex(/^\d{6,20}$/, 'must be E.164 digits without +')).safeParse(phones);
      if (!list.success) throw ValidationError.fromZod('phones to check', list.error, 'phones');
      const unique = [...new Set(list.data)];
      const found = new Map<string, NumberCheck>();
      for (let i = 0; i < unique.length; i += NUMBER_CHECK_CHUNK) {
        const chunk = unique.slice(i, i + NUMBER_CHECK_CHUNK);
        const res = await run({ method: 'POST', route: '/chat/whatsappNumbers', body: { numbers: chunk }, operation: 'read', timeoutMs: o.timeoutMs });
        const parsed = numberResultSchema.safeParse(res.json);
        if (!parsed.success) throw unreadable(client, res, 'read', 'a list of numbers');
        const results = parsed.data;
        chunk.forEach((phone, index) => {
          const entry =
            results.find((r) => r.number === phone) ??
            results.find((r) => phoneFromJid(r.jid) === phone) ??
            (results.length === chunk.length ? results[index] : undefined);
          // No answer for a number: say it exists, so that sending (not a guess) decides.
          if (!entry) return found.set(phone, { phone, exists: true });
          const check: NumberCheck = { phone, exists: entry.exists };
          if (entry.exists && entry.jid) {
            rememberJid(phone, entry.jid);
            if (phoneFromJid(entry.jid) !== phone) check.jid = normalizeJid(entry.jid);
          }
          found.set(phone, check);
        });
      }
      return list.data.map((phone) => found.get(phone)!);
    },

    async lookup(query) {
      const { message, since } = query;
      if (typeof message?.to !== 'string' || typeof message.text !== 'string' || !Number.isFinite(since)) {
        throw new ValidationError('Invalid lookup query: message.to, message.text and since are required', [{ path: 'query', message: 'incomplete lookup query' }]);
      }
      const from = since - o.lookupSkewMs;
      const until = now() + o.lookupSkewMs;
      const jids = candidatesFor(message.to);

      // What Evolution's send.message webhook already told us (CONTRACTS.md 1.11 a).
      let best: SendResult | null = null;
      const consider = (id: string, jid: string, at: number | null) => {
        const acceptedAt = at ?? now();
        if (!best || acceptedAt < best.acceptedAt) best = { providerMessageId: id, acceptedAt, remoteJid: jid };
      };
      for (const record of sent.values()) {
        if (jids.includes(record.remoteJid) && record.at >= from && matches(message, record)) consider(record.providerMessageId, record.remoteJid, record.at);
      }
      if (best) return { status: 'found', sent: best };

      // Evolution's message store: own messages to that chat in the window (CONTRACTS.md 1.11 b).
      for (const jid of jids) {
        for (let page = 1; page <= LOOKUP_MAX_PAGES; page++) {
          const body = {
            where: {
              key: { remoteJid: jid, fromMe: true },
              // Evolution reads both bounds with `new Date(x)` (and ignores one alone): send ISO times.
              messageTimestamp: { gte: new Date(from).toISOString(), lte: new Date(until).toISOString() },
            },
            page,
            offset: LOOKUP_PAGE_SIZE,
          };
          const res = await run({ method: 'POST', route: '/chat/findMessages', body, operation: 'read', timeoutMs: o.timeoutMs });
          const parsed = findMessagesSchema.safeParse(res.json);
          if (!parsed.success) throw unreadable(client, res, 'read', 'messages.records');
          const { records, pages } = parsed.data.messages;
          for (const r of records) {
            if (r.key.fromMe === false) continue;
            if (r.key.remoteJid && normalizeJid(r.key.remoteJid) !== jid) continue;
            const at = timestampMs(r.messageTimestamp);
            if (at !== null && (at < from || at > until)) continue;
            if (matches(message, { text: messageText(r.message), messageType: r.messageType })) consider(r.key.id, jid, at);
          }
          if (records.length < LOOKUP_PAGE_SIZE || (typeof pages === 'number' && page >= pages)) break;
        }
        if (best) return { status: 'found', sent: best };
      }
      // Finding nothing proves the message never left only when this instance stores what it sends.
      return o.storesMessages
        ? { status: 'absent' }
        : {
            status: 'unknown',
            reason:
              "Evolution's findMessages only finds messages the instance stores (DATABASE_SAVE_DATA_NEW_MESSAGE=true); set storesMessages: true on the transport when yours does",
          };
    },

    parseWebhook(body, headers = {}) {
      verifyWebhookAuth(headers, { secret: o.webhook.secret, jwtKey: o.webhook.jwtKey, headerName: o.webhook.headerName, allowUnsigned: o.webhook.allowUnsigned, now });
      const parsed = parseEvolutionWebhook(body, { instance: o.instance, now });
      for (const record of parsed.sent) rememberSent(record);
      return parsed.events;
    },

    async typing(to, ms, typingOptions = {}) {
      if (!(ms > 0) || !/^\d{6,20}$/.test(to)) return;
      const delay = Math.min(Math.round(ms), 300_000);
      try {
        // Evolution shows "composing" for `delay` ms and answers afterwards.
        await run({ method: 'POST', route: '/chat/sendPresence', body: { number: to, presence: 'composing', delay }, operation: 'read', timeoutMs: o.timeoutMs + delay, signal: typingOptions.signal });
      } catch {
        // Best effort by contract: a missed "typing…" changes nothing.
      }
    },

    async registerWebhook(input) {
      const withAuth: WebhookSetInput = {
        ...input,
        ...(input.jwtKey === undefined && o.webhook.jwtKey ? { jwtKey: o.webhook.jwtKey } : {}),
        ...(input.secret === undefined && o.webhook.secret ? { secret: o.webhook.secret, headerName: input.headerName ?? o.webhook.headerName } : {}),
      };
      const res = await run({ method: 'POST', route: '/webhook/set', body: webhookSetRequest(withAuth), operation: 'read', timeoutMs: o.timeoutMs });
      return res.json;
    },

    async close() {
      knownJids.clear();
      sent.clear();
    },
  };
  return transport;
}
