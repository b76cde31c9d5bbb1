import { z } from 'zod';
import { compileTemplate, MAX_TEXT_LENGTH, TemplateSyntaxError } from '../domain/template.js';
import type { CampaignSettings, Pacing, SendWindow } from '../domain/types.js';
import { validate } from '../errors.js';

const NUL_MESSAGE = 'contains a NUL character (\\u0000), which no database or WhatsApp accepts: remove it';
const hasNul = (s: string) => s.includes('\u0000');
/** A string without NUL characters. */
export const text = () => z.string().refine((s) => !hasNul(s), NUL_MESSAGE);

/** The path of the first string (key or value) holding a NUL character inside `value`, or null. */
function nulPath(value: unknown, path: string[] = [], depth = 0): string[] | null {
  if (typeof value === 'string') return hasNul(value) ? path : null;
  if (typeof value !== 'object' || value === null || depth > 20) return null;
  for (const [k, v] of Object.entries(value)) {
    if (hasNul(k)) return [...path, k];
    const found = nulPath(v, [...path, k], depth + 1);
    if (found) return found;
  }
  return null;
}

/** JSON metadata the store keeps as given: any shape, but no NUL character anywhere. */
const metadataSchema = z.record(z.string(), z.unknown()).superRefine((value, ctx) => {
  const at = nulPath(value);
  if (at) ctx.addIssue({ code: 'custom', message: NUL_MESSAGE, path: at });
});

const timeInput = z.union([z.date(), z.number().int().nonnegative(), z.iso.datetime({ offset: true })]).transform((v) =>
  v instanceof Date ? v.getTime() : typeof v === 'string' ? Date.parse(v) : v,
);

export const rangeSchema = (what: string, defaults: { min: number; max: number }) =>
  z
    .object({ min: z.number().int().nonnegative(), max: z.number().int().nonnegative() })
    .refine((r) => r.max >= r.min, { message: `${what}: max must be >= min`, path: ['max'] })
    .default(defaults);

const templateSchema = text()
  .min(1, 'a template cannot be empty')
  .max(MAX_TEXT_LENGTH, `a template is longer than WhatsApp's ${MAX_TEXT_LENGTH}-character limit`)
  .superRefine((value, ctx) => {
    try {
      compileTemplate(value);
    } catch (error) {
      if (error instanceof TemplateSyntaxError) ctx.addIssue({ code: 'custom', message: `template syntax: ${error.message}` });
      else throw error;
    }
  });

const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'use HH:MM, 24-hour');

export const sendWindowSchema = z.object({
  start: hhmm,
  end: hhmm,
  timeZone: z.string().refine(isTimeZone, 'unknown IANA time zone (e.g. America/Sao_Paulo)'),
  days: z.array(z.number().int().min(1).max(7)).min(1).optional(),
}) satisfies z.ZodType<SendWindow>;

export const idSchema = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9_.:-]+$/, 'use letters, digits, "_", ".", ":" or "-"');

export const createCampaignSchema = z
  .object({
    id: idSchema.optional(),
    name: text().trim().min(1, 'a campaign needs a name').max(200),
    template: templateSchema.optional(),
    templates: z.array(templateSchema).min(1).max(50).optional(),
    media: z
      .object({
        url: z.url(),
        type: z.enum(['image', 'video', 'document', 'audio']),
        mimeType: text().optional(),
        fileName: text().optional(),
      })
      .nullish(),
    accountIds: z.array(idSchema).min(1, 'a campaign needs at least one sender account'),
    batchSize: z.number().int().min(1).max(10_000).default(300),
    batchPauseMs: rangeSchema('batchPauseMs', { min: 15_000, max: 30_000 }),
    maxAttempts: z.number().int().min(1).max(20).default(3),
    retryBackoffMs: rangeSchema('retryBackoffMs', { min: 2_000, max: 30_000 }),
    inDoubt: z.enum(['at-most-once', 'at-least-once']).default('at-most-once'),
    sendWindow: sendWindowSchema.nullish(),
    stickySender: z.boolean().default(false),
    precheckNumbers: z.boolean().default(false),
    contactCap: z
      .object({ max: z.number().int().positive(), periodMs: z.number().int().positive() })
      .nullish()
      .transform((v) => v ?? null),
    scheduledAt: timeInput.nullish(),
    metadata: metadataSchema.default({}),
    /**
     * Create the campaign even when an account id is unknown to this engine and to the store (a worker
     * elsewhere will register it later). Default false: an unknown id is a ValidationError.
     */
    allowUnknownAccounts: z.boolean().default(false),
  })
  .strict()
  .refine((v) => v.template !== undefined || v.templates !== undefined, {
    message: 'give `template` (one text) or `templates` (variants)',
    path: ['template'],
  })
  .refine((v) => !(v.template !== undefined && v.templates !== undefined), {
    message: 'give either `template` or `templates`, not both',
    path: ['templates'],
  });

export type CreateCampaignInput = z.input<typeof createCampaignSchema>;

export function toSettings(v: z.output<typeof createCampaignSchema>): CampaignSettings {
  return {
    batchSize: v.batchSize,
    batchPauseMs: v.batchPauseMs,
    maxAttempts: v.maxAttempts,
    retryBackoffMs: v.retryBackoffMs,
    inDoubt: v.inDoubt,
    sendWindow: v.sendWindow ?? null,
    stickySender: v.stickySender,
    precheckNumbers: v.precheckNumbers,
    contactCap: v.contactCap,
  };
}

const varValue = z.union([text(), z.number(), z.boolean(), z.null()]);

/**
 * A recipient's variables: name -> text (numbers and booleans become text, null is absent). Read as
 * own properties, whatever the names: `__proto__` or `constructor` are plain variables here (a record
 * schema would drop an own `__proto__` key, or set the prototype with it).
 */
const varsSchema = z
  .custom<Record<string, unknown>>((v) => typeof v === 'object' && v !== null && !Array.isArray(v), 'must be an object of variable name -> text')
  .optional()
  .transform((vars, ctx) => {
    const out: Record<string, string> = {};
    if (!vars) return out;
    for (const [name, value] of Object.entries(vars)) {
      if (name.includes('\u0000')) {
        ctx.addIssue({ code: 'custom', message: NUL_MESSAGE, path: [name] });
        continue;
      }
      if (value !== null && !['string', 'number', 'boolean'].includes(typeof value)) {
        ctx.addIssue({ code: 'custom', message: `must be text, a number, a boolean or null (got ${Array.isArray(value) ? 'an array' : typeof value})`, path: [name] });
        continue;
      }
      const parsed = varValue.safeParse(value);
      if (!parsed.success) {
        for (const issue of parsed.error.issues) ctx.addIssue({ code: 'custom', message: issue.message, path: [name, ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))] });
        continue;
      }
      if (parsed.data !== null) Object.defineProperty(out, name, { value: String(parsed.data), enumerable: true, writable: true, configurable: true });
    }
    return out;
  });

export const recipientInputSchema = z.object({
  phone: z.union([z.string(), z.number()]),
  vars: varsSchema,
});

export type RecipientInput = z.input<typeof recipientInputSchema>;

/**
 * `recipientInputSchema` for one item, without zod for the common shape: a plain object whose phone
 * is a string or a finite number and whose vars are absent or a plain object of text (without NUL),
 * finite numbers, booleans and nulls. It gives exactly what the schema gives for those; anything else
 * goes through the schema, which gives the same result or the same ValidationError. An import reads
 * items one by one, and zod's parse allocated about a kilobyte per item: most of a million-row
 * import's garbage, which outlived the chunks and grew the heap.
 */
export function parseRecipientInput(item: unknown, path: string): { phone: string | number; vars: Record<string, string> } {
  if (typeof item === 'object' && item !== null && isPlain(item)) {
    const { phone, vars } = item as { phone?: unknown; vars?: unknown };
    if (typeof phone === 'string' || (typeof phone === 'number' && Number.isFinite(phone))) {
      const out = vars === undefined ? {} : plainVars(vars);
      if (out !== null) return { phone, vars: out };
    }
  }
  return validate(recipientInputSchema, item, 'recipient', path);
}

const isPlain = (v: object) => {
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
};

/** What `varsSchema` gives for `vars`, or null when it is not the plain case (the schema decides). */
function plainVars(vars: unknown): Record<string, string> | null {
  if (typeof vars !== 'object' || vars === null || !isPlain(vars)) return null;
  const out: Record<string, string> = {};
  for (const name of Object.keys(vars)) {
    if (hasNul(name)) return null;
    const value = (vars as Record<string, unknown>)[name];
    if (value === null) continue;
    let textValue: string;
    if (typeof value === 'string') {
      if (hasNul(value)) return null;
      textValue = value;
    } else if ((typeof value === 'number' && Number.isFinite(value)) || typeof value === 'boolean') textValue = String(value);
    else return null;
    Object.defineProperty(out, name, { value: textValue, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

export const pacingSchema = z
  .object({
    intervalMs: rangeSchema('intervalMs', { min: 5_000, max: 15_000 }),
    hourlyCap: z.number().int().positive().nullish().transform((v) => v ?? null),
    dailyCap: z.number().int().positive().nullish().transform((v) => v ?? null),
    warmup: z
      .object({ startedAt: timeInput, start: z.number().int().positive(), growth: z.number().min(1).max(10) })
      .nullish()
      .transform((v) => v ?? null),
    typingMsPerChar: z.number().nonnegative().max(1_000).default(0),
    typingMaxMs: z.number().int().nonnegative().max(60_000).default(8_000),
    maxInFlight: z.number().int().min(1).max(1_000).default(1),
    ratePerSecond: z.number().positive().max(10_000).nullish().transform((v) => v ?? null),
  })
  .strict()
  .default({
    intervalMs: { min: 5_000, max: 15_000 },
    hourlyCap: null,
    dailyCap: null,
    warmup: null,
    typingMsPerChar: 0,
    typingMaxMs: 8_000,
    maxInFlight: 1,
    ratePerSecond: null,
  }) satisfies z.ZodType<Pacing, unknown>;

export type PacingInput = z.input<typeof pacingSchema>;

export const stepOptionsSchema = z
  .object({
    campaignId: idSchema.optional(),
    maxBatches: z.number().int().positive().default(1),
    budgetMs: z.number().int().positive().max(15 * 60_000).default(25_000),
  })
  .strict()
  .default({ maxBatches: 1, budgetMs: 25_000 });

export type StepOptions = z.input<typeof stepOptionsSchema>;

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
