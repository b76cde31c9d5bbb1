/**
 * The process-campaigns function for real: its files (index.ts and _shared/) in a folder of their own
 * with a deno.json that points the @disparo packages at their built dist files, served by Deno, against
 * the PostgREST stand-in in front of real PostgreSQL holding the shipped Disparo migration, and sending
 * through the Evolution transport to the fake Evolution server, which stamps when each send arrives.
 */
import { readFileSync } from 'node:fs';
import { createEngine, type Campaign, type Engine } from '@disparo/core';
import { startDisparoSupabase, type DisparoSupabase } from '../../../../packages/adapter-supabase/test/support/disparo.js';
import { FakeEvolution } from '../../../../packages/transport-evolution/test/fake-evolution.js';
import type { ProcessResponse } from '../../supabase/functions/_shared/process-campaigns.js';
import { denoProject, ensureBuilt, importMapFor, serveDeno, workspacePackage, type DenoProject, type ServedFunction } from './deno.js';

const functionsDir = new URL('../../supabase/functions/', import.meta.url);
const migrationsDir = new URL('../../supabase/migrations/', import.meta.url);
export const exampleFile = (relative: string, base: URL = functionsDir) => readFileSync(new URL(relative, base), 'utf8');
export const OPS_MIGRATION = exampleFile('20261128070000_disparo_ops.sql', migrationsDir);
export const CRON_MIGRATION = exampleFile('20261128070100_process_campaigns_cron.sql', migrationsDir);

export const INSTANCE = 'vendas-1';
export const API_KEY = 'evolution-test-key';
const PACKAGES = ['@disparo/core', '@disparo/adapter-postgres', '@disparo/adapter-supabase', '@disparo/transport-evolution'].map(workspacePackage);

/** The function's folder, as `supabase functions deploy` sees it, with an import map to the built packages. */
export function functionProject(): DenoProject {
  ensureBuilt(PACKAGES);
  return denoProject(
    {
      'process-campaigns/index.ts': exampleFile('process-campaigns/index.ts'),
      '_shared/process-campaigns.ts': exampleFile('_shared/process-campaigns.ts'),
    },
    // supabase-js pinned to the version the Node tests use; the deployed deno.json takes ^2.45.
    importMapFor(PACKAGES, { '@supabase/supabase-js': 'npm:@supabase/supabase-js@2.109.0' }),
  );
}

export interface Edge {
  project: DisparoSupabase;
  fake: FakeEvolution;
  /** An engine on the same store for setting campaigns up (it sends nothing: it has no accounts). */
  admin: Engine;
  deno: DenoProject;
  /** Starts one more Deno process serving the function (an isolate of its own). */
  serve(env?: Record<string, string>): Promise<ServedFunction>;
  env(extra?: Record<string, string>): Record<string, string>;
  stop(): Promise<void>;
}

export async function startEdge(name: string, options: { pacing?: { min: number; max: number }; databaseUrl?: string } = {}): Promise<Edge> {
  const deno = functionProject();
  const project = await startDisparoSupabase(name, { ...(options.databaseUrl ? { databaseUrl: options.databaseUrl } : {}), setupSql: OPS_MIGRATION });
  const fake = await FakeEvolution.start({ instance: INSTANCE, apiKey: API_KEY });
  const admin = createEngine({ store: project.store(), accounts: [] });
  const served: ServedFunction[] = [];
  const pacing = options.pacing ?? { min: 200, max: 220 };
  const env = (extra: Record<string, string> = {}) => ({
    SUPABASE_URL: project.sb.url,
    SUPABASE_SERVICE_ROLE_KEY: project.sb.serviceKey,
    DISPARO_ACCOUNTS: JSON.stringify([{ id: INSTANCE, transport: 'evolution', instance: INSTANCE, pacing: { intervalMs: pacing } }]),
    EVOLUTION_API_URL: fake.url,
    EVOLUTION_API_KEY: API_KEY,
    EVOLUTION_STORES_MESSAGES: 'true',
    DISPARO_LEASE_MS: '2000',
    ...extra,
  });
  return {
    project,
    fake,
    admin,
    deno,
    env,
    serve: async (extra = {}) => {
      const fn = await serveDeno('process-campaigns/index.ts', { cwd: deno.dir, env: env(extra) });
      served.push(fn);
      return fn;
    },
    stop: async () => {
      await Promise.all(served.map((f) => f.stop('SIGKILL')));
      await fake.close();
      await project.stop();
      deno.remove();
    },
  };
}

let made = 0;
/** A started campaign of `n` recipients on the account, batches of `batchSize`, no pause between batches. */
export async function startedCampaign(edge: Edge, n: number, batchSize = 100): Promise<{ campaign: Campaign; phones: string[] }> {
  const k = ++made;
  const phones = Array.from({ length: n }, (_, i) => `55119${String(60_000_000 + k * 1_000 + i).padStart(8, '0')}`);
  const campaign = await edge.admin.createCampaign({
    name: `edge ${k}`,
    template: 'Oi {{name}}, tudo bem?',
    accountIds: [INSTANCE],
    allowUnknownAccounts: true,
    batchSize,
    batchPauseMs: { min: 0, max: 0 },
  });
  await edge.admin.addRecipients(campaign.id, phones.map((phone, i) => ({ phone, vars: { name: `c${i}` } })));
  await edge.admin.start(campaign.id);
  return { campaign, phones };
}

export interface Invocation {
  status: number;
  body: ProcessResponse & { error?: string };
  ms: number;
}

/** POSTs to the function as the pg_cron job does (Authorization: the service_role key). */
export async function invoke(edge: Edge, fn: ServedFunction, body: Record<string, unknown> = {}, key = edge.project.sb.serviceKey): Promise<Invocation> {
  const t0 = performance.now();
  const res = await fetch(`${fn.url}/functions/v1/process-campaigns`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: Invocation['body'];
  try {
    parsed = JSON.parse(text) as Invocation['body'];
  } catch {
    throw new Error(`process-campaigns answered ${res.status} with no JSON: ${text}\n${fn.output()}`);
  }
  return { status: res.status, body: parsed, ms: performance.now() - t0 };
}

/** Sends that reached Evolution for these phones, in arrival order. */
export function sendsTo(fake: FakeEvolution, phones: string[]): Array<{ number: string; at: number }> {
  const wanted = new Set(phones);
  return fake
    .calls('sendText')
    .map((r) => ({ number: String((r.body as { number?: unknown }).number), at: r.at }))
    .filter((s) => wanted.has(s.number));
}

/** The smallest gap between consecutive arrivals. */
export const minGap = (sends: Array<{ at: number }>) => sends.slice(1).reduce((m, s, i) => Math.min(m, s.at - sends[i]!.at), Number.POSITIVE_INFINITY);
