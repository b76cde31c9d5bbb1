import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { AddRecipientsResult, NewRecipient } from '@disparo/core/store';
import copyStreams from 'pg-copy-streams';
import { importResult } from './calls.js';
import type { Db, PoolClientLike } from './client.js';

/**
 * The import's fast path on a node-postgres pool: COPY the rows into the session's staging table,
 * then merge them with `_import_staged` (the same function `add_recipients` stages JSON into), in one
 * transaction. `s` is the quoted schema.
 */
export async function importByCopy(db: Db, s: string, campaignId: string, rows: NewRecipient[], now: number): Promise<AddRecipientsResult> {
  return db.transaction(async (conn) => {
    await conn.query(
      'CREATE TEMPORARY TABLE IF NOT EXISTS disparo_import (ord integer NOT NULL, phone text NOT NULL, vars jsonb NOT NULL) ON COMMIT DELETE ROWS',
    );
    const copy = (conn as PoolClientLike & { query(stream: unknown): unknown }).query(copyStreams.from('COPY pg_temp.disparo_import (ord, phone, vars) FROM STDIN')) as NodeJS.WritableStream;
    await pipeline(Readable.from(copyLines(rows)), copy);
    const out = await conn.query(`SELECT ${s}._import_staged(p_campaign_id => $1, p_now => $2) AS value`, [campaignId, Math.round(now)]);
    return importResult(out.rows[0]?.value);
  });
}

/** COPY text format: one line per row, tab-separated, backslash escapes. */
function* copyLines(rows: NewRecipient[]): Generator<string> {
  const esc = (v: string) => v.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
  let buf = '';
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    buf += `${i + 1}\t${esc(r.phone)}\t${esc(JSON.stringify(r.vars ?? {}))}\n`;
    if (buf.length > 64 * 1024) {
      yield buf;
      buf = '';
    }
  }
  if (buf) yield buf;
}
