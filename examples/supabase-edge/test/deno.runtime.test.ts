/**
 * Deno, for real, the way a Supabase Edge Function runs: a `Deno.serve(handler)` script in a folder of its
 * own (no package.json or node_modules above it), `npm:@supabase/supabase-js@2` resolved from the npm
 * registry, and `@disparo/core` through a deno.json import map pointing at the built package. The function
 * reaches the database through supabase-js and the PostgREST stand-in, and runs a campaign on core.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestSupabase, type TestSupabase } from '../../../packages/adapter-supabase/test/support/supabase.js';
import { EDGE_PERMISSIONS, denoProject, ensureBuilt, importMapFor, runDeno, serveDeno, workspacePackage, type DenoProject } from './support/deno.js';

const FUNCTION = `
import { createClient } from 'npm:@supabase/supabase-js@2';
import { createEngine, createMemoryStore, createSimulatorTransport } from '@disparo/core';

Deno.serve(async (req: Request) => {
  const supabase = createClient(Deno.env.get('SUPABASE_URL')!, Deno.env.get('SUPABASE_SERVICE_ROLE_KEY')!, {
    auth: { persistSession: false, autoRefreshToken: false },
  });
  const { a, b } = await req.json();
  const { data: sum, error } = await supabase.rpc('add_them', { a, b });
  if (error) return Response.json({ success: false, error }, { status: 500 });

  const engine = createEngine({
    store: createMemoryStore(),
    accounts: [{ id: 'sim-1', transport: createSimulatorTransport() }],
  });
  const campaign = await engine.createCampaign({ name: 'edge', template: 'Oi {{name}}', accountIds: ['sim-1'] });
  await engine.addRecipients(campaign.id, [{ phone: '5511987654321', vars: { name: 'Ana' } }]);
  await engine.start(campaign.id);
  const step = await engine.step({ campaignId: campaign.id, budgetMs: 5_000 });
  const progress = await engine.progress(campaign.id);
  return Response.json({ success: true, sum, deno: Deno.version.deno, step, sent: progress.sent ?? progress.counters?.sent });
});
`;

let sb: TestSupabase;
let project: DenoProject;

beforeAll(async () => {
  const core = workspacePackage('@disparo/core');
  ensureBuilt([core]);
  sb = await startTestSupabase('edge_deno', { setupSql: 'CREATE FUNCTION public.add_them(a integer, b integer) RETURNS integer LANGUAGE sql IMMUTABLE AS $$ SELECT a + b $$;' });
  project = denoProject({ 'process-campaigns/index.ts': FUNCTION }, importMapFor([core]));
}, 180_000);

afterAll(async () => {
  await sb?.stop();
  project?.remove();
});

describe('an edge function under Deno', () => {
  it('serves with Deno.serve, calls the database through supabase-js from npm, and runs core from the built package', async () => {
    const fn = await serveDeno('process-campaigns/index.ts', {
      cwd: project.dir,
      env: { SUPABASE_URL: sb.url, SUPABASE_SERVICE_ROLE_KEY: sb.serviceKey },
    });
    try {
      const res = await fetch(`${fn.url}/process-campaigns`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ a: 2, b: 3 }) });
      const body = (await res.json()) as { success: boolean; sum: number; deno: string; sent: number };
      expect(res.status, fn.output()).toBe(200);
      expect(body).toMatchObject({ success: true, sum: 5, sent: 1 });
      expect(body.deno).toMatch(/^2\.9\./);
    } finally {
      await fn.stop();
    }
  }, 180_000);

  it('resolves @disparo/core only through the import map: without the entry the function does not load', async () => {
    const imports = importMapFor([workspacePackage('@disparo/core')]);
    delete imports['@disparo/core'];
    const bare = denoProject({ 'index.ts': FUNCTION }, imports);
    try {
      const run = await runDeno(['run', '--no-lock', ...EDGE_PERMISSIONS, 'index.ts'], { cwd: bare.dir, env: { DENO_SERVE_ADDRESS: 'tcp:127.0.0.1:0' }, timeoutMs: 60_000 });
      expect(run.code).not.toBe(0);
      expect(run.stderr).toMatch(/@disparo\/core/);
    } finally {
      bare.remove();
    }
  }, 180_000);
});
