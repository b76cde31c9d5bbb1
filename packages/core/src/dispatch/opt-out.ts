import type { EngineContext } from '../context.js';

/**
 * Put contacts on the suppression list: their pending sends in every campaign are skipped, and they
 * are never sent to again (`OPT_OUT_CANCELS`). Phones are already normalised.
 */
export async function recordOptOut(ctx: EngineContext, phones: string[], reason: string, source: 'api' | 'inbound'): Promise<{ added: number; cancelled: number }> {
  const now = ctx.clock.now();
  const result = await ctx.store.addOptOuts(
    phones.map((phone) => ({ phone, reason, source, at: now })),
    now,
  );
  for (const phone of phones) ctx.emit('contact:opted_out', { phone, source, cancelled: result.cancelled });
  return result;
}
