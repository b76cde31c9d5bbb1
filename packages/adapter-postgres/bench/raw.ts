/** The raw references the benches compare with, shared by pg.bench.ts, floor.ts and import-shape.ts. */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import copyStreams from 'pg-copy-streams';

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

/**
 * COPY of `n` rows (ord, phone, vars) on one connection, streamed from a generator: the floor of any
 * import. `indexed`: into a table shaped like the store's recipients, with its identity key, its
 * unique (phone, campaign) and (campaign, seq) indexes and its open-rows index, all maintained row by
 * row as an import into an existing table must; otherwise into a table without any index.
 */
export async function rawCopy(url: string, n: number, indexed: boolean): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const campaign = '00000000-0000-4000-8000-000000000000';
  await c.query(
    indexed
      ? `DROP TABLE IF EXISTS raw_copy; CREATE TABLE raw_copy (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, campaign_id text NOT NULL,
           seq integer NOT NULL, batch integer NOT NULL, phone text NOT NULL, vars jsonb NOT NULL, status text NOT NULL, processed_at bigint);
         CREATE UNIQUE INDEX ON raw_copy (phone, campaign_id); CREATE UNIQUE INDEX ON raw_copy (campaign_id, seq);
         CREATE INDEX ON raw_copy (campaign_id, batch, seq) WHERE status = 'pending'`
      : 'DROP TABLE IF EXISTS raw_copy; CREATE TABLE raw_copy (ord integer NOT NULL, phone text NOT NULL, vars jsonb NOT NULL)',
  );
  function* lines() {
    let buf = '';
    for (let i = 1; i <= n; i++) {
      const phone = `55119${String(10_000_000 + i).padStart(8, '0')}`; // as `audience` numbers them
      const vars = `{"name": "c${i}"}`;
      buf += indexed ? `${campaign}\t${i}\t${Math.ceil(i / 10_000)}\t${phone}\t${vars}\tpending\n` : `${i}\t${phone}\t${vars}\n`;
      if (buf.length > 64 * 1024) {
        yield buf;
        buf = '';
      }
    }
    if (buf) yield buf;
  }
  const t0 = performance.now();
  const target = indexed ? 'raw_copy (campaign_id, seq, batch, phone, vars, status)' : 'raw_copy (ord, phone, vars)';
  await pipeline(Readable.from(lines()), c.query(copyStreams.from(`COPY ${target} FROM STDIN`)));
  const seconds = (performance.now() - t0) / 1000;
  await c.query('DROP TABLE raw_copy');
  await c.end();
  return seconds;
}
