export { PostgresStore, createPostgresStore, wakeChannel } from './store.js';
export type { PostgresStoreOptions } from './store.js';
export { migrate, schemaVersion, LATEST_SCHEMA_VERSION, SchemaTooNewError } from './migrate.js';
export type { MigrateResult } from './migrate.js';
export type { Queryable, PoolLike, PGliteLike } from './client.js';
export { migrations } from './generated/migrations.js';
export type { Migration } from './generated/migrations.js';
