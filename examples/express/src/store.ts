import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import { createPostgresStore } from '@disparo/adapter-postgres';
import type { StateStore } from '@disparo/core';
import type { Config } from './config.js';

/** PGlite in DATA_DIR by default; PostgreSQL when DATABASE_URL is set. Both migrated at start. */
export async function openStore(config: Pick<Config, 'DATABASE_URL' | 'DATA_DIR'>): Promise<{ store: StateStore; description: string; close: () => Promise<void> }> {
  if (config.DATABASE_URL) {
    const pool = new pg.Pool({ connectionString: config.DATABASE_URL, max: 10 });
    const store = createPostgresStore(pool, { schema: 'disparo' });
    await store.migrate();
    const where = new URL(config.DATABASE_URL);
    return { store, description: `PostgreSQL at ${where.host}${where.pathname}`, close: () => pool.end() };
  }
  const dir = resolve(config.DATA_DIR);
  mkdirSync(dir, { recursive: true });
  const db = await PGlite.create(dir);
  const store = createPostgresStore(db, { schema: 'disparo' });
  await store.migrate();
  return { store, description: `PGlite in ${dir}`, close: () => db.close() };
}
