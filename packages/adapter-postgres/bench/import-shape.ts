/**
 * What the recipients table's shape costs an import, with the import's own statement: `--n` rows in
 * chunks of `--chunk`, each COPYed into a staging table and merged by the statement `_import_staged`
 * runs (first occurrence of a phone wins, a phone already in the campaign or opted out is skipped,
 * gapless seq), one transaction per chunk, into two tables:
 *
 * - `today`: the recipients table's shape as of schema version 6 (text campaign id, identity key,
 *   unique (phone, campaign) and (campaign, seq), the claim index on pending rows);
 * - `lean`: the shape proposed in docs/write-once-store.md ("What would reach the targets"): a numeric
 *   campaign key, the row key computed from (campaign, seq), so one index serves lookups by id and by
 *   seq, and the phone index. No status index: in an append-only ledger a row's status never changes.
 *
 * - `lean-direct`: the lean table without the staging pass. The client keeps the first occurrence of
 *   each phone in the chunk, asks which of the chunk's phones the campaign or the suppression list
 *   already has (one query, a probe per phone), numbers the rest and COPYs them straight into the
 *   table, in the same transaction, under the campaign's lock.
 *
 * Prints seconds for each beside `pg.raw.copy` of the same run (medians of `--rounds`). Not the
 * store's import (no counters, no batches table): the two shapes under one statement.
 *
 *   tsx bench/import-shape.ts [--n 1000000] [--chunk 20000] [--rounds 2]
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { createDatabase, startPostgres } from '../scripts/embedded-pg.js';
import { arg } from './audience.js';
import { rawCopy } from './raw.js';

const SHAPES = {
  today: {
    table: `CREATE TABLE r (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, campaign_id text NOT NULL, seq integer NOT NULL,
      batch integer NOT NULL, phone text NOT NULL, vars jsonb NOT NULL, status text NOT NULL, updated_at bigint NOT NULL);
      CREATE UNIQUE INDEX ON r (phone, campaign_id); CREATE UNIQUE INDEX ON r (campaign_id, seq);
      CREATE INDEX ON r (campaign_id, batch, seq) WHERE status = 'pending'`,
    campaign: '00000000-0000-4000-8000-000000000000',
    columns: 'campaign_id, seq, batch, phone, vars, status, updated_at',
    values: `$1::text, n.seq, (n.seq + 9999) / 10000, n.phone, n.vars, 'pending', 1`,
  },
  lean: {
    table: `CREATE TABLE r (id bigint PRIMARY KEY, campaign_id integer NOT NULL, seq integer NOT NULL,
      batch integer NOT NULL, phone text NOT NULL, vars jsonb NOT NULL, status text NOT NULL, updated_at bigint NOT NULL);
      CREATE UNIQUE INDEX ON r (phone, campaign_id)`,
    campaign: '42',
    columns: 'id, campaign_id, seq, batch, phone, vars, status, updated_at',
    values: `($1::integer::bigint << 32) + n.seq, $1::integer, n.seq, (n.seq + 9999) / 10000, n.phone, n.vars, 'pending', 1`,
  },
};

function merge(shape: (typeof SHAPES)[keyof typeof SHAPES]): string {
  const cast = shape === SHAPES.lean ? 'integer' : 'text';
  return `WITH firsts AS (
      SELECT DISTINCT ON (s.phone) s.ord, s.phone, s.vars FROM pg_temp.stage s ORDER BY s.phone, s.ord
    ), fresh AS (
      SELECT f.ord, f.phone, f.vars, EXISTS (SELECT 1 FROM opt_outs o WHERE o.phone = f.phone) AS opted
      FROM firsts f
      LEFT JOIN LATERAL (SELECT 1 AS hit FROM r WHERE r.phone = f.phone AND r.campaign_id = $1::${cast} LIMIT 1) d ON true
      WHERE d.hit IS NULL
    ), numbered AS (
      SELECT f.phone, f.vars, ($2::integer + row_number() OVER (ORDER BY f.ord))::integer AS seq FROM fresh f WHERE NOT f.opted
    )
    INSERT INTO r (${shape.columns}) SELECT ${shape.values} FROM numbered n ORDER BY n.seq`;
}

/** The chunks' COPY text (ord, phone, vars), built before any clock starts. */
function chunks(n: number, size: number): string[] {
  const out: string[] = [];
  for (let lo = 1; lo <= n; lo += size) {
    let text = '';
    for (let i = lo, ord = 1; i < lo + size && i <= n; i++, ord++) text += `${ord}\t55119${String(10_000_000 + i).padStart(8, '0')}\t{"name": "c${i}"}\n`;
    out.push(text);
  }
  return out;
}

/** `lean-direct`: probe the chunk's phones, then COPY the new rows, numbered here, into the lean table. */
async function importDirect(url: string, data: string[]): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(`DROP TABLE IF EXISTS r; DROP TABLE IF EXISTS opt_outs; ${SHAPES.lean.table}; CREATE TABLE opt_outs (phone text PRIMARY KEY)`);
  await c.query('CHECKPOINT');
  const rows = data.map((text) => text.split('\n').slice(0, -1).map((line) => line.split('\t') as [string, string, string]));
  let last = 0;
  const t0 = performance.now();
  for (const chunk of rows) {
    await c.query('BEGIN');
    const seen = new Set<string>();
    const firsts = chunk.filter(([, phone]) => !seen.has(phone) && seen.add(phone));
    const known = await c.query(
      // LATERAL with LIMIT keeps each a probe of the index (as _import_staged does): as EXISTS, the
      // planner hashed the whole table once per chunk.
      `SELECT p.phone FROM unnest($1::text[]) AS p(phone)
       LEFT JOIN LATERAL (SELECT 1 AS hit FROM r WHERE r.phone = p.phone AND r.campaign_id = 42 LIMIT 1) d ON true
       LEFT JOIN LATERAL (SELECT 1 AS hit FROM opt_outs o WHERE o.phone = p.phone LIMIT 1) o ON true
       WHERE d.hit IS NOT NULL OR o.hit IS NOT NULL`,
      [firsts.map((f) => f[1])],
    );
    const skip = new Set(known.rows.map((k) => k.phone as string));
    let text = '';
    for (const [, phone, vars] of firsts) {
      if (skip.has(phone)) continue;
      const seq = ++last;
      text += `${42 * 2 ** 32 + seq}\t42\t${seq}\t${Math.ceil(seq / 10_000)}\t${phone}\t${vars}\tpending\t1\n`;
    }
    await pipeline(Readable.from([text]), c.query(copyStreams.from(`COPY r (${SHAPES.lean.columns}) FROM STDIN`)));
    await c.query('COMMIT');
  }
  const seconds = (performance.now() - t0) / 1000;
  if (last !== rows.reduce((k, r) => k + r.length, 0)) throw new Error(`lean-direct: inserted ${last}`);
  await c.query('DROP TABLE r');
  await c.end();
  return seconds;
}

async function importInto(url: string, name: keyof typeof SHAPES, data: string[]): Promise<number> {
  const shape = SHAPES[name];
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(`DROP TABLE IF EXISTS r; DROP TABLE IF EXISTS opt_outs; ${shape.table}; CREATE TABLE opt_outs (phone text PRIMARY KEY)`);
  await c.query('CREATE TEMPORARY TABLE stage (ord integer NOT NULL, phone text NOT NULL, vars jsonb NOT NULL) ON COMMIT DELETE ROWS');
  await c.query('CHECKPOINT');
  const sql = merge(shape);
  let last = 0;
  const t0 = performance.now();
  for (const text of data) {
    await c.query('BEGIN');
    await pipeline(Readable.from([text]), c.query(copyStreams.from('COPY pg_temp.stage (ord, phone, vars) FROM STDIN')));
    last += (await c.query(sql, [shape.campaign, last])).rowCount ?? 0;
    await c.query('COMMIT');
  }
  const seconds = (performance.now() - t0) / 1000;
  if (last !== data.reduce((k, t) => k + t.split('\n').length - 1, 0)) throw new Error(`${name}: inserted ${last}`);
  await c.query('DROP TABLE r');
  await c.end();
  return seconds;
}

const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main() {
  const n = arg('n', 1_000_000);
  const rounds = arg('rounds', 2);
  const data = chunks(n, arg('chunk', 20_000));
  const server = await startPostgres({ useEnv: false });
  try {
    const url = await createDatabase(server.url, `shape_${process.pid}`);
    const raw: number[] = [];
    const times: Record<string, number[]> = { today: [], lean: [], 'lean-direct': [] };
    for (let round = 0; round < rounds; round++) {
      raw.push(await rawCopy(url, n, false));
      for (const name of ['today', 'lean'] as const) times[name]!.push(await importInto(url, name, data));
      times['lean-direct']!.push(await importDirect(url, data));
    }
    const ref = median(raw);
    const s2 = (x: number) => Number(x.toFixed(2));
    console.log(JSON.stringify({ bench: 'pg.raw.copy', value: s2(ref), unit: 's', runs: raw.map(s2), n }));
    for (const [name, xs] of Object.entries(times)) {
      console.log(JSON.stringify({ bench: 'pg.import.shape', shape: name, value: s2(median(xs)), unit: 's', vsRawCopy: s2(median(xs) / ref), runs: xs.map(s2), n }));
    }
  } finally {
    await server.stop();
  }
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
