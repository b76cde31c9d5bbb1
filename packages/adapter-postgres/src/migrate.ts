import { StoreError } from '@disparo/core';
import { type Db, type Queryable, type PGliteLike, quoteIdent } from './client.js';
import { migrations } from './generated/migrations.js';

export const LATEST_SCHEMA_VERSION = migrations.length;

export interface MigrateResult {
  /** Version before and after. */
  from: number;
  to: number;
  applied: string[];
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

const execSql = async (conn: Queryable & Partial<PGliteLike>, sql: string): Promise<void> => {
  // PGlite's query() takes one statement; exec() takes a script. node-postgres runs a script when no params are given.
  if (typeof conn.exec === 'function') await conn.exec(sql);
  else await conn.query(sql);
};

/**
 * Apply the pending migrations, each in its own transaction, under a session advisory lock on the
 * schema name, so many workers starting at once migrate exactly once (the others wait, then find
 * nothing to do). Refuses a schema newer than this package.
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
        await conn.query('BEGIN');
        try {
          await execSql(conn, m.sql.replaceAll(':DISPARO_SCHEMA', s));
          await conn.query(`INSERT INTO ${s}.schema_migrations (id, name) VALUES ($1, $2)`, [m.id, m.name]);
          await conn.query('COMMIT');
        } catch (error) {
          await conn.query('ROLLBACK').catch(() => undefined);
          throw new StoreError(`Migration ${m.id} (${m.name}) of schema "${schema}" failed: ${(error as Error).message}. Nothing of it was applied.`, {
            cause: error,
          });
        }
        applied.push(`${String(m.id).padStart(6, '0')}_${m.name}`);
      }
      return { from, to: Math.max(from, LATEST_SCHEMA_VERSION), applied };
    } finally {
      await conn.query('SELECT pg_advisory_unlock(hashtext($1))', [`disparo.migrate:${schema}`]).catch(() => undefined);
    }
  });
}

/** The schema's version (0 when not migrated). */
export async function schemaVersion(db: Db, schema: string): Promise<number> {
  const rows = await db.query<{ v: string | null }>('SELECT to_regclass($1) AS v', [`${quoteIdent(schema)}.schema_migrations`]);
  if (!rows[0]?.v) return 0;
  const v = await db.query<{ v: number }>(`SELECT coalesce(max(id), 0)::integer AS v FROM ${quoteIdent(schema)}.schema_migrations`);
  return Number(v[0]?.v ?? 0);
}
