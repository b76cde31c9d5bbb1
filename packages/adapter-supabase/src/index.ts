export { SupabaseStore, createSupabaseStore } from './store.js';
export type { SupabaseStoreOptions } from './options.js';
export type { SupabaseClientLike } from './client.js';
export { supabaseMigration, FUNCTION_SEARCH_PATH } from './migration.js';
