import { StoreError } from '@disparo/core/store';
import { type Db, type Queryable, type PGliteLike, quoteIdent } from './client.js';
import { functions, migrations } from './generated/sql.js';

export const LATEST_SCHEMA_VERSION = migrations.length;

export interface MigrateResult {
  /** Version before and after. */
  from: number;
  to: number;
  /** Migrations applied by this call, as `000003_name`. */
  applied: string[];
  /** Functions created or replaced by this call (new, or their SQL changed), and dropped (no longer shipped). */
  functions: { created: string[]; dropped: string[] };
}

/** The schema is newer than this package knows: an older worker must not touch it. */
export class SchemaTooNewError extends StoreError {
  constructor(
    readonly schema: string,
    readonly found: number,
    readonly known: number,
  ) {
    super(
      `Schema "${schema}" is at version ${found}, but this @disparo/adapter-postgres knows versions up to ${known}. ` +
        'Upgrade @disparo/adapter-postgres on this worker (a newer one has migrated the database).',
    );
  }
}

type Conn = Queryable & Partial<PGliteLike>;

const execSql = async (conn: Conn, sql: string): Promise<void> => {
  // PGlite's query() takes one statement; exec() takes a script. node-postgres runs a script when no params are given.
  if (typeof conn.exec === 'function') await conn.exec(sql);
  else await conn.query(sql);
};

const inTransaction = async <T>(conn: Conn, what: string, fn: () => Promise<T>): Promise<T> => {
  await conn.query('BEGIN');
  try {
    const result = await fn();
    await conn.query('COMMIT');
    return result;
  } catch (error) {
    await conn.query('ROLLBACK').catch(() => undefined);
    throw new StoreError(`${what} failed: ${(error as Error).message}. Nothing of it was applied.`, { cause: error });
  }
};

/**
 * Bring the schema up to date, under a session advisory lock on the schema name, so many workers
 * starting at once do it exactly once (the others wait, then find nothing to do):
 * 1. the pending migrations (tables and indexes), each in its own transaction;
 * 2. the functions (`sql/functions/<name>.sql`), in one transaction: each one whose SQL changed since
 *    it was created here (its hash in `schema_functions` differs) or that is new is created, after
 *    dropping every earlier signature of that name (so a changed parameter list never leaves two
 *    functions behind); a function this package no longer ships is dropped.
 * Refuses a schema newer than this package.
 */
export async function migrate(db: Db, schema: string): Promise<MigrateResult> {
  const s = quoteIdent(schema);
  return db.withConnection(async (conn) => {
    await conn.query('SELECT pg_advisory_lock(hashtext($1))', [`disparo.migrate:${schema}`]);
    try {
      await conn.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
      await conn.query(
        `CREATE TABLE IF NOT EXISTS ${s}.schema_migrations (id integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
      );
      const rows = (await conn.query(`SELECT coalesce(max(id), 0)::integer AS v FROM ${s}.schema_migrations`)).rows;
      const from = Number(rows[0]?.v ?? 0);
      if (from > LATEST_SCHEMA_VERSION) throw new SchemaTooNewError(schema, from, LATEST_SCHEMA_VERSION);
      const applied: string[] = [];
      for (const m of migrations) {
        if (m.id <= from) continue;
        await inTransaction(conn, `Migration ${m.id} (${m.name}) of schema "${schema}"`, async () => {
          await execSql(conn, m.sql.replaceAll(':DISPARO_SCHEMA', s));
          await conn.query(`INSERT INTO ${s}.schema_migrations (id, name) VALUES ($1, $2)`, [m.id, m.name]);
        });
        applied.push(`${String(m.id).padStart(6, '0')}_${m.name}`);
      }
      const fns = await syncFunctions(conn, schema);
      return { from, to: Math.max(from, LATEST_SCHEMA_VERSION), applied, functions: fns };
    } finally {
      await conn.query('SELECT pg_advisory_unlock(hashtext($1))', [`disparo.migrate:${schema}`]).catch(() => undefined);
    }
  });
}

async function syncFunctions(conn: Conn, schema: string): Promise<{ created: string[]; dropped: string[] }> {
  const s = quoteIdent(schema);
  const recorded = new Map<string, string>(
    (await conn.query(`SELECT name, hash FROM ${s}.schema_functions`)).rows.map((r: { name: string; hash: string }) => [r.name, r.hash]),
  );
  const shipped = new Set(functions.map((f) => f.name));
  const changed = functions.filter((f) => recorded.get(f.name) !== f.hash);
  const gone = [...recorded.keys()].filter((name) => !shipped.has(name)).sort();
  if (changed.length === 0 && gone.length === 0) return { created: [], dropped: [] };
  await inTransaction(conn, `Creating the functions of schema "${schema}"`, async () => {
    // Bodies are checked when called, not when created, so the order of creation does not matter.
    await conn.query('SET LOCAL check_function_bodies = off');
    for (const name of [...changed.map((f) => f.name), ...gone]) await dropAll(conn, schema, name);
    for (const f of changed) {
      await execSql(conn, f.sql.replaceAll(':DISPARO_SCHEMA', s));
      await conn.query(`INSERT INTO ${s}.schema_functions (name, hash) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET hash = excluded.hash, applied_at = now()`, [
        f.name,
        f.hash,
      ]);
    }
    if (gone.length > 0) await conn.query(`DELETE FROM ${s}.schema_functions WHERE name = ANY ($1::text[])`, [gone]);
  });
  return { created: changed.map((f) => f.name), dropped: gone };
}

/** Drop every function of this name in the schema, whatever its parameters. */
async function dropAll(conn: Conn, schema: string, name: string): Promise<void> {
  const found = await conn.query(
    `SELECT p.oid::regprocedure::text AS signature FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1 AND p.proname = $2`,
    [schema, name],
  );
  for (const r of found.rows as Array<{ signature: string }>) await conn.query(`DROP FUNCTION ${r.signature}`);
}

/** The schema's version (0 when not migrated). */
export async function schemaVersion(db: Db, schema: string): Promise<number> {
  const rows = await db.query<{ v: string | null }>('SELECT to_regclass($1) AS v', [`${quoteIdent(schema)}.schema_migrations`]);
  if (!rows[0]?.v) return 0;
  const v = await db.query<{ v: number }>(`SELECT coalesce(max(id), 0)::integer AS v FROM ${quoteIdent(schema)}.schema_migrations`);
  return Number(v[0]?.v ?? 0);
}
