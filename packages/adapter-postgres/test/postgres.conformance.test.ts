import { afterAll, beforeAll } from 'vitest';
import type pg from 'pg';
import type { StateStore } from '@disparo/core';
import { describeStateStore } from '@disparo/core/testing';
import { createPostgresStore, type PostgresStore } from '@disparo/adapter-postgres';
import { freshSchema, inspector, pool, testDatabase } from './support.js';

// Real PostgreSQL: every case on a fresh schema; "another worker" is a second pool on the same schema.
let url = '';
const pools: pg.Pool[] = [];
const poolOf = new WeakMap<StateStore, pg.Pool>();
beforeAll(async () => {
  url = await testDatabase('conformance');
});
afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
});

const open = (schema: string) => {
  const p = pool(url, 6);
  pools.push(p);
  const store = createPostgresStore(p, { schema });
  poolOf.set(store, p);
  return store;
};

describeStateStore(
  'postgres',
  async () => {
    const store = open(freshSchema());
    await store.migrate();
    return store;
  },
  {
    inspect: (store) => inspector(poolOf.get(store)!, (store as PostgresStore).schema),
    share: async (store) => open((store as PostgresStore).schema),
    concurrency: true,
  },
);
