import { type Db, type PoolClientLike, isPGlite, quoteIdent } from './client.js';

/** The notification channel that wakes idle workers of one schema. */
export const wakeChannel = (schema: string) => `disparo_wake_${schema}`.toLowerCase();

/**
 * Call `listener` when any worker of this schema notifies (`notify_wake`). PGlite: its own `listen`.
 * A node-postgres pool: holds one connection of the pool (LISTEN). When that connection breaks
 * (server restart, network), it is dropped and LISTEN is re-established with backoff (0.5 s doubling
 * to 30 s), and `listener` is called once on reconnect for any wake-up missed meanwhile. A single
 * `pg.Client`: nothing (polling only). Polling stays the fallback everywhere. Returns the unsubscribe
 * function.
 */
export async function subscribeWake(db: Db, channel: string, listener: () => void): Promise<() => Promise<void>> {
  const client = db.client;
  if (isPGlite(client)) return client.listen!(channel, () => listener());
  const pool = db.pool;
  if (!pool) return async () => undefined;
  const onNotification = (m: { channel: string }) => {
    if (m.channel === channel) listener();
  };
  let conn: PoolClientLike | null = null;
  let closed = false;
  let retry: ReturnType<typeof setTimeout> | null = null;
  let delayMs = 500;
  const drop = (c: PoolClientLike, error?: Error) => {
    c.removeListener?.('notification', onNotification);
    c.removeListener?.('error', onError);
    c.release(error ?? true);
  };
  const onError = (error: Error) => {
    // Only the live LISTEN connection reconnects; an error during LISTEN itself fails listen() instead.
    const broken = conn;
    if (!broken) return;
    conn = null;
    drop(broken, error);
    if (!closed) schedule();
  };
  const listen = async () => {
    const c = await pool.connect();
    c.on?.('error', onError);
    c.on?.('notification', onNotification);
    try {
      await c.query(`LISTEN ${quoteIdent(channel)}`);
    } catch (error) {
      drop(c, error as Error);
      throw error;
    }
    if (closed) {
      drop(c);
      return;
    }
    conn = c;
    delayMs = 500;
  };
  const schedule = () => {
    retry = setTimeout(() => {
      retry = null;
      listen().then(
        () => {
          if (!closed) listener(); // a wake-up may have been sent while we were not listening
        },
        () => {
          delayMs = Math.min(30_000, delayMs * 2);
          if (!closed) schedule();
        },
      );
    }, delayMs);
    (retry as { unref?: () => void }).unref?.();
  };
  await listen();
  return async () => {
    if (closed) return;
    closed = true;
    if (retry) clearTimeout(retry);
    const c = conn;
    conn = null;
    if (!c) return;
    const ok = await c.query(`UNLISTEN ${quoteIdent(channel)}`).then(
      () => true,
      () => false,
    );
    c.removeListener?.('notification', onNotification);
    c.removeListener?.('error', onError);
    c.release(ok ? undefined : true);
  };
}
