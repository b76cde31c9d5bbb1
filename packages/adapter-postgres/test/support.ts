import { inject } from 'vitest';
import pg from 'pg';
import { createDatabase } from '../scripts/embedded-pg.js';

/** A fresh database on the test run's PostgreSQL server (see vitest.global-setup.ts), for one test file. */
export async function testDatabase(name: string): Promise<string> {
  const server = inject('databaseUrl');
  if (!server) throw new Error('No PostgreSQL server for this run: the global setup skipped it. Run the file by its path, or set DATABASE_URL.');
  return createDatabase(server, `t_${name}_${process.pid}`);
}

export function pool(url: string, max = 10): pg.Pool {
  return new pg.Pool({ connectionString: url, max });
}

let n = 0;
/** A schema name unique to this process. */
export const freshSchema = (prefix = 's') => `${prefix}_${process.pid}_${++n}`;
export { inspector } from './support/inspector.js';

/**
 * Until the session `waiter` (a backend pid) is blocked by `holder` (a lock it waits for): how race
 * tests force an interleaving without sleeps. Gives up after 15 s.
 */
export async function blockedBy(admin: pg.Pool | pg.Client, waiter: { pid: number }, holder: { pid: number }): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const { rows } = await admin.query('SELECT $2::int = ANY (pg_blocking_pids($1::int)) AS blocked', [waiter.pid, holder.pid]);
    if (rows[0].blocked) return;
    if (Date.now() > deadline) throw new Error(`session ${waiter.pid} never waited for session ${holder.pid}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
