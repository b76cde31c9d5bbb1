import type { EngineContext } from '../context.js';
import type { AccountRecord, Campaign, Recipient } from '../domain/types.js';
import { claimLimit, isRatePaced } from '../pacing/plan.js';
import { earliestReturn, isUsable } from '../rules/accounts.js';
import { allDailyCapped, autoPause, finishBatch, openFirstBatch, type TickResult } from './batches.js';
import { RecipientQueue } from './queue.js';
import { PendingOutcomes, Recorder } from './recorder.js';
import type { TemplateCache } from './render.js';
import { screen } from './screen.js';
import { IntervalSender } from './interval-sender.js';
import { RateSender } from './rate-sender.js';
import type { TickLimits } from './sender.js';

export type { TickResult } from './batches.js';
export type { TickLimits } from './sender.js';

/**
 * How long one tick keeps claiming the next slice at most (see
 * `Dispatcher.refill`). A tick's end empties the accounts' windows for a round trip (its sends are
 * answered and recorded before the next tick claims), so it is long; what the next tick would read
 * afresh ends it sooner.
 */
const REFILL_FOR_MS = 60_000;

/** Whether a tick's refill may go on from `batch` into the next (see `Dispatcher.refill`): a worker's loop, no pause between batches, a batch after it. */
const runsOn = (campaign: Campaign, batch: number, limits: TickLimits): boolean =>
  limits.deadline === null && campaign.settings.batchPauseMs.max === 0 && batch < Math.ceil(campaign.counters.total / campaign.settings.batchSize);

/**
 * Works campaigns for one lease owner (a `run()` loop, or one `step()` call). A tick is one cycle on
 * one campaign: claim a slice of the current batch, screen it, let the campaign's accounts here send
 * it (an `AccountSender` each, pulling from a shared queue), release what is left, and close the
 * batch or complete the campaign when the batch is done. A message's life: claimed here, screened,
 * rendered and paced and sent and recorded by its account's sender.
 */
export class Dispatcher {
  readonly recorder: Recorder;
  readonly templates: TemplateCache = new Map();

  constructor(
    readonly ctx: EngineContext,
    readonly owner: string,
  ) {
    this.recorder = new Recorder(ctx, owner);
  }

  async tick(campaignId: string, limits: TickLimits): Promise<TickResult> {
    const { store, clock, options } = this.ctx;
    await this.recorder.recordKept();
    const campaign = await store.getCampaign(campaignId);
    if (!campaign || campaign.status !== 'running') return { kind: 'finished' };
    if (campaign.currentBatch === 0) return openFirstBatch(this.ctx, campaignId);
    const now = clock.now();
    if (campaign.nextBatchAt !== null && campaign.nextBatchAt > now) return { kind: 'wait', until: campaign.nextBatchAt };

    const accounts = await store.listAccounts(campaign.accountIds);
    const usable = accounts.filter((a) => isUsable(a, now));
    const local = usable.filter((a) => this.ctx.accounts.has(a.id));
    if (local.length === 0) {
      if (usable.length > 0) return { kind: 'wait', until: now + options.pollIntervalMs }; // another worker holds their transports
      const reopenAt = earliestReturn(accounts, now);
      if (reopenAt !== null) return { kind: 'wait', until: reopenAt };
      await autoPause(this.ctx, campaign, 'no_accounts');
      return { kind: 'finished' };
    }

    const pacings = local.map((a) => this.ctx.accounts.get(a.id)!.pacing);
    const limit = claimLimit(pacings, options.claimSize, options.leaseMs);
    // Rate-paced accounts claim their windows' worth first (they send sooner), the rest while they send (`refill`).
    const first = pacings.every(isRatePaced) ? Math.min(limit, pacings.reduce((n, p) => n + p.maxInFlight, 0)) : limit;
    const claimed = await store.claimRecipients({ campaignId, batch: campaign.currentBatch, owner: this.owner, limit: first, now, leaseMs: options.leaseMs });
    if (claimed.length === 0) return finishBatch(this.ctx, campaignId);

    const screened = await this.screen(campaign, claimed, local);
    if (screened.sendable.length === 0) return { kind: 'progressed', processed: claimed.length, batchFinished: false };
    const queue = new RecipientQueue(screened.sendable, screened.sticky);
    const screenedOut = { n: claimed.length - screened.sendable.length };
    queue.refillWith(this.refill(campaign, local, queue, limit, limits, screenedOut), Math.ceil(limit / 2));
    const result = await this.send(campaign, queue, local, limits);
    if (result.kind === 'progressed') result.processed += screenedOut.n;
    return result;
  }

  /**
   * The next slice of the batch, claimed and screened while the accounts send the last one, so that
   * no account waits for a claim between slices: a rate-paced account's window stays full (a tick
   * that waited for every answer before claiming again would leave it empty for a round trip per
   * slice), and an interval-paced one without a gap to hide it behind does not pay each claim on top
   * of its sends. False once the tick must take no more:
   * the batch ran dry, the tick stopped, one of the campaign's accounts that could not send here when
   * the tick began can now (the next tick takes it in), or it has claimed for `REFILL_FOR_MS`. A
   * campaign found no longer running (paused or cancelled by another process) also halts the queue:
   * what it still holds is released, not sent.
   *
   * With no pause between batches (`batchPauseMs.max` 0), a worker's loop (not a step, which counts
   * batches) goes on claiming from the next batch once this one has nothing left to claim: its last
   * sends are still on the wire, and waiting for their answers before the next batch could start
   * emptied the window at every boundary (a third of a second at 1,000/s). One batch ahead at most;
   * the batch pointer still moves only when a batch has no open row (`finishBatch`: here, once the
   * batch ahead is claimed dry too, or at the next tick), so `batch:started` for the batch ahead comes
   * after its first sends.
   */
  private refill(campaign: Campaign, local: AccountRecord[], queue: RecipientQueue, limit: number, limits: TickLimits, screenedOut: { n: number }): () => Promise<boolean> {
    const { store, clock, options } = this.ctx;
    const until = Math.min(clock.now() + REFILL_FOR_MS, limits.deadline ?? Number.POSITIVE_INFINITY);
    // The batch claimed from: the campaign's current one, or (no pause) the one after it.
    let batch = campaign.currentBatch;
    const localIds = new Set(local.map((a) => a.id));
    const claim = () => store.claimRecipients({ campaignId: campaign.id, batch, owner: this.owner, limit, now: clock.now(), leaseMs: options.leaseMs });
    return async () => {
      if (limits.signal.aborted || clock.now() >= until) return false;
      try {
        const current = await store.getCampaign(campaign.id);
        if (!current || current.status !== 'running') {
          // Paused or cancelled by another process: what is claimed here is not sent either.
          queue.halt();
          return false;
        }
        if (current.currentBatch > batch || limits.signal.aborted) return false;
        const accounts = await store.listAccounts(current.accountIds);
        if (accounts.some((a) => !localIds.has(a.id) && this.ctx.accounts.has(a.id) && isUsable(a, clock.now()))) return false;
        let claimed = await claim();
        if (claimed.length === 0 && runsOn(current, batch, limits)) {
          // Already a batch ahead: the current one's last sends have had a batch's time to come back;
          // close it (when every row of it is done) so that the one after can open.
          if (batch > current.currentBatch && (await finishBatch(this.ctx, campaign.id)).kind !== 'progressed') return false;
          batch++;
          claimed = await claim();
        }
        if (claimed.length === 0) return false;
        const screened = await this.screen(campaign, claimed, local);
        screenedOut.n += claimed.length - screened.sendable.length;
        queue.add(screened.sendable, screened.sticky);
        return true;
      } catch (error) {
        this.ctx.fail(`campaign ${campaign.id}: claiming the next slice`, error);
        return false;
      }
    };
  }

  /** Screen a claimed slice and record the skipped; if that fails, the slice is released. */
  private async screen(campaign: Campaign, claimed: Recipient[], local: AccountRecord[]): Promise<Awaited<ReturnType<typeof screen>>> {
    const skipped = new PendingOutcomes();
    try {
      const screened = await screen(this.ctx, campaign, claimed, local, skipped);
      await this.recorder.flush(skipped);
      return screened;
    } catch (error) {
      await this.release(claimed);
      throw error;
    }
  }

  /** Send the queue through the campaign's local accounts; release whatever is left. */
  private async send(campaign: Campaign, queue: RecipientQueue, accounts: AccountRecord[], limits: TickLimits): Promise<TickResult> {
    const runs = await Promise.all(
      accounts.map((a) => {
        const account = this.ctx.accounts.get(a.id)!;
        const Sender = isRatePaced(account.pacing) ? RateSender : IntervalSender;
        return new Sender(this, campaign, account, a, queue, limits).run();
      }),
    );
    // Every sender has recorded its outcomes (or kept them, the store being down) before the rest is released.
    await this.release(await queue.close());
    const processed = runs.reduce((s, r) => s + r.processed, 0);
    const deferred = runs.flatMap((r) => (r.stop?.kind === 'deferred' ? [r.stop.retryAt] : []));
    if (processed === 0 && deferred.length > 0) {
      if (await allDailyCapped(this.ctx, campaign)) {
        await autoPause(this.ctx, campaign, 'daily_cap');
        return { kind: 'finished' };
      }
      return { kind: 'wait', until: Math.min(...deferred) };
    }
    return { kind: 'progressed', processed, batchFinished: false };
  }

  /**
   * Release leased rows this tick will not send. If the store refuses, they are returned at the next
   * tick with the kept outcomes: left leased, the heartbeat would keep them from everyone.
   */
  private async release(rows: Recipient[]): Promise<void> {
    if (rows.length === 0) return;
    try {
      await this.ctx.store.release(
        this.owner,
        rows.map((r) => r.id),
      );
    } catch (error) {
      const keep = new PendingOutcomes();
      const at = this.ctx.clock.now();
      for (const r of rows) keep.add({ recipientId: r.id, campaignId: r.campaignId, status: 'pending', keepLease: false, attempts: r.attempts, at, accountEffect: 'none' });
      this.recorder.keep(keep, error);
    }
  }
}
