import type { EngineContext } from '../context.js';
import type { Campaign, Recipient } from '../domain/types.js';
import { lookup } from '../dispatch/send.js';
import type { InDoubtSettlement } from '../store/contract.js';

/** How many in-doubt sends one recovery pass reads. */
const RECOVERY_PAGE = 500;

/**
 * Settle sends left in doubt by a dead worker (lease expired while `sending`). The transport's lookup
 * settles what it can prove: found (sent) or absent (safe to send again). Otherwise the campaign's
 * `inDoubt` policy decides: at-most-once marks the send `unknown` and never resends it; at-least-once
 * returns it to pending. Runs at start, every poll, and on every reconnect.
 */
export async function recover(ctx: EngineContext, campaignId?: string): Promise<number> {
  const now = ctx.clock.now();
  const rows = await ctx.store.listInDoubt(now, RECOVERY_PAGE, campaignId);
  if (rows.length === 0) return 0;
  const campaigns = new Map<string, Campaign | null>();
  const settlements: InDoubtSettlement[] = [];
  const unknown: Recipient[] = [];
  for (const r of rows) {
    if (!campaigns.has(r.campaignId)) campaigns.set(r.campaignId, await ctx.store.getCampaign(r.campaignId));
    const campaign = campaigns.get(r.campaignId);
    const account = r.accountId ? ctx.accounts.get(r.accountId) : undefined;
    if (account && r.text !== null) {
      const found = await lookup(ctx, account, { to: r.phone, text: r.text, media: campaign?.media ?? null, idempotencyKey: `${r.campaignId}:${r.phone}` }, r.updatedAt - ctx.options.leaseMs);
      if (found.status === 'found') {
        settlements.push({ recipientId: r.id, status: 'sent', providerMessageId: found.sent.providerMessageId, sentAt: found.sent.acceptedAt });
        continue;
      }
      if (found.status === 'absent') {
        settlements.push({ recipientId: r.id, status: 'pending' });
        continue;
      }
    }
    if (campaign?.settings.inDoubt === 'at-least-once') settlements.push({ recipientId: r.id, status: 'pending' });
    else {
      settlements.push({ recipientId: r.id, status: 'unknown' });
      unknown.push(r);
    }
  }
  const applied = await ctx.store.settleInDoubt(settlements, now);
  for (const r of unknown) ctx.emit('message:unknown', { campaignId: r.campaignId, recipientId: r.id, phone: r.phone, accountId: r.accountId });
  if (applied > 0) {
    const count = (status: string) => settlements.filter((x) => x.status === status).length;
    ctx.log.info(`recovered ${applied} in-doubt send(s)`);
    ctx.emit('recovery:settled', { settled: applied, sent: count('sent'), pending: count('pending'), unknown: count('unknown') });
  }
  return applied;
}
