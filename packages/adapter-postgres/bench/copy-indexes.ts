/**
 * What each of the recipients table's indexes costs a bulk load: COPY of `--n` rows shaped like an
 * import into tables with one index set each (same rows, same order), printed as seconds.
 *
 *   tsx bench/copy-indexes.ts [--n 1000000]
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { createDatabase, startPostgres } from '../scripts/embedded-pg.js';
import { arg } from './audience.js';


const variants: Record<string, string[]> = {
  none: [],
  pk: ['pk'],
  'pk+phone': ['pk', 'CREATE UNIQUE INDEX ON t (phone, campaign_id)'],
  'pk+phone+seq': ['pk', 'CREATE UNIQUE INDEX ON t (phone, campaign_id)', 'CREATE UNIQUE INDEX ON t (campaign_id, seq)'],
  all: ['pk', 'CREATE UNIQUE INDEX ON t (phone, campaign_id)', 'CREATE UNIQUE INDEX ON t (campaign_id, seq)', "CREATE INDEX ON t (campaign_id, batch, seq) WHERE status = 'pending'"],
  'all,campaign-first': ['pk', 'CREATE UNIQUE INDEX ON t (campaign_id, phone)', 'CREATE UNIQUE INDEX ON t (campaign_id, seq)', "CREATE INDEX ON t (campaign_id, batch, seq) WHERE status = 'pending'"],
  'all,no-seq-idx': ['pk', 'CREATE UNIQUE INDEX ON t (phone, campaign_id)', "CREATE INDEX ON t (campaign_id, batch, seq) WHERE status = 'pending'"],
  'all,int-campaign': ['int', 'pk', 'CREATE UNIQUE INDEX ON t (phone, campaign_id)', 'CREATE UNIQUE INDEX ON t (campaign_id, seq)', "CREATE INDEX ON t (campaign_id, batch, seq) WHERE status = 'pending'"],
  // The leaner shape proposed for the import (docs/write-once-store.md, "What would reach the
  // targets"): a numeric campaign key, the row key computed from (campaign, seq) so one index serves
  // lookups by id and by seq, the phone index for dedup, and no status index (an append-only ledger
  // never changes a row's status).
  lean: ['int', 'key', 'CREATE UNIQUE INDEX ON t (phone, campaign_id)'],
  'all,shuffled': ['shuffle', 'pk', 'CREATE UNIQUE INDEX ON t (phone, campaign_id)', 'CREATE UNIQUE INDEX ON t (campaign_id, seq)', "CREATE INDEX ON t (campaign_id, batch, seq) WHERE status = 'pending'"],
};

async function run(url: string, n: number, name: string, parts: string[]) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const int = parts.includes('int');
  const key = parts.includes('key');
  const shuffle = parts.includes('shuffle');
  const id = key ? 'id bigint PRIMARY KEY' : `id bigint GENERATED ALWAYS AS IDENTITY ${parts.includes('pk') ? 'PRIMARY KEY' : ''}`;
  await c.query(`DROP TABLE IF EXISTS t; CREATE TABLE t (${id}, campaign_id ${int ? (key ? 'integer' : 'bigint') : 'text'} NOT NULL,
    seq integer NOT NULL, batch integer NOT NULL, phone text NOT NULL, vars jsonb NOT NULL, status text NOT NULL, processed_at bigint, updated_at bigint NOT NULL) WITH (fillfactor = 80)`);
  for (const p of parts) if (p.startsWith('CREATE')) await c.query(p);
  const campaign = int ? '42' : '00000000-0000-4000-8000-000000000000';
  // shuffled: phones in a pseudo-random order (a real list), seq in order
  const phoneOf = (i: number) => `55119${String(10_000_000 + (shuffle ? (i * 7_919_993) % n : i)).padStart(8, '0')}`;
  function* lines() {
    let buf = '';
    for (let i = 1; i <= n; i++) {
      buf += `${key ? `${42 * 2 ** 32 + i}\t` : ''}${campaign}\t${i}\t${Math.ceil(i / 10_000)}\t${phoneOf(i)}\t{"name": "c${i}"}\tpending\t1\n`;
      if (buf.length > 64 * 1024) {
        yield buf;
        buf = '';
      }
    }
    if (buf) yield buf;
  }
  await c.query('CHECKPOINT');
  const t0 = performance.now();
  await pipeline(Readable.from(lines()), c.query(copyStreams.from(`COPY t (${key ? 'id, ' : ''}campaign_id, seq, batch, phone, vars, status, updated_at) FROM STDIN`)));
  const s = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ variant: name, seconds: Number(s.toFixed(2)) }));
  await c.query('DROP TABLE t');
  await c.end();
}

async function main() {
  const n = arg('n', 1_000_000);
  const server = await startPostgres({ useEnv: false });
  try {
    const url = await createDatabase(server.url, `ci_${process.pid}`);
    const only = process.argv.indexOf('--only');
    const names = only >= 0 ? process.argv[only + 1]!.split(',') : Object.keys(variants);
    for (const name of names) await run(url, n, name, variants[name]!);
  } finally {
    await server.stop();
  }
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
