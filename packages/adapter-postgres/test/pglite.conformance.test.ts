import { afterAll } from 'vitest';
import { PGlite } from '@electric-sql/pglite';
import { describeStateStore } from '@disparo/core/testing';
import { createPostgresStore, type PostgresStore } from '@disparo/adapter-postgres';
import { freshSchema, inspector } from './support.js';

// PGlite has one session: the same SQL, minus the cases that need several connections.
const db = new PGlite();
afterAll(() => db.close());

describeStateStore(
  'pglite',
  async () => {
    const store = createPostgresStore(db, { schema: freshSchema('l') });
    await store.migrate();
    return store;
  },
  { inspect: (store) => inspector(db, (store as PostgresStore).schema), concurrency: false },
);
