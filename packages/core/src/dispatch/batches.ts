import type { EngineContext } from '../context.js';
import { isDailyCapped } from '../domain/calendar.js';
import type { Campaign } from '../domain/types.js';
import { isUsable } from '../rules/accounts.js';
import { between } from '../random.js';

/** What one tick of work on a campaign came to. */
export type TickResult = { kind: 'progressed'; processed: number; batchFinished: boolean } | { kind: 'wait'; until: number } | { kind: 'finished' };

/** A campaign's first tick: move it from batch 0 to batch 1. */
export async function openFirstBatch(ctx: EngineContext, campaignId: string): Promise<TickResult> {
  const moved = await ctx.store.nextBatch({ campaignId, current: 0, next: 1, nextBatchAt: null, now: ctx.clock.now() });
  if (moved) ctx.emit('batch:started', { campaignId, batch: 1 });
  return { kind: 'progressed', processed: 0, batchFinished: false };
}

/**
 * Nothing left to claim in the current batch: close it and move on (after the batch pause), or
 * complete the campaign after its last batch. Another worker's rows still in the batch (or sends in
 * doubt awaiting recovery) make it wait.
 */
export async function finishBatch(ctx: EngineContext, campaignId: string): Promise<TickResult> {
  const { store, clock, options } = ctx;
  const campaign = await store.getCampaign(campaignId);
  if (!campaign || campaign.status !== 'running') return { kind: 'finished' };
  const now = clock.now();
  const lastBatch = Math.ceil(campaign.counters.total / campaign.settings.batchSize);
  const isLast = campaign.currentBatch >= lastBatch;
  const pause = isLast ? null : now + between(ctx.random, campaign.settings.batchPauseMs.min, campaign.settings.batchPauseMs.max);
  const moved = await store.nextBatch({ campaignId, current: campaign.currentBatch, next: campaign.currentBatch + 1, nextBatchAt: pause, now });
  if (!moved) return { kind: 'wait', until: now + Math.min(options.pollIntervalMs, options.leaseMs) };
  const batches = await store.listBatches(campaignId);
  ctx.emit('batch:completed', { campaignId, batch: batches.find((b) => b.batch === campaign.currentBatch) ?? null, next: isLast ? null : moved.currentBatch });
  if (!isLast) {
    ctx.emit('batch:started', { campaignId, batch: moved.currentBatch });
    return { kind: 'progressed', processed: 0, batchFinished: true };
  }
  // Recipients added while the last batch ran live in a later batch: keep going.
  if (moved.counters.pending + moved.counters.sending > 0) return { kind: 'progressed', processed: 0, batchFinished: true };
  const done = await store.transitionCampaign(campaignId, { from: ['running'], to: 'completed', now: clock.now() });
  if (done) ctx.emit('campaign:completed', { campaign: done });
  return { kind: 'finished' };
}

/** Whether every account of the campaign is unusable or has used up today's cap. */
export async function allDailyCapped(ctx: EngineContext, campaign: Campaign): Promise<boolean> {
  const now = ctx.clock.now();
  const accounts = await ctx.store.listAccounts(campaign.accountIds);
  return accounts.length > 0 && accounts.every((a) => !isUsable(a, now) || isDailyCapped(a, now, ctx.options.capTimeZone));
}

const PAUSED_BECAUSE = {
  no_accounts: 'no usable sender account',
  daily_cap: 'every account reached its daily cap',
  error_threshold: 'the provider refused its content in a way every recipient would meet',
} as const;

/**
 * Pause a running campaign by itself: `no_accounts` and `daily_cap` resume when their cause ends;
 * `error_threshold` (a content error every recipient would meet, such as a template the provider
 * rejects) waits for a person to fix the campaign and resume it; `lastError` says what happened.
 */
export async function autoPause(ctx: EngineContext, campaign: Campaign, reason: keyof typeof PAUSED_BECAUSE, lastError?: string): Promise<void> {
  const paused = await ctx.store.transitionCampaign(campaign.id, { from: ['running'], to: 'paused', pauseReason: reason, now: ctx.clock.now(), ...(lastError ? { lastError } : {}) });
  if (!paused) return;
  ctx.log.warn(`campaign ${campaign.id} paused: ${PAUSED_BECAUSE[reason]}${lastError ? ` (${lastError})` : ''}`, { campaignId: campaign.id });
  ctx.emit('campaign:paused', { campaign: paused, reason });
}
