import { z } from 'zod';
import { WebhookError, messageText, normalizeJid, phoneFromJid, timestampMs, type AccountStopReason, type TransportEvent } from '@disparo/core/transport';

/** A message Evolution reported as sent by this instance (`send.message`), kept for `lookup`. */
export interface SentRecord {
  providerMessageId: string;
  remoteJid: string;
  text: string | null;
  messageType: string | null;
  /** Epoch ms (provider timestamp, else arrival). */
  at: number;
}

export interface ParsedWebhook {
  events: TransportEvent[];
  /** Outgoing messages seen (send.message, or own messages echoed by messages.upsert). */
  sent: SentRecord[];
}

const envelopeSchema = z.object({
  event: z.string().min(1),
  instance: z.string().optional(),
  data: z.unknown().optional(),
});

const statusValue = z.union([z.string(), z.number()]);

const updateSchema = z
  .object({
    keyId: z.string().min(1).optional(),
    key: z.object({ id: z.string().min(1) }).partial().optional(),
    remoteJid: z.string().nullish(),
    fromMe: z.boolean().nullish(),
    status: statusValue,
  })
  .refine((u) => u.keyId ?? u.key?.id, { message: 'keyId is required', path: ['keyId'] });

const keySchema = z.object({
  id: z.string().min(1),
  remoteJid: z.string().min(1),
  fromMe: z.boolean().nullish(),
  remoteJidAlt: z.string().nullish(),
  senderPn: z.string().nullish(),
});

const messageSchema = z.object({
  key: keySchema,
  status: statusValue.nullish(),
  message: z.unknown().optional(),
  messageType: z.string().nullish(),
  messageTimestamp: z.unknown().optional(),
});

const connectionSchema = z.object({
  state: z.string().min(1),
  statusReason: z.union([z.number(), z.string()]).nullish(),
});

const statusInstanceSchema = z.object({
  status: z.string().min(1),
  disconnectionReasonCode: z.union([z.number(), z.string()]).nullish(),
});

/** Evolution's `renderStatus` order, for payloads that carry the numeric Baileys status. */
const NUMERIC_STATUS = ['ERROR', 'PENDING', 'SERVER_ACK', 'DELIVERY_ACK', 'READ', 'PLAYED'];

const STATUS_MAP: Record<string, 'sent' | 'delivered' | 'read' | 'failed' | undefined> = {
  SERVER_ACK: 'sent',
  DELIVERY_ACK: 'delivered',
  READ: 'read',
  PLAYED: 'read',
  ERROR: 'failed',
  // PENDING (accepted, not yet acknowledged) and DELETED (Evolution's fallback) carry no status change.
};

function mapStatus(value: string | number | null | undefined): 'sent' | 'delivered' | 'read' | 'failed' | undefined {
  if (value === null || value === undefined) return undefined;
  const name = typeof value === 'number' ? NUMERIC_STATUS[value] : value.toUpperCase();
  return name ? STATUS_MAP[name] : undefined;
}

/** Message types that are not something a person wrote (reactions, edits, deletes, key exchange). */
const NOT_A_REPLY = new Set(['protocolMessage', 'reactionMessage', 'senderKeyDistributionMessage', 'pollUpdateMessage', 'messageContextInfo', 'editedMessage']);

/**
 * Why an account that Evolution closed for good cannot come back alone. Evolution only reports a
 * close for codes it will not reconnect from: 401 loggedOut, 403 forbidden, 402 and 406
 * (CONTRACTS.md 1.8, 2.4); others are mapped for completeness.
 */
export function stopReasonForCode(code: number | undefined): AccountStopReason {
  switch (code) {
    case 403:
    case 402:
      return 'banned';
    case 440:
      return 'replaced';
    default:
      return 'logged_out';
  }
}

const toCode = (v: number | string | null | undefined): number | undefined => {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && /^\d+$/.test(v)) return Number(v);
  return undefined;
};

function malformed(event: string, error: z.ZodError | string): WebhookError {
  const detail = typeof error === 'string' ? error : error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
  return new WebhookError(`[evolution] malformed ${event} webhook: ${detail}`, 'malformed');
}

function parseItems<T>(event: string, data: unknown, schema: z.ZodType<T>): T[] {
  const items = Array.isArray(data) ? data : [data];
  return items.map((item, i) => {
    const result = schema.safeParse(item);
    if (!result.success) throw malformed(event, Array.isArray(data) ? `data.${i}: ${result.error.issues[0]?.message ?? 'invalid'}` : result.error);
    return result.data;
  });
}

/** Decode a webhook body: already-parsed JSON, or the raw bytes/string of it. */
export function decodeWebhookBody(body: unknown): Record<string, unknown> {
  let value = body;
  if (typeof value === 'string' || value instanceof Uint8Array) {
    const text = typeof value === 'string' ? value : Buffer.from(value).toString('utf8');
    try {
      value = JSON.parse(text);
    } catch {
      throw new WebhookError('[evolution] malformed webhook: the body is not JSON', 'malformed');
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new WebhookError('[evolution] malformed webhook: the body is not a JSON object', 'malformed');
  return value as Record<string, unknown>;
}

/** The instance a webhook body is about (`instance`), to route one shared webhook URL to the right account. */
export function evolutionWebhookInstance(body: unknown): string | null {
  try {
    const value = decodeWebhookBody(body);
    return typeof value.instance === 'string' ? value.instance : null;
  } catch {
    return null;
  }
}

/** `messages.update` -> `MESSAGES_UPDATE`-style names are accepted too. */
const eventName = (raw: string) => raw.trim().toLowerCase().replace(/_/g, '.');

/**
 * Turn an (already authenticated) Evolution webhook body into core events. Throws `WebhookError`
 * (`malformed`) when a relevant event lacks what it needs; returns no events for other events and
 * for another instance's webhooks.
 */
export function parseEvolutionWebhook(body: unknown, options: { instance: string; now: () => number }): ParsedWebhook {
  const decoded = decodeWebhookBody(body);
  const envelope = envelopeSchema.safeParse(decoded);
  if (!envelope.success) throw malformed('Evolution', envelope.error);
  const { instance, data } = envelope.data;
  const event = eventName(envelope.data.event);
  const out: ParsedWebhook = { events: [], sent: [] };
  // One shared URL may receive every instance's webhooks: only this account's apply here.
  if (instance !== undefined && instance !== options.instance) return out;
  const now = options.now();

  switch (event) {
    case 'messages.update': {
      for (const u of parseItems(event, data, updateSchema)) {
        if (u.fromMe === false) continue; // a receipt for a message we received
        const status = mapStatus(u.status);
        if (!status) continue;
        const providerMessageId = (u.keyId ?? u.key?.id)!;
        // Evolution drops the Baileys error code: ERROR comes without a reason (CONTRACTS.md 1.8/1.9).
        out.events.push(status === 'failed' ? { type: 'status', providerMessageId, status, at: now, error: 'provider_error' } : { type: 'status', providerMessageId, status, at: now });
      }
      break;
    }
    case 'send.message': {
      for (const m of parseItems(event, data, messageSchema)) {
        out.sent.push(sentRecord(m, now));
        const status = mapStatus(m.status);
        if (status) out.events.push({ type: 'status', providerMessageId: m.key.id, status, at: now });
      }
      break;
    }
    case 'messages.upsert': {
      for (const m of parseItems(event, data, messageSchema)) {
        if (m.key.fromMe === true) {
          // Sent by this number (from the phone, or echoed): not a reply, but it did go out.
          out.sent.push(sentRecord(m, now));
          continue;
        }
        if (m.messageType && NOT_A_REPLY.has(m.messageType)) continue;
        // A LID chat carries the phone address, if at all, in remoteJidAlt (or senderPn in some Baileys versions).
        const from = phoneFromJid(m.key.remoteJid) ?? phoneFromJid(m.key.remoteJidAlt) ?? phoneFromJid(m.key.senderPn);
        if (!from) continue; // group, broadcast, newsletter, or a LID with no phone number
        out.events.push({ type: 'inbound', from, text: messageText(m.message) ?? '', at: timestampMs(m.messageTimestamp) ?? now, providerMessageId: m.key.id });
      }
      break;
    }
    case 'connection.update': {
      const [c] = parseItems(event, data, connectionSchema);
      const code = toCode(c!.statusReason);
      const state = c!.state.toLowerCase();
      if (state === 'open') out.events.push({ type: 'connection', state: 'open' });
      else if (state === 'connecting') out.events.push({ type: 'connection', state: 'connecting' });
      else if (state === 'close') {
        // Evolution emits `close` only when it will not reconnect by itself: a human must act.
        out.events.push({ type: 'connection', state: 'close', stopReason: stopReasonForCode(code), detail: `connection closed${code !== undefined ? ` (code ${code})` : ''}` });
      } else if (state === 'refused') {
        out.events.push({ type: 'connection', state: 'close', stopReason: 'logged_out', detail: 'QR code limit reached; scan a new QR code' });
      } else out.events.push({ type: 'connection', state: 'unknown', detail: `state ${c!.state}` });
      break;
    }
    case 'status.instance': {
      const [s] = parseItems(event, data, statusInstanceSchema);
      const status = s!.status.toLowerCase();
      if (status === 'closed') {
        const code = toCode(s!.disconnectionReasonCode);
        out.events.push({ type: 'connection', state: 'close', stopReason: stopReasonForCode(code), detail: `instance closed${code !== undefined ? ` (code ${code})` : ''}` });
      } else if (status === 'removed') {
        out.events.push({ type: 'connection', state: 'close', stopReason: 'logged_out', detail: 'instance removed' });
      }
      break;
    }
    case 'logout.instance':
      // Evolution sends `data: null` here.
      out.events.push({ type: 'connection', state: 'close', stopReason: 'logged_out', detail: 'instance logged out' });
      break;
    case 'remove.instance':
      out.events.push({ type: 'connection', state: 'close', stopReason: 'logged_out', detail: 'instance removed' });
      break;
    default:
      break;
  }
  return out;
}

function sentRecord(m: z.infer<typeof messageSchema>, now: number): SentRecord {
  return {
    providerMessageId: m.key.id,
    remoteJid: normalizeJid(m.key.remoteJid),
    text: messageText(m.message),
    messageType: m.messageType ?? null,
    at: timestampMs(m.messageTimestamp) ?? now,
  };
}
