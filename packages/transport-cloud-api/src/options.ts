import { z } from 'zod';
import { clockOption } from '@disparo/core/transport';
import type { FetchLike } from './http.js';
import type { PacingRecommendation, QualityUpdate } from './quality.js';

const fn = <T>(what: string) => z.custom<T>((v) => typeof v === 'function', `must be ${what}`);


/** Meta's default throughput for a Cloud API number, and after its automatic upgrade. */
export const STANDARD_THROUGHPUT = 80;
export const HIGH_THROUGHPUT = 1_000;

/** How quality readings and quality webhooks turn into pacing (see `pacingRecommendation`). */
export const pacingPolicySchema = z
  .object({
    /** The rate you configured for this number (messages per second): GREEN keeps it. 20 for a number shared with the WhatsApp Business app. */
    ratePerSecond: z.number().positive().max(HIGH_THROUGHPUT).default(STANDARD_THROUGHPUT),
    /** YELLOW (medium quality): rate multiplied by this. */
    yellowFactor: z.number().gt(0).max(1).default(0.5),
    /** RED, or a `FLAGGED`/`DOWNGRADE` quality update: `slow` (rate times `redFactor`) or `pause` marketing traffic. */
    red: z.enum(['slow', 'pause']).default('slow'),
    redFactor: z.number().gt(0).max(1).default(0.25),
    /** With `red: 'pause'`, how long a quality webhook holds the number (an `account_hold` event). */
    pauseMs: z.number().int().positive().default(6 * 3_600_000),
    /** Raise the rate to `upgradedRatePerSecond` when Meta upgrades the number's throughput (`THROUGHPUT_UPGRADE`, `throughput.level: HIGH`). Off by default: you decide. */
    allowThroughputUpgrade: z.boolean().default(false),
    upgradedRatePerSecond: z.number().positive().max(HIGH_THROUGHPUT).default(HIGH_THROUGHPUT),
  })
  .strict();

export type PacingPolicy = z.input<typeof pacingPolicySchema>;
export type ResolvedPacingPolicy = z.output<typeof pacingPolicySchema>;

const baseUrl = z
  .url({ protocol: /^https?$/, error: 'must be an http(s) URL, e.g. https://graph.facebook.com' })
  .transform((u) => u.replace(/\/+$/, ''));

export const optionsSchema = z
  .object({
    /** The number's Phone number ID from WhatsApp Manager / the API (not the phone number itself). */
    phoneNumberId: z.string().regex(/^\d{5,32}$/, 'must be the numeric Phone number ID from WhatsApp Manager (not the phone number)'),
    /** A System User access token with whatsapp_business_messaging (and _management for health). */
    accessToken: z.string().min(1, 'is required'),
    /** Graph API version, e.g. `v23.0`. Pin the one you tested with; Meta retires versions after about two years. */
    apiVersion: z.string().regex(/^v\d{1,3}\.\d{1,2}$/, 'must look like v23.0').default('v23.0'),
    baseUrl: baseUrl.default('https://graph.facebook.com'),
    /** The Meta app's App Secret: verifies `X-Hub-Signature-256` on webhooks. Required for `parseWebhook`. */
    appSecret: z.string().min(1).optional(),
    /** The Verify Token you typed in the app's webhook settings: answers the GET handshake. */
    verifyToken: z.string().min(1).optional(),
    /** The number as Meta displays it (digits), to pick this number's `phone_number_quality_update` webhooks; learned from webhooks when absent. */
    displayPhoneNumber: z.string().regex(/^\+?[\d\s()-]{6,30}$/, 'must be a phone number').transform((v) => v.replace(/\D/g, '')).optional(),
    /** Per Graph call. */
    timeoutMs: z.number().int().positive().max(600_000).default(30_000),
    /** For `health()`: short, because a health check must never hold anything up. */
    healthTimeoutMs: z.number().int().positive().max(600_000).default(5_000),
    /** Link previews in free-form text (`text.preview_url`). */
    previewUrl: z.boolean().default(false),
    /** Back-off announced for 130429 (throughput) when no `Retry-After` came. */
    throughputBackoffMs: z.number().int().positive().default(1_000),
    /** Back-off for 131057 (number in maintenance during a throughput upgrade). */
    maintenanceBackoffMs: z.number().int().positive().default(60_000),
    /** First back-off for 131056 (pair rate) to one recipient; multiplied by 4 on each repeat to that recipient. */
    pairRateBackoffMs: z.number().int().positive().default(6_000),
    pairRateMaxBackoffMs: z.number().int().positive().default(15 * 60_000),
    /** Read `#template …` directives in the text (see `cloudApiTemplateText`). */
    templateDirective: z.boolean().default(true),
    /** Quality-aware pacing policy (for `health()`, quality webhooks and `pacingRecommendation`). */
    pacing: pacingPolicySchema.default(pacingPolicySchema.parse({})),
    /** Called for each `phone_number_quality_update` of this number with its pacing recommendation (log it, change the account's pacing). Errors it throws are ignored. */
    onQualityUpdate: fn<(update: QualityUpdate, recommendation: PacingRecommendation) => void>('a function').optional(),
    /** Clock for `acceptedAt`, webhook times, holds and health readings; defaults to the system clock. */
    clock: clockOption.optional(),
    /** A fetch implementation; defaults to `nodeFetch` from @disparo/core/transport (node:https, kept-alive connections). */
    fetch: fn<FetchLike>('a fetch function').optional(),
  })
  .strict();

export type CloudApiTransportOptions = z.input<typeof optionsSchema>;
export type ResolvedOptions = z.output<typeof optionsSchema>;
