import { toStoreError, type CallContext } from '@disparo/adapter-postgres/calls';
import { StoreError } from '@disparo/core/store';

/** What supabase-js hands back in `error` (a PostgrestError, or the gateway's `{ message }`). */
export interface PostgrestErrorLike {
  code?: string;
  message?: string;
  details?: string | null;
  hint?: string | null;
}

export interface RpcContext extends CallContext {
  /** The SQL function called. */
  fn: string;
}

const MIGRATION = '@disparo/adapter-supabase/supabase/migrations/<timestamp>_disparo.sql';

/**
 * A failed RPC call as the library's typed error, saying what to do:
 * - the role may not call it (42501: the anon key, a user's token): use the service_role key;
 * - the function or schema is missing (PGRST202, 42883, 42P01, 3F000): apply the migration and reload
 *   PostgREST's schema cache; the schema is not exposed (PGRST106): add it to the exposed schemas;
 * - the key is refused (PGRST301/302/303, the gateway's 401): use the project's service_role key;
 * - Supabase unreachable, timed out, overloaded, a statement timeout, a deadlock: a StoreError the engine
 *   retries;
 * - the database refused a value or an id (a NUL character, a taken campaign id, an unknown campaign):
 *   the same ValidationError / ConflictError / NotFoundError as the PostgreSQL store, from the same
 *   mapping (@disparo/adapter-postgres's toStoreError).
 */
export function toSupabaseError(error: PostgrestErrorLike, status: number, ctx: RpcContext): Error {
  const code = error.code ?? '';
  const message = error.message ?? 'no message';
  const where = `${ctx.method} (${ctx.schema}.${ctx.fn})`;
  const cause = Object.assign(new Error(message), { code, details: error.details ?? null, hint: error.hint ?? null, status });
  const detail = error.details ? ` ${error.details}` : '';
  if (code === '42501') {
    return new StoreError(
      `${where} was refused: ${message}. The Disparo store needs a Supabase client created with the project's service_role key ` +
        '(createClient(SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY)); the anon key and signed-in users are kept out on purpose.',
      { cause },
    );
  }
  if (code === 'PGRST106') {
    return new StoreError(
      `${where}: the schema "${ctx.schema}" is not exposed by the Data API (${error.hint ?? message}). Add it under Dashboard > Project Settings > ` +
        `Data API > Exposed schemas, or run ALTER ROLE authenticator SET pgrst.db_schemas = 'public, graphql_public, ${ctx.schema}'; NOTIFY pgrst, 'reload config';`,
      { cause },
    );
  }
  if (code === 'PGRST202' || code === '42883' || code === '42P01' || code === '3F000' || code === '42704') {
    return new StoreError(
      `${where}: ${message}. The Disparo functions are missing or out of date in schema "${ctx.schema}": apply the migration this package ships ` +
        `(${MIGRATION}) with \`supabase db push\` or the SQL editor; it ends with NOTIFY pgrst, 'reload schema' so the Data API sees the functions.`,
      { cause },
    );
  }
  if (code === 'PGRST203') {
    return new StoreError(`${where}: ${message}. Drop the functions of that name that the Disparo migration did not create, then reload the schema cache.`, { cause });
  }
  if (/^PGRST30\d$/.test(code) || (status === 401 && code === '')) {
    return new StoreError(`${where}: Supabase refused the key (${message}). Create the client with the project's URL and its service_role key.`, { cause });
  }
  if (status === 0 || code === '') {
    // supabase-js answers a fetch that failed (network, DNS, our timeout) with status 0 and no code; the gateway's 5xx have no code either.
    return new StoreError(`${where}: could not reach Supabase's Data API (${status === 0 ? message : `HTTP ${status}: ${message}`}). Check the project URL and the network; the engine retries.`, {
      cause,
    });
  }
  if (/^PGRST00\d$/.test(code) || code === '57014' || code === '40001' || code === '40P01' || code === '55P03') {
    const why = code === '57014' ? ' (a statement timeout: Supabase stops statements of the API roles after 8 s by default)' : '';
    return new StoreError(`${where} failed${why}: ${message}.${detail} The engine retries.`, { cause });
  }
  const mapped = toStoreError(cause, ctx);
  if (mapped !== cause) return mapped;
  return new StoreError(`${where} failed: ${message} (${code}, HTTP ${status}).${detail}${error.hint ? ` Hint: ${error.hint}` : ''}`, { cause });
}
