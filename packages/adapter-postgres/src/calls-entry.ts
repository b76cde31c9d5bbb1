// `@disparo/adapter-postgres/calls`: what a store that reaches the same SQL functions another way needs
// (the Supabase store calls them over PostgREST), with no database driver behind it. The main entry also
// carries the COPY import (pg-copy-streams, node:stream) and migrate(); this one only the calls, their
// codecs, the error mapping, the wake channel and the SQL itself.
export { calls, ClaimCursors, importResult, type Call } from './calls.js';
export { checkpointArgs, checkpointResult, type CheckpointArgs } from './checkpoint-codec.js';
export { toStoreError, findUnstorable, type CallContext } from './errors.js';
export { wakeChannel } from './wake.js';
export { migrations, functions } from './generated/sql.js';
export type { Migration, SqlFunction } from './generated/sql.js';
