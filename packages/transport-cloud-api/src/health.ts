import { TransportError, validate } from '@disparo/core/transport';
import { classifyCloudApiError } from './classify.js';
import { graphRequest, type GraphClient } from './http.js';
import type { MessagingLimit, PacingRecommendation, QualitySignal, QualityUpdate } from './quality.js';

export type { MessagingLimit, PacingRecommendation, QualitySignal, QualityUpdate } from './quality.js';
import { HIGH_THROUGHPUT, pacingPolicySchema, STANDARD_THROUGHPUT, type PacingPolicy, type ResolvedOptions } from './options.js';

/** Unique recipients per 24 h outside a customer window, per business portfolio, for each limit tier. */
export const MESSAGING_LIMITS: Readonly<Record<string, number | null>> = Object.freeze({
  TIER_50: 50,
  TIER_250: 250,
  TIER_1K: 1_000,
  TIER_2K: 2_000,
  TIER_10K: 10_000,
  TIER_100K: 100_000,
  TIER_UNLIMITED: null,
  TIER_NOT_SET: null,
});


export function messagingLimit(tier: string): MessagingLimit {
  return { tier, uniqueRecipientsPerDay: MESSAGING_LIMITS[tier] ?? null };
}

/** What a pacing decision reads: a `health()` reading, a quality webhook, or your own values. */
/** One `health()` reading. It never throws: a failed reading carries `error` and changes nothing. */
export interface CloudApiHealth extends QualitySignal {
  ok: boolean;
  /** When it was read (transport clock). */
  at: number;
  phoneNumberId: string;
  displayPhoneNumber?: string;
  verifiedName?: string;
  /** Why the reading failed (token, network, Meta). The campaign is not affected. */
  error?: { kind: TransportError['kind']; message: string; providerCode?: string | number | undefined };
  /** `pacingRecommendation` of this reading under the transport's policy (the configured rate when the reading failed). */
  recommendation: PacingRecommendation;
}

const LOW = new Set(['RED', 'FLAGGED', 'DOWNGRADE']);

/**
 * Turn a health reading or a quality webhook into a pacing recommendation. Pure: same input, same
 * answer. The policy's defaults: GREEN (or unknown) keeps `ratePerSecond` (80); YELLOW halves it;
 * RED, `FLAGGED` or `DOWNGRADE` quarters it (`red: 'slow'`) or pauses marketing (`red: 'pause'`);
 * `throughput.level: STANDARD` caps it at 80; `HIGH` or `THROUGHPUT_UPGRADE` raises it to
 * `upgradedRatePerSecond` (1,000) only with `allowThroughputUpgrade`. The messaging limit becomes
 * `dailyCap`. Informational: nothing here stops a campaign by itself.
 */
export function pacingRecommendation(signal: QualitySignal, policy: PacingPolicy = {}): PacingRecommendation {
  const p = validate(pacingPolicySchema, policy, 'pacing policy');
  const reasons: string[] = [];
  let rate = p.ratePerSecond;
  let raised = false;
  const level = signal.throughputLevel?.toUpperCase();
  const event = signal.event?.toUpperCase();
  const rating = signal.qualityRating?.toUpperCase();

  if (level === 'HIGH' || event === 'THROUGHPUT_UPGRADE') {
    if (p.allowThroughputUpgrade && p.upgradedRatePerSecond > rate) {
      rate = p.upgradedRatePerSecond;
      raised = true;
      reasons.push(`throughput upgraded by Meta: ${rate} messages/s allowed by the policy`);
    } else if (!p.allowThroughputUpgrade) {
      reasons.push('throughput upgraded by Meta; set allowThroughputUpgrade to use up to 1,000 messages/s');
    }
  } else if (level === 'STANDARD' && rate > STANDARD_THROUGHPUT) {
    rate = STANDARD_THROUGHPUT;
    reasons.push(`throughput level STANDARD: at most ${STANDARD_THROUGHPUT} messages/s`);
  }

  let action: PacingRecommendation['action'] = 'normal';
  const low = (rating && LOW.has(rating)) || (event && LOW.has(event));
  if (low) {
    const why = rating && LOW.has(rating) ? `quality ${rating}` : `quality event ${event}`;
    rate = rate * p.redFactor;
    if (p.red === 'pause') {
      action = 'pause_marketing';
      reasons.push(`${why}: pause marketing traffic; other traffic at ${round(rate)} messages/s`);
    } else {
      action = 'slow';
      reasons.push(`${why}: slow down to ${round(rate)} messages/s`);
    }
  } else if (rating === 'YELLOW') {
    rate = rate * p.yellowFactor;
    action = 'slow';
    reasons.push(`quality YELLOW: slow down to ${round(rate)} messages/s`);
  }

  rate = Math.min(round(rate), HIGH_THROUGHPUT);
  const dailyCap = signal.messagingLimit?.uniqueRecipientsPerDay ?? null;
  if (dailyCap !== null) reasons.push(`messaging limit ${signal.messagingLimit!.tier}: at most ${dailyCap} unique recipients per 24 h (shared by the portfolio)`);
  if (reasons.length === 0) reasons.push('quality fine: configured rate');
  return { action, ratePerSecond: rate, minIntervalMs: Math.ceil(1000 / rate), pauseMarketing: action === 'pause_marketing', dailyCap, raised, reasons };
}

const round = (n: number) => Math.round(n * 100) / 100;

type Rec = Record<string, unknown>;
const isRecord = (v: unknown): v is Rec => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

/** Fields read by `health()`. `messaging_limit_tier` is deprecated and not asked for (read when present). */
export const HEALTH_FIELDS = ['quality_rating', 'throughput', 'whatsapp_business_manager_messaging_limit', 'display_phone_number', 'verified_name'] as const;

/** `GET /{version}/{phone-number-id}?fields=…`, never throwing. */
export async function readHealth(client: GraphClient, o: ResolvedOptions, now: () => number): Promise<CloudApiHealth> {
  const at = now();
  const base = { at, phoneNumberId: o.phoneNumberId };
  try {
    const res = await graphRequest(client, { method: 'GET', path: `/${o.phoneNumberId}`, query: { fields: HEALTH_FIELDS.join(',') }, operation: 'read', timeoutMs: o.healthTimeoutMs });
    if (res.status < 200 || res.status >= 300) {
      throw classifyCloudApiError({ status: res.status, body: res.json, operation: 'read', phoneNumberId: o.phoneNumberId, backoffs: o, retryAfter: res.headers.get('retry-after'), route: res.route });
    }
    if (!isRecord(res.json)) throw new TransportError('transient', `[cloud-api] ${o.phoneNumberId} ${res.route}: HTTP ${res.status} without a JSON object`, { providerCode: res.status });
    const j = res.json;
    const tier = str(j.whatsapp_business_manager_messaging_limit) ?? (isRecord(j.whatsapp_business_manager_messaging_limit) ? str(j.whatsapp_business_manager_messaging_limit.current_limit) : undefined) ?? str(j.messaging_limit_tier);
    const signal: QualitySignal = {
      qualityRating: str(j.quality_rating),
      throughputLevel: isRecord(j.throughput) ? str(j.throughput.level) : undefined,
      messagingLimit: tier ? messagingLimit(tier) : undefined,
    };
    const health: CloudApiHealth = { ok: true, ...base, recommendation: pacingRecommendation(signal, o.pacing) };
    if (signal.qualityRating) health.qualityRating = signal.qualityRating;
    if (signal.throughputLevel) health.throughputLevel = signal.throughputLevel;
    if (signal.messagingLimit) health.messagingLimit = signal.messagingLimit;
    const display = str(j.display_phone_number);
    if (display) health.displayPhoneNumber = display;
    const verified = str(j.verified_name);
    if (verified) health.verifiedName = verified;
    return health;
  } catch (error) {
    const e = TransportError.isInstance(error) ? error : null;
    return {
      ok: false,
      ...base,
      error: { kind: e?.kind ?? 'transient', message: e?.message ?? String(error), providerCode: e?.providerCode },
      recommendation: pacingRecommendation({}, o.pacing),
    };
  }
}
