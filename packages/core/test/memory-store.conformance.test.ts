import { createMemoryStore, type MemoryStore } from '@disparo/core/store';
import { describeStateStore } from '@disparo/core/testing';

// One process, one object: "another connection" is the same instance, and every call is atomic.
describeStateStore('memory', async () => createMemoryStore(), {
  inspect: (store) => (store as MemoryStore).inspector(),
  share: async (store) => store,
});
