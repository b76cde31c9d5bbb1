import type { EngineContext } from '../context.js';
import type { TransportError } from '../errors.js';

/**
 * What a send's failures do to its account (DESIGN mechanism 5): N real failures in a row disable it
 * for a cooldown (one probe send then decides), a send that says the account is gone marks it so every
 * worker moves its work to the others, and a successful probe enables it again.
 */

export async function disableAccount(ctx: EngineContext, accountId: string, failures: number, why?: string): Promise<void> {
  const now = ctx.clock.now();
  const until = now + ctx.options.cooldownMs;
  const reason = why ?? `${failures} send failures in a row`;
  try {
    await ctx.store.updateAccount(accountId, { state: 'disabled', disabledUntil: until, disabledReason: reason, consecutiveFailures: 0 }, now);
    ctx.log.warn(`account ${accountId} disabled until ${new Date(until).toISOString()}: ${reason}`, { accountId });
    ctx.emit('account:disabled', { accountId, reason, until });
  } catch (error) {
    ctx.fail(`disabling account ${accountId}`, error);
  }
}

export async function enableAccount(ctx: EngineContext, accountId: string): Promise<void> {
  const updated = await ctx.store.updateAccount(accountId, { state: 'active', disabledUntil: null, disabledReason: null }, ctx.clock.now());
  if (updated) ctx.emit('account:enabled', { accountId });
}

/** A send said the account cannot send. Logged out, banned...: stopped until a human acts; disconnected: closed until it reconnects. */
export async function markAccountLost(ctx: EngineContext, accountId: string, err: TransportError): Promise<void> {
  const now = ctx.clock.now();
  if (err.accountReason && err.accountReason !== 'disconnected') {
    await ctx.store.updateAccount(accountId, { state: 'stopped', connection: 'close', disabledReason: `${err.accountReason}: ${err.message}` }, now);
    ctx.log.error(`account ${accountId} stopped (${err.accountReason}): ${err.message}. It needs a human: reconnect or replace the number.`, { accountId });
    ctx.emit('account:stopped', { accountId, reason: err.accountReason });
  } else {
    await ctx.store.updateAccount(accountId, { connection: 'close' }, now);
    ctx.emit('account:connection', { accountId, state: 'close', detail: err.message });
  }
}

/** A rate limit: the account's next slot moves out by `ms` for every worker. */
export async function backOffAccount(ctx: EngineContext, accountId: string, ms: number): Promise<void> {
  const now = ctx.clock.now();
  await ctx.store.updateAccount(accountId, { nextSendAtAtLeast: now + ms }, now);
}
