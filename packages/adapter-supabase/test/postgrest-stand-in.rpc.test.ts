/**
 * The PostgREST stand-in, through the real @supabase/supabase-js 2.x client: the contract the Supabase
 * store will rely on (RPC shapes, errors, role switching from the JWT, schema selection), and the
 * permission errors that keep `anon` and `authenticated` out of service-only functions and tables.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiSurface, probeAccess } from './support/api-surface.js';
import { startTestSupabase, type TestSupabase } from './support/supabase.js';

const SAMPLE = `
CREATE TABLE public.notes (id bigserial PRIMARY KEY, body text NOT NULL UNIQUE, tags text[] NOT NULL DEFAULT '{}', meta jsonb,
  created_by text NOT NULL DEFAULT current_user);
ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY;
-- What a service-only table needs on Supabase: the default privileges granted everything to the API roles.
REVOKE ALL ON public.notes FROM anon, authenticated;
-- Left with Supabase's default grants: RLS without policies hides rows but raises no error.
CREATE TABLE public.open_notes (id int PRIMARY KEY);
ALTER TABLE public.open_notes ENABLE ROW LEVEL SECURITY;
INSERT INTO public.open_notes VALUES (1);
CREATE SEQUENCE public.ticket;

CREATE FUNCTION public.add_them(a integer, b integer) RETURNS integer LANGUAGE sql IMMUTABLE AS $$ SELECT a + b $$;
CREATE FUNCTION public.greet(name text DEFAULT 'guest') RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'Hello ' || name || '!' $$;
CREATE FUNCTION public.note_add(body text, tags text[] DEFAULT '{}', meta jsonb DEFAULT NULL) RETURNS public.notes LANGUAGE sql
  AS $$ INSERT INTO public.notes (body, tags, meta) VALUES (body, tags, meta) RETURNING * $$;
CREATE FUNCTION public.notes_after(after_id bigint) RETURNS SETOF public.notes LANGUAGE sql STABLE
  AS $$ SELECT * FROM public.notes WHERE id > after_id ORDER BY id $$;
CREATE FUNCTION public.note_ids() RETURNS SETOF bigint LANGUAGE sql STABLE AS $$ SELECT id FROM public.notes ORDER BY id $$;
CREATE FUNCTION public.note_stats() RETURNS TABLE (total bigint, newest text) LANGUAGE sql STABLE
  AS $$ SELECT count(*), max(body) FROM public.notes $$;
CREATE FUNCTION public.notes_tag(ids bigint[], tag text) RETURNS void LANGUAGE sql
  AS $$ UPDATE public.notes SET tags = tags || tag WHERE id = ANY (ids) $$;
CREATE FUNCTION public.refuse(reason text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'refused: %', reason USING DETAIL = 'the detail', HINT = 'the hint'; END $$;
CREATE FUNCTION public.echo(jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$ SELECT $1 $$;
CREATE FUNCTION public.next_ticket_stable() RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT nextval('public.ticket') $$;
CREATE FUNCTION public.teapot() RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM set_config('response.status', '418', true); RETURN 'short and stout'; END $$;
CREATE FUNCTION public.whoami() RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('user', current_user, 'claims', current_setting('request.jwt.claims', true)::jsonb,
    'search_path', current_setting('search_path'), 'read_only', current_setting('transaction_read_only'),
    'statement_timeout', current_setting('statement_timeout'), 'path', current_setting('request.path', true)) $$;
CREATE FUNCTION public.nap(seconds float8) RETURNS text LANGUAGE sql AS $$ SELECT pg_sleep(seconds)::text || 'rested' $$;
CREATE FUNCTION public.whoami_volatile() RETURNS jsonb LANGUAGE sql AS $$ SELECT public.whoami() $$;

-- Service-only, the way the store's functions are meant to be: SECURITY DEFINER, fixed search_path,
-- EXECUTE for service_role alone.
CREATE FUNCTION public.notes_count() RETURNS bigint LANGUAGE sql SECURITY DEFINER SET search_path = ''
  AS $$ SELECT count(*) FROM public.notes $$;
REVOKE EXECUTE ON FUNCTION public.notes_count() FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION public.notes_count() TO service_role;

CREATE SCHEMA tenant;
GRANT USAGE ON SCHEMA tenant TO service_role;
CREATE FUNCTION tenant.hello() RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'hello from tenant' $$;
-- A service-only schema, the shape the store's will have.
CREATE SCHEMA locked;
GRANT USAGE ON SCHEMA locked TO anon, authenticated, service_role;
CREATE TABLE locked.jobs (id int PRIMARY KEY, payload jsonb);
ALTER TABLE locked.jobs ENABLE ROW LEVEL SECURITY;
CREATE VIEW locked.job_count AS SELECT count(*) AS n FROM locked.jobs;
CREATE FUNCTION locked.claim(worker text, n int DEFAULT 1) RETURNS SETOF locked.jobs LANGUAGE sql SECURITY DEFINER SET search_path = ''
  AS $$ SELECT * FROM locked.jobs ORDER BY id LIMIT n $$;
CREATE FUNCTION locked.ping() RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = '' AS $$ SELECT $$;
REVOKE ALL ON ALL TABLES IN SCHEMA locked FROM PUBLIC, anon, authenticated;
GRANT SELECT ON ALL TABLES IN SCHEMA locked TO service_role;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA locked FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA locked TO service_role;

CREATE SCHEMA hidden;
CREATE FUNCTION hidden.hello() RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'hidden' $$;
`;

let sb: TestSupabase;

beforeAll(async () => {
  sb = await startTestSupabase('sb_standin', { setupSql: SAMPLE, schemas: ['public', 'tenant', 'locked'] });
});

afterAll(async () => {
  await sb?.stop();
});

describe('RPC shapes through supabase-js with the service_role key', () => {
  it('returns a scalar as a bare JSON value, with parameter defaults applied', async () => {
    const service = sb.client(sb.serviceKey);
    expect(await service.rpc('add_them', { a: 1, b: 2 })).toMatchObject({ data: 3, error: null, status: 200 });
    expect((await service.rpc('greet')).data).toBe('Hello guest!');
    expect((await service.rpc('greet', { name: 'Ana' })).data).toBe('Hello Ana!');
  });

  it('returns a composite as an object, SETOF as arrays, and types arguments from JSON (arrays, jsonb)', async () => {
    const service = sb.client(sb.serviceKey);
    const first = await service.rpc('note_add', { body: 'first', tags: ['a', 'b'], meta: { n: 1, deep: { ok: true } } });
    expect(first.error).toBeNull();
    // created_by defaults to current_user: the function ran as the JWT's role.
    expect(first.data).toMatchObject({ body: 'first', tags: ['a', 'b'], meta: { n: 1, deep: { ok: true } }, created_by: 'service_role' });
    const second = await service.rpc('note_add', { body: 'second' });
    const firstId = (first.data as { id: number }).id;

    const after = await service.rpc('notes_after', { after_id: firstId });
    expect(after.data).toEqual([expect.objectContaining({ body: 'second', tags: [] })]);
    expect((await service.rpc('note_ids')).data).toEqual([firstId, (second.data as { id: number }).id]);
    expect((await service.rpc('notes_after', { after_id: 1_000_000 })).data).toEqual([]);
    // RETURNS TABLE is a set of composites: an array even for one row.
    expect((await service.rpc('note_stats')).data).toEqual([{ total: 2, newest: 'second' }]);
  });

  it('answers 204 with no body for a void function, and the change is committed', async () => {
    const service = sb.client(sb.serviceKey);
    const { data } = await service.rpc('note_add', { body: 'to tag' });
    const id = (data as { id: number }).id;
    const tagged = await service.rpc('notes_tag', { ids: [id], tag: 'urgent' });
    expect(tagged).toMatchObject({ data: null, error: null, status: 204 });
    const { rows } = await sb.sql<{ tags: string[] }>('SELECT tags FROM public.notes WHERE id = $1', [id]);
    expect(rows[0]!.tags).toEqual(['urgent']);

    const raw = await fetch(`${sb.url}/rest/v1/rpc/notes_tag`, {
      method: 'POST',
      headers: { apikey: sb.serviceKey, authorization: `Bearer ${sb.serviceKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ids: [id], tag: 'again' }),
    });
    expect(raw.status).toBe(204);
    expect(raw.headers.get('content-type')).toBeNull();
    expect(await raw.text()).toBe('');
  });

  it('passes the whole body to a function with one unnamed jsonb parameter', async () => {
    const body = { x: 4, list: [1, 'two', null], nested: { y: true } };
    expect((await sb.client(sb.serviceKey).rpc('echo', body)).data).toEqual(body);
  });

  it('lets a function set the response status', async () => {
    const res = await fetch(`${sb.url}/rest/v1/rpc/teapot`, { method: 'POST', headers: { apikey: sb.serviceKey, 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(418);
    expect(await res.json()).toBe('short and stout');
  });

  it('runs in a transaction with the role, claims, search_path and access mode PostgREST sets', async () => {
    const service = sb.client(sb.serviceKey);
    const stable = (await service.rpc('whoami')).data as Record<string, unknown>;
    expect(stable).toMatchObject({ user: 'service_role', claims: { role: 'service_role', iss: 'supabase' }, read_only: 'on', path: '/rpc/whoami' });
    // The selected schema, then db-extra-search-path, each quoted (PostgREST's escapeIdentList).
    expect(stable.search_path).toBe('"public", "public", "extensions"');
    // The authenticator's own 8 s statement_timeout (Supabase) holds for service_role.
    expect(stable.statement_timeout).toBe('8s');
    expect(((await service.rpc('whoami_volatile')).data as Record<string, unknown>).read_only).toBe('off');

    // No Authorization of its own: the gateway authorises with the apikey, the anon key here.
    const anon = (await sb.client(sb.anonKey).rpc('whoami')).data as Record<string, unknown>;
    expect(anon).toMatchObject({ user: 'anon', claims: { role: 'anon' }, statement_timeout: '3s' });
    const user = sb.client(sb.anonKey, { global: { headers: { Authorization: `Bearer ${sb.token({ role: 'authenticated', sub: 'user-1' })}` } } });
    expect((await user.rpc('whoami')).data).toMatchObject({ user: 'authenticated', claims: { role: 'authenticated', sub: 'user-1' }, statement_timeout: '8s' });
  });
});

describe('errors in PostgREST JSON with its HTTP statuses', () => {
  it('RAISE EXCEPTION: 400 with code P0001, message, details and hint', async () => {
    const { data, error, status } = await sb.client(sb.serviceKey).rpc('refuse', { reason: 'no' });
    expect(data).toBeNull();
    expect(status).toBe(400);
    expect(error).toEqual({ code: 'P0001', message: 'refused: no', details: 'the detail', hint: 'the hint' });
  });

  it('unique violation: 409 23505, and the failed call left nothing behind', async () => {
    const service = sb.client(sb.serviceKey);
    await service.rpc('note_add', { body: 'unique' });
    const again = await service.rpc('note_add', { body: 'unique' });
    expect(again.status).toBe(409);
    expect(again.error).toMatchObject({ code: '23505', details: 'Key (body)=(unique) already exists.' });
    const { rows } = await sb.sql<{ n: string }>(`SELECT count(*) AS n FROM public.notes WHERE body = 'unique'`);
    expect(rows[0]!.n).toBe('1');
  });

  it('unknown function or unknown argument: 404 PGRST202', async () => {
    const service = sb.client(sb.serviceKey);
    const missing = await service.rpc('no_such_function', { a: 1 });
    expect(missing.status).toBe(404);
    expect(missing.error).toMatchObject({ code: 'PGRST202', message: 'Could not find the function public.no_such_function(a) in the schema cache' });
    const wrongArg = await service.rpc('add_them', { a: 1, c: 2 });
    expect(wrongArg.status).toBe(404);
    expect(wrongArg.error).toMatchObject({ code: 'PGRST202', hint: 'Perhaps you meant to call the function public.add_them(a, b)' });
  });

  it('a STABLE function that writes fails in its READ ONLY transaction: 405 25006', async () => {
    const { status, error } = await sb.client(sb.serviceKey).rpc('next_ticket_stable');
    expect(status).toBe(405);
    expect(error).toMatchObject({ code: '25006', message: 'cannot execute nextval() in a read-only transaction' });
  });

  it('marks errors with a Proxy-Status header', async () => {
    const res = await fetch(`${sb.url}/rest/v1/rpc/refuse`, {
      method: 'POST',
      headers: { apikey: sb.serviceKey, 'content-type': 'application/json' },
      body: '{"reason":"x"}',
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('proxy-status')).toBe('PostgREST; error=P0001');
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
  });

  it('invalid JSON body: 400 PGRST102', async () => {
    const res = await fetch(`${sb.url}/rest/v1/rpc/add_them`, { method: 'POST', headers: { apikey: sb.serviceKey, 'content-type': 'application/json' }, body: '{"a":' });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ code: 'PGRST102', details: null, hint: null, message: 'Empty or invalid json' });
  });
});

describe('schema cache', () => {
  it('picks up a function replaced by DDL: the event triggers send NOTIFY pgrst', async () => {
    const service = sb.client(sb.serviceKey);
    await sb.sql(`CREATE FUNCTION public.shape(a int) RETURNS text LANGUAGE sql AS $$ SELECT 'a' $$`);
    expect((await service.rpc('shape', { a: 1 })).data).toBe('a');
    await sb.sql(`DROP FUNCTION public.shape(int); CREATE FUNCTION public.shape(b text) RETURNS text LANGUAGE sql AS $$ SELECT 'b:' || b $$`);
    // The notification arrives after the DDL commits, as with PostgREST: poll until the reload happened.
    let result = await service.rpc('shape', { b: 'x' });
    for (let i = 0; i < 100 && result.error; i++) {
      await new Promise((r) => setTimeout(r, 20));
      result = await service.rpc('shape', { b: 'x' });
    }
    expect(result).toMatchObject({ data: 'b:x', error: null });
    expect((await service.rpc('shape', { a: 1 })).error).toMatchObject({ code: 'PGRST202' });
  });
});

describe('database outages', () => {
  it('a connection killed during a call answers 503 (57P01), and the next call gets a new connection', async () => {
    const service = sb.client(sb.serviceKey);
    // supabase-js builders are lazy: then() sends the request.
    const napping = service.rpc('nap', { seconds: 5 }).then((r) => r);
    // Wait until the call is running in the database, then end its backend as an operator would.
    let killed = 0;
    for (let i = 0; i < 100 && killed === 0; i++) {
      const { rows } = await sb.sql<{ n: string }>(
        `SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE usename = 'authenticator' AND query LIKE '%"nap"%' AND state = 'active'`,
      );
      killed = Number(rows[0]!.n);
      if (killed === 0) await new Promise((r) => setTimeout(r, 20));
    }
    expect(killed).toBe(1);
    const { status, error } = await napping;
    expect(status).toBe(503);
    expect(error).toMatchObject({ code: '57P01', message: 'terminating connection due to administrator command' });
    expect(await service.rpc('add_them', { a: 2, b: 2 })).toMatchObject({ data: 4, status: 200 });
  });
});

describe('who may call what', () => {
  const userToken = () => sb.token({ role: 'authenticated', sub: 'user-1', exp: Math.floor(Date.now() / 1000) + 600 });

  it('a service-only SECURITY DEFINER function: service_role yes, anon 401 and authenticated 403 with 42501', async () => {
    expect(await sb.client(sb.serviceKey).rpc('notes_count')).toMatchObject({ error: null, status: 200 });
    expect(typeof (await sb.client(sb.serviceKey).rpc('notes_count')).data).toBe('number');

    const anon = await sb.client(sb.anonKey).rpc('notes_count');
    expect(anon.status).toBe(401);
    expect(anon.error).toMatchObject({ code: '42501', message: 'permission denied for function notes_count' });

    const user = await sb.client(sb.anonKey, { global: { headers: { Authorization: `Bearer ${userToken()}` } } }).rpc('notes_count');
    expect(user.status).toBe(403);
    expect(user.error).toMatchObject({ code: '42501', message: 'permission denied for function notes_count' });
  });

  it('every function and table of a service-only schema: anon 401 and authenticated 403, all with 42501; service_role gets through', async () => {
    const surface = await apiSurface(sb.sql, 'locked');
    expect(surface.map((o) => `${o.kind} ${o.name}`)).toEqual(['function claim', 'function ping', 'table job_count', 'table jobs']);
    const anon = await probeAccess(sb.client(sb.anonKey, { db: { schema: 'locked' } }), surface);
    expect(anon.filter((r) => r.status !== 401 || r.code !== '42501')).toEqual([]);
    const user = await probeAccess(sb.client(sb.anonKey, { db: { schema: 'locked' }, global: { headers: { Authorization: `Bearer ${userToken()}` } } }), surface);
    expect(user.filter((r) => r.status !== 403 || r.code !== '42501')).toEqual([]);
    const service = await probeAccess(sb.client(sb.serviceKey, { db: { schema: 'locked' } }), surface);
    expect(service.map((r) => r.status)).toEqual([200, 204, 200, 200]);
    // The probe finds an open door: in public, functions keep Supabase's default grants.
    const open = await probeAccess(sb.client(sb.anonKey), (await apiSurface(sb.sql, 'public')).filter((o) => o.name === 'add_them' || o.name === 'notes_count'));
    expect(open.map((r) => [r.object, r.status])).toEqual([['function add_them', 200], ['function notes_count', 401]]);
  });

  it('a table with its API grants revoked: anon 401, authenticated 403, service_role reads it', async () => {
    const anon = await sb.client(sb.anonKey).from('notes').select('*');
    expect(anon.status).toBe(401);
    expect(anon.error).toMatchObject({ code: '42501', message: 'permission denied for table notes' });
    const user = await sb.client(sb.anonKey, { global: { headers: { Authorization: `Bearer ${userToken()}` } } }).from('notes').select('*');
    expect(user.status).toBe(403);
    expect(user.error).toMatchObject({ code: '42501' });
    const service = await sb.client(sb.serviceKey).from('notes').select('*');
    expect(service.error).toBeNull();
    expect(Array.isArray(service.data)).toBe(true);
  });

  it('RLS without policies on a table that kept the default grants hides rows but raises no error', async () => {
    expect(await sb.client(sb.anonKey).from('open_notes').select('*')).toMatchObject({ data: [], error: null, status: 200 });
    expect((await sb.client(sb.serviceKey).from('open_notes').select('*')).data).toEqual([{ id: 1 }]);
  });

  it('refuses a token with a bad signature, an expired one and an unknown role, with 401', async () => {
    const forged = sb.token({ role: 'service_role' }).replace(/\.[^.]+$/, '.' + Buffer.from('not the signature').toString('base64url'));
    const bad = await sb.client(sb.anonKey, { global: { headers: { Authorization: `Bearer ${forged}` } } }).rpc('notes_count');
    expect(bad.status).toBe(401);
    expect(bad.error).toEqual({ code: 'PGRST301', details: 'None of the keys was able to decode the JWT', hint: null, message: 'No suitable key or wrong key type' });

    const otherSecret = (await import('./support/jwt.js')).signJwt({ role: 'service_role' }, 'a-different-secret-of-32-characters!!');
    expect((await sb.client(sb.anonKey, { global: { headers: { Authorization: `Bearer ${otherSecret}` } } }).rpc('notes_count')).error).toMatchObject({ code: 'PGRST301' });

    const expired = sb.token({ role: 'service_role', exp: Math.floor(Date.now() / 1000) - 60 });
    const old = await sb.client(sb.anonKey, { global: { headers: { Authorization: `Bearer ${expired}` } } }).rpc('notes_count');
    expect(old.status).toBe(401);
    expect(old.error).toMatchObject({ code: 'PGRST303', message: 'JWT expired' });

    const ghost = await sb.client(sb.anonKey, { global: { headers: { Authorization: `Bearer ${sb.token({ role: 'ghost' })}` } } }).rpc('whoami');
    expect(ghost.status).toBe(401);
    expect(ghost.error).toMatchObject({ code: '22023', message: 'role "ghost" does not exist' });

    const res = await fetch(`${sb.url}/rest/v1/rpc/whoami`, { method: 'POST', headers: { apikey: sb.anonKey, authorization: `Bearer ${forged}` } });
    expect(res.headers.get('www-authenticate')).toBe('Bearer error="invalid_token", error_description="No suitable key or wrong key type"');
  });

  it('the gateway refuses a request without a known apikey', async () => {
    const none = await fetch(`${sb.url}/rest/v1/rpc/whoami`, { method: 'POST' });
    expect(none.status).toBe(401);
    expect(await none.json()).toEqual({ message: 'No API key found in request' });
    const wrong = sb.client(sb.token({ role: 'service_role' }));
    const refused = await wrong.rpc('whoami');
    expect(refused.status).toBe(401);
    expect(refused.error).toMatchObject({ message: 'Invalid authentication credentials' });
  });
});

describe('schema selection', () => {
  it('calls a function in another exposed schema with db: { schema }, and refuses an unexposed one with 406 PGRST106', async () => {
    const tenant = sb.client(sb.serviceKey, { db: { schema: 'tenant' } });
    expect(await tenant.rpc('hello')).toMatchObject({ data: 'hello from tenant', status: 200 });
    // The default schema has no such function.
    expect((await sb.client(sb.serviceKey).rpc('hello')).error).toMatchObject({ code: 'PGRST202' });

    const hidden = await sb.client(sb.serviceKey, { db: { schema: 'hidden' } }).rpc('hello');
    expect(hidden.status).toBe(406);
    expect(hidden.error).toEqual({ code: 'PGRST106', details: null, hint: 'Only the following schemas are exposed: public, tenant, locked', message: 'Invalid schema: hidden' });
  });

  it('needs USAGE on the schema: anon gets 401 42501 in a schema granted only to service_role', async () => {
    const anon = await sb.client(sb.anonKey, { db: { schema: 'tenant' } }).rpc('hello');
    expect(anon.status).toBe(401);
    expect(anon.error).toMatchObject({ code: '42501', message: 'permission denied for schema tenant' });
  });
});
