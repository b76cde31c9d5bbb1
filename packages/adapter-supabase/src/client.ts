import { ValidationError } from '@disparo/core/store';
import type { PostgrestErrorLike } from './errors.js';

/** What supabase-js answers for a call: the result or the error, never both. */
export interface RpcResponse {
  data: unknown;
  error: PostgrestErrorLike | null;
  status: number;
}

/** A pending call (supabase-js's filter builder): awaitable, and cancellable with a signal. */
export interface RpcBuilder extends PromiseLike<RpcResponse> {
  abortSignal?(signal: AbortSignal): PromiseLike<RpcResponse>;
}

/**
 * What the store needs of a `@supabase/supabase-js` 2.x client: `schema(name).rpc(fn, args)`. Any
 * `SupabaseClient` fits (typed with your database or not); parameters are loose so that its generic
 * methods are accepted.
 */
export interface SupabaseClientLike {
  schema(schema: any): { rpc(fn: any, args?: any, options?: any): any };
}

/** The `role` claim of a legacy JWT API key, or null for anything else. */
function jwtRole(key: string): string | null {
  const parts = key.split('.');
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1]!.replace(/-/g, '+').replace(/_/g, '/');
    const json = JSON.parse(atob(b64.padEnd(b64.length + ((4 - (b64.length % 4)) % 4), '='))) as { role?: unknown };
    return typeof json.role === 'string' ? json.role : null;
  } catch {
    return null;
  }
}

/**
 * Refuse, before any call, a client made with a key that cannot reach the store: the anon key or a
 * publishable key (browsers' keys). The key is read from supabase-js's client where it keeps it; a
 * client that does not show it is let through (the first call then says what is wrong).
 */
export function checkClient(client: unknown): SupabaseClientLike {
  if (!client || typeof (client as { schema?: unknown }).schema !== 'function') {
    throw new ValidationError('createSupabaseStore needs a @supabase/supabase-js client: createClient(SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY).', [
      { path: 'client', message: 'not a Supabase client (no schema() method)' },
    ]);
  }
  const key = (client as { supabaseKey?: unknown }).supabaseKey;
  if (typeof key === 'string') {
    const role = jwtRole(key);
    if (role === 'anon' || role === 'authenticated' || key.startsWith('sb_publishable_')) {
      throw new ValidationError(
        `createSupabaseStore needs a client created with the project's service_role key (or a secret key), not the ${role ?? 'publishable'} key: ` +
          'the Disparo functions are executable by the service role only. Use it on a server or in an Edge Function, never in a browser.',
        [{ path: 'client', message: `made with the ${role ?? 'publishable'} key` }],
      );
    }
  }
  return client as SupabaseClientLike;
}
