import type { CountryCode } from 'libphonenumber-js';
import { z } from 'zod';
import type { EngineContext } from '../context.js';
import { NotFoundError, ValidationError, validate } from '../errors.js';
import { normalizePhone } from '../domain/phone.js';
import { recordOptOut } from '../dispatch/opt-out.js';
import type { StatusUpdate, StatusUpdateResult } from '../store/contract.js';
import type { TransportEvent } from '../transport/contract.js';
import { applyConnection, applyHold } from './accounts.js';
import { foldKeyword } from './options.js';

/** What reaches the engine from outside a send's reply: receipts, inbound replies, opt-outs. */

const statusUpdatesSchema = z.array(
  z.object({
    providerMessageId: z.string().min(1),
    status: z.enum(['sent', 'delivered', 'read', 'failed']),
    at: z.number().int().nonnegative(),
    error: z.string().nullish(),
    idempotencyKey: z.string().min(1).nullish(),
  }),
);

/** Apply provider receipts (bulk, idempotent, monotonic: `DELIVERY_TRANSITIONS`). */
export async function applyStatusUpdates(ctx: EngineContext, updates: StatusUpdate[]): Promise<StatusUpdateResult> {
  const list = validate(statusUpdatesSchema, updates, 'status updates', 'updates');
  const result = await ctx.store.applyStatusUpdates(list, ctx.clock.now());
  for (const change of result.changed) ctx.emit('message:status', change);
  return result;
}

/**
 * Transport events of one or more accounts: each account's in order (inbound replies, holds, connection
 * changes; `reconnected` runs when one brings an account back), then every receipt in one store call.
 */
export async function applyTransportEvents(ctx: EngineContext, parsed: Array<{ accountId: string; events: TransportEvent[] }>, reconnected: () => Promise<void>): Promise<void> {
  for (const { accountId, events } of parsed) {
    for (const event of events) {
      if (event.type === 'inbound') await inboundReply(ctx, accountId, event);
      else if (event.type === 'account_hold') await applyHold(ctx, accountId, event);
      else if (event.type === 'connection' && (await applyConnection(ctx, accountId, event))) await reconnected();
    }
  }
  const events = parsed.flatMap((p) => p.events);
  const statuses = statusUpdatesOf(events);
  if (statuses.length > 0) await applyStatusUpdates(ctx, statuses);
  // A failure that says the contact stopped receiving messages arrives as a receipt more often than
  // as a send's reply (Cloud API 131050): it opts the contact out, as the reply would have.
  for (const e of events) {
    if (e.type !== 'status' || e.status !== 'failed' || !e.optOut) continue;
    const recipient = await ctx.store.getRecipientByProviderId(e.providerMessageId);
    if (recipient) await recordOptOut(ctx, [recipient.phone], `the provider says the contact stopped receiving messages (${e.error ?? 'failed'})`, 'inbound');
  }
}

/** A webhook body parsed (and its signature checked) by the transport of `accountId`. */
export async function parseWebhook(ctx: EngineContext, accountId: string, body: unknown, headers: Record<string, string | string[] | undefined>): Promise<TransportEvent[]> {
  const account = ctx.accounts.get(accountId);
  if (!account) throw new NotFoundError('account', accountId);
  if (!account.transport.parseWebhook) throw new ValidationError(`The ${account.transport.name} transport of account ${accountId} takes no webhooks`, [{ path: 'accountId', message: 'transport has no parseWebhook' }]);
  return account.transport.parseWebhook(body, headers);
}

/** The receipts among a transport's events, as status updates. */
export function statusUpdatesOf(events: TransportEvent[]): StatusUpdate[] {
  return events.flatMap((e) => (e.type === 'status' ? [{ providerMessageId: e.providerMessageId, status: e.status, at: e.at, error: e.error ?? null, idempotencyKey: e.idempotencyKey ?? null }] : []));
}

/**
 * An inbound reply: reported, and an opt-out keyword (SAIR, STOP...) opts the contact out of every campaign.
 * The opt-out is kept under the number as recipients are stored (`normalizePhone`): a provider gives
 * the sender's WhatsApp id, digits with the country code, and for older Brazilian mobiles that id lacks
 * the ninth digit the list has (551199990001 for 5511999990001). Kept as given, it matched no recipient.
 */
export async function inboundReply(ctx: EngineContext, accountId: string, event: Extract<TransportEvent, { type: 'inbound' }>): Promise<void> {
  ctx.emit('inbound:message', { accountId, from: event.from, text: event.text, at: event.at });
  if (!ctx.options.optOutKeywords.includes(foldKeyword(event.text))) return;
  const phone = normalizePhone(/^\d+$/.test(event.from) ? `+${event.from}` : event.from, ctx.options.defaultCountry as CountryCode) ?? event.from;
  await recordOptOut(ctx, [phone], `replied "${event.text.trim()}"`, 'inbound');
}

/** Opt contacts out: they are never sent to again, and their pending sends in every campaign are skipped. */
export async function optOut(ctx: EngineContext, phones: Array<string | number>, options: { reason?: string; source?: 'api' | 'inbound' } = {}): Promise<{ added: number; cancelled: number }> {
  const list = validate(z.array(z.union([z.string(), z.number()])).min(1), phones, 'opt-out phones', 'phones');
  const normalised = list.map((p, i) => {
    const phone = normalizePhone(p, ctx.options.defaultCountry as CountryCode);
    if (phone === null) throw new ValidationError(`Invalid opt-out phones: phones.${i}: "${p}" is not a valid phone number`, [{ path: `phones.${i}`, message: 'not a valid phone number' }]);
    return phone;
  });
  return recordOptOut(ctx, normalised, options.reason ?? 'opted out', options.source ?? 'api');
}
