import type { EngineContext } from '../context.js';
import { isDailyCapped, sendWindowState } from '../domain/calendar.js';
import { isUsable } from '../rules/accounts.js';
import { applyStatusUpdates } from './inbound.js';
import { recover } from './recovery.js';

/**
 * Scheduled work of every worker, each poll: start campaigns whose time came, pause those whose send
 * window closed, resume those paused for a cause that ended, settle sends in doubt, and try the held
 * receipts again (`holdsReceipt`: they apply once their sends' outcomes are recorded, even when no
 * webhook follows). Returns the campaigns it paused (their runners stop).
 */
export async function housekeeping(ctx: EngineContext, now: number): Promise<{ paused: string[] }> {
  const { store } = ctx;
  const paused: string[] = [];
  for (const c of await store.listCampaigns({ status: ['scheduled', 'running'] })) {
    if (c.status === 'scheduled' && c.scheduledAt !== null && c.scheduledAt <= now) {
      if (c.counters.total === 0) continue;
      const started = await store.transitionCampaign(c.id, { from: ['scheduled'], to: 'running', now });
      if (started) ctx.emit('campaign:started', { campaign: started });
    } else if (c.status === 'running' && c.settings.sendWindow && !sendWindowState(c.settings.sendWindow, now).open) {
      const done = await store.transitionCampaign(c.id, { from: ['running'], to: 'paused', pauseReason: 'send_window', now });
      if (done) {
        paused.push(c.id);
        ctx.emit('campaign:paused', { campaign: done, reason: 'send_window' });
      }
    }
  }
  await resumeAutoPaused(ctx, now);
  await recover(ctx);
  await applyStatusUpdates(ctx, []);
  return { paused };
}

/** Campaigns paused for a reason that has ended resume by themselves; `manual` never does. */
export async function resumeAutoPaused(ctx: EngineContext, now: number): Promise<void> {
  const { store } = ctx;
  for (const c of await store.listCampaigns({ status: ['paused'] })) {
    let ready = false;
    if (c.pauseReason === 'no_accounts') {
      ready = (await store.listAccounts(c.accountIds)).some((a) => isUsable(a, now));
    } else if (c.pauseReason === 'send_window') {
      ready = c.settings.sendWindow === null || sendWindowState(c.settings.sendWindow, now).open;
    } else if (c.pauseReason === 'daily_cap') {
      ready = (await store.listAccounts(c.accountIds)).some((a) => isUsable(a, now) && !isDailyCapped(a, now, ctx.options.capTimeZone));
    }
    if (!ready) continue;
    const resumed = await store.transitionCampaign(c.id, { from: ['paused'], to: 'running', now });
    if (resumed) ctx.emit('campaign:resumed', { campaign: resumed });
  }
}
