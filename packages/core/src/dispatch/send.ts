import { startTimer } from '../clock.js';
import type { AccountRuntime, EngineContext } from '../context.js';
import { TransportError } from '../errors.js';
import type { LookupResult, OutboundMessage, SendResult } from '../transport/contract.js';
import type { LookupVerdict } from './decide.js';

export type SendAttempt = { ok: true; sent: SendResult } | { ok: false; error: TransportError; lookup?: LookupVerdict };

/**
 * One call to the provider, with the engine's send timeout (on its clock). A send that may have left
 * (ambiguous: a timeout after the request went out) is looked up before anyone decides about it:
 * found is a success; otherwise the lookup's verdict travels with the error.
 */
export async function sendOnce(ctx: EngineContext, account: AccountRuntime, message: OutboundMessage, startedAt: number): Promise<SendAttempt> {
  let error: TransportError;
  try {
    return { ok: true, sent: await callTransport(ctx, account, message) };
  } catch (raw) {
    error = asTransportError(raw);
  }
  if (error.kind !== 'ambiguous') return { ok: false, error };
  const found = await lookup(ctx, account, message, startedAt);
  if (found.status === 'found') return { ok: true, sent: found.sent };
  return { ok: false, error, lookup: found.status };
}

/** Ask the account's transport about a send in doubt; no lookup, or a failing one, proves nothing. */
export async function lookup(ctx: EngineContext, account: AccountRuntime, message: OutboundMessage, since: number): Promise<LookupResult> {
  if (!account.transport.lookup) return { status: 'unknown', reason: `the ${account.transport.name} transport has no lookup` };
  try {
    const result = await account.transport.lookup({ message, since });
    // A transport written for the old contract answers null: that proves nothing.
    return result && typeof result === 'object' && 'status' in result ? result : { status: 'unknown', reason: 'the lookup gave no verdict' };
  } catch (error) {
    ctx.fail(`lookup on account ${account.id}`, error);
    return { status: 'unknown', reason: 'the lookup failed' };
  }
}

async function callTransport(ctx: EngineContext, account: AccountRuntime, message: OutboundMessage): Promise<SendResult> {
  const { clock, options } = ctx;
  const controller = new AbortController();
  // A send that times out may have left: ambiguous.
  const cancel = startTimer(clock, options.sendTimeoutMs, () => controller.abort(new TransportError('ambiguous', `send timed out after ${options.sendTimeoutMs} ms`)));
  try {
    return await account.transport.send(message, { signal: controller.signal });
  } catch (error) {
    if (controller.signal.aborted && !TransportError.isInstance(error)) throw controller.signal.reason;
    throw error;
  } finally {
    cancel();
  }
}

/** Anything a transport throws that is not a `TransportError` is treated as transient. */
export function asTransportError(error: unknown): TransportError {
  if (TransportError.isInstance(error)) return error;
  return new TransportError('transient', error instanceof Error ? error.message : String(error), { cause: error });
}

export const idempotencyKey = (campaignId: string, phone: string): string => `${campaignId}:${phone}`;
