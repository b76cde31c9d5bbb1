import { startTimer, type Clock } from '../clock.js';
import type { AccountRuntime, EngineContext } from '../context.js';
import { ValidationError, validate } from '../errors.js';
import type { AccountRecord, ConnectionState } from '../domain/types.js';
import { FifoTurn } from '../dispatch/turn.js';
import { Throttle } from '../pacing/throttle.js';
import type { TransportEvent } from '../transport/contract.js';
import type { AccountConfig } from './options.js';
import { idSchema, pacingSchema } from './schemas.js';

/** How long `ready()` waits for a transport's connection state before keeping the stored one. */
const CONNECTION_CHECK_MS = 5_000;

/** Check an account's config and add it to this engine's registry (its pacing is stored at `ready()`). */
export function registerAccount(ctx: EngineContext, account: AccountConfig, path: string): AccountRuntime {
  const id = validate(idSchema, account?.id, 'account id', `${path}.id`);
  if (!account.transport || typeof account.transport.send !== 'function') {
    throw new ValidationError(`Invalid ${path}.transport: must be a Transport with a send() method`, [{ path: `${path}.transport`, message: 'must be a Transport' }]);
  }
  if (ctx.accounts.has(id)) throw new ValidationError(`Account "${id}" is already registered on this engine`, [{ path: `${path}.id`, message: 'duplicate account id' }]);
  const pacing = validate(pacingSchema, account.pacing, `pacing of account "${id}"`, `${path}.pacing`);
  const runtime: AccountRuntime = { id, transport: account.transport, pacing, turn: new FifoTurn(), throttle: new Throttle(), lostAt: 0, unsubscribe: null, events: Promise.resolve() };
  ctx.accounts.set(id, runtime);
  return runtime;
}

/**
 * Listen to a push transport (a socket): its events are handled one at a time per account, in
 * arrival order, so an `open` quickly followed by `close` is stored in that order.
 */
export function subscribe(ctx: EngineContext, runtime: AccountRuntime, handle: (accountId: string, events: TransportEvent[]) => Promise<void>): void {
  if (runtime.unsubscribe || !runtime.transport.subscribe) return;
  runtime.unsubscribe = runtime.transport.subscribe((event) => {
    runtime.events = runtime.events.then(() => handle(runtime.id, [event]).catch((error) => ctx.fail(`transport event from ${runtime.id}`, error)));
  });
}

/**
 * The store keeps each account's last known connection, which may be stale when this engine starts
 * (the phone reconnected while no worker ran, or the session dropped). Ask the transport once and
 * hand a change on as if the transport had reported it: `open` over a stored `close` recovers in-doubt
 * sends and resumes campaigns paused for lack of accounts; `close` over `open` moves work elsewhere.
 * Runs in the account's event queue, so an event the transport emits meanwhile is handled after it.
 */
export async function syncConnection(
  ctx: EngineContext,
  runtime: AccountRuntime,
  record: AccountRecord,
  handle: (accountId: string, events: TransportEvent[]) => Promise<void>,
): Promise<void> {
  const transport = runtime.transport;
  if (!transport.connectionState) return;
  const check = async () => {
    let state: ConnectionState;
    try {
      state = await withDeadline(ctx.clock, CONNECTION_CHECK_MS, transport.connectionState!());
    } catch (error) {
      ctx.log.warn(
        `account ${runtime.id}: could not ask its transport for the connection state at start (${error instanceof Error ? error.message : String(error)}); keeping the stored "${record.connection}"`,
      );
      return;
    }
    const stale = (state === 'open' && record.connection === 'close') || (state === 'close' && record.connection !== 'close' && record.state !== 'stopped');
    if (stale) await handle(runtime.id, [{ type: 'connection', state, detail: `reported ${state} by the transport at start` }]);
  };
  const done = runtime.events.then(check).catch((error) => ctx.fail(`checking the connection of ${runtime.id}`, error));
  runtime.events = done;
  await done;
}

/** Store a connection change of an account. Returns true when it (re)opened: work waiting for it can go on. */
export async function applyConnection(ctx: EngineContext, accountId: string, event: Extract<TransportEvent, { type: 'connection' }>): Promise<boolean> {
  const now = ctx.clock.now();
  if (event.stopReason) {
    await ctx.store.updateAccount(accountId, { state: 'stopped', connection: 'close', disabledReason: `${event.stopReason}${event.detail ? `: ${event.detail}` : ''}` }, now);
    ctx.emit('account:stopped', { accountId, reason: event.stopReason });
  } else {
    const before = await ctx.store.getAccount(accountId);
    // Reconnected after a stop (re-paired, logged in again): active again.
    const patch = event.state === 'open' && before?.state === 'stopped' ? { connection: event.state, state: 'active' as const, disabledReason: null } : { connection: event.state };
    await ctx.store.updateAccount(accountId, patch, now);
  }
  ctx.emit('account:connection', { accountId, state: event.state, ...(event.detail ? { detail: event.detail } : {}) });
  return event.state === 'open';
}

/** The provider asks the account to hold off (Baileys reachout lock, message capping): no slot before `until`. */
export async function applyHold(ctx: EngineContext, accountId: string, event: Extract<TransportEvent, { type: 'account_hold' }>): Promise<void> {
  await ctx.store.updateAccount(accountId, { nextSendAtAtLeast: event.until }, ctx.clock.now());
  ctx.log.warn(`account ${accountId} held until ${new Date(event.until).toISOString()}: ${event.reason}`, { accountId });
}

/** Each local account's provider connection, as its transport reports it. Informational: never pauses anything. */
export async function accountHealth(ctx: EngineContext): Promise<Array<{ accountId: string; connection: string; error?: string }>> {
  const out = [];
  for (const account of ctx.accounts.values()) {
    if (!account.transport.connectionState) {
      out.push({ accountId: account.id, connection: 'unknown' });
      continue;
    }
    try {
      out.push({ accountId: account.id, connection: await account.transport.connectionState() });
    } catch (error) {
      out.push({ accountId: account.id, connection: 'unknown', error: error instanceof Error ? error.message : String(error) });
    }
  }
  return out;
}

/** `promise`, or a rejection after `ms` on the engine's clock. */
function withDeadline<T>(clock: Clock, ms: number, promise: Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const cancel = startTimer(clock, ms, () => reject(new Error(`no answer within ${ms} ms`)));
    promise.then(
      (value) => {
        cancel();
        resolve(value);
      },
      (error) => {
        cancel();
        reject(error);
      },
    );
  });
}
