import { z } from 'zod';
import type { Clock } from '../../clock.js';
import { ValidationError, type AccountStopReason, type TransportErrorKind } from '../../errors.js';
import type { MediaSpec } from '../../domain/types.js';

/** One message the simulated provider accepted. */
export interface SimulatorSendRecord {
  to: string;
  text: string;
  media: MediaSpec | null;
  idempotencyKey: string;
  providerMessageId: string;
  /** When the provider accepted it (the simulator's clock). */
  at: number;
}

/** A one-shot failure queued with `failNext`. */
export interface SimulatorScriptedFailure {
  /** For `rate_limited`; defaults to `rateLimitRetryAfterMs`. `null`: the provider gives none. */
  retryAfterMs?: number | null;
  /** For `account`; defaults to `disconnected`. */
  accountReason?: AccountStopReason;
  /** The failure's scope, as a provider says it (`recipient`: one contact's rate; `campaign`: content every recipient meets). */
  scope?: 'recipient' | 'campaign';
  /** The recipient asked not to receive messages. */
  optOut?: boolean;
}

export const KINDS = ['transient', 'rate_limited', 'invalid_recipient', 'permanent', 'account', 'ambiguous'] as const satisfies readonly TransportErrorKind[];

const nonNegativeInt = z.number().int().nonnegative();
const probability = z.number().min(0).max(1);
const latencySchema = z
  .object({ min: nonNegativeInt, max: nonNegativeInt })
  .strict()
  .refine((r) => r.max >= r.min, { message: 'max must be >= min', path: ['max'] });
const outageSchema = z.object({ afterSends: z.number().int().positive(), forMs: nonNegativeInt }).strict();

export const optionsSchema = z
  .object({
    name: z.string().min(1).default('simulator'),
    seed: z.number().int().default(1),
    clock: z
      .custom<Clock>((v) => typeof v === 'object' && v !== null && typeof (v as Clock).now === 'function' && typeof (v as Clock).sleep === 'function', 'must be a Clock (now and sleep)')
      .optional(),
    latencyMs: latencySchema.default({ min: 0, max: 0 }),
    failureRates: z
      .object({
        transient: probability,
        rate_limited: probability,
        invalid_recipient: probability,
        permanent: probability,
        account: probability,
        ambiguous: probability,
      })
      .partial()
      .strict()
      .refine((r) => Object.values(r).reduce<number>((s, x) => s + (x ?? 0), 0) <= 1, 'failure rates add up to more than 1')
      .default({}),
    /** `null`: rate-limit answers carry no retry-after. */
    rateLimitRetryAfterMs: nonNegativeInt.nullable().default(1_000),
    notOnWhatsApp: z.union([z.array(z.string()), z.custom<(phone: string) => boolean>((v) => typeof v === 'function', 'must be an array of phones or a function')]).optional(),
    /** Absolute: outage N begins right after the `afterSends`-th accepted send in total. */
    disconnect: z.union([outageSchema, z.array(outageSchema)]).optional(),
    receipts: z
      .object({
        deliveredAfterMs: nonNegativeInt,
        /** Measured from acceptance, like `deliveredAfterMs`. */
        readAfterMs: nonNegativeInt.optional(),
        /** Share of messages read; defaults to 1 when `readAfterMs` is set. */
        readRate: probability.optional(),
      })
      .strict()
      .refine((r) => r.readAfterMs === undefined || r.readAfterMs >= r.deliveredAfterMs, { message: 'must be >= deliveredAfterMs', path: ['readAfterMs'] })
      .optional(),
    /**
     * What `lookup` can prove: `full` (true): found or absent; `found-only`: finds what it sent but
     * cannot prove absence (answers `unknown`); `blind`: keeps no record, always `unknown` (like
     * Evolution without stored messages); `none` (false): no lookup at all.
     */
    lookup: z
      .union([z.boolean(), z.enum(['full', 'found-only', 'blind', 'none'])])
      .default(true)
      .transform((v) => (v === true ? 'full' : v === false ? 'none' : v)),
    /** Provider message ids are `${prefix}${counter}`; default `SIM` + the seed in hex. Set it when a persistent store outlives the process. */
    messageIdPrefix: z.string().min(1).optional(),
    onSend: z.custom<(record: SimulatorSendRecord) => void | Promise<void>>((v) => typeof v === 'function', 'must be a function').optional(),
  })
  .strict();

export type SimulatorOptions = z.input<typeof optionsSchema>;

export function invalidOptions(error: z.ZodError): ValidationError {
  return ValidationError.fromZod('simulator options', error);
}

export function hex8(value: number): string {
  return (value >>> 0).toString(16).toUpperCase().padStart(8, '0');
}
