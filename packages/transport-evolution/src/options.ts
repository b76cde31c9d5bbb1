import { z } from 'zod';
import { clockOption, type OutboundMessage } from '@disparo/core/transport';
import type { FetchLike } from './http.js';
import { DEFAULT_SECRET_HEADER } from './webhook-set.js';

const fn = <T>(what: string) => z.custom<T>((v) => typeof v === 'function', `must be ${what}`);

const baseUrl = z
  .url({ protocol: /^https?$/, error: 'must be an http(s) URL, e.g. https://evolution.example.com' })
  .transform((u) => u.replace(/\/+$/, ''));

/** Where and how to reach one Evolution instance. */
export const connectionSchema = z.object({
  /** Evolution API server, e.g. `https://evolution.example.com` (a path prefix is kept). */
  baseUrl,
  /** Global `AUTHENTICATION_API_KEY` or the instance's own token; sent as the `apikey` header. */
  apiKey: z.string().min(1, 'is required'),
  /** Evolution instance name: one sender account. */
  instance: z.string().min(1, 'is required'),
  /** Per request, on top of any typing delay (the send call blocks while Evolution shows "typing…"). */
  timeoutMs: z.number().int().positive().max(600_000).default(30_000),
  /** A fetch implementation; defaults to the platform's global fetch. */
  fetch: fn<FetchLike>('a fetch function').optional(),
});

export const optionsSchema = connectionSchema
  .extend({
    webhook: z
      .object({
        /** A static shared secret Evolution sends in `headerName` (configure it as a webhook header). */
        secret: z.string().min(1).optional(),
        /** The `jwt_key` configured on the webhook: Evolution then sends `Authorization: Bearer <HS256 JWT>`. */
        jwtKey: z.string().min(1).optional(),
        headerName: z.string().min(1).default(DEFAULT_SECRET_HEADER),
        /** Accept webhooks that carry no credential. Only for a private network; off by default. */
        allowUnsigned: z.boolean().default(false),
      })
      .strict()
      .default({ headerName: DEFAULT_SECRET_HEADER, allowUnsigned: false }),
    /**
     * Evolution's typing `delay` in ms for each send (number or per-message function): it shows
     * "typing…" and then sends, blocking the HTTP call meanwhile. 0 (default) sends at once; the
     * engine's own typing presence (`typing()`) is usually the better choice because it holds no worker.
     */
    delayMs: z.union([z.number().int().min(0).max(300_000), fn<(message: OutboundMessage) => number>('a number or a function')]).default(0),
    /** Evolution's `linkPreview`; only `false` changes anything (no preview). */
    linkPreview: z.boolean().optional(),
    /** Back-off for WhatsApp's `rate-overlimit` when no Retry-After hint came (CONTRACTS.md: minutes). */
    rateLimitBackoffMs: z.number().int().positive().default(300_000),
    /**
     * Whether this Evolution instance stores the messages it sends (`DATABASE_SAVE_DATA_NEW_MESSAGE=true`,
     * the default of Evolution's docker image is false). Only then does a `lookup` that finds nothing prove
     * a message in doubt never left, so it may be sent again; otherwise the campaign's `inDoubt` policy
     * decides (at-most-once: never resent). Default false.
     */
    storesMessages: z.boolean().default(false),
    /** How far either side of the attempt `lookup` searches, for clock skew between us and Evolution. */
    lookupSkewMs: z.number().int().min(0).default(120_000),
    /** Clock for webhook `at` times and JWT expiry (any `Clock`: systemClock, VirtualClock); defaults to the system clock. */
    clock: clockOption.optional(),
  })
  .strict();

export type EvolutionConnectionOptions = z.input<typeof connectionSchema>;
export type EvolutionTransportOptions = z.input<typeof optionsSchema>;
export type ResolvedOptions = z.output<typeof optionsSchema>;
