/**
 * The work of the `process-campaigns` Edge Function, with no Deno global in it (index.ts passes the
 * request and the environment in), so the same file runs under Deno on Supabase and type-checks with
 * the rest of the repository.
 *
 * One invocation: build an engine on the Supabase store and the accounts named by the secrets, find the
 * campaigns that are due, give each a bounded slice of work (`engine.step({ campaignId, budgetMs })`, all
 * at once, each under its own lease owner), and answer seed S4's shape as JSON. Overlapping invocations
 * never send one message twice (leases and the in-flight window live in the store), a killed one loses
 * nothing (its leases expire; the next one settles what it left in doubt and resumes), and pacing holds
 * across invocations (each account's next slot lives in the store too).
 */
import { createClient } from '@supabase/supabase-js';
import { createEngine, createSimulatorTransport, type Campaign, type Engine } from '@disparo/core';
import { createSupabaseStore } from '@disparo/adapter-supabase';
import { createEvolutionTransport } from '@disparo/transport-evolution';
import { z } from 'zod';

/** Reads one secret (`Deno.env.get` on Supabase). */
export type EnvReader = (name: string) => string | undefined;

const json = <T extends z.ZodType>(schema: T) =>
  z.string().transform((text, ctx): z.output<T> => {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'is not valid JSON' });
      return z.NEVER;
    }
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) ctx.addIssue({ code: 'custom', message: `${issue.path.join('.') || '(root)'}: ${issue.message}` });
      return z.NEVER;
    }
    return parsed.data;
  });
const int = (min: number, max: number, fallback: number) => z.coerce.number().int().min(min).max(max).default(fallback);
const flag = z.enum(['true', 'false']).default('false').transform((v) => v === 'true');

const accountSchema = z.discriminatedUnion('transport', [
  // One Evolution instance per account; EVOLUTION_API_URL and EVOLUTION_API_KEY (or the account's own `apiKey`).
  z.object({ id: z.string().min(1), transport: z.literal('evolution'), instance: z.string().min(1), apiKey: z.string().min(1).optional(), pacing: z.record(z.string(), z.unknown()).optional() }).strict(),
  // The simulator: for trying the schedule out, and for tests. Its options as @disparo/core documents them.
  z.object({ id: z.string().min(1), transport: z.literal('simulator'), simulator: z.record(z.string(), z.unknown()).optional(), pacing: z.record(z.string(), z.unknown()).optional() }).strict(),
  // Meta's WhatsApp Cloud API: see transportFor() below, and the README.
  z.object({ id: z.string().min(1), transport: z.literal('cloud-api'), phoneNumberId: z.string().min(1), pacing: z.record(z.string(), z.unknown()).optional() }).strict(),
]);

/** The function's secrets (`supabase secrets set ...`; SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY are set by Supabase). */
const configSchema = z.object({
  SUPABASE_URL: z.url(),
  SUPABASE_SERVICE_ROLE_KEY: z.string().min(1),
  DISPARO_SCHEMA: z.string().default('disparo'),
  DISPARO_ACCOUNTS: json(z.array(accountSchema).min(1, 'name at least one account')),
  EVOLUTION_API_URL: z.url().optional(),
  EVOLUTION_API_KEY: z.string().min(1).optional(),
  /** The Evolution instance keeps what it sends (DATABASE_SAVE_DATA_NEW_MESSAGE=true): a lookup that finds nothing then proves a send in doubt never left. */
  EVOLUTION_STORES_MESSAGES: flag,
  /** Time one invocation works, at most (Supabase stops a function after 150 s of wall clock on the free plan). */
  DISPARO_BUDGET_MS: int(1_000, 140_000, 25_000),
  DISPARO_MAX_BATCHES: int(1, 1_000, 10),
  DISPARO_MAX_CAMPAIGNS: int(1, 100, 10),
  DISPARO_LEASE_MS: int(1_000, 3_600_000, 30_000),
});
export type FunctionConfig = z.output<typeof configSchema>;

const bodySchema = z
  .object({
    budget_ms: z.number().int().min(100).max(140_000).optional(),
    max_batches: z.number().int().min(1).max(1_000).optional(),
    campaign_id: z.string().min(1).optional(),
    /** Ignored: what sent the call (pg_cron's job says `pg_cron`). */
    source: z.string().optional(),
  })
  .strict();
export type InvocationBody = z.output<typeof bodySchema>;

class ConfigError extends Error {}

export function readConfig(env: EnvReader): FunctionConfig {
  const raw = Object.fromEntries(Object.keys(configSchema.shape).map((k) => [k, env(k)]).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(`Invalid secrets: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const config = parsed.data;
  if (config.DISPARO_ACCOUNTS.some((a) => a.transport === 'evolution') && !config.EVOLUTION_API_URL) {
    throw new ConfigError('Invalid secrets: EVOLUTION_API_URL is required for the evolution accounts of DISPARO_ACCOUNTS');
  }
  return config;
}

type AccountConfig = z.output<typeof accountSchema>;

function transportFor(account: AccountConfig, config: FunctionConfig) {
  switch (account.transport) {
    case 'evolution': {
      const apiKey = account.apiKey ?? config.EVOLUTION_API_KEY;
      if (!apiKey) throw new ConfigError(`Invalid secrets: account ${account.id} needs EVOLUTION_API_KEY (or an apiKey of its own)`);
      return createEvolutionTransport({ baseUrl: config.EVOLUTION_API_URL!, apiKey, instance: account.instance, storesMessages: config.EVOLUTION_STORES_MESSAGES });
    }
    case 'simulator':
      return createSimulatorTransport((account.simulator ?? {}) as Parameters<typeof createSimulatorTransport>[0]);
    case 'cloud-api':
      // The place for Meta's Cloud API: add "@disparo/transport-cloud-api" to deno.json, then
      //   return createCloudApiTransport({ phoneNumberId: account.phoneNumberId, accessToken: <a secret>, ... });
      // and give the account `pacing: { ratePerSecond, maxInFlight }` (see that package's README).
      throw new ConfigError(`Account ${account.id}: the cloud-api transport is not wired in this example yet (see transportFor() in _shared/process-campaigns.ts)`);
  }
}

export function buildEngine(config: FunctionConfig): Engine {
  const supabase = createClient(config.SUPABASE_URL, config.SUPABASE_SERVICE_ROLE_KEY, { auth: { persistSession: false, autoRefreshToken: false } });
  const store = createSupabaseStore(supabase, { schema: config.DISPARO_SCHEMA });
  return createEngine({
    store,
    leaseMs: config.DISPARO_LEASE_MS,
    accounts: config.DISPARO_ACCOUNTS.map((a) => ({ id: a.id, transport: transportFor(a, config), ...(a.pacing ? { pacing: a.pacing } : {}) })),
  });
}

/** One campaign's part of the answer (seed S4's `results[]`). */
export interface CampaignResult {
  campaign_id: string;
  campaign_name: string;
  success: boolean;
  status: string;
  /** The campaign's current batch after this invocation. */
  batch: number;
  batches_processed: number;
  messages_sent: number;
  /** Recipients that reached a final status in this invocation (sent, failed, skipped, ...). */
  processed: number;
  /** Pending or in flight after this invocation. */
  remaining: number;
  done: boolean;
  /** When there is more to do (ISO time), null when done or waiting on a person. */
  continue_at: string | null;
  message: string;
}

/** The answer (seed S4's shape). */
export interface ProcessResponse {
  success: boolean;
  timestamp: string;
  batches_processed: number;
  messages_sent: number;
  campaigns: number;
  results: CampaignResult[];
  message: string;
}

const sentOf = (c: Campaign) => c.counters.sent + c.counters.delivered + c.counters.read;

/** Running campaigns, scheduled ones whose time came, and those paused for a cause that may have ended. */
function isDue(c: Campaign, now: number): boolean {
  if (c.status === 'running') return true;
  if (c.status === 'scheduled') return c.scheduledAt !== null && c.scheduledAt <= now;
  return c.status === 'paused' && c.pauseReason !== 'manual';
}

export async function processCampaigns(engine: Engine, config: FunctionConfig, body: InvocationBody = {}): Promise<ProcessResponse> {
  const budgetMs = body.budget_ms ?? config.DISPARO_BUDGET_MS;
  const maxBatches = body.max_batches ?? config.DISPARO_MAX_BATCHES;
  const started = Date.now();
  const open = body.campaign_id ? [await engine.getCampaign(body.campaign_id)] : await engine.listCampaigns({ status: ['running', 'scheduled', 'paused'] });
  const due = open.filter((c) => isDue(c, started)).slice(0, config.DISPARO_MAX_CAMPAIGNS);
  const results = await Promise.all(
    due.map(async (before): Promise<CampaignResult> => {
      const base = { campaign_id: before.id, campaign_name: before.name };
      try {
        const step = await engine.step({ campaignId: before.id, budgetMs, maxBatches });
        const after = await engine.getCampaign(before.id);
        const sent = sentOf(after) - sentOf(before);
        // A finished batch moves the pointer on, the last one too (batch 0 -> 1 only opens the first).
        const finished = Math.max(0, after.currentBatch - Math.max(before.currentBatch, 1));
        return {
          ...base,
          success: true,
          status: after.status,
          batch: after.currentBatch,
          batches_processed: finished,
          messages_sent: sent,
          processed: step.processed,
          remaining: step.remaining,
          done: step.done,
          continue_at: step.continueAt === null ? null : new Date(step.continueAt).toISOString(),
          message: `${sent} message(s) sent, ${step.remaining} remaining (${after.status})`,
        };
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        return { ...base, success: false, status: before.status, batch: before.currentBatch, batches_processed: 0, messages_sent: 0, processed: 0, remaining: before.counters.pending + before.counters.sending, done: false, continue_at: null, message };
      }
    }),
  );
  const batches = results.reduce((s, r) => s + r.batches_processed, 0);
  const sent = results.reduce((s, r) => s + r.messages_sent, 0);
  return {
    success: results.every((r) => r.success),
    timestamp: new Date(started).toISOString(),
    batches_processed: batches,
    messages_sent: sent,
    campaigns: results.length,
    results,
    message: due.length === 0 ? 'No campaign due' : `Processed ${batches} batch(es), ${sent} message(s) sent, ${results.length} campaign(s)`,
  };
}

/** Constant-time enough for a bearer token: compares every character whatever the first mismatch. */
function sameToken(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < Math.max(a.length, b.length); i++) diff |= (a.charCodeAt(i) || 0) ^ (b.charCodeAt(i) || 0);
  return diff === 0;
}

const answer = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json; charset=utf-8' } });

/**
 * The HTTP side: POST with `Authorization: Bearer <service_role key>` (what the pg_cron job sends; the
 * anon key, which any browser has, is refused), an optional JSON body `{ budget_ms, max_batches,
 * campaign_id }`. Answers 200 with the result, 400/401/405 for a bad call, 500 when the secrets are wrong
 * or the store cannot be reached.
 */
export async function handleRequest(req: Request, env: EnvReader): Promise<Response> {
  if (req.method !== 'POST') return answer(405, { success: false, error: 'Use POST' });
  let config: FunctionConfig;
  try {
    config = readConfig(env);
  } catch (error) {
    return answer(500, { success: false, error: (error as Error).message });
  }
  const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.get('authorization') ?? '')?.[1]?.trim() ?? '';
  if (!sameToken(bearer, config.SUPABASE_SERVICE_ROLE_KEY)) {
    return answer(401, { success: false, error: 'Send the project service_role key as Authorization: Bearer <key> (the pg_cron job reads it from Vault).' });
  }
  const text = await req.text();
  let raw: unknown = {};
  try {
    raw = text.trim() === '' ? {} : JSON.parse(text);
  } catch {
    return answer(400, { success: false, error: 'The body must be JSON: { "budget_ms"?, "max_batches"?, "campaign_id"? }' });
  }
  const body = bodySchema.safeParse(raw);
  if (!body.success) return answer(400, { success: false, error: `Invalid body: ${body.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}` });

  let engine: Engine;
  try {
    engine = buildEngine(config);
  } catch (error) {
    return answer(500, { success: false, error: (error as Error).message });
  }
  try {
    return answer(200, await processCampaigns(engine, config, body.data));
  } catch (error) {
    return answer(500, { success: false, timestamp: new Date().toISOString(), error: error instanceof Error ? error.message : String(error) });
  } finally {
    await engine.stop().catch(() => undefined);
  }
}
