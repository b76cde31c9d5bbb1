import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { AddRecipientsResult, NewRecipient, RecipientBuffer } from '@disparo/core/store';
import copyStreams from 'pg-copy-streams';
import { importResult } from './calls.js';
import type { Db, PoolClientLike } from './client.js';

/**
 * The import's fast path on a node-postgres pool: COPY the rows into the session's staging table,
 * then merge them with `_import_staged` (the same function `add_recipients` stages JSON into), in one
 * transaction. `s` is the quoted schema.
 */
export async function importByCopy(db: Db, s: string, campaignId: string, rows: NewRecipient[] | CopyBuffer, now: number): Promise<AddRecipientsResult> {
  return db.transaction(async (conn) => {
    await conn.query(
      'CREATE TEMPORARY TABLE IF NOT EXISTS disparo_import (ord integer NOT NULL, phone text NOT NULL, vars jsonb NOT NULL) ON COMMIT DELETE ROWS',
    );
    const copy = (conn as PoolClientLike & { query(stream: unknown): unknown }).query(copyStreams.from('COPY pg_temp.disparo_import (ord, phone, vars) FROM STDIN')) as NodeJS.WritableStream;
    await pipeline(Readable.from(rows instanceof CopyBuffer ? rows.blocks() : copyBlocks(rows), { objectMode: false }), copy);
    const out = await conn.query(`SELECT ${s}._import_staged(p_campaign_id => $1, p_now => $2) AS value`, [campaignId, Math.round(now)]);
    return importResult(out.rows[0]?.value);
  });
}

const COPY_BLOCK = 64 * 1024;
const SPECIAL = /[\\\t\n\r]/;
const esc = (v: string) =>
  SPECIAL.test(v) ? v.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r')) : v;

/** Blocks of COPY_BLOCK bytes that imports have finished with, for the next chunks (a few MB at most). */
export class BlockPool {
  private readonly free: Buffer[] = [];
  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafe(COPY_BLOCK);
  }
  give(blocks: Buffer[]): void {
    for (const b of blocks) if (b.length === COPY_BLOCK && this.free.length < 64) this.free.push(b);
  }
}

/**
 * One chunk of an import as COPY text (StateStore.recipientBuffer): each row is encoded the moment it
 * is pushed, one line per row, tab-separated, backslash escapes, as UTF-8 into blocks of 64 KB. A
 * chunk of row objects lived while the next chunk was read and normalised, so V8 promoted every row
 * to the old generation: 160 MB of garbage on a million rows, and the heap grew by twice that before
 * a full collection took it back. Here a row object dies young, and a chunk is its bytes (about 40 a
 * row), in blocks taken from and returned to the store's pool.
 */
export class CopyBuffer implements RecipientBuffer {
  length = 0;
  /** Filled blocks, each with the bytes it holds. */
  private readonly full: { block: Buffer; used: number }[] = [];
  private block: Buffer | null = null;
  private at = 0;
  constructor(private readonly pool: BlockPool) {}

  push(row: NewRecipient): void {
    const phone = esc(row.phone);
    const vars = esc(JSON.stringify(row.vars ?? {}));
    // At most 3 bytes of UTF-8 per UTF-16 unit, 11 for the ordinal, 3 separators.
    const most = 3 * (phone.length + vars.length) + 14;
    let block = this.block;
    if (block === null || this.at + most > block.length) {
      if (block !== null) this.full.push({ block, used: this.at });
      block = this.block = most > COPY_BLOCK ? Buffer.allocUnsafe(most) : this.pool.take();
      this.at = 0;
    }
    let at = this.at;
    at += block.write(String(++this.length), at, 'latin1');
    block[at++] = 9; // \t
    at += block.write(phone, at, 'utf8');
    block[at++] = 9;
    at += block.write(vars, at, 'utf8');
    block[at++] = 10; // \n
    this.at = at;
  }

  /** The COPY data, in order, from the `from`th filled block. */
  *blocks(from = 0): Generator<Buffer> {
    for (let i = from; i < this.full.length; i++) yield this.full[i]!.block.subarray(0, this.full[i]!.used);
    if (this.block !== null && this.at > 0) yield this.block.subarray(0, this.at);
  }

  /** Blocks filled so far. */
  get filled(): number {
    return this.full.length;
  }

  /** The `i`th filled block's bytes. */
  filledBlock(i: number): Buffer {
    return this.full[i]!.block.subarray(0, this.full[i]!.used);
  }

  /** After a COPY that took the data: the blocks back to the pool; this buffer is empty. */
  recycle(): void {
    const blocks = this.full.map((f) => f.block);
    if (this.block !== null) blocks.push(this.block);
    this.full.length = 0;
    this.block = null;
    this.at = 0;
    this.length = 0;
    this.pool.give(blocks);
  }
}

/** COPY text of an array of rows (addRecipients), each 64 KB block handed over as it fills. */
function* copyBlocks(rows: readonly NewRecipient[]): Generator<Buffer> {
  const buffer = new CopyBuffer(new BlockPool());
  let sent = 0;
  for (const r of rows) {
    buffer.push(r);
    while (sent < buffer.filled) yield buffer.filledBlock(sent++);
  }
  yield* buffer.blocks(sent);
}
