import { validate } from '../errors.js';
import { randomUUID } from 'node:crypto';
import type { CountryCode } from 'libphonenumber-js';
import { z } from 'zod';
import type { Clock } from '../clock.js';
import type { ResolvedEngineOptions } from '../context.js';
import type { Logger } from '../events.js';
import type { StateStore } from '../store/contract.js';
import type { Transport } from '../transport/contract.js';
import { idSchema, type PacingInput } from './schemas.js';

export interface AccountConfig {
  /** Your name for this sender (one WhatsApp number / provider instance). */
  id: string;
  transport: Transport;
  pacing?: PacingInput;
}

export interface EngineOptions {
  store: StateStore;
  accounts?: AccountConfig[];
  clock?: Clock;
  /** pino, console, or anything with debug/info/warn/error. Default: warnings and errors to the console. */
  logger?: Logger;
  /** Random source for pacing gaps and batch pauses (seed it for reproducible runs). */
  random?: () => number;
  /** Identifies this worker's leases; unique per process. */
  workerId?: string;
  /** How long a claim holds a recipient without a heartbeat. Default 30 s. */
  leaseMs?: number;
  /** How often an idle worker looks for work. Default 1 s. */
  pollIntervalMs?: number;
  maxConcurrentCampaigns?: number;
  /** Most recipients claimed at once per campaign. Default 200. */
  claimSize?: number;
  /** A send with no answer after this long is in doubt. Default 30 s. */
  sendTimeoutMs?: number;
  /**
   * Grouped checkpoints. By default every send is its own checkpoint: one store call writes it ahead
   * (and records the previous outcome), so a crash leaves at most one send per account in doubt. With
   * `groupSize` N > 1, an account's next N sends are written ahead in one call and their outcomes
   * recorded together with the next group (or after `maxDelayMs`, default 1 s): far fewer commits for
   * high-volume senders, but it widens every account's in-flight window to N, so a crash may leave up
   * to N sends per account in doubt, settled by the transport's lookup or the campaign's `inDoubt`
   * policy. A group spans at most `maxDelayMs` of the account's pacing.
   */
  checkpoints?: { groupSize?: number; maxDelayMs?: number };
  /** Real send failures in a row that disable an account for `cooldownMs`. Default 5. */
  failureThreshold?: number;
  cooldownMs?: number;
  /** Inbound replies that opt a contact out (case and accents ignored). */
  optOutKeywords?: string[];
  /** Country for numbers written without a country code. Default BR. */
  defaultCountry?: CountryCode;
  /** Time zone in which hourly/daily caps reset. Default UTC. */
  capTimeZone?: string;
}

export const DEFAULT_OPT_OUT_KEYWORDS = ['SAIR', 'PARAR', 'STOP', 'CANCELAR', 'DESCADASTRAR', 'UNSUBSCRIBE'];

const object = (what: string, has: (v: Record<string, unknown>) => boolean) => z.custom((v) => typeof v === 'object' && v !== null && has(v as Record<string, unknown>), what);
const fn = (v: unknown) => typeof v === 'function';

const optionsSchema = z
  .object({
    store: object('must be a StateStore (createMemoryStore(), createPostgresStore(...))', (v) => fn(v.claimRecipients) && fn(v.checkpoint)),
    accounts: z.array(z.object({ id: idSchema, transport: object('must be a Transport with a send() method', (v) => fn(v.send)), pacing: z.unknown().optional() })).default([]),
    clock: object('must be a Clock (now and sleep)', (v) => fn(v.now) && fn(v.sleep)).optional(),
    logger: object('must have debug/info/warn/error (pino and console do)', (v) => fn(v.debug) && fn(v.info) && fn(v.warn) && fn(v.error)).optional(),
    random: z.custom<() => number>(fn, 'must be a function returning [0, 1)').optional(),
    workerId: idSchema.optional(),
    leaseMs: z.number().int().min(1_000).max(3_600_000).default(30_000),
    pollIntervalMs: z.number().int().min(10).max(600_000).default(1_000),
    maxConcurrentCampaigns: z.number().int().min(1).max(1_000).default(20),
    claimSize: z.number().int().min(1).max(5_000).default(200),
    sendTimeoutMs: z.number().int().min(100).max(600_000).default(30_000),
    checkpoints: z
      .object({ groupSize: z.number().int().min(1).max(1_000).default(1), maxDelayMs: z.number().int().min(0).max(60_000).default(1_000) })
      .strict()
      .default({ groupSize: 1, maxDelayMs: 1_000 }),
    failureThreshold: z.number().int().min(1).max(1_000).default(5),
    cooldownMs: z.number().int().min(0).default(10 * 60_000),
    optOutKeywords: z.array(z.string().min(1)).default(DEFAULT_OPT_OUT_KEYWORDS),
    defaultCountry: z.string().length(2).default('BR'),
    capTimeZone: z.string().default('UTC'),
  })
  .strict();

export interface ParsedEngineOptions {
  store: StateStore;
  clock: Clock | undefined;
  logger: Logger | undefined;
  random: (() => number) | undefined;
  resolved: ResolvedEngineOptions;
}

/** Validate the engine's options (a ValidationError names the field) and fill in the defaults. */
export function parseEngineOptions(options: EngineOptions): ParsedEngineOptions {
  const o = validate(optionsSchema, options, 'engine options');
  return {
    store: o.store as StateStore,
    clock: o.clock as Clock | undefined,
    logger: o.logger as Logger | undefined,
    random: o.random,
    resolved: {
      workerId: o.workerId ?? `w-${randomUUID().slice(0, 8)}`,
      leaseMs: o.leaseMs,
      pollIntervalMs: o.pollIntervalMs,
      maxConcurrentCampaigns: o.maxConcurrentCampaigns,
      claimSize: o.claimSize,
      sendTimeoutMs: o.sendTimeoutMs,
      checkpoints: o.checkpoints,
      failureThreshold: o.failureThreshold,
      cooldownMs: o.cooldownMs,
      optOutKeywords: o.optOutKeywords.map(foldKeyword),
      defaultCountry: o.defaultCountry,
      capTimeZone: o.capTimeZone,
    },
  };
}

/** Upper-case, trimmed, accents removed: "  Sáir " and "SAIR" are the same keyword. */
export function foldKeyword(text: string): string {
  return text
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .trim()
    .toUpperCase();
}
