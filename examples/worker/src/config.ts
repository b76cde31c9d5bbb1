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

/**
 * A WhatsApp Business number on Meta's Cloud API, paced by its rate (several sends on the wire), not
 * by human-like gaps. The token and App Secret default to CLOUD_API_ACCESS_TOKEN / CLOUD_API_APP_SECRET.
 */
const cloudApiAccount = z.strictObject({
  hourlyCap: pacingFields.hourlyCap,
  dailyCap: pacingFields.dailyCap,
  id: accountId,
  transport: z.literal('cloud-api'),
  phoneNumberId: z.string({ error: 'is required' }).regex(/^\d+$/, 'must be the Phone number ID (digits, WhatsApp Manager > API Setup), not the phone number'),
  accessToken: z.string().min(1).optional(),
  appSecret: z.string().min(1).optional(),
  verifyToken: z.string().min(1).optional(),
  apiVersion: z.string().regex(/^v\d+\.\d+$/, 'must be a Graph API version such as "v23.0"').optional(),
  baseUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  /** Meta's limit for the number: 80 by default, 1000 after its upgrade, 20 when shared with the WhatsApp Business app. */
  ratePerSecond: z.number().positive().max(1_000).default(80),
  /** Sends on the wire at once (shared by every worker through the database). */
  maxInFlight: z.number().int().min(1).max(1_000).default(32),
});

const accountSchema = z.discriminatedUnion('transport', [simulatorAccount, evolutionAccount, baileysAccount, cloudApiAccount], {
  error: (issue) => (issue.code === 'invalid_union' ? 'must be "evolution", "cloud-api", "baileys" or "simulator"' : undefined),
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
  // Shared by every Cloud API account (one Meta app); an account's own field wins.
  CLOUD_API_ACCESS_TOKEN: z.string().min(1).optional(),
  CLOUD_API_APP_SECRET: z.string().min(1).optional(),
  CLOUD_API_VERIFY_TOKEN: z.string().min(1).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { error: 'must be one of fatal, error, warn, info, debug, trace, silent' }).default('info'),
});

type CloudApiEnv = z.output<typeof cloudApiAccount>;
/** A Cloud API account with its token and App Secret resolved (its own, or the CLOUD_API_* default). */
export type CloudApiAccountConfig = CloudApiEnv & { accessToken: string; appSecret: string };
export type AccountConfigEnv = Exclude<z.output<typeof accountSchema>, CloudApiEnv> | CloudApiAccountConfig;
export type WorkerConfig = Omit<z.output<typeof envSchema>, 'ACCOUNTS'> & { ACCOUNTS: AccountConfigEnv[] };

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
  const data = parsed.data;
  const ids = data.ACCOUNTS.map((a) => a.id);
  const dup = ids.filter((id, i) => ids.indexOf(id) !== i);
  if (dup.length) throw new ConfigError(dup.map((id) => ({ variable: 'ACCOUNTS', message: `account id "${id}" appears more than once` })));
  const issues: Array<{ variable: string; message: string }> = [];
  const accounts = data.ACCOUNTS.map((a, i): AccountConfigEnv => {
    if (a.transport !== 'cloud-api') return a;
    const accessToken = a.accessToken ?? data.CLOUD_API_ACCESS_TOKEN;
    const appSecret = a.appSecret ?? data.CLOUD_API_APP_SECRET;
    const verifyToken = a.verifyToken ?? data.CLOUD_API_VERIFY_TOKEN;
    if (!accessToken) issues.push({ variable: `ACCOUNTS[${i}].accessToken`, message: 'is required: set CLOUD_API_ACCESS_TOKEN or the account\'s "accessToken"' });
    // Without the App Secret no webhook could be verified: receipts and lost answers would never be settled.
    if (!appSecret) issues.push({ variable: `ACCOUNTS[${i}].appSecret`, message: 'is required to accept its webhooks: set CLOUD_API_APP_SECRET or the account\'s "appSecret"' });
    if (data.ACCOUNTS.findIndex((b) => b.transport === 'cloud-api' && b.phoneNumberId === a.phoneNumberId) !== i) issues.push({ variable: `ACCOUNTS[${i}].phoneNumberId`, message: `${a.phoneNumberId} is already used by another account` });
    return { ...a, accessToken: accessToken ?? '', appSecret: appSecret ?? '', ...(verifyToken ? { verifyToken } : {}) };
  });
  if (issues.length) throw new ConfigError(issues);
  return { ...data, ACCOUNTS: accounts };
}
