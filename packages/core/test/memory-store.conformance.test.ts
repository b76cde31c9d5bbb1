import { createMemoryStore, type MemoryStore, type StateStore } from '@disparo/core';
import { describeStateStore } from '../src/testing/store-suite.js';

// One process, one object: "another connection" is the same instance, and every call is atomic.
describeStateStore(
  'memory',
  async () => createMemoryStore(),
  (store: StateStore) => (store as MemoryStore).inspector(),
  { share: async (store) => store },
);
