import type { CountryCode } from 'libphonenumber-js';
import { z } from 'zod';
import type { EngineContext } from '../context.js';
import { ValidationError, validate } from '../errors.js';
import { normalizePhone } from '../domain/phone.js';
import { recordOptOut } from '../dispatch/opt-out.js';
import type { StatusUpdate, StatusUpdateResult } from '../store/contract.js';
import type { TransportEvent } from '../transport/contract.js';
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

/** The receipts among a transport's events, as status updates. */
export function statusUpdatesOf(events: TransportEvent[]): StatusUpdate[] {
  return events.flatMap((e) => (e.type === 'status' ? [{ providerMessageId: e.providerMessageId, status: e.status, at: e.at, error: e.error ?? null, idempotencyKey: e.idempotencyKey ?? null }] : []));
}

/** An inbound reply: reported, and an opt-out keyword (SAIR, STOP...) opts the contact out of every campaign. */
export async function inboundReply(ctx: EngineContext, accountId: string, event: Extract<TransportEvent, { type: 'inbound' }>): Promise<void> {
  ctx.emit('inbound:message', { accountId, from: event.from, text: event.text, at: event.at });
  if (ctx.options.optOutKeywords.includes(foldKeyword(event.text))) await recordOptOut(ctx, [event.from], `replied "${event.text.trim()}"`, 'inbound');
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
