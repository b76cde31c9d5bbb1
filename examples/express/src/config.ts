import { randomBytes } from 'node:crypto';
import { z } from 'zod';

const accountSchema = z.discriminatedUnion('transport', [
  z.object({
    id: z.string().min(1),
    transport: z.literal('simulator'),
    latencyMs: z.object({ min: z.number(), max: z.number() }).optional(),
    intervalMs: z.object({ min: z.number().int().nonnegative(), max: z.number().int().nonnegative() }).optional(),
  }),
  z.object({
    id: z.string().min(1),
    transport: z.literal('evolution'),
    baseUrl: z.url(),
    apiKey: z.string().min(1),
    instance: z.string().min(1),
    webhookSecret: z.string().min(1).optional(),
    intervalMs: z.object({ min: z.number().int().nonnegative(), max: z.number().int().nonnegative() }).optional(),
  }),
  // One WhatsApp Business number on Meta's Cloud API; its webhooks come to GET/POST /webhooks/cloud-api.
  z.object({
    id: z.string().min(1),
    transport: z.literal('cloud-api'),
    /** The number's Phone number ID (WhatsApp Manager > API Setup), not the phone number itself. */
    phoneNumberId: z.string().regex(/^\d+$/, 'the Phone number ID is digits only (WhatsApp Manager > API Setup), not the phone number'),
    /** Default: CLOUD_API_ACCESS_TOKEN. */
    accessToken: z.string().min(1).optional(),
    apiVersion: z.string().regex(/^v\d+\.\d+$/, 'a Graph API version such as "v23.0"').optional(),
    /** Default: CLOUD_API_APP_SECRET. The Meta app's App Secret, which signs every webhook POST. */
    appSecret: z.string().min(1).optional(),
    /** Default: CLOUD_API_VERIFY_TOKEN. The Verify Token typed in the app's webhook settings (Meta's GET handshake). */
    verifyToken: z.string().min(1).optional(),
    baseUrl: z.url().optional(),
    /** Meta's limit for the number: 80 by default, 1000 after its upgrade, 20 when shared with the WhatsApp Business app. */
    ratePerSecond: z.number().positive().max(1_000).default(80),
    /** Sends on the wire at once: at least 2 x rate x round trip (80/s x 150 ms = 12: 32 leaves room). */
    maxInFlight: z.number().int().min(1).max(1_000).default(32),
  }),
]);

const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65_535).default(3000),
  HOST: z.string().default('127.0.0.1'),
  API_KEY: z.string().min(12, 'use at least 12 characters').optional(),
  DATABASE_URL: z.string().optional(),
  DATA_DIR: z.string().default('.disparo/express'),
  // Shared by every Cloud API account (one Meta app, one callback URL); an account's own field wins.
  CLOUD_API_ACCESS_TOKEN: z.string().min(1).optional(),
  CLOUD_API_APP_SECRET: z.string().min(1).optional(),
  CLOUD_API_VERIFY_TOKEN: z.string().min(1).optional(),
  ACCOUNTS: z
    .string()
    .optional()
    .transform((text, ctx) => {
      if (!text) return [{ id: 'sim-1', transport: 'simulator' as const }, { id: 'sim-2', transport: 'simulator' as const }];
      try {
        return JSON.parse(text) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be a JSON array, e.g. [{"id":"sales-1","transport":"evolution",...}]' });
        return z.NEVER;
      }
    })
    .pipe(z.array(accountSchema).min(1)),
})
  .transform((env, ctx) => ({
    ...env,
    ACCOUNTS: env.ACCOUNTS.map((account, i, all) => {
      if (account.transport !== 'cloud-api') return account;
      // Meta's webhooks name the number: two accounts on one number would both take its receipts.
      if (all.findIndex((a) => a.transport === 'cloud-api' && a.phoneNumberId === account.phoneNumberId) !== i) ctx.addIssue({ code: 'custom', path: ['ACCOUNTS', i, 'phoneNumberId'], message: `phone number ID ${account.phoneNumberId} is already used by another account` });
      const accessToken = account.accessToken ?? env.CLOUD_API_ACCESS_TOKEN;
      const appSecret = account.appSecret ?? env.CLOUD_API_APP_SECRET;
      if (!accessToken) ctx.addIssue({ code: 'custom', path: ['ACCOUNTS', i, 'accessToken'], message: 'a Cloud API account needs an access token: set CLOUD_API_ACCESS_TOKEN or the account\'s "accessToken"' });
      // Without the App Secret no webhook could be verified: receipts and lost answers would never be settled.
      if (!appSecret) ctx.addIssue({ code: 'custom', path: ['ACCOUNTS', i, 'appSecret'], message: 'a Cloud API account needs the Meta app\'s App Secret to accept its webhooks: set CLOUD_API_APP_SECRET or the account\'s "appSecret"' });
      const verifyToken = account.verifyToken ?? env.CLOUD_API_VERIFY_TOKEN;
      return { ...account, accessToken: accessToken ?? '', appSecret: appSecret ?? '', ...(verifyToken ? { verifyToken } : {}) };
    }),
  }));

export type Config = z.output<typeof envSchema> & { API_KEY: string; generatedKey: boolean };
export type AccountEnv = z.output<typeof envSchema>['ACCOUNTS'][number];

/** Read the configuration from the environment; every mistake is named. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(env)'}: ${i.message}`);
    throw new Error(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const key = parsed.data.API_KEY;
  return { ...parsed.data, API_KEY: key ?? randomBytes(18).toString('base64url'), generatedKey: key === undefined };
}
