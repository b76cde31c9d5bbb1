/**
 * A test "Supabase project": a fresh database on the test run's PostgreSQL server with Supabase's roles
 * and grants, the PostgREST stand-in behind Supabase's API-gateway key check, the project's anon and
 * service_role keys, and real `@supabase/supabase-js` clients pointed at it.
 */
import { createClient, type SupabaseClient, type SupabaseClientOptions } from '@supabase/supabase-js';
import pg from 'pg';
import WebSocket from 'ws';
import { testDatabase } from '../../../adapter-postgres/test/support.js';
import { randomJwtSecret, signJwt, supabaseKeys, type JwtClaims } from './jwt.js';
import { startPostgrest, type RunningPostgrest } from './postgrest.js';
import { installSupabaseRoles } from './supabase-roles.js';

export interface TestSupabase {
  /** The project URL, as `createClient` takes it. */
  url: string;
  anonKey: string;
  serviceKey: string;
  jwtSecret: string;
  /** The database as its owner (a superuser here): for setup and for reading what was persisted. */
  databaseUrl: string;
  postgrest: RunningPostgrest;
  /** A supabase-js client as a server would make one (no session persistence), on Node 20 with `ws` for realtime. */
  // Untyped database (no generated types), any schema name.
  client(key: string, options?: SupabaseClientOptions<string>): SupabaseClient<any, string>;
  /** A JWT signed with the project's secret, like a signed-in user's access token. */
  token(claims: JwtClaims): string;
  /** Runs SQL on the database as its owner. */
  sql<T extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<T>>;
  stop(): Promise<void>;
}

export interface TestSupabaseOptions {
  /** db-schemas of the stand-in (default: public). They must exist once `setupSql` ran. */
  schemas?: string[];
  /** SQL run as the database owner after the roles exist and before PostgREST starts (migrations, fixtures). */
  setupSql?: string;
  /** PostgREST's db-max-rows (Supabase's "Max rows", 1000 by default there); none by default here. */
  maxRows?: number;
  /** An existing database to use instead of a new one on the test run's server (e.g. a pg_cron cluster). */
  databaseUrl?: string;
}

export async function startTestSupabase(name: string, options: TestSupabaseOptions = {}): Promise<TestSupabase> {
  const databaseUrl = options.databaseUrl ?? (await testDatabase(name));
  const { authenticatorUrl } = await installSupabaseRoles(databaseUrl);
  const owner = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  if (options.setupSql) await owner.query(options.setupSql);
  const jwtSecret = randomJwtSecret();
  const { anonKey, serviceKey } = supabaseKeys(jwtSecret);
  const postgrest = await startPostgrest({ authenticatorUrl, jwtSecret, schemas: options.schemas ?? ['public'], apiKeys: [anonKey, serviceKey], ...(options.maxRows !== undefined ? { maxRows: options.maxRows } : {}) });
  return {
    url: postgrest.url,
    anonKey,
    serviceKey,
    jwtSecret,
    databaseUrl,
    postgrest,
    client: (key, clientOptions = {}) =>
      createClient(postgrest.url, key, {
        ...clientOptions,
        auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false, ...clientOptions.auth },
        // Node 20 has no global WebSocket; supabase-js refuses to start without a transport.
        realtime: { transport: WebSocket as unknown as NonNullable<NonNullable<SupabaseClientOptions<string>['realtime']>['transport']>, ...clientOptions.realtime },
      }),
    token: (claims) => signJwt(claims, jwtSecret),
    sql: (text, values) => owner.query(text, values),
    stop: async () => {
      await postgrest.close();
      await owner.end();
    },
  };
}
