import { z } from 'zod';
import { WebhookError, type TransportEvent } from '@disparo/core/transport';
import { classifyCloudApiCode, describeGraphError, errorOptions, type Backoffs, type CodeClass } from './classify.js';
import { messagingLimit, type QualityUpdate } from './health.js';
import { rawBytes } from './signature.js';

/** One error Meta reported in a webhook (`statuses[].errors[]` or the top-level `value.errors[]`). */
export interface WebhookErrorReport {
  phoneNumberId: string | null;
  code: number;
  title: string;
  details?: string;
  /** The code's row in `CLOUD_API_ERROR_TABLE`, or null for an unknown code. */
  class: CodeClass | null;
  /** For a failed status: its wamid. */
  providerMessageId?: string;
}

export interface ParsedCloudApiWebhook {
  /** This number's events, in body order: statuses (all of one POST together), holds, stops, inbound messages. */
  events: TransportEvent[];
  /** `phone_number_quality_update` changes for this number. */
  quality: QualityUpdate[];
  /** Every error reported for this number (failed statuses and top-level `errors`). */
  errors: WebhookErrorReport[];
  /** (phone_number_id, display_phone_number) pairs seen in `metadata`, to learn this number's display form. */
  numbers: Array<{ phoneNumberId: string; displayPhoneNumber: string }>;
}

export interface ParseOptions {
  phoneNumberId: string;
  /** Digits; quality updates of other display numbers are skipped. Unknown: all are taken. */
  displayPhoneNumber?: string | undefined;
  now: () => number;
  backoffs: Backoffs;
}

const code = z.union([z.number().int(), z.string().regex(/^\d+$/).transform(Number)]);
const epochSeconds = z.union([z.number(), z.string().regex(/^\d+$/).transform(Number)]);

const errorSchema = z.object({
  code,
  title: z.string().optional(),
  message: z.string().optional(),
  error_data: z.object({ details: z.string().optional() }).partial().nullish(),
});

const statusSchema = z.object({
  id: z.string().min(1),
  status: z.string().min(1),
  timestamp: epochSeconds.optional(),
  recipient_id: z.string().optional(),
  biz_opaque_callback_data: z.string().optional(),
  errors: z.array(errorSchema).optional(),
});

const inboundSchema = z
  .object({
    from: z.string().min(1),
    id: z.string().min(1),
    timestamp: epochSeconds.optional(),
    type: z.string().min(1),
  })
  .loose();

const messagesValueSchema = z.object({
  metadata: z.object({ phone_number_id: z.string().optional(), display_phone_number: z.string().optional() }).partial().optional(),
  statuses: z.array(statusSchema).optional(),
  messages: z.array(inboundSchema).optional(),
  errors: z.array(errorSchema).optional(),
});

const qualityValueSchema = z.object({
  display_phone_number: z.union([z.string(), z.number()]).transform(String),
  event: z.string().min(1),
  current_limit: z.string().optional(),
  old_limit: z.string().optional(),
  max_daily_conversations_per_business: z.string().optional(),
});

const envelopeSchema = z.object({
  object: z.string(),
  entry: z.array(
    z.object({
      id: z.string().optional(),
      time: z.number().optional(),
      changes: z.array(z.object({ field: z.string(), value: z.unknown() })),
    }),
  ),
});

function malformed(what: string, error: z.ZodError | string): WebhookError {
  const detail = typeof error === 'string' ? error : error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
  return new WebhookError(`[cloud-api] malformed webhook (${what}): ${detail}`, 'malformed');
}

/** Decode a webhook body: the raw bytes/string of it, or already-parsed JSON. */
export function decodeWebhookBody(body: unknown): Record<string, unknown> {
  let value = body;
  const bytes = rawBytes(body);
  if (bytes) {
    try {
      value = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw new WebhookError('[cloud-api] malformed webhook: the body is not JSON', 'malformed');
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new WebhookError('[cloud-api] malformed webhook: the body is not a JSON object', 'malformed');
  return value as Record<string, unknown>;
}

/**
 * Which numbers a webhook body is about, to route Meta's one callback URL (per app) to the right
 * accounts: `phone_number_id`s from `metadata`, and display numbers (digits) from quality updates.
 * Reads without verifying: use it to pick accounts, then let each account's transport verify.
 */
export function cloudApiWebhookTargets(body: unknown): { phoneNumberIds: string[]; displayPhoneNumbers: string[] } {
  const ids = new Set<string>();
  const displays = new Set<string>();
  try {
    const parsed = envelopeSchema.safeParse(decodeWebhookBody(body));
    if (parsed.success) {
      for (const entry of parsed.data.entry) {
        for (const change of entry.changes) {
          const v = change.value as Record<string, any> | null;
          if (typeof v?.metadata?.phone_number_id === 'string') ids.add(v.metadata.phone_number_id);
          if (change.field === 'phone_number_quality_update' && v?.display_phone_number !== undefined) displays.add(String(v.display_phone_number).replace(/\D/g, ''));
        }
      }
    }
  } catch {
    // not a webhook: no targets
  }
  return { phoneNumberIds: [...ids], displayPhoneNumbers: [...displays] };
}

/** Core's statuses; `played` (voice/video) counts as read. `deleted`, `warning` and others change nothing. */
const STATUS: Record<string, 'sent' | 'delivered' | 'read' | 'failed' | undefined> = { sent: 'sent', delivered: 'delivered', read: 'read', played: 'read', failed: 'failed' };

/** What a person wrote, per inbound message type (reactions and system notices are not replies). */
function inboundText(m: z.infer<typeof inboundSchema>): string | null {
  const any = m as Record<string, any>;
  switch (m.type) {
    case 'text':
      return typeof any.text?.body === 'string' ? any.text.body : '';
    case 'button':
      // A quick-reply button of a template, e.g. "Stop promotions".
      return typeof any.button?.text === 'string' ? any.button.text : typeof any.button?.payload === 'string' ? any.button.payload : '';
    case 'interactive': {
      const i = any.interactive ?? {};
      return i.button_reply?.title ?? i.list_reply?.title ?? '';
    }
    case 'image':
    case 'video':
    case 'document':
      return typeof any[m.type]?.caption === 'string' ? any[m.type].caption : '';
    case 'reaction':
    case 'system':
    case 'request_welcome':
    case 'errors':
      return null;
    default:
      return '';
  }
}

const secondsToMs = (s: number | undefined): number | null => (s !== undefined && Number.isFinite(s) && s > 0 ? (s > 1e12 ? Math.trunc(s) : Math.trunc(s * 1000)) : null);

function describeError(e: z.infer<typeof errorSchema>): { text: string; cls: CodeClass | null; title: string; details?: string } {
  const cls = classifyCloudApiCode(e.code);
  const details = e.error_data?.details ?? undefined;
  const title = e.title ?? e.message ?? cls?.title ?? `error ${e.code}`;
  const base = describeGraphError({ code: e.code, message: title, ...(details ? { details } : {}) });
  const tags = cls ? [cls.kind, cls.scope, cls.optOut ? 'opt-out' : undefined].filter(Boolean).join(', ') : 'unknown code';
  return { text: `${base} [${tags}]`, cls, title, ...(details ? { details } : {}) };
}

/**
 * Turn a verified Cloud API webhook body into this number's events (see the README's table).
 * Throws `WebhookError` (`malformed`) when the body or a relevant item lacks what it needs.
 * Changes for other numbers (one callback URL serves a whole app) are skipped.
 */
export function parseCloudApiWebhook(body: unknown, options: ParseOptions): ParsedCloudApiWebhook {
  const decoded = decodeWebhookBody(body);
  const envelope = envelopeSchema.safeParse(decoded);
  if (!envelope.success) throw malformed('envelope', envelope.error);
  const out: ParsedCloudApiWebhook = { events: [], quality: [], errors: [], numbers: [] };
  if (envelope.data.object !== 'whatsapp_business_account') return out;
  const now = options.now();
  const statuses: TransportEvent[] = [];
  const others: TransportEvent[] = [];
  /** One hold / stop per cause per body, however many items repeat it. */
  const seen = new Set<string>();

  /** What an error means for the account beyond its message: rate limits hold it, account codes stop it. */
  const accountEffect = (e: z.infer<typeof errorSchema>, cls: CodeClass | null, text: string) => {
    if (!cls) return;
    if (cls.kind === 'rate_limited' && cls.scope !== 'recipient') {
      const retry = errorOptions(cls, e.code, options.backoffs)?.retryAfterMs ?? options.backoffs.throughputBackoffMs;
      if (seen.has(`hold:${e.code}`)) return;
      seen.add(`hold:${e.code}`);
      others.push({ type: 'account_hold', until: now + retry, reason: `[cloud-api] ${options.phoneNumberId}: ${text}` });
    } else if (cls.kind === 'account') {
      if (seen.has(`stop:${e.code}`)) return;
      seen.add(`stop:${e.code}`);
      others.push({ type: 'connection', state: 'close', stopReason: cls.accountReason ?? 'restricted', detail: `[cloud-api] ${options.phoneNumberId}: ${text}${cls.hint ? `; ${cls.hint}` : ''}` });
    }
  };

  envelope.data.entry.forEach((entry, ei) => {
    entry.changes.forEach((change, ci) => {
      const where = `entry.${ei}.changes.${ci}`;
      if (change.field === 'messages') {
        const parsed = messagesValueSchema.safeParse(change.value);
        if (!parsed.success) throw malformed(`${where}.value`, parsed.error);
        const v = parsed.data;
        const id = v.metadata?.phone_number_id ?? null;
        if (id && v.metadata?.display_phone_number) out.numbers.push({ phoneNumberId: id, displayPhoneNumber: v.metadata.display_phone_number.replace(/\D/g, '') });
        if (id !== null && id !== options.phoneNumberId) return;

        for (const s of v.statuses ?? []) {
          const status = STATUS[s.status];
          if (!status) continue;
          const event: Extract<TransportEvent, { type: 'status' }> = { type: 'status', providerMessageId: s.id, status, at: secondsToMs(s.timestamp) ?? now };
          if (s.biz_opaque_callback_data) event.idempotencyKey = s.biz_opaque_callback_data;
          if (status === 'failed') {
            const first = s.errors?.[0];
            if (first) {
              const d = describeError(first);
              event.code = first.code;
              event.error = d.text;
              if (s.errors!.some((e) => classifyCloudApiCode(e.code)?.optOut)) event.optOut = true;
              for (const e of s.errors!) {
                const de = e === first ? d : describeError(e);
                out.errors.push({ phoneNumberId: id, code: e.code, title: de.title, ...(de.details ? { details: de.details } : {}), class: de.cls, providerMessageId: s.id });
                accountEffect(e, de.cls, de.text);
              }
            } else event.error = 'failed (no error given)';
          }
          statuses.push(event);
        }
        for (const e of v.errors ?? []) {
          const d = describeError(e);
          out.errors.push({ phoneNumberId: id, code: e.code, title: d.title, ...(d.details ? { details: d.details } : {}), class: d.cls });
          accountEffect(e, d.cls, d.text);
        }
        for (const m of v.messages ?? []) {
          const text = inboundText(m);
          if (text === null) continue;
          const from = m.from.replace(/\D/g, '');
          if (!from) continue;
          others.push({ type: 'inbound', from, text, at: secondsToMs(m.timestamp) ?? now, providerMessageId: m.id });
        }
      } else if (change.field === 'phone_number_quality_update') {
        const parsed = qualityValueSchema.safeParse(change.value);
        if (!parsed.success) throw malformed(`${where}.value`, parsed.error);
        const q = parsed.data;
        const display = q.display_phone_number.replace(/\D/g, '');
        if (options.displayPhoneNumber && display !== options.displayPhoneNumber) return;
        const tier = q.max_daily_conversations_per_business ?? q.current_limit;
        const update: QualityUpdate = { displayPhoneNumber: display, event: q.event, at: secondsToMs(entry.time) ?? now };
        if (q.current_limit) update.currentLimit = q.current_limit;
        if (q.old_limit) update.oldLimit = q.old_limit;
        if (tier) update.messagingLimit = messagingLimit(tier);
        out.quality.push(update);
      }
    });
  });
  // Statuses first, together: the engine applies one POST's receipts in one store call.
  out.events = [...statuses, ...others];
  return out;
}
