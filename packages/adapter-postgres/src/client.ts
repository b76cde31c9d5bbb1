import { StoreError } from '@disparo/core/store';

/** The one method Disparo needs from a client: node-postgres `Pool`/`Client` and PGlite all have it. */
export interface Queryable {
  query(text: string, params?: unknown[]): Promise<{ rows: any[] }>;
}

/** A node-postgres pool (`pg.Pool`): a dedicated connection is checked out for transactions, COPY and LISTEN. */
export interface PoolLike extends Queryable {
  connect(): Promise<PoolClientLike>;
}

export interface PoolClientLike extends Queryable {
  release(error?: boolean | Error): void;
  on?(event: 'notification', listener: (message: { channel: string; payload?: string }) => void): unknown;
  on?(event: 'error', listener: (error: Error) => void): unknown;
  removeListener?(event: 'notification', listener: (message: { channel: string; payload?: string }) => void): unknown;
  removeListener?(event: 'error', listener: (error: Error) => void): unknown;
}

/** PGlite: one session; multi-statement SQL goes through `exec`, notifications through `listen`. */
export interface PGliteLike extends Queryable {
  exec(text: string): Promise<unknown>;
  listen?(channel: string, callback: (payload: string) => void): Promise<() => Promise<void>>;
}

export type Client = Queryable;

/** One holder at a time, first come first served: a single session runs one query or transaction at once. */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

export const isPool = (c: Queryable): c is PoolLike =>
  typeof (c as { connect?: unknown }).connect === 'function' && 'totalCount' in (c as object) && 'idleCount' in (c as object);

export const isPGlite = (c: Queryable): c is PGliteLike =>
  typeof (c as { exec?: unknown }).exec === 'function' && typeof (c as { listen?: unknown }).listen === 'function';

/**
 * The client, seen as either a pool (a connection per transaction) or one session (PGlite, a single
 * `pg.Client`), where a transaction must not interleave with other queries: everything queues.
 */
export class Db {
  readonly pool: PoolLike | null;
  readonly session: Queryable | null;
  private readonly mutex = new Mutex();

  constructor(readonly client: Queryable) {
    if (!client || typeof client.query !== 'function') {
      throw new StoreError('createPostgresStore needs a client with query(text, params): a pg.Pool, a pg.Client or a PGlite instance.');
    }
    this.pool = isPool(client) ? client : null;
    this.session = this.pool ? null : client;
    this.prepares = !isPGlite(client) && isNodePostgres(client);
  }

  /** node-postgres (a pool or a client), which takes `{ name, text, values }`: prepared statements by name. */
  private readonly prepares: boolean;

  get singleSession(): boolean {
    return this.session !== null;
  }

  async query<R = any>(text: string, params?: unknown[]): Promise<R[]> {
    if (this.pool) return (await this.pool.query(text, params)).rows as R[];
    return this.mutex.run(async () => (await this.session!.query(text, params)).rows as R[]);
  }

  /**
   * `query` as a named prepared statement where the client is node-postgres: each connection parses
   * and plans the text once, then only binds and runs it (a per-message checkpoint spent about a
   * twentieth of the server's time parsing and planning its one-line call). PGlite runs it as `query`.
   */
  async queryPrepared<R = any>(text: string, params: unknown[]): Promise<R[]> {
    if (!this.prepares) return this.query<R>(text, params);
    const config = { name: statementName(text), text, values: params };
    if (this.pool) return (await (this.pool as unknown as NamedQueryable).query(config)).rows as R[];
    return this.mutex.run(async () => (await (this.session as unknown as NamedQueryable).query(config)).rows as R[]);
  }

  /** Run `fn` on one connection, alone (pool: a checked-out client; session: the queue held). */
  async withConnection<T>(fn: (conn: Queryable & Partial<PGliteLike>) => Promise<T>): Promise<T> {
    if (this.pool) {
      const conn = await this.pool.connect();
      let broken: Error | undefined;
      try {
        return await fn(conn);
      } catch (error) {
        broken = error instanceof Error ? error : new Error(String(error));
        throw error;
      } finally {
        // A connection whose transaction failed half-way is rolled back by the caller; drop it only when that failed too.
        conn.release(broken && (broken as { disparoBroken?: boolean }).disparoBroken ? broken : undefined);
      }
    }
    return this.mutex.run(() => fn(this.session as Queryable & Partial<PGliteLike>));
  }

  /** BEGIN … COMMIT on one connection; ROLLBACK on error. */
  async transaction<T>(fn: (conn: Queryable & Partial<PGliteLike>) => Promise<T>): Promise<T> {
    return this.withConnection(async (conn) => {
      await conn.query('BEGIN');
      try {
        const result = await fn(conn);
        await conn.query('COMMIT');
        return result;
      } catch (error) {
        try {
          await conn.query('ROLLBACK');
        } catch {
          if (error && typeof error === 'object') (error as { disparoBroken?: boolean }).disparoBroken = true;
        }
        throw error;
      }
    });
  }
}

interface NamedQueryable {
  query(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: any[] }>;
}

/** node-postgres: a `pg.Pool` (see isPool) or a `pg.Client` (its connection object). */
const isNodePostgres = (c: Queryable): boolean => isPool(c) || ('connection' in (c as object) && typeof (c as { connect?: unknown }).connect === 'function');

/**
 * A prepared statement's name, the same for the same text in every process and module copy (a
 * connection refuses a known name with another text): FNV-1a, 64 bits, of the text.
 */
const statementNames = new Map<string, string>();
function statementName(text: string): string {
  let name = statementNames.get(text);
  if (name === undefined) {
    let h1 = 0x811c9dc5;
    let h2 = 0x01000193;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 ^ c, 0x5bd1e995);
    }
    name = `disparo_${(h1 >>> 0).toString(16).padStart(8, '0')}${(h2 >>> 0).toString(16).padStart(8, '0')}`;
    statementNames.set(text, name);
  }
  return name;
}

/** A SQL identifier, quoted. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
