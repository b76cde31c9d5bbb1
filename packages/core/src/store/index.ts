/**
 * @disparo/core/store: for store authors. The `StateStore` contract, the records it persists, and the
 * domain rules every store applies, as pure functions and decision tables (the one source; the
 * conformance suite in `@disparo/core/testing` checks a store against them).
 */
export type * from './contract.js';
export * from '../domain/types.js';
export * from '../rules/index.js';
export { CAMPAIGN_TRANSITIONS, canTransition, isFinished, sourcesOf } from '../domain/campaign-status.js';
export { capWindows, dailyCapAt, type CapWindow } from '../domain/calendar.js';
export { ConflictError, DisparoError, NotFoundError, StoreError, ValidationError } from '../errors.js';
export { MemoryStore, createMemoryStore, type MemoryStoreInspector } from './memory/memory-store.js';
