/**
 * The StateStore conformance suite on the Supabase store: real @supabase/supabase-js, the PostgREST
 * stand-in, real PostgreSQL with the schema the shipped migration creates (not migrate()), and the
 * service_role key. "Another worker" is a store on another client: its calls go over their own HTTP
 * connections and so run on other database connections of the stand-in's pool.
 */
import { afterAll, beforeAll } from 'vitest';
import { describeStateStore } from '@disparo/core/testing';
import { startDisparoSupabase, type DisparoSupabase } from './support/disparo.js';

let project: DisparoSupabase;
beforeAll(async () => {
  // Supabase's default "Max rows": the store must page and cap its calls under it.
  project = await startDisparoSupabase('sb_conformance', { maxRows: 1_000 });
});
afterAll(async () => {
  await project?.stop();
});

describeStateStore(
  'supabase',
  async () => {
    await project.truncate();
    return project.store();
  },
  {
    inspect: () => project.raw,
    share: async () => project.store(),
    concurrency: true,
  },
);
