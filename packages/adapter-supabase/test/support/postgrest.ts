/**
 * A PostgREST stand-in for tests: a small HTTP server (node:http) in front of a real PostgreSQL that
 * implements the part of PostgREST's API that `supabase.rpc(...)` uses, as PostgREST documents it
 * (docs.postgrest.org: "Functions as RPC", "Schemas", "Authentication", "Transactions", "Errors").
 * PostgREST itself cannot be installed here (no Debian package; its npm package downloads a binary).
 * Test support only: not part of the published package.
 *
 * What it does, per request (PostgREST's order):
 * - Supabase's API gateway first, when `apiKeys` is given (Supabase's kong.yml: key-auth on the `apikey`
 *   header, and `Authorization` defaults to the apikey when the client sent none).
 * - JWT: `Authorization: Bearer <token>` verified with HS256 and the JWT secret; `exp`/`nbf`/`iat` checked
 *   with 30 s of skew; the `role` claim picks the database role, no token (or no role claim) means the
 *   anonymous role. Failures: 401 PGRST301 / PGRST303 with a `WWW-Authenticate` header.
 * - Schema: `Content-Profile` (POST) or `Accept-Profile` (GET/HEAD) selects one of the exposed schemas
 *   (db-schemas), the first by default; another answers 406 PGRST106.
 * - One transaction per request on a connection of the `authenticator` role: READ ONLY for GET/HEAD and
 *   for STABLE/IMMUTABLE functions, READ WRITE for VOLATILE ones called with POST; then, transaction-local,
 *   `search_path` (selected schema + db-extra-search-path), `role`, `request.jwt.claims` (the claims with
 *   `role` filled in), `request.method`, `request.path`, `request.headers`, `request.cookies`, and the
 *   impersonated role's own settings (e.g. anon's statement_timeout).
 * - `POST /rpc/<fn>` with a JSON object: each key an argument by name; the overload is chosen like
 *   PostgREST (required parameters all given, optional ones any subset, no unknown key), else a function
 *   with one unnamed json/jsonb parameter gets the whole body; none: 404 PGRST202, several: 300 PGRST203.
 *   Arguments are typed through `json_to_record` with the parameters' types, as PostgREST does.
 *   `GET`/`HEAD /rpc/<fn>?a=1` pass query parameters as arguments.
 * - Result: a set-returning function gives a JSON array, one returning a composite gives an object,
 *   a scalar function the bare JSON value, `void` gives 204 with no body and no Content-Type.
 *   `response.status` set by the function overrides the status.
 * - Errors: `{code, message, details, hint}` with PostgREST's SQLSTATE to HTTP mapping (42501: 401 for the
 *   anonymous role, 403 otherwise), a `Proxy-Status: PostgREST; error=<code>` header, `RAISE SQLSTATE
 *   'PTxyz'` and `'PGRST'` custom errors.
 * - `GET /<table>?select=*` reads a whole table or view as a JSON array (enough to show which roles may
 *   read it); filters, ordering, embedding and writes to tables answer 400 PGRST127, as do RPC filters,
 *   bulk (array) calls and non-JSON bodies.
 *
 * - Schema cache: functions and tables are remembered once found and forgotten on
 *   `NOTIFY pgrst, 'reload schema'` (installSupabaseRoles adds Supabase's DDL event triggers that send it).
 *
 * Differences from PostgREST, on purpose: the schema cache fills on first use (PostgREST loads it at
 * start-up, so a function created later is found here without a reload), no fuzzy "Perhaps you meant"
 * hints for unknown names, no OpenAPI root, no Prefer handling (count, tx, handling).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { verifyJwt, type JwtClaims } from './jwt.js';

export interface PostgrestOptions {
  /** How the stand-in reaches the database: the `authenticator` role (see installSupabaseRoles). */
  authenticatorUrl: string;
  /** PostgREST's jwt-secret (HS256). */
  jwtSecret: string;
  /** db-schemas: the exposed schemas, the first is the default. Supabase's default: public (and graphql_public). */
  schemas?: string[];
  /** db-extra-search-path. Supabase: public, extensions. */
  extraSearchPath?: string[];
  /** db-anon-role. Supabase: anon. */
  anonRole?: string;
  /**
   * Put Supabase's API gateway in front: the `apikey` header must be one of these keys (401 otherwise),
   * and a request without `Authorization` is authorised with its apikey. Without it: PostgREST alone.
   */
  apiKeys?: string[];
  /** Where PostgREST is mounted. Supabase: /rest/v1. */
  basePath?: string;
  /** db-pool: connections to the database. PostgREST's default is 10. */
  poolSize?: number;
  /**
   * db-max-rows: at most this many rows of a table or of a set-returning function's result are sent
   * (a LIMIT on the outer query: the function itself runs to the end). Supabase's default is 1000
   * (Project Settings > Data API > Max rows); PostgREST's own default is no limit.
   */
  maxRows?: number;
  port?: number;
}

export interface RunningPostgrest {
  /** The base URL a Supabase client takes (`createClient(url, key)`); PostgREST is at `${url}/rest/v1`. */
  url: string;
  /** Requests answered so far (all outcomes). */
  readonly requests: number;
  /** Forgets the cached functions and tables at once (what `NOTIFY pgrst, 'reload schema'` does, asynchronously). */
  reloadSchemaCache(): void;
  close(): Promise<void>;
}

interface ApiError {
  status: number;
  code: string;
  message: string;
  details?: string | null;
  hint?: string | null;
  headers?: Record<string, string>;
}

class PostgrestError extends Error {
  constructor(readonly body: ApiError) {
    super(body.message);
  }
}

const fail = (e: ApiError): never => {
  throw new PostgrestError(e);
};

const notImplemented = (what: string) => fail({ status: 400, code: 'PGRST127', message: 'Feature not implemented', details: `${what} (not part of the PostgREST stand-in)` });

interface Param {
  name: string;
  type: string;
  required: boolean;
  variadic: boolean;
}

interface Routine {
  params: Param[];
  volatility: 'i' | 's' | 'v';
  setof: boolean;
  composite: boolean;
  isVoid: boolean;
}

// PostgREST's schema-cache query for functions (src/PostgREST/SchemaCache.hs, funcsSqlQuery), narrowed to
// one name. Types are printed with search_path = pg_catalog, so every other type comes out schema-qualified.
const ROUTINES_SQL = `
SELECT p.provolatile AS volatility, p.proretset AS setof,
  (t.typtype = 'c' OR COALESCE(p.proargmodes::text[] && '{t,b,o}', false)) AS composite,
  (p.prorettype = 'pg_catalog.void'::pg_catalog.regtype) AS is_void,
  COALESCE(a.params, '[]') AS params, COALESCE(a.callable, true) AS callable
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_type t ON t.oid = p.prorettype
LEFT JOIN LATERAL (
  SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
      'name', COALESCE(x.name, ''),
      'type', CASE x.type
        WHEN 'pg_catalog.bit'::pg_catalog.regtype THEN 'bit varying'
        WHEN 'pg_catalog.bit[]'::pg_catalog.regtype THEN 'bit varying[]'
        WHEN 'pg_catalog.bpchar'::pg_catalog.regtype THEN 'character varying'
        WHEN 'pg_catalog.bpchar[]'::pg_catalog.regtype THEN 'character varying[]'
        ELSE x.type::pg_catalog.regtype::text END,
      'required', x.ord <= p.pronargs - p.pronargdefaults,
      'variadic', COALESCE(x.mode = 'v', false)) ORDER BY x.ord) AS params,
    CASE pg_catalog.count(*) - pg_catalog.count(x.name)
      WHEN 0 THEN true
      WHEN 1 THEN (pg_catalog.array_agg(x.type))[1] IN ('pg_catalog.bytea'::pg_catalog.regtype, 'pg_catalog.json'::pg_catalog.regtype,
        'pg_catalog.jsonb'::pg_catalog.regtype, 'pg_catalog.text'::pg_catalog.regtype, 'pg_catalog.xml'::pg_catalog.regtype)
      ELSE false END AS callable
  FROM (
    SELECT u.type, NULLIF(u.name, '') AS name, u.mode, pg_catalog.row_number() OVER (ORDER BY u.idx) AS ord
    FROM unnest(COALESCE(p.proallargtypes, p.proargtypes::pg_catalog.oid[]), p.proargnames, p.proargmodes)
      WITH ORDINALITY AS u(type, name, mode, idx)
    WHERE COALESCE(u.mode, 'i') IN ('i', 'b', 'v')
  ) x
) a ON true
WHERE p.pronamespace = $1::pg_catalog.regnamespace AND p.proname = $2 AND p.prokind = 'f'
  AND p.prorettype <> 'pg_catalog.trigger'::pg_catalog.regtype`;

const RELATION_SQL = `SELECT 1 FROM pg_catalog.pg_class WHERE relnamespace = $1::pg_catalog.regnamespace AND relname = $2 AND relkind IN ('r', 'v', 'm', 'f', 'p')`;

// The impersonated roles' own settings (ALTER ROLE ... SET), which PostgREST applies after switching role.
const ROLE_SETTINGS_SQL = `
SELECT r.rolname AS role, s.setting
FROM pg_catalog.pg_db_role_setting d
JOIN pg_catalog.pg_roles r ON r.oid = d.setrole, pg_catalog.unnest(d.setconfig) AS s(setting)
WHERE d.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()))
ORDER BY d.setdatabase`;

const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** PostgREST's SQLSTATE -> HTTP status table (docs: Errors, "HTTP Status Codes"; src/PostgREST/Error.hs). */
export function httpStatusForSqlState(code: string, message: string, authenticated: boolean): number {
  const exact: Record<string, number> = { '23503': 409, '23505': 409, '25006': 405, '53400': 500, '57P01': 503, P0001: 400, '42883': 404, '42P01': 404, '42P17': 500 };
  if (code === '42501') return authenticated ? 403 : 401;
  if (code === '21000') return message.endsWith('requires a WHERE clause') ? 400 : 500;
  if (code === '22023') return message.startsWith('role') && message.endsWith('does not exist') ? 401 : 400;
  if (code === '42883' && message.startsWith('function xmlagg(')) return 406;
  if (exact[code] !== undefined) return exact[code];
  const prefix: Array<[string, number]> = [
    ['08', 503], ['09', 500], ['0L', 403], ['0P', 403], ['25', 500], ['28', 403], ['2D', 500], ['38', 500], ['39', 500], ['3B', 500],
    ['40', 500], ['53', 503], ['54', 500], ['55', 500], ['57', 500], ['58', 500], ['F0', 500], ['HV', 500], ['P0', 500], ['XX', 500],
  ];
  for (const [p, status] of prefix) if (code.startsWith(p)) return status;
  if (code.startsWith('PT')) {
    const n = Number(code.slice(2));
    return Number.isInteger(n) && n >= 100 && n <= 999 ? n : 500;
  }
  return 400;
}

function fromDatabaseError(error: unknown, authenticated: boolean): ApiError {
  const e = error as { code?: string; message?: string; detail?: string; hint?: string };
  if (typeof e.code !== 'string' || e.code.length !== 5) {
    // The connection broke under the request (PostgREST: ClientError).
    return { status: 503, code: 'PGRST001', message: 'Database client error. Retrying the connection.', details: e.message ?? String(error) };
  }
  const message = e.message ?? '';
  if (e.code === 'PGRST') {
    // RAISE SQLSTATE 'PGRST' USING message = '{"code":..,"message":..}', detail = '{"status":..,"headers":{..}}'.
    try {
      const m = JSON.parse(message) as { code: string; message: string; details?: string; hint?: string };
      const d = JSON.parse(e.detail ?? '') as { status: number; headers?: Record<string, string> };
      return { status: d.status, code: m.code, message: m.message, details: m.details ?? null, hint: m.hint ?? null, headers: d.headers ?? {} };
    } catch {
      return { status: 500, code: 'PGRST121', message: 'Could not parse JSON in the "RAISE SQLSTATE \'PGRST\'" error', details: null, hint: null };
    }
  }
  return { status: httpStatusForSqlState(e.code, message, authenticated), code: e.code, message, details: e.detail ?? null, hint: e.hint ?? null };
}

/** PostgREST's overload choice (src/PostgREST/Plan.hs, findProc). */
function chooseRoutine(schema: string, name: string, routines: Routine[], keys: Set<string>, jsonPost: boolean): Routine {
  const sameSet = (a: Set<string>, b: Set<string>) => a.size === b.size && [...a].every((x) => b.has(x));
  const matches = (r: Routine) => {
    if (r.params.length === 0) return keys.size === 0;
    const required = new Set(r.params.filter((p) => p.required).map((p) => p.name));
    const optional = new Set(r.params.filter((p) => !p.required).map((p) => p.name));
    if (optional.size === 0) return sameSet(keys, required);
    if (required.size === 0) return [...keys].every((k) => optional.has(k));
    return sameSet(new Set([...keys].filter((k) => !optional.has(k))), required);
  };
  const singleUnnamedJson = (r: Routine) => jsonPost && r.params.length === 1 && r.params[0]!.name === '' && ['json', 'jsonb'].includes(r.params[0]!.type);
  const named = routines.filter(matches);
  const fallback = routines.filter((r) => !matches(r) && singleUnnamedJson(r));
  const chosen = named.length > 0 ? named : fallback;
  if (chosen.length === 1) return chosen[0]!;
  if (chosen.length > 1) {
    return fail({
      status: 300,
      code: 'PGRST203',
      message: `Could not choose the best candidate function between: ${chosen.map((r) => `${schema}.${name}(${r.params.map((p) => `${p.name} => ${p.type}`).join(', ')})`).join(', ')}`,
      details: null,
      hint: 'Try renaming the parameters or the function itself in the database so function overloading can be resolved',
    });
  }
  const argList = [...keys];
  const withParams = argList.length === 0 ? ' without parameters' : `(${argList.join(', ')})`;
  const detailParams = argList.length === 0 ? ' without parameters' : ` with parameter${argList.length > 1 ? 's' : ''} ${argList.join(', ')}`;
  const overload = routines.find((r) => r.params.every((p) => p.name !== ''));
  return fail({
    status: 404,
    code: 'PGRST202',
    message: `Could not find the function ${schema}.${name}${withParams} in the schema cache`,
    details: `Searched for the function ${schema}.${name}${detailParams}${jsonPost ? ' or with a single unnamed json/jsonb parameter' : ''}, but no matches were found in the schema cache.`,
    hint: overload ? `Perhaps you meant to call the function ${schema}.${name}(${overload.params.map((p) => p.name).sort().join(', ')})` : null,
  });
}

/** The SQL of a call, shaped like PostgREST's (src/PostgREST/Query/QueryBuilder.hs, callPlanToQuery). */
function callSql(
  schema: string,
  name: string,
  r: Routine,
  args: { kind: 'json-keys'; keys: string[] } | { kind: 'single-json' } | { kind: 'query'; keys: string[] },
  maxRows: number | undefined,
): string {
  const fn = `${ident(schema)}.${ident(name)}`;
  const scalar = !r.composite;
  const call = (argSql: string) => (scalar ? `(SELECT ${fn}(${argSql}) pgrst_scalar) pgrst_call` : `${fn}(${argSql}) pgrst_call`);
  const param = (key: string) => r.params.find((p) => p.name === key)!;
  let from: string;
  if (args.kind === 'single-json') {
    from = call(`$1::${r.params[0]!.type}`);
  } else if (args.keys.length === 0) {
    from = call('');
  } else if (args.kind === 'json-keys') {
    const cols = args.keys.map((k) => `${ident(k)} ${param(k).type}`).join(', ');
    const named = args.keys.map((k) => `${param(k).variadic ? 'VARIADIC ' : ''}${ident(k)} := pgrst_body.${ident(k)}`).join(', ');
    from =
      `(SELECT $1::json AS json_data) pgrst_payload, ` +
      `LATERAL (SELECT ${args.keys.map(ident).join(', ')} FROM json_to_record(pgrst_payload.json_data) AS _(${cols}) LIMIT 1) pgrst_body, ` +
      `LATERAL ${call(named)}`;
  } else {
    from = call(args.keys.map((k, i) => `${param(k).variadic ? 'VARIADIC ' : ''}${ident(k)} := $${i + 1}::${param(k).type}`).join(', '));
  }
  const select = scalar ? 'pgrst_call.pgrst_scalar' : 'pgrst_call.*';
  // PostgREST's asJsonF: array for SETOF, first element (or null) otherwise.
  const body = r.setof
    ? scalar
      ? `coalesce(json_agg(_postgrest_t.pgrst_scalar), '[]')`
      : `coalesce(json_agg(_postgrest_t), '[]')`
    : scalar
      ? `coalesce(json_agg(_postgrest_t.pgrst_scalar)->0, 'null')`
      : `coalesce(json_agg(_postgrest_t)->0, 'null')`;
  return (
    `WITH pgrst_source AS (SELECT ${select} FROM ${from}) ` +
    `SELECT pg_catalog.count(_postgrest_t) AS page_total, ${r.isVoid ? 'NULL' : body}::text AS body, ` +
    `nullif(current_setting('response.status', true), '') AS response_status ` +
    `FROM (SELECT * FROM pgrst_source${r.setof ? limitRows(maxRows) : ''}) _postgrest_t`
  );
}

/** PostgREST's db-max-rows as the LIMIT of the outer query (src/PostgREST/Query/SqlFragment.hs, limitOffsetF). */
const limitRows = (maxRows: number | undefined) => (maxRows === undefined ? '' : ` LIMIT ${Math.floor(maxRows)}`);

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sendError(res: ServerResponse, e: ApiError) {
  const body = JSON.stringify({ code: e.code, details: e.details ?? null, hint: e.hint ?? null, message: e.message });
  res.writeHead(e.status, { 'content-type': 'application/json; charset=utf-8', 'proxy-status': `PostgREST; error=${e.code}`, ...e.headers });
  res.end(body);
}

/**
 * Functions and tables found so far, like PostgREST's schema cache, but filled on first use rather than
 * at start-up: an object created after the stand-in started is found without a reload; one changed or
 * dropped after it was used needs `NOTIFY pgrst, 'reload schema'` (or reloadSchemaCache()), as with PostgREST.
 */
class SchemaCache {
  private readonly routineMap = new Map<string, Routine[]>();
  private readonly relationSet = new Set<string>();

  clear(): void {
    this.routineMap.clear();
    this.relationSet.clear();
  }

  async routines(client: pg.PoolClient, schema: string, name: string): Promise<Routine[]> {
    const key = `${schema}\u0000${name}`;
    const cached = this.routineMap.get(key);
    if (cached) return cached;
    const found = await client.query<{ volatility: 'i' | 's' | 'v'; setof: boolean; composite: boolean; is_void: boolean; params: Param[]; callable: boolean }>(ROUTINES_SQL, [ident(schema), name]);
    const routines = found.rows.filter((r) => r.callable).map((r) => ({ params: r.params, volatility: r.volatility, setof: r.setof, composite: r.composite, isVoid: r.is_void && !r.setof }));
    if (routines.length > 0) this.routineMap.set(key, routines);
    return routines;
  }

  async relationExists(client: pg.PoolClient, schema: string, name: string): Promise<boolean> {
    const key = `${schema}\u0000${name}`;
    if (this.relationSet.has(key)) return true;
    const found = await client.query(RELATION_SQL, [ident(schema), name]);
    if (found.rowCount === 0) return false;
    this.relationSet.add(key);
    return true;
  }
}

export async function startPostgrest(options: PostgrestOptions): Promise<RunningPostgrest> {
  const schemas = options.schemas ?? ['public'];
  const extraSearchPath = options.extraSearchPath ?? ['public', 'extensions'];
  const anonRole = options.anonRole ?? 'anon';
  const basePath = (options.basePath ?? '/rest/v1').replace(/\/$/, '');
  const pool = new pg.Pool({ connectionString: options.authenticatorUrl, max: options.poolSize ?? 10 });
  // A connection that dies while idle must not crash the test process; the next request reconnects.
  pool.on('error', () => undefined);
  // Outside a request's transaction, search_path is pg_catalog: the catalog lookups print every other type schema-qualified.
  pool.on('connect', (client) => {
    client.query('SET search_path = pg_catalog').catch(() => undefined);
  });
  const cache = new SchemaCache();
  // PostgREST reloads its schema cache on NOTIFY pgrst, 'reload schema' (Supabase sends it from DDL event triggers).
  const listener = new pg.Client({ connectionString: options.authenticatorUrl });
  listener.on('error', () => undefined);
  listener.on('notification', (n) => {
    if (n.channel === 'pgrst' && (n.payload === undefined || n.payload === '' || n.payload === 'reload schema')) cache.clear();
  });
  await listener.connect();
  await listener.query('LISTEN pgrst');

  // Like PostgREST at start-up (its schema cache load): every exposed schema must exist; role settings are read once.
  const roleSettings = new Map<string, Array<[string, string]>>();
  {
    const c = await pool.connect();
    try {
      const { rows } = await c.query<{ nspname: string }>('SELECT nspname FROM pg_catalog.pg_namespace WHERE nspname = ANY($1)', [schemas]);
      const missing = schemas.filter((s) => !rows.some((r) => r.nspname === s));
      if (missing.length > 0) throw new Error(`PostgREST stand-in: the exposed schema(s) ${missing.join(', ')} do not exist in the database; create them first.`);
      const settings = await c.query<{ role: string; setting: string }>(ROLE_SETTINGS_SQL);
      for (const { role, setting } of settings.rows) {
        const at = setting.indexOf('=');
        const list = roleSettings.get(role) ?? [];
        list.push([setting.slice(0, at), setting.slice(at + 1)]);
        roleSettings.set(role, list);
      }
    } finally {
      c.release();
    }
  }

  let requests = 0;
  const guarded = new WeakSet<pg.PoolClient>();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://stand-in');
    if (url.pathname !== basePath && !url.pathname.startsWith(`${basePath}/`)) {
      res.writeHead(404, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify({ message: 'no Route matched with those values' }));
      return;
    }
    const headers = { ...req.headers };

    // Supabase's API gateway (kong.yml: key-auth, then Authorization defaults to the apikey).
    if (options.apiKeys) {
      const apikey = typeof headers.apikey === 'string' ? headers.apikey : undefined;
      if (!apikey) {
        res.writeHead(401, { 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify({ message: 'No API key found in request' }));
        return;
      }
      if (!options.apiKeys.includes(apikey)) {
        res.writeHead(401, { 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify({ message: 'Invalid authentication credentials' }));
        return;
      }
      if (!headers.authorization) headers.authorization = `Bearer ${apikey}`;
    }

    // Authentication (docs: Authentication). A header that is not a Bearer one counts as no token.
    let claims: JwtClaims = {};
    const bearer = /^bearer (.*)$/is.exec(headers.authorization ?? '');
    if (bearer) {
      const verified = verifyJwt(bearer[1]!.trim(), options.jwtSecret);
      if (!verified.ok) {
        const code = verified.failure.kind === 'decode' ? 'PGRST301' : 'PGRST303';
        const details = verified.failure.kind === 'decode' ? verified.failure.details : null;
        return fail({
          status: 401,
          code,
          message: verified.failure.message,
          details,
          hint: null,
          headers: { 'www-authenticate': `Bearer error="invalid_token", error_description=${JSON.stringify(verified.failure.message)}` },
        });
      }
      claims = verified.claims;
    }
    const role = typeof claims.role === 'string' ? claims.role : claims.role !== undefined && claims.role !== null ? JSON.stringify(claims.role) : anonRole;
    const authenticated = role !== anonRole;

    // Resource and method (src/PostgREST/ApiRequest.hs, getResource / getAction).
    const segments = url.pathname.slice(basePath.length).split('/').filter(Boolean).map(decodeURIComponent);
    let target: { kind: 'routine'; name: string } | { kind: 'relation'; name: string };
    if (segments.length === 0) return notImplemented('The OpenAPI root');
    if (segments.length === 2 && segments[0] === 'rpc') target = { kind: 'routine', name: segments[1]! };
    else if (segments.length === 1) target = { kind: 'relation', name: segments[0]! };
    else return fail({ status: 404, code: 'PGRST125', message: 'Invalid path specified in request URL', details: null, hint: null });
    if (target.kind === 'routine' && !['GET', 'HEAD', 'POST'].includes(method)) {
      return fail({ status: 405, code: 'PGRST101', message: `Cannot use the ${method} method on RPC`, details: null, hint: null });
    }
    if (target.kind === 'relation' && !['GET', 'HEAD'].includes(method)) {
      if (['POST', 'PUT', 'PATCH', 'DELETE'].includes(method)) return notImplemented(`${method} on a table`);
      return fail({ status: 405, code: 'PGRST117', message: `Unsupported HTTP method: ${method}`, details: null, hint: null });
    }

    // Schema (docs: Schemas). POST/PATCH/PUT/DELETE read Content-Profile, the others Accept-Profile.
    const profileHeader = ['POST', 'PATCH', 'PUT', 'DELETE'].includes(method) ? 'content-profile' : 'accept-profile';
    const profile = headers[profileHeader];
    const schema = typeof profile === 'string' ? profile : schemas[0]!;
    if (!schemas.includes(schema)) {
      return fail({ status: 406, code: 'PGRST106', message: `Invalid schema: ${schema}`, details: null, hint: `Only the following schemas are exposed: ${schemas.join(', ')}` });
    }

    // Arguments.
    const query = [...url.searchParams.entries()];
    let json: string | undefined;
    let keys: string[] = [];
    if (target.kind === 'routine' && method === 'POST') {
      if (query.length > 0) return notImplemented('Query parameters (select, filters, order, limit) on RPC');
      const contentType = (headers['content-type'] ?? 'application/json').split(';')[0]!.trim().toLowerCase();
      if (contentType !== 'application/json') return notImplemented(`RPC with Content-Type ${contentType}`);
      const text = body.toString('utf8');
      let parsed: unknown = {};
      if (text.length > 0) {
        try {
          parsed = JSON.parse(text);
        } catch {
          return fail({ status: 400, code: 'PGRST102', message: 'Empty or invalid json', details: null, hint: null });
        }
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return notImplemented('RPC with a JSON body that is not an object (bulk calls)');
      json = text.length > 0 ? text : '{}';
      keys = Object.keys(parsed);
    } else if (target.kind === 'routine') {
      const reserved = ['select', 'order', 'limit', 'offset', 'columns', 'on_conflict', 'and', 'or', 'not.and', 'not.or'];
      if (query.some(([k]) => reserved.includes(k))) return notImplemented('select, order, limit and logic filters on RPC');
      if (new Set(query.map(([k]) => k)).size !== query.length) return notImplemented('Repeated query parameters (variadic GET)');
      keys = query.map(([k]) => k);
    } else if (query.some(([k, v]) => !(k === 'select' && v === '*'))) {
      return notImplemented('Filters, ordering, embedding and column selection on tables (only ?select=*)');
    }

    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (error) {
      return fail({ status: 503, code: 'PGRST000', message: 'Database connection error.', details: error instanceof Error ? error.message : String(error), hint: null });
    }
    // A connection that dies during a request emits 'error' besides failing the query: the query's error is what counts.
    if (!guarded.has(client)) {
      client.on('error', () => undefined);
      guarded.add(client);
    }
    let broken = false;
    let inTransaction = false;
    try {
      let sql: string;
      let values: unknown[];
      let readOnly = method !== 'POST';
      let isVoid = false;
      if (target.kind === 'routine') {
        const routine = chooseRoutine(schema, target.name, await cache.routines(client, schema, target.name), new Set(keys), method === 'POST');
        if (routine.volatility !== 'v') readOnly = true;
        isVoid = routine.isVoid;
        const single = method === 'POST' && !routine.params.some((p) => keys.includes(p.name)) && routine.params.length === 1 && routine.params[0]!.name === '';
        if (method === 'POST') {
          sql = callSql(schema, target.name, routine, single ? { kind: 'single-json' } : { kind: 'json-keys', keys }, options.maxRows);
          values = single || keys.length > 0 ? [json] : [];
        } else {
          sql = callSql(schema, target.name, routine, { kind: 'query', keys }, options.maxRows);
          values = query.map(([, v]) => v);
        }
      } else {
        if (!(await cache.relationExists(client, schema, target.name))) {
          return fail({ status: 404, code: 'PGRST205', message: `Could not find the table '${schema}.${target.name}' in the schema cache`, details: null, hint: null });
        }
        const rel = `${ident(schema)}.${ident(target.name)}`;
        sql =
          `WITH pgrst_source AS (SELECT ${rel}.* FROM ${rel}) ` +
          `SELECT pg_catalog.count(_postgrest_t) AS page_total, coalesce(json_agg(_postgrest_t), '[]')::text AS body, ` +
          `nullif(current_setting('response.status', true), '') AS response_status FROM (SELECT * FROM pgrst_source${limitRows(options.maxRows)}) _postgrest_t`;
        values = [];
      }

      // Transaction-scoped settings (docs: Transactions), then the impersonated role's settings.
      const lowered: Record<string, string> = {};
      for (const [k, v] of Object.entries(headers)) if (k !== 'cookie' && v !== undefined) lowered[k] = Array.isArray(v) ? v.join(', ') : v;
      const settings: Array<[string, string]> = [
        ['search_path', [schema, ...extraSearchPath].map(ident).join(', ')],
        ['role', role],
        ['request.jwt.claims', JSON.stringify({ ...claims, role })],
        ['request.method', method],
        ['request.path', url.pathname.slice(basePath.length) || '/'],
        ['request.headers', JSON.stringify(lowered)],
        ['request.cookies', '{}'],
        ...(roleSettings.get(role) ?? []),
      ];
      const setConfig = settings.map(([k, v]) => `pg_catalog.set_config(${client.escapeLiteral(k)}, ${client.escapeLiteral(v)}, true)`).join(', ');
      inTransaction = true;
      await client.query(`BEGIN ISOLATION LEVEL READ COMMITTED, READ ${readOnly ? 'ONLY' : 'WRITE'}; SELECT ${setConfig}`);

      const result = await client.query<{ page_total: string; body: string | null; response_status: string | null }>(sql, values);
      await client.query('COMMIT');
      const row = result.rows[0]!;
      const overridden = row.response_status ? Number(row.response_status) : undefined;
      if (isVoid) {
        res.writeHead(overridden ?? 204);
        res.end();
        return;
      }
      const total = Number(row.page_total);
      const responseHeaders: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' };
      if (target.kind === 'relation') responseHeaders['content-range'] = total > 0 ? `0-${total - 1}/*` : '*/0';
      res.writeHead(overridden ?? 200, responseHeaders);
      res.end(method === 'HEAD' ? undefined : (row.body ?? 'null'));
    } catch (error) {
      if (inTransaction) await client.query('ROLLBACK').catch(() => (broken = true));
      if (error instanceof PostgrestError) throw error;
      const mapped = fromDatabaseError(error, authenticated);
      if (mapped.code === 'PGRST001') broken = true;
      return fail(mapped);
    } finally {
      client.release(broken);
    }
  }

  const server: Server = createServer((req, res) => {
    handle(req, res)
      .catch((error: unknown) => {
        if (error instanceof PostgrestError) return sendError(res, error.body);
        sendError(res, { status: 500, code: 'PGRSTX00', message: error instanceof Error ? error.message : String(error), details: null, hint: null });
      })
      .finally(() => {
        requests++;
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get requests() {
      return requests;
    },
    reloadSchemaCache: () => cache.clear(),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await listener.end().catch(() => undefined);
      await pool.end();
    },
  };
}
