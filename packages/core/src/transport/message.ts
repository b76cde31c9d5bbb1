import { z } from 'zod';
import { TransportError, ValidationError } from '../errors.js';

/**
 * What any WhatsApp message must carry, for every provider's outbound schema (`.superRefine` it):
 * something to show (text, media or a provider template) and no text with audio (WhatsApp has no
 * audio caption). Empty text is the recipient's own (their rendered text); audio with text is the
 * campaign's media choice, so that issue names `media`.
 */
export function outboundContentRules(m: { text: string; media?: { type: string } | null; template?: unknown }, ctx: z.RefinementCtx): void {
  const hasText = m.text.trim().length > 0;
  if (!hasText && !m.media && !m.template) ctx.addIssue({ code: 'custom', message: 'text is required when there is no media', path: ['text'] });
  if (hasText && m.media?.type === 'audio') ctx.addIssue({ code: 'custom', message: 'an audio message cannot carry text (WhatsApp has no audio caption): send the text without audio, or the audio with an empty text', path: ['media'] });
}

/**
 * The one schema of an outbound message, for transports to check what the engine (or a direct
 * caller) hands them: `to` as E.164 digits without '+' (or a WhatsApp JID), text or media or both.
 */
export const outboundMessageSchema = z
  .object({
    to: z.string().regex(/^(\d{6,20}|[^@\s]+@(s\.whatsapp\.net|c\.us|g\.us|lid|broadcast|newsletter))$/, 'must be E.164 digits without + (or a WhatsApp JID)'),
    text: z.string(),
    media: z
      .object({
        url: z.string().min(1),
        type: z.enum(['image', 'video', 'document', 'audio']),
        mimeType: z.string().min(1).nullish(),
        fileName: z.string().min(1).nullish(),
      })
      .nullish(),
    idempotencyKey: z.string().min(1),
  })
  .superRefine(outboundContentRules);

export type CheckedOutboundMessage = z.output<typeof outboundMessageSchema>;

/** The last path segment of a media URL, decoded (a document's file name when none is given); undefined when there is none. */
export function fileNameFromUrl(url: string): string | undefined {
  try {
    const last = new URL(url).pathname.split('/').filter(Boolean).pop();
    return last ? decodeURIComponent(last) : undefined;
  } catch {
    return undefined;
  }
}

/** What every recipient of a campaign shares: an invalid one fails them all alike. */
const CAMPAIGN_WIDE_FIELDS = new Set(['media', 'template', 'idempotencyKey']);

/**
 * A transport's check of what it is asked to send, before anything leaves: the message read with
 * `schema` (`outboundMessageSchema`, or a provider's own extension of it), or a `permanent`
 * `TransportError` naming the field (nothing was sent). Scope `campaign` when the broken field is
 * one every recipient shares (media, template, key): the engine pauses the campaign instead of
 * failing recipient after recipient.
 */
export function checkOutbound<S extends z.ZodType>(schema: S, message: unknown, where: string): z.output<S> {
  const checked = schema.safeParse(message);
  if (checked.success) return checked.data;
  const error = ValidationError.fromZod('outbound message', checked.error);
  const campaignWide = checked.error.issues.some((i) => CAMPAIGN_WIDE_FIELDS.has(String(i.path[0])));
  throw new TransportError('permanent', `${where}: ${error.message}`, { cause: error, scope: campaignWide ? 'campaign' : 'recipient' });
}

// ---- reading WhatsApp message content (Baileys `proto.IMessage`, also as Evolution renders it in JSON)

type Rec = Record<string, unknown>;
const isRecord = (v: unknown): v is Rec => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** Wrappers whose inner `message` holds the real content. */
const WRAPPERS = ['ephemeralMessage', 'viewOnceMessage', 'viewOnceMessageV2', 'viewOnceMessageV2Extension', 'documentWithCaptionMessage', 'editedMessage'];

/** Content that is not something a person wrote: key exchange, reactions, edits/deletes, poll votes. */
const NOT_A_REPLY = new Set(['protocolMessage', 'reactionMessage', 'senderKeyDistributionMessage', 'pollUpdateMessage', 'messageContextInfo', 'keepInChatMessage', 'encReactionMessage']);

/** The text a person sees: a text message's body, a media caption, or a button/list reply. */
export function messageText(message: unknown, depth = 0): string | null {
  if (!isRecord(message) || depth > 3) return null;
  const direct =
    str(message.conversation) ??
    (isRecord(message.extendedTextMessage) ? str(message.extendedTextMessage.text) : null) ??
    (isRecord(message.imageMessage) ? str(message.imageMessage.caption) : null) ??
    (isRecord(message.videoMessage) ? str(message.videoMessage.caption) : null) ??
    (isRecord(message.documentMessage) ? str(message.documentMessage.caption) : null) ??
    (isRecord(message.buttonsResponseMessage) ? str(message.buttonsResponseMessage.selectedDisplayText) : null) ??
    (isRecord(message.templateButtonReplyMessage) ? str(message.templateButtonReplyMessage.selectedDisplayText) : null) ??
    (isRecord(message.listResponseMessage) ? str(message.listResponseMessage.title) : null);
  if (direct !== null) return direct;
  for (const w of WRAPPERS) {
    const inner = message[w];
    if (isRecord(inner)) {
      const found = messageText(inner.message, depth + 1);
      if (found !== null) return found;
    }
  }
  return null;
}

/** Whether a message carries something a person sent (text, media, a reply), not only protocol traffic. */
export function isPersonMessage(message: unknown): boolean {
  if (!isRecord(message)) return false;
  return Object.entries(message).some(([k, v]) => v !== null && v !== undefined && !NOT_A_REPLY.has(k));
}

/** WhatsApp message types for each core media type (`messageType` in Evolution's records). */
export const MEDIA_MESSAGE_TYPES: Record<'image' | 'video' | 'document' | 'audio', string[]> = {
  image: ['imageMessage'],
  video: ['videoMessage', 'ptvMessage'],
  document: ['documentMessage', 'documentWithCaptionMessage'],
  audio: ['audioMessage'],
};

/** A protobuf `uint64`/`int64` as a number: a number, a numeric string, a bigint, or a Long (`{low, high}` / `toNumber()`). */
export function longToNumber(value: unknown): number | null {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'string') return /^\d+$/.test(value.trim()) ? Number(value.trim()) : null;
  if (isRecord(value)) {
    if (typeof value.toNumber === 'function') {
      const n = (value.toNumber as () => unknown)();
      return typeof n === 'number' && Number.isFinite(n) ? n : null;
    }
    if (typeof value.low === 'number') return (value.low >>> 0) + (typeof value.high === 'number' ? value.high * 2 ** 32 : 0);
  }
  return null;
}

/** A `messageTimestamp` (epoch seconds, as a number, string or Long) in epoch ms; null when absent or not positive. */
export function timestampMs(value: unknown): number | null {
  const seconds = longToNumber(value);
  if (seconds === null || seconds <= 0) return null;
  // Tolerate a value already in milliseconds.
  return seconds > 1e12 ? Math.trunc(seconds) : Math.trunc(seconds * 1000);
}

/** A `Date`, ISO string or epoch (s or ms) as epoch ms. */
export function dateMs(value: unknown): number | null {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.getTime();
  if (typeof value === 'string' && !/^\d+$/.test(value.trim())) {
    const at = Date.parse(value);
    return Number.isNaN(at) ? null : at;
  }
  return timestampMs(value);
}

/** Same text as a person reads it: trims, and treats CRLF and LF alike. */
export function sameText(a: string, b: string): boolean {
  const norm = (s: string) => s.replace(/\r\n?/g, '\n').trim();
  return norm(a) === norm(b);
}
