/**
 * What a schema exposes through the Data API, and what a given key can do with it: every function is
 * called over RPC and every table read, so a test can assert that `anon` and `authenticated` get a
 * permission error on all of them (and that nothing was forgotten when a function is added later).
 */
import type { SupabaseClient } from '@supabase/supabase-js';
import type pg from 'pg';

export type ApiObject = { kind: 'function'; name: string; args: Record<string, null> } | { kind: 'table'; name: string };

/**
 * The functions (each overload, with its required named parameters set to null: PostgreSQL checks
 * EXECUTE before the body runs, so null arguments still meet the permission check) and the tables,
 * views and materialized views of a schema.
 */
export async function apiSurface(sql: (text: string, values?: unknown[]) => Promise<pg.QueryResult>, schema: string): Promise<ApiObject[]> {
  const functions = await sql(
    `SELECT p.proname AS name,
       COALESCE((SELECT array_agg(n ORDER BY i) FROM unnest(p.proargnames[1:p.pronargs - p.pronargdefaults]) WITH ORDINALITY AS a(n, i)
                 WHERE n <> ''), '{}') AS required
     FROM pg_proc p
     WHERE p.pronamespace = $1::regnamespace AND p.prokind = 'f' AND p.prorettype <> 'trigger'::regtype
     ORDER BY 1`,
    [schema],
  );
  const tables = await sql(`SELECT relname AS name FROM pg_class WHERE relnamespace = $1::regnamespace AND relkind IN ('r', 'v', 'm', 'f', 'p') ORDER BY 1`, [schema]);
  return [
    ...functions.rows.map((r: { name: string; required: string[] }) => ({ kind: 'function' as const, name: r.name, args: Object.fromEntries(r.required.map((n) => [n, null])) })),
    ...tables.rows.map((r: { name: string }) => ({ kind: 'table' as const, name: r.name })),
  ];
}

export interface AccessResult {
  object: string;
  status: number;
  code: string | null;
  message: string | null;
}

/** Calls every function and reads every table with the client; one result per object. */
export async function probeAccess(client: SupabaseClient<any, string>, objects: ApiObject[]): Promise<AccessResult[]> {
  const results: AccessResult[] = [];
  for (const o of objects) {
    const res = o.kind === 'function' ? await client.rpc(o.name, o.args) : await client.from(o.name).select('*');
    results.push({ object: `${o.kind} ${o.name}`, status: res.status, code: res.error?.code ?? null, message: res.error?.message ?? null });
  }
  return results;
}
