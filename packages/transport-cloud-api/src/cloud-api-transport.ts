import { z } from 'zod';
import { checkOutbound, fileNameFromUrl, nodeFetch, outboundContentRules, validate, TransportError, WebhookError, type OutboundMessage, type SendOptions, type SendResult, type Transport, type TransportEvent } from '@disparo/core/transport';
import { classifyCloudApiError, type Backoffs } from './classify.js';
import { readHealth, pacingRecommendation, type CloudApiHealth, type PacingRecommendation, type QualitySignal, type QualityUpdate } from './health.js';
import { graphRequest, type GraphClient, type GraphResult } from './http.js';
import { optionsSchema, type CloudApiTransportOptions, type ResolvedOptions } from './options.js';
import { headerValue, SIGNATURE_HEADER, verifyCloudApiSignature, type WebhookHeaders } from './signature.js';
import { badTemplateParameter, isTemplateText, parseTemplateText, templatePayload, templateSchema, TemplateTextError, type CloudApiTemplate } from './template.js';
import { verifyCloudApiSubscription, type VerificationAnswer, type VerificationQuery } from './verification.js';
import { parseCloudApiWebhook, type ParsedCloudApiWebhook } from './webhook.js';

/**
 * An `OutboundMessage` that may carry a template directly. Core's message has no `template` field
 * yet; a campaign option will fill this one (see the README), and the transport already reads it.
 */
export type CloudApiOutboundMessage = OutboundMessage & { template?: CloudApiTemplate | null };

/** One WhatsApp Business phone number on Meta's Cloud API as a Disparo `Transport`. */
export interface CloudApiTransport extends Transport {
  readonly name: 'cloud-api';
  readonly phoneNumberId: string;
  send(message: CloudApiOutboundMessage, options?: SendOptions): Promise<SendResult>;
  /** Verify `X-Hub-Signature-256` over the raw body, then turn it into this number's events. */
  parseWebhook(body: unknown, headers?: WebhookHeaders | Headers): TransportEvent[];
  /** The same, with quality updates and error reports (what `parseWebhook` returns is its `events`). */
  parseWebhookDetailed(body: unknown, headers?: WebhookHeaders | Headers): ParsedCloudApiWebhook;
  /** Meta's GET handshake with this transport's `verifyToken`. */
  verifySubscription(query: VerificationQuery): VerificationAnswer;
  /** Quality rating, throughput level and messaging limit. Never throws: a failed reading has `ok: false` and `error`. */
  health(): Promise<CloudApiHealth>;
  /** `pacingRecommendation` under this transport's `pacing` policy. */
  pacingRecommendation(signal: QualitySignal): PacingRecommendation;
  close(): Promise<void>;
}

/** Pair-rate (131056) memory: recipients remembered for escalating back-offs. */
const PAIR_MEMORY = 10_000;
/** Meta's limit for `biz_opaque_callback_data`. */
export const MAX_CALLBACK_DATA = 512;

const mediaSchema = z
  .object({
    url: z.url({ protocol: /^https?$/, error: 'must be a public http(s) URL (the Cloud API fetches media by link)' }),
    type: z.enum(['image', 'video', 'document', 'audio']),
    mimeType: z.string().min(1).nullish(),
    fileName: z.string().min(1).nullish(),
  })
  .nullish();

const outboundSchema = z.object({
  to: z
    .string()
    .regex(/^\+?\d{6,20}$/, 'must be E.164 digits (country code first, no +)')
    .transform((v) => v.replace(/^\+/, '')),
  text: z.string(),
  media: mediaSchema,
  idempotencyKey: z.string().max(MAX_CALLBACK_DATA, `must be at most ${MAX_CALLBACK_DATA} characters (it travels as biz_opaque_callback_data)`),
  template: templateSchema.nullish(),
}).superRefine(outboundContentRules);

const sendResponseSchema = z.object({
  contacts: z.array(z.object({ input: z.string().optional(), wa_id: z.string().optional() }).loose()).optional(),
  messages: z.array(z.object({ id: z.string().min(1), message_status: z.string().optional() }).loose()).min(1),
});

/** `message.text` read as the Cloud API request body, or a `permanent` error (nothing sent). */
function buildBody(o: ResolvedOptions, m: z.output<typeof outboundSchema>, where: string): Record<string, unknown> {
  const refuse = (what: string, scope?: 'campaign' | 'recipient') => new TransportError('permanent', `${where}: ${what}`, scope ? { scope } : {});
  const base: Record<string, unknown> = { messaging_product: 'whatsapp', recipient_type: 'individual', to: m.to };
  if (m.idempotencyKey.length > 0) base.biz_opaque_callback_data = m.idempotencyKey;

  let template: CloudApiTemplate | null = m.template ?? null;
  if (!template && o.templateDirective && isTemplateText(m.text)) {
    try {
      template = parseTemplateText(m.text);
    } catch (error) {
      if (error instanceof TemplateTextError) throw refuse(`template directive: ${error.message}`, error.scope);
      throw error;
    }
  }
  if (template) {
    const bad = badTemplateParameter(template);
    // Meta would answer 100/132000 for this one recipient's value: fail it here, not the campaign.
    if (bad) throw refuse(`template ${template.name}: parameter ${bad}; WhatsApp refuses such template parameters`, 'recipient');
    return { ...base, type: 'template', template: templatePayload(template, m.media) };
  }

  const text = m.text.trim().length > 0 ? m.text : '';
  if (m.media) {
    const media = m.media;
    if (media.type === 'audio') return { ...base, type: 'audio', audio: { link: media.url } };
    const object: Record<string, unknown> = { link: media.url };
    if (text) object.caption = text;
    if (media.type === 'document') {
      const filename = media.fileName ?? fileNameFromUrl(media.url);
      if (filename) object.filename = filename;
    }
    return { ...base, type: media.type, [media.type]: object };
  }
  return { ...base, type: 'text', text: { preview_url: o.previewUrl, body: m.text } };
}

/**
 * A `Transport` for one WhatsApp Business phone number on Meta's Cloud API. See the README for the
 * error table, templates, webhooks and quality-aware pacing.
 */
export function createCloudApiTransport(options: CloudApiTransportOptions): CloudApiTransport {
  const o: ResolvedOptions = validate(optionsSchema, options, 'Cloud API transport options');
  const now = o.clock ? () => o.clock!.now() : Date.now;
  const fetchImpl = o.fetch ?? nodeFetch;
  const client: GraphClient = { root: `${o.baseUrl}/${o.apiVersion}`, accessToken: o.accessToken, phoneNumberId: o.phoneNumberId, fetch: fetchImpl };
  const where = `[cloud-api] ${o.phoneNumberId}`;
  let displayPhoneNumber = o.displayPhoneNumber;
  /** recipient -> consecutive 131056 answers, for a back-off that grows 4x per repeat. */
  const pairHits = new Map<string, { count: number; at: number }>();

  const pairBackoff = (to: string): number => {
    const hit = pairHits.get(to);
    const count = hit && now() - hit.at < o.pairRateMaxBackoffMs ? hit.count : 0;
    return Math.min(o.pairRateBackoffMs * 4 ** count, o.pairRateMaxBackoffMs);
  };
  const rememberPairHit = (to: string) => {
    const hit = pairHits.get(to);
    const count = hit && now() - hit.at < o.pairRateMaxBackoffMs ? hit.count + 1 : 1;
    pairHits.delete(to);
    pairHits.set(to, { count, at: now() });
    if (pairHits.size > PAIR_MEMORY) pairHits.delete(pairHits.keys().next().value!);
  };
  const backoffs = (to?: string): Backoffs => ({ throughputBackoffMs: o.throughputBackoffMs, maintenanceBackoffMs: o.maintenanceBackoffMs, pairRateBackoffMs: to ? pairBackoff(to) : o.pairRateBackoffMs });

  const fail = (res: GraphResult, to: string): TransportError => {
    const error = classifyCloudApiError({ status: res.status, body: res.json, operation: 'send', phoneNumberId: o.phoneNumberId, backoffs: backoffs(to), retryAfter: res.headers.get('retry-after'), route: res.route, to });
    if (error.providerCode === 131056) rememberPairHit(to);
    return error;
  };

  const detailed = (body: unknown, headers: WebhookHeaders | Headers = {}): ParsedCloudApiWebhook => {
    if (!o.appSecret) {
      throw new WebhookError(`${where} webhook rejected: no appSecret is configured on this transport, so X-Hub-Signature-256 cannot be checked. Set appSecret (Meta app > Settings > Basic > App Secret).`, 'unsigned');
    }
    const check = verifyCloudApiSignature(body, headerValue(headers, SIGNATURE_HEADER), o.appSecret);
    if (!check.ok) throw new WebhookError(`${where} webhook rejected: ${check.message}`, check.reason);
    const parsed = parseCloudApiWebhook(check.bytes, { phoneNumberId: o.phoneNumberId, displayPhoneNumber, now, backoffs: backoffs() });
    if (!displayPhoneNumber) displayPhoneNumber = parsed.numbers.find((n) => n.phoneNumberId === o.phoneNumberId)?.displayPhoneNumber;
    for (const update of parsed.quality) {
      const advice = pacingRecommendation(update, o.pacing);
      try {
        o.onQualityUpdate?.(update, advice);
      } catch {
        // A listener's failure must not lose the webhook's receipts.
      }
      // The only lever today's engine offers: hold the number. Used only when the policy says pause.
      if (advice.pauseMarketing) {
        parsed.events.push({ type: 'account_hold', until: now() + o.pacing.pauseMs, reason: `${where} quality ${update.event}: ${advice.reasons.join('; ')}` });
      }
    }
    return parsed;
  };

  const transport: CloudApiTransport = {
    name: 'cloud-api',
    phoneNumberId: o.phoneNumberId,

    async send(message, sendOptions = {}) {
      const m = checkOutbound(outboundSchema, message, where);
      const body = buildBody(o, m, where);
      const res = await graphRequest(client, { method: 'POST', path: `/${o.phoneNumberId}/messages`, body, operation: 'send', timeoutMs: o.timeoutMs, signal: sendOptions.signal });
      if (res.status < 200 || res.status >= 300) throw fail(res, m.to);
      const parsed = sendResponseSchema.safeParse(res.json);
      if (!parsed.success) {
        // Meta took it (2xx) but we cannot read the wamid: its status webhook (with the key) settles it.
        throw new TransportError('ambiguous', `${where} ${res.route}: HTTP ${res.status} without messages[0].id; the message was probably sent: ${res.text.slice(0, 200)}`, { providerCode: res.status });
      }
      pairHits.delete(m.to);
      const result: SendResult = { providerMessageId: parsed.data.messages[0]!.id, acceptedAt: now() };
      const waId = parsed.data.contacts?.[0]?.wa_id;
      if (waId) result.remoteJid = waId;
      return result;
    },

    parseWebhook(body, headers = {}) {
      return detailed(body, headers).events;
    },

    parseWebhookDetailed: detailed,

    verifySubscription(query) {
      if (!o.verifyToken) return { status: 403, body: 'Forbidden: no verifyToken is configured on this transport', contentType: 'text/plain' };
      return verifyCloudApiSubscription(query, o.verifyToken);
    },

    health() {
      return readHealth(client, o, now);
    },

    pacingRecommendation(signal) {
      return pacingRecommendation(signal, o.pacing);
    },

    async close() {
      pairHits.clear();
    },
  };
  return transport;
}

/** `health()` without a transport, from the same options. Meta or network failures come back as `ok: false`; bad options throw `ValidationError`. */
export async function readCloudApiHealth(options: CloudApiTransportOptions): Promise<CloudApiHealth> {
  return createCloudApiTransport(options).health();
}

export type { QualityUpdate };
