/** The raw references the benches compare with, shared by pg.bench.ts and floor.ts. */
import pg from 'pg';

/** Keyset claim of 500 with SKIP LOCKED, then one unnest UPDATE marking them: the floor of batched work. */
export async function rawBatch(url: string, rows: number): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(
    'DROP TABLE IF EXISTS raw_jobs; CREATE TABLE raw_jobs (id bigint PRIMARY KEY, status text NOT NULL, at bigint); CREATE INDEX ON raw_jobs (id) WHERE status = $$pending$$',
  );
  await c.query(`INSERT INTO raw_jobs SELECT g, 'pending', NULL FROM generate_series(1, ${rows}) g`);
  await c.query('VACUUM ANALYZE raw_jobs');
  let last = 0;
  let done = 0;
  const t0 = performance.now();
  for (;;) {
    await c.query('BEGIN');
    const claimed = await c.query(`SELECT id FROM raw_jobs WHERE status = 'pending' AND id > $1 ORDER BY id LIMIT 500 FOR UPDATE SKIP LOCKED`, [last]);
    if (claimed.rows.length === 0) {
      await c.query('COMMIT');
      break;
    }
    const ids = claimed.rows.map((r) => r.id);
    await c.query(`UPDATE raw_jobs j SET status = 'sent', at = u.at FROM unnest($1::bigint[], $2::bigint[]) AS u(id, at) WHERE j.id = u.id`, [
      ids,
      ids.map(() => Date.now()),
    ]);
    await c.query('COMMIT');
    done += ids.length;
    last = Number(ids[ids.length - 1]);
  }
  const rate = done / ((performance.now() - t0) / 1000);
  await c.end();
  return rate;
}
