import { mkdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { createPostgresStore } from '@disparo/adapter-postgres';
import { RunClock } from './run-clock.js';

/** The repository's `.disparo/demo` folder (ignored by git), and the demo's stopwatch beside it. */
const DATA_DIR = fileURLToPath(new URL('../../../.disparo/demo', import.meta.url));
const CLOCK_FILE = fileURLToPath(new URL('../../../.disparo/demo-clock.json', import.meta.url));

/**
 * The demo's store: PGlite (PostgreSQL compiled to WebAssembly, no server) in a local folder, through
 * the same adapter and SQL that production runs on PostgreSQL. Interrupt the demo and run it again: it
 * resumes where it stopped.
 */
export async function openStore(options: { fresh: boolean }) {
  if (options.fresh) {
    rmSync(DATA_DIR, { recursive: true, force: true });
    RunClock.forget(CLOCK_FILE);
  }
  mkdirSync(DATA_DIR, { recursive: true }); // PGlite creates no parent folders
  const db = await PGlite.create(DATA_DIR);
  const store = createPostgresStore(db, { schema: 'disparo' });
  await store.migrate();
  return {
    store,
    clock: new RunClock(CLOCK_FILE),
    description: `PGlite in ${DATA_DIR} (durable: interrupt and rerun to resume; --fresh starts over)`,
    close: () => db.close(),
  };
}
