/**
 * The floor of the grouped path's store work, with no engine and no PL/pgSQL: the writes a message
 * costs, issued as bare set-based statements from one connection, on the real `recipients` table
 * (its rows and indexes as an import leaves them), beside `pg.raw.batch` of the same run.
 *
 * - `threeWrites`: the writes before schema version 5. Claim marks each row leased; each checkpoint
 *   (one transaction) writes the previous group's outcomes and the next group's write-ahead, each an
 *   UPDATE per row.
 * - `writeOnce`: a claim reads a range and writes one lease row (version 5); a group's write-ahead is
 *   an UPDATE per row (version 5), a narrow row per send (`narrow`, version 6: INSERT, then DELETE with
 *   the outcome), or one record of its ids (deleted with the outcomes). Without the UPDATE, the outcome
 *   is the only write to the recipient row.
 *
 * - `log`: an append-only ledger. The outcome is an INSERT of a narrow row per message into a table of
 *   its own, and the recipient row is never written after its import; `indexed` adds the indexes the
 *   ledger would need besides its key.
 *
 * Both variants of each write, and a leaner table, are measured (VARIANTS), medians of `--rounds`.
 *
 *   tsx bench/floor.ts [--n 100000] [--group 200] [--rounds 3] [--variants 0,4,7] (indexes into VARIANTS; all by default)
 */
import pg from 'pg';
import { createPostgresStore } from '../src/index.js';
import { createDatabase, startPostgres } from '../scripts/embedded-pg.js';
import { arg, audience } from './audience.js';
import { rawBatch } from './raw.js';

async function fresh(url: string, schema: string, n: number): Promise<void> {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  const store = createPostgresStore(pool, { schema });
  await store.migrate();
  const now = Date.now();
  await store.upsertAccount('a1', { intervalMs: { min: 0, max: 0 } } as never, now);
  await store.createCampaign({ id: 'c1', name: 'c', templates: ['x'], media: null, accountIds: ['a1'], settings: { batchSize: n } as never, status: 'draft', scheduledAt: null, metadata: {}, now });
  await store.addRecipients('c1', [...audience(n)], now);
  await pool.query(`VACUUM ANALYZE ${schema}.recipients`);
  await pool.end();
}

const texts = (ids: string[]) => ids.map((id) => `Oi c${id}, tudo bem? Uma mensagem de exemplo com algum texto.`);

async function threeWrites(c: pg.Client, s: string, group: number, waRecord = false): Promise<number> {
  if (waRecord) await c.query(`CREATE TABLE ${s}.write_aheads (id bigserial PRIMARY KEY, account_id text NOT NULL, ids bigint[] NOT NULL, started_at bigint NOT NULL)`);
  let done = 0;
  let prev: string[] = [];
  const t0 = performance.now();
  for (;;) {
    const now = Date.now();
    const claimed = (
      await c.query(
        `UPDATE ${s}.recipients r SET lease_owner = 'w', lease_expires_at = $1, updated_at = $1
         WHERE r.id IN (SELECT id FROM ${s}.recipients WHERE campaign_id = 'c1' AND batch = 1 AND processed_at IS NULL AND status = 'pending' AND lease_owner IS NULL
                        ORDER BY seq LIMIT 2000 FOR UPDATE SKIP LOCKED) RETURNING r.id`,
        [now],
      )
    ).rows.map((r) => String(r.id));
    for (let i = 0; i <= claimed.length; i += group) {
      const next = claimed.slice(i, i + group);
      await c.query('BEGIN');
      if (prev.length > 0) {
        await c.query(
          `UPDATE ${s}.recipients r SET status = 'sent', provider_message_id = u.pid, sent_at = $2, processed_at = $2, lease_owner = NULL, lease_expires_at = NULL, updated_at = $2
           FROM unnest($1::bigint[], $3::text[]) AS u(id, pid) WHERE r.id = u.id`,
          [prev, Date.now(), prev.map((id) => `wamid.${id}`)],
        );
        done += prev.length;
      }
      if (next.length > 0 && waRecord) {
        await c.query(`DELETE FROM ${s}.write_aheads WHERE account_id = 'a1'`);
        await c.query(`INSERT INTO ${s}.write_aheads (account_id, ids, started_at) VALUES ('a1', $1, $2)`, [next, Date.now()]);
      } else if (next.length > 0) {
        await c.query(
          `UPDATE ${s}.recipients r SET status = 'sending', text = u.text, account_id = 'a1', attempts = 1, updated_at = $2
           FROM unnest($1::bigint[], $3::text[]) AS u(id, text) WHERE r.id = u.id`,
          [next, Date.now(), texts(next)],
        );
      }
      await c.query('COMMIT');
      prev = next;
    }
    if (claimed.length === 0) break;
  }
  return done / ((performance.now() - t0) / 1000);
}

async function writeOnce(c: pg.Client, s: string, group: number, waRow = false, narrow = false, log: 'bare' | 'indexed' | null = null): Promise<number> {
  if (log) await c.query(`CREATE TABLE ${s}.floor_outcomes (recipient_id bigint PRIMARY KEY, campaign_id text NOT NULL, status text NOT NULL, attempt integer NOT NULL, account_id text NOT NULL, provider_message_id text, text text, sent_at bigint, processed_at bigint NOT NULL)`);
  // What the ledger would need besides its key: receipts find a row by provider id, progress counts a campaign's recent outcomes.
  if (log === 'indexed') await c.query(`CREATE INDEX ON ${s}.floor_outcomes (provider_message_id); CREATE INDEX ON ${s}.floor_outcomes (campaign_id, processed_at)`);
  if (narrow) await c.query(`CREATE TABLE ${s}.floor_sends (recipient_id bigint PRIMARY KEY, account_id text NOT NULL, owner text NOT NULL, attempt integer NOT NULL, text text, started_at bigint NOT NULL, expires_at bigint NOT NULL)`);
  await c.query(`CREATE TABLE ${s}.floor_ranges (id bigserial PRIMARY KEY, campaign_id text NOT NULL, lo integer NOT NULL, hi integer NOT NULL, owner text NOT NULL, expires_at bigint NOT NULL)`);
  await c.query(`CREATE TABLE ${s}.write_aheads (id bigserial PRIMARY KEY, account_id text NOT NULL, ids bigint[] NOT NULL, started_at bigint NOT NULL)`);
  let done = 0;
  let after = 0;
  let prev: { ids: string[]; wa: string } | null = null;
  const t0 = performance.now();
  for (;;) {
    const now = Date.now();
    await c.query('BEGIN');
    const rows = (
      await c.query(
        `SELECT id, seq, phone, vars FROM ${s}.recipients r WHERE campaign_id = 'c1' AND batch = 1 AND processed_at IS NULL AND status = 'pending' AND seq > $1
         ${log ? `AND NOT EXISTS (SELECT 1 FROM ${s}.floor_outcomes o WHERE o.recipient_id = r.id)` : ''} ORDER BY seq LIMIT 2000`,
        [after],
      )
    ).rows;
    if (rows.length > 0) {
      await c.query(`INSERT INTO ${s}.floor_ranges (campaign_id, lo, hi, owner, expires_at) VALUES ('c1', $1, $2, 'w', $3)`, [rows[0].seq, rows[rows.length - 1].seq, now + 30_000]);
      after = rows[rows.length - 1].seq;
    }
    await c.query('COMMIT');
    const claimed = rows.map((r) => String(r.id));
    for (let i = 0; i <= claimed.length; i += group) {
      const next = claimed.slice(i, i + group);
      await c.query('BEGIN');
      if (prev && log) {
        await c.query(
          `INSERT INTO ${s}.floor_outcomes SELECT u.id, 'c1', 'sent', 1, 'a1', u.pid, u.text, $2, $2 FROM unnest($1::bigint[], $3::text[], $4::text[]) AS u(id, pid, text)`,
          [prev.ids, Date.now(), prev.ids.map((id) => `wamid.${id}`), texts(prev.ids)],
        );
        if (prev.wa) await c.query(`DELETE FROM ${s}.write_aheads WHERE id = $1`, [prev.wa]);
        if (narrow) await c.query(`DELETE FROM ${s}.floor_sends WHERE recipient_id = ANY ($1::bigint[])`, [prev.ids]);
        done += prev.ids.length;
      } else if (prev) {
        await c.query(
          `UPDATE ${s}.recipients r SET status = 'sent', text = u.text, account_id = 'a1', attempts = 1, provider_message_id = u.pid, sent_at = $2, processed_at = $2, updated_at = $2
           FROM unnest($1::bigint[], $3::text[], $4::text[]) AS u(id, pid, text) WHERE r.id = u.id`,
          [prev.ids, Date.now(), prev.ids.map((id) => `wamid.${id}`), texts(prev.ids)],
        );
        if (prev.wa) await c.query(`DELETE FROM ${s}.write_aheads WHERE id = $1`, [prev.wa]);
        if (narrow) await c.query(`DELETE FROM ${s}.floor_sends WHERE recipient_id = ANY ($1::bigint[])`, [prev.ids]);
        done += prev.ids.length;
      }
      let wa = '';
      if (next.length > 0 && waRow)
        await c.query(
          `UPDATE ${s}.recipients r SET status = 'sending', text = u.text, account_id = 'a1', attempts = 1, updated_at = $2
           FROM unnest($1::bigint[], $3::text[]) AS u(id, text) WHERE r.id = u.id`,
          [next, Date.now(), texts(next)],
        );
      else if (next.length > 0 && narrow)
        await c.query(`INSERT INTO ${s}.floor_sends SELECT u.id, 'a1', 'w', 1, u.text, $2::bigint, $2::bigint + 30000 FROM unnest($1::bigint[], $3::text[]) AS u(id, text)`, [next, Date.now(), texts(next)]);
      else if (next.length > 0) wa = (await c.query(`INSERT INTO ${s}.write_aheads (account_id, ids, started_at) VALUES ('a1', $1, $2) RETURNING id`, [next, Date.now()])).rows[0].id;
      await c.query('COMMIT');
      prev = next.length > 0 ? { ids: next, wa } : null;
    }
    if (claimed.length === 0) break;
  }
  return done / ((performance.now() - t0) / 1000);
}

/**
 * The variants, each on a fresh import of `--n` rows: `claim` row (each row marked leased) or range
 * (one lease row per claim), `ahead` row (each row marked sending) or record (one row per group),
 * and `drop`: the recipients indexes removed first.
 */
const SENDING_INDEX = "CREATE INDEX recipients_in_flight_idx ON :s.recipients (account_id) WHERE status = 'sending'";

const VARIANTS: Array<{ name: string; claim: 'row' | 'range'; ahead: 'row' | 'record' | 'narrow'; log?: 'bare' | 'indexed'; drop?: string[]; prepare?: string[] }> = [
  // (Schema version 6 has no index on `sending` rows: the variants that write ahead on the row get
  // version 5's back, `SENDING_INDEX`, to measure what they cost then.)
  { name: 'before version 5 (row claim, row write-ahead)', claim: 'row', ahead: 'row', prepare: [SENDING_INDEX] },
  { name: 'row claim, record write-ahead', claim: 'row', ahead: 'record' },
  { name: 'range claim, row write-ahead (version 5)', claim: 'range', ahead: 'row', prepare: [SENDING_INDEX] },
  {
    // No index names `status` (the claim index on processed_at IS NULL, no in-flight index, the lease
    // index on lease_owner alone), so the write-ahead, which changes no indexed column, is a HOT update.
    name: 'range claim, HOT row write-ahead (no index on status or account)',
    claim: 'range',
    ahead: 'row',
    drop: ['recipients_pending_idx', 'recipients_lease_idx'],
    prepare: [
      'CREATE INDEX ON :s.recipients (campaign_id, batch, seq) WHERE processed_at IS NULL',
      'CREATE INDEX ON :s.recipients (lease_owner) WHERE lease_owner IS NOT NULL',
    ],
  },
  { name: 'write-once (range claim, record write-ahead)', claim: 'range', ahead: 'record' },
  { name: 'range claim, write-ahead as a narrow row per message (INSERT, DELETE at the outcome; version 6)', claim: 'range', ahead: 'narrow' },
  {
    name: 'write-once, without the provider, processed and lease indexes',
    claim: 'range',
    ahead: 'record',
    drop: ['recipients_provider_idx', 'recipients_processed_idx', 'recipients_lease_idx'],
  },
  {
    // The recipient row is never updated: an outcome is a narrow row of its own, inserted per group
    // (keyed by recipient), and a row shows the latest one. Claims skip rows that have one.
    name: 'append-only ledger (range claim, record write-ahead, outcome INSERT into a narrow table)',
    claim: 'range',
    ahead: 'record',
    log: 'bare',
  },
  { name: 'append-only ledger with a narrow row per send (version 6 write-ahead, outcome INSERT)', claim: 'range', ahead: 'narrow', log: 'bare' },
  { name: 'the same, with the ledger indexed by provider id and by (campaign, processed_at)', claim: 'range', ahead: 'narrow', log: 'indexed' },
  // The ledger as the store would need it (receipts by provider id, recent outcomes per campaign),
  // with one write-ahead record per group: the shape that would come closest to the targets.
  { name: 'append-only ledger, indexed as above, with a write-ahead record per group', claim: 'range', ahead: 'record', log: 'indexed' },
];

const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main() {
  const n = arg('n', 100_000);
  const group = arg('group', 200);
  const rounds = arg('rounds', 3);
  const server = await startPostgres();
  try {
    const url = await createDatabase(server.url, `floor_${process.pid}`);
    const c = new pg.Client({ connectionString: url });
    c.on('error', () => undefined); // the server stopping at the end (or after a failure) must not hide the failure
    await c.connect();
    const raw: number[] = [];
    const rates = VARIANTS.map(() => [] as number[]);
    const at = process.argv.indexOf('--variants');
    const chosen = at >= 0 ? new Set(process.argv[at + 1]!.split(',').map(Number)) : null;
    const picked = (i: number) => chosen === null || chosen.has(i);
    for (let round = 0; round < rounds; round++) {
      raw.push(await rawBatch(url, 100_000));
      for (const [i, v] of VARIANTS.entries()) {
        if (!picked(i)) continue;
        const schema = `floor_${round}_${i}`;
        await fresh(url, schema, n);
        for (const index of v.drop ?? []) await c.query(`DROP INDEX ${schema}.${index}`);
        for (const sql of v.prepare ?? []) await c.query(sql.replaceAll(':s', schema));
        rates[i]!.push(v.claim === 'row' ? await threeWrites(c, schema, group, v.ahead === 'record') : await writeOnce(c, schema, group, v.ahead === 'row', v.ahead === 'narrow', v.log ?? null));
        await c.query(`DROP SCHEMA ${schema} CASCADE`);
      }
    }
    const ref = median(raw);
    console.log(JSON.stringify({ bench: 'pg.raw.batch', value: Math.round(ref), unit: 'rows/s', runs: raw.map(Math.round) }));
    for (const [i, v] of VARIANTS.entries()) {
      if (!picked(i)) continue;
      const value = median(rates[i]!);
      console.log(JSON.stringify({ bench: 'pg.floor.grouped', variant: v.name, value: Math.round(value), unit: 'msg/s', vsRawBatch: Number((value / ref).toFixed(2)), runs: rates[i]!.map(Math.round), n, group }));
    }
    await c.end();
  } finally {
    await server.stop();
  }
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
