import { createMemoryStore, type StateStore } from '@disparo/core';

/** The demo's store. */
export async function openStore(_options: { fresh: boolean }): Promise<{ store: StateStore; description: string; close: () => Promise<void> }> {
  return { store: createMemoryStore(), description: 'in memory (not durable)', close: async () => {} };
}
