import { ValidationError, type AddRecipientsResult, type NewRecipient, type RecipientBuffer } from '@disparo/core/store';
import { z } from 'zod';
import { CallStore } from './call-store.js';
import type { Call } from './calls.js';
import { Db, type Queryable, isPGlite, quoteIdent } from './client.js';
import { toStoreError } from './errors.js';
import { BlockPool, CopyBuffer, importByCopy } from './import.js';
import { migrate, schemaVersion, type MigrateResult } from './migrate.js';
import { subscribeWake, wakeChannel } from './wake.js';

export interface PostgresStoreOptions {
  /** Schema holding Disparo's tables and functions. Default `disparo`. */
  schema?: string;
  /**
   * How recipients are imported: `copy` streams them with COPY (node-postgres pools only), `insert`
   * sends them as JSON to `add_recipients`. Default: `copy` on a pool, `insert` otherwise.
   */
  importMode?: 'copy' | 'insert';
}

const optionsSchema = z
  .object({
    schema: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, 'a plain identifier: letters, digits and _ (not starting with a digit), up to 63 characters')
      .default('disparo'),
    importMode: z.enum(['copy', 'insert']).optional(),
  })
  .strict();

/**
 * The durable StateStore on PostgreSQL (a `pg.Pool`) or PGlite. Every method is one call of one SQL
 * function (`sql/functions/<name>.sql`, see `calls.ts`), so each is one round trip and one
 * transaction, and the rules live in SQL once; this class only calls them. The one exception is the
 * import's fast path on a pool: COPY, then the import function, in one transaction.
 */
export class PostgresStore extends CallStore {
  readonly name: string;
  readonly schema: string;
  private readonly db: Db;
  private readonly s: string;
  private readonly importMode: 'copy' | 'insert';
  /** COPY blocks that imports have finished with (see CopyBuffer). */
  private readonly blocks = new BlockPool();

  constructor(client: Queryable, options: PostgresStoreOptions = {}) {
    super();
    const parsed = optionsSchema.safeParse(options ?? {});
    if (!parsed.success) throw ValidationError.fromZod('Postgres store options', parsed.error);
    this.db = new Db(client);
    this.schema = parsed.data.schema;
    this.s = quoteIdent(this.schema);
    this.importMode = parsed.data.importMode ?? (this.db.pool ? 'copy' : 'insert');
    if (this.importMode === 'copy' && !this.db.pool) {
      throw new ValidationError('importMode "copy" needs a node-postgres Pool (COPY runs on a checked-out connection); use "insert" with this client.', [
        { path: 'importMode', message: 'copy needs a pg.Pool' },
      ]);
    }
    this.name = isPGlite(client) ? 'pglite' : 'postgres';
  }

  /** Create or upgrade the schema: its tables, then its functions (safe when many workers call it at once). */
  migrate(): Promise<MigrateResult> {
    return migrate(this.db, this.schema);
  }

  /** The schema's version: 0 before `migrate()`, `LATEST_SCHEMA_VERSION` after. */
  version(): Promise<number> {
    return schemaVersion(this.db, this.schema);
  }

  /** Call the SQL function as `SELECT schema.fn(p_a => $1, ...)`: the parameters by name, objects as JSON. */
  protected async run<T>(call: Call<T>): Promise<T> {
    const names = Object.keys(call.args);
    const params = names.map((k) => {
      const v = call.args[k];
      return v !== null && typeof v === 'object' ? JSON.stringify(v) : v;
    });
    const list = names.map((k, i) => `${k} => $${i + 1}`).join(', ');
    const fn = `${this.s}.${quoteIdent(call.fn)}(${list})`;
    try {
      const text = call.returns === 'value' ? `SELECT ${fn} AS value` : `SELECT * FROM ${fn}`;
      const rows = call.prepared ? await this.db.queryPrepared(text, params) : await this.db.query(text, params);
      return call.decode(call.returns === 'value' ? rows[0]?.value : rows);
    } catch (error) {
      throw toStoreError(error, { method: call.method, schema: this.schema, input: call.input, ...(call.id !== undefined ? { id: call.id } : {}) });
    }
  }

  /** COPY on a pool (one transaction: COPY, then the import function); the JSON import otherwise. */
  override async addRecipients(campaignId: string, rows: NewRecipient[], now: number): Promise<AddRecipientsResult> {
    if (this.importMode === 'insert' || rows.length === 0) return super.addRecipients(campaignId, rows, now);
    try {
      return await importByCopy(this.db, this.s, campaignId, rows, now);
    } catch (error) {
      throw toStoreError(error, { method: 'addRecipients', schema: this.schema, input: { rows }, id: campaignId });
    }
  }

  /**
   * With COPY: an import's chunk as COPY text, encoded as the engine reads each row (see CopyBuffer);
   * null otherwise (the engine passes arrays to addRecipients).
   */
  async recipientBuffer(): Promise<RecipientBuffer | null> {
    return this.importMode === 'copy' ? new CopyBuffer(this.blocks) : null;
  }

  /** A chunk from `recipientBuffer()`: the same import as addRecipients with its rows. */
  async addRecipientBuffer(campaignId: string, rows: RecipientBuffer, now: number): Promise<AddRecipientsResult> {
    if (!(rows instanceof CopyBuffer)) throw new ValidationError('addRecipientBuffer takes a buffer from this store\'s recipientBuffer()', [{ path: 'rows', message: 'not a CopyBuffer' }]);
    if (rows.length === 0) return { inserted: 0, duplicates: 0, optedOut: 0 };
    let result: AddRecipientsResult;
    try {
      result = await importByCopy(this.db, this.s, campaignId, rows, now);
    } catch (error) {
      // The rows are bytes by now: the error names no row (the engine has refused NUL characters already).
      throw toStoreError(error, { method: 'addRecipients', schema: this.schema, id: campaignId });
    }
    rows.recycle();
    return result;
  }

  /** Call `listener` when any worker of this schema notifies; see `subscribeWake` in wake.ts. */
  subscribeWake(listener: () => void): Promise<() => Promise<void>> {
    return subscribeWake(this.db, wakeChannel(this.schema), listener);
  }
}

/**
 * A StateStore on PostgreSQL or PGlite. `client` is a `pg.Pool` (production), a `pg.Client`, or a PGlite
 * instance (embedded). Call `await store.migrate()` once before use (safe from every worker at start).
 */
export function createPostgresStore(client: Queryable, options: PostgresStoreOptions = {}): PostgresStore {
  return new PostgresStore(client, options);
}
