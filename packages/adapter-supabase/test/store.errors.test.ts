/**
 * What goes wrong between a Supabase store and its project reaches the caller as the library's typed
 * errors, saying what to do: a wrong key, a migration not applied, a schema not exposed, an unreachable
 * or silent project, and values or ids the database refuses (the same mapping as the PostgreSQL store).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConflictError, NotFoundError, StoreError, ValidationError } from '@disparo/core';
import { createSupabaseStore } from '../src/index.js';
import { startDisparoSupabase, type DisparoSupabase } from './support/disparo.js';

const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);
const campaign = (id: string, o: { name?: string } = {}) => ({
  id,
  name: o.name ?? 'ok',
  templates: ['Oi {{name}}'],
  media: null,
  accountIds: ['a1'],
  settings: {
    batchSize: 10,
    batchPauseMs: { min: 0, max: 0 },
    maxAttempts: 3,
    retryBackoffMs: { min: 0, max: 0 },
    inDoubt: 'at-most-once' as const,
    sendWindow: null,
    stickySender: false,
    precheckNumbers: false,
    contactCap: null,
  },
  status: 'draft' as const,
  scheduledAt: null,
  metadata: {},
  now: T0,
});

let project: DisparoSupabase;
beforeAll(async () => {
  // Also an exposed schema without the migration, as a project that forgot `supabase db push` has.
  project = await startDisparoSupabase('sb_errors', { setupSql: 'CREATE SCHEMA bare; GRANT USAGE ON SCHEMA bare TO service_role;', exposeAlso: ['bare'] });
});
afterAll(async () => {
  await project?.stop();
});

describe('options and client', () => {
  it('validates options with zod, naming the option', () => {
    const client = project.sb.client(project.sb.serviceKey);
    expect(() => createSupabaseStore(client, { schema: 'no-dashes' })).toThrow(ValidationError);
    try {
      createSupabaseStore(client, { schema: 'disparo', timeoutMs: 5, bogus: 1 } as never);
    } catch (error) {
      expect(ValidationError.isInstance(error)).toBe(true);
      expect((error as ValidationError).issues.map((i) => i.path).sort()).toEqual(['bogus', 'timeoutMs']);
    }
    expect(() => createSupabaseStore({} as never)).toThrow(/needs a @supabase\/supabase-js client/);
  });

  it('refuses, before any call, a client made with the anon key', () => {
    expect(() => createSupabaseStore(project.sb.client(project.sb.anonKey))).toThrow(/service_role key.*not the anon key/);
  });
});

describe('calls Supabase refuses', () => {
  it("a caller the functions do not admit (a user's token): StoreError saying to use the service_role key", async () => {
    const token = project.sb.token({ role: 'authenticated', sub: 'u1', exp: Math.floor(Date.now() / 1000) + 600 });
    const store = createSupabaseStore(project.sb.client(project.sb.serviceKey, { global: { headers: { Authorization: `Bearer ${token}` } } }));
    const error = await store.getCampaign('c1').catch((e: unknown) => e);
    expect(StoreError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(/getCampaign \(disparo\.get_campaign\) was refused: permission denied for schema disparo\. The Disparo store needs a Supabase client created with the project's service_role key/);
  });

  it('a schema without the migration: StoreError saying to apply the migration', async () => {
    const store = createSupabaseStore(project.sb.client(project.sb.serviceKey), { schema: 'bare' });
    await expect(store.listCampaigns()).rejects.toThrow(/Could not find the function bare\.list_campaigns.*apply the migration this package ships .*supabase db push/);
  });

  it('a schema the Data API does not expose: StoreError saying how to expose it', async () => {
    const store = createSupabaseStore(project.sb.client(project.sb.serviceKey), { schema: 'hidden' });
    await expect(store.listCampaigns()).rejects.toThrow(/the schema "hidden" is not exposed by the Data API .*Exposed schemas.*pgrst\.db_schemas/);
  });

  it('a key the project does not know: StoreError', async () => {
    const store = createSupabaseStore(project.sb.client(project.sb.token({ role: 'service_role' }).replace(/.$/, 'x')));
    await expect(store.listCampaigns()).rejects.toThrow(/Supabase refused the key \(Invalid authentication credentials\)/);
  });
});

describe('a project that cannot be reached or does not answer', () => {
  let silent: Server;
  const held = new Set<Socket>();
  let silentUrl = '';
  // Node 20 has no WebSocket of its own: supabase-js needs `ws` for its realtime client, even unused.
  const client = (url: string) => createClient(url, project.sb.serviceKey, { auth: { persistSession: false }, realtime: { transport: WebSocket as never } });
  beforeAll(async () => {
    // Accepts connections and never answers.
    silent = createServer((socket) => held.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentUrl = `http://127.0.0.1:${(silent.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    for (const socket of held) socket.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });

  it('nothing listening: StoreError (the engine retries)', async () => {
    const store = createSupabaseStore(client('http://127.0.0.1:1'));
    const error = await store.listCampaigns().catch((e: unknown) => e);
    expect(StoreError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(/could not reach Supabase's Data API/);
  });

  it('no answer: StoreError after timeoutMs', async () => {
    const store = createSupabaseStore(client(silentUrl), { timeoutMs: 300 });
    const t0 = performance.now();
    await expect(store.listCampaigns()).rejects.toThrow(/got no answer from Supabase within 300 ms/);
    expect(performance.now() - t0).toBeLessThan(3_000);
  });
});

describe('values and ids the database refuses: the PostgreSQL store mapping', () => {
  it('a taken campaign id: ConflictError', async () => {
    const store = project.store();
    await store.createCampaign(campaign('dup'));
    const error = await store.createCampaign(campaign('dup')).catch((e: unknown) => e);
    expect(ConflictError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(/A campaign with id "dup" already exists/);
  });

  it('recipients for an unknown campaign: NotFoundError', async () => {
    const error = await project.store().addRecipients('nope', [{ phone: '5511999990000', vars: {} }], T0).catch((e: unknown) => e);
    expect(NotFoundError.isInstance(error)).toBe(true);
  });

  it('a NUL character: ValidationError naming the field, nothing stored', async () => {
    const store = project.store();
    await store.createCampaign(campaign('nul'));
    const error = await store.addRecipients('nul', [{ phone: '5511999990001', vars: { name: 'ok' } }, { phone: '5511999990002', vars: { name: 'a\u0000b' } }], T0).catch((e: unknown) => e);
    expect(ValidationError.isInstance(error)).toBe(true);
    expect((error as ValidationError).field).toBe('rows[1].vars.name');
    expect(await project.raw.recipients('nul')).toEqual([]);
  });
});
