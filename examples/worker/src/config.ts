import { z } from 'zod';

const ms = z.number().int().nonnegative();
const interval = z.strictObject({ min: ms, max: ms }).refine((r) => r.max >= r.min, { message: 'max must be >= min', path: ['max'] });
const outage = z.strictObject({ afterSends: z.number().int().positive(), forMs: ms });
const accountId = z.string().regex(/^[A-Za-z0-9_.:-]{1,100}$/, 'must be 1-100 letters, digits or _ . : -');

/** Per-account pacing (stored, so every worker shares it): gap between sends, and optional caps. */
const pacingFields = {
  intervalMs: interval.optional(),
  hourlyCap: z.number().int().positive().optional(),
  dailyCap: z.number().int().positive().optional(),
};

const simulatorAccount = z.strictObject({
  ...pacingFields,
  id: accountId,
  transport: z.literal('simulator'),
  latencyMs: interval.optional(),
  /**
   * Base URL of an HTTP "provider" outside this process: every accepted send is POSTed to `${sinkUrl}/send`
   * before it counts, and in-doubt sends are looked up at `${sinkUrl}/lookup?key=…` (404: never arrived).
   * With it a send survives this process's SIGKILL, as with a real provider.
   */
  sinkUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  /** Simulated outages: the connection drops right after the `afterSends`-th send and comes back `forMs` later. */
  disconnect: z.union([outage, z.array(outage)]).optional(),
});

const evolutionAccount = z.strictObject({
  ...pacingFields,
  id: accountId,
  transport: z.literal('evolution'),
  baseUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL, e.g. https://evolution.example.com' }),
  apiKey: z.string().min(1, 'is required'),
  instance: z.string().min(1, 'is required'),
  /** Shared secret Evolution sends with its webhooks (to POST /webhook/<account id> on HEALTH_PORT). */
  webhookSecret: z.string().min(1).optional(),
});

const baileysAccount = z.strictObject({
  ...pacingFields,
  id: accountId,
  transport: z.literal('baileys'),
  /** Folder with this number's Baileys auth state (created on first login; scan the QR printed in the log). */
  authDir: z.string().min(1, 'is required'),
});

const accountSchema = z.discriminatedUnion('transport', [simulatorAccount, evolutionAccount, baileysAccount], {
  error: (issue) => (issue.code === 'invalid_union' ? 'must be "evolution", "baileys" or "simulator"' : undefined),
});

const int = (min: number, max: number) =>
  z.coerce
    .number({ error: 'must be a whole number' })
    .int(`must be a whole number`)
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`);

const envSchema = z.object({
  DATABASE_URL: z
    .string({ error: 'is required: your PostgreSQL URL, e.g. postgres://user:pass@host:5432/db' })
    .regex(/^postgres(ql)?:\/\/\S+$/, 'must be a postgres:// or postgresql:// URL'),
  DB_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lower-case SQL identifier (letters, digits, _)')
    .default('disparo'),
  ACCOUNTS: z
    .string({ error: 'is required: a JSON array of sender accounts, e.g. [{"id":"sales-1","transport":"evolution","baseUrl":"https://evo.example.com","apiKey":"…","instance":"sales-1"}]' })
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: `is not valid JSON (${(error as Error).message})` });
        return z.NEVER;
      }
    })
    .pipe(z.array(accountSchema, { error: 'must be a JSON array of accounts' }).min(1, 'needs at least one account')),
  WORKER_ID: z.string().regex(/^[A-Za-z0-9_.:-]{1,100}$/, 'must be 1-100 letters, digits or _ . : -').optional(),
  CONCURRENCY: int(1, 1_000).default(20),
  LEASE_TTL_MS: int(1_000, 3_600_000).default(30_000),
  POLL_INTERVAL_MS: int(10, 600_000).default(1_000),
  SHUTDOWN_TIMEOUT_MS: int(100, 3_600_000).default(45_000),
  HEALTH_PORT: int(0, 65_535).optional(),
  HEALTH_HOST: z.string().min(1).default('0.0.0.0'),
  HEALTH_FILE: z.string().min(1).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { error: 'must be one of fatal, error, warn, info, debug, trace, silent' }).default('info'),
});

export type WorkerConfig = z.output<typeof envSchema>;
export type AccountConfigEnv = z.output<typeof accountSchema>;

/** The environment is wrong; `issues` names each variable (and JSON path inside ACCOUNTS). */
export class ConfigError extends Error {
  constructor(readonly issues: Array<{ variable: string; message: string }>) {
    super(`Invalid worker configuration:\n${issues.map((i) => `  ${i.variable}: ${i.message}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parse the environment; each mistake is listed with the variable it is in. Empty strings count as unset. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const input: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v.trim() !== '') input[k] = v;
  const parsed = envSchema.safeParse(input, {
    error: (issue) => (issue.code === 'invalid_type' && issue.input === undefined ? 'is required' : issue.code === 'unrecognized_keys' ? `unknown key(s): ${issue.keys.join(', ')}` : undefined),
  });
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => {
        const [variable, ...rest] = i.path.map(String);
        const where = rest.map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`)).join('');
        return { variable: `${variable ?? '(env)'}${where}`, message: i.message };
      }),
    );
  }
  const ids = parsed.data.ACCOUNTS.map((a) => a.id);
  const dup = ids.filter((id, i) => ids.indexOf(id) !== i);
  if (dup.length) throw new ConfigError(dup.map((id) => ({ variable: 'ACCOUNTS', message: `account id "${id}" appears more than once` })));
  return parsed.data;
}
