import pRetry, { AbortError } from 'p-retry';
import type { AccountRuntime, EngineContext } from './context.js';
import { startTimer } from './clock.js';
import { TransportError, type TransportErrorKind } from './errors.js';
import { between } from './random.js';
import type { AccountRecord, Campaign, Recipient, SkipReason } from './types.js';
import type { AdvanceGroupResult, BeginResult, Outcome, SlotRequest, StateStore } from './store.js';
import type { OutboundMessage, SendResult } from './transport.js';
import { compileTemplate, MAX_TEXT_LENGTH, MissingVariableError, pickTemplate, renderTemplate, type CompiledTemplate } from './template.js';
import { capWindows, isDailyCapped } from './windows.js';

/** Why a lane stopped working its queue early. */
type LaneExit = { kind: 'account_gone' } | { kind: 'deferred'; retryAt: number } | { kind: 'halted' };

/** Internal control-flow signals thrown through p-retry (as AbortError) to end a send attempt loop. */
class Deferred extends Error {
  constructor(readonly retryAt: number, readonly why: string) {
    super(`deferred until ${new Date(retryAt).toISOString()}: ${why}`);
  }
}
class AccountGone extends Error {}
class LeaseLost extends Error {}
class Halted extends Error {}
/** The store kept failing a write (see `durably`). */
class StoreDown extends Error {
  constructor(cause: unknown) {
    super(`the store kept failing: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** Tries of a store write that records sends, with backoff from 100 ms to 4 s between them (about 11 s in all). */
const STORE_WRITE_TRIES = 7;

export interface TickLimits {
  /** Step mode: no sleep may end after this time. */
  deadline: number | null;
  signal: AbortSignal;
}

export type TickResult =
  | { kind: 'progressed'; processed: number; batchFinished: boolean }
  | { kind: 'wait'; until: number }
  | { kind: 'finished' };

const idempotencyKey = (campaignId: string, phone: string) => `${campaignId}:${phone}`;

/** The outcome that returns an unsent recipient to `pending` (keeping its lease, or giving it up). */
const handBack = (
  r: { id: string; attempts: number },
  campaignId: string,
  at: number,
  o: { keepLease?: boolean; accountEffect?: Outcome['accountEffect'] } = {},
): Outcome => ({ recipientId: r.id, campaignId, status: 'pending', keepLease: o.keepLease ?? false, attempts: r.attempts, at, accountEffect: o.accountEffect ?? 'none' });

/**
 * Works one campaign for one owner: claims a slice of the current batch, spreads it over the
 * campaign's usable accounts (one lane each, pulling from a shared queue: round robin weighted by
 * readiness), advances batches and completes the campaign. Used by both `run()` and `step()`.
 */
export class CampaignWorker {
  private templates = new Map<string, CompiledTemplate>();
  /**
   * Outcomes of sends already made that the store would not take even after `durably`'s retries (it
   * stayed down): kept here and recorded first thing at the next tick. Their rows stay `sending`
   * under this owner's lease (the heartbeat renews it) until then, so nobody settles them as in doubt.
   */
  private readonly unrecorded: Carry = { outcomes: [], events: [] };

  constructor(
    private readonly ctx: EngineContext,
    readonly owner: string,
  ) {}

  /** One cycle of work on the campaign. */
  async tick(campaignId: string, limits: TickLimits): Promise<TickResult> {
    const { store, clock } = this.ctx;
    await this.flushUnrecorded();
    const campaign = await store.getCampaign(campaignId);
    if (!campaign || campaign.status !== 'running') return { kind: 'finished' };
    const now = clock.now();

    if (campaign.currentBatch === 0) {
      const moved = await store.advanceBatch({ campaignId, expectedBatch: 0, nextBatch: 1, nextBatchAt: null, now });
      if (moved) this.ctx.emit('batch:started', { campaignId, batch: 1 });
      return { kind: 'progressed', processed: 0, batchFinished: false };
    }
    if (campaign.nextBatchAt !== null && campaign.nextBatchAt > now) return { kind: 'wait', until: campaign.nextBatchAt };

    const accounts = await store.listAccounts(campaign.accountIds);
    const usable = accounts.filter((a) => isUsable(a, now));
    const local = usable.filter((a) => this.ctx.accounts.has(a.id));
    if (local.length === 0) {
      if (usable.length === 0) {
        const reopenAt = earliestReturn(accounts, now);
        if (reopenAt === null) {
          await this.pause(campaign, 'no_accounts');
          return { kind: 'finished' };
        }
        return { kind: 'wait', until: reopenAt };
      }
      // Usable accounts exist, but another worker holds their transports.
      return { kind: 'wait', until: now + this.ctx.options.pollIntervalMs };
    }

    const claimed = await store.claimRecipients({
      campaignId,
      batch: campaign.currentBatch,
      owner: this.owner,
      limit: this.claimLimit(local),
      now,
      leaseMs: this.ctx.options.leaseMs,
    });
    if (claimed.length === 0) return this.finishBatch(campaignId, limits);

    const { sendable, sticky } = await this.screen(campaign, claimed, local).catch(async (error: unknown) => {
      await this.giveBack(campaignId, claimed);
      throw error;
    });
    if (sendable.length === 0) return { kind: 'progressed', processed: claimed.length, batchFinished: false };
    const result = await this.work(campaign, sendable, local, limits, sticky);
    if (result.kind === 'progressed') result.processed += claimed.length - sendable.length;
    return result;
  }

  /**
   * Before spending sends: drop numbers not on WhatsApp (optional pre-check), contacts over their
   * cross-campaign frequency cap, and pin contacts to the account that last wrote to them (sticky).
   */
  private async screen(campaign: Campaign, claimed: Recipient[], local: AccountRecord[]): Promise<{ sendable: Recipient[]; sticky: Map<string, string> }> {
    const { store, clock } = this.ctx;
    const settings = campaign.settings;
    const sticky = new Map<string, string>();
    let rows = claimed;
    const carry: Carry = { outcomes: [], events: [] };
    const skip = (r: Recipient, reason: SkipReason, detail: string) =>
      this.terminal(carry, r, campaign, { status: 'skipped', skipReason: reason, error: detail, attempts: r.attempts }, () =>
        this.ctx.emit('message:skipped', { campaignId: campaign.id, recipientId: r.id, phone: r.phone, reason, detail }),
      );

    if (settings.precheckNumbers) {
      const checker = local.map((a) => this.ctx.accounts.get(a.id)!.transport).find((t) => t.checkNumbers);
      const unchecked = rows.filter((r) => r.text === null); // a resumed row was checked before its first send
      if (checker && unchecked.length > 0) {
        try {
          const checks = await checker.checkNumbers!(unchecked.map((r) => r.phone));
          const missing = new Set(checks.filter((c) => !c.exists).map((c) => c.phone));
          rows = rows.filter((r) => {
            if (!missing.has(r.phone)) return true;
            skip(r, 'not_on_whatsapp', 'number is not on WhatsApp (pre-check)');
            return false;
          });
        } catch (error) {
          // The check is an optimisation: when it fails, sending still finds out.
          this.ctx.fail(`number pre-check for campaign ${campaign.id}`, error);
        }
      }
    }

    if ((settings.contactCap || settings.stickySender) && rows.length > 0) {
      if (!store.contactHistory) {
        this.ctx.fail(`campaign ${campaign.id}`, new Error(`the ${store.name} store has no contactHistory(): sticky senders and contact caps are off`));
      } else {
        const now = clock.now();
        const since = settings.stickySender ? now - 180 * 86_400_000 : now - settings.contactCap!.periodMs;
        const history = await store.contactHistory(
          rows.map((r) => r.phone),
          since,
        );
        if (settings.contactCap) {
          const capSince = now - settings.contactCap.periodMs;
          const counts = new Map<string, number>();
          for (const h of history) if (h.sentAt >= capSince) counts.set(h.phone, (counts.get(h.phone) ?? 0) + 1);
          rows = rows.filter((r) => {
            const n = counts.get(r.phone) ?? 0;
            if (n < settings.contactCap!.max) return true;
            skip(r, 'frequency_capped', `${n} message(s) to this contact in the last ${Math.round(settings.contactCap!.periodMs / 3_600_000)} h`);
            return false;
          });
        }
        if (settings.stickySender) {
          for (const h of history) {
            // Soft pin: only to an account usable here now, so a lost account never strands its contacts.
            if (!sticky.has(h.phone) && h.accountId && local.some((a) => a.id === h.accountId)) sticky.set(h.phone, h.accountId);
          }
        }
      }
    }
    await this.flush(carry);
    return { sendable: rows, sticky };
  }

  private claimLimit(accounts: AccountRecord[]): number {
    const { claimSize, leaseMs } = this.ctx.options;
    // With paced accounts, claim only what the lanes can send within about half a lease, so a crash
    // strands few rows; unpaced, claim big slices to keep the store's round trips few.
    const perLane = accounts.map((a) => {
      const avg = (a.pacing.intervalMs.min + a.pacing.intervalMs.max) / 2;
      return avg <= 0 ? claimSize : Math.max(1, Math.floor(leaseMs / 2 / avg));
    });
    return Math.max(1, Math.min(claimSize, perLane.reduce((s, n) => s + n, 0)));
  }

  private async finishBatch(campaignId: string, limits: TickLimits): Promise<TickResult> {
    const { store, clock, options } = this.ctx;
    const campaign = await store.getCampaign(campaignId);
    if (!campaign || campaign.status !== 'running') return { kind: 'finished' };
    const now = clock.now();
    const lastBatch = Math.ceil(campaign.counters.total / campaign.settings.batchSize);
    const isLast = campaign.currentBatch >= lastBatch;
    const pause = isLast ? null : now + between(this.ctx.random, campaign.settings.batchPauseMs.min, campaign.settings.batchPauseMs.max);
    const moved = await store.advanceBatch({
      campaignId,
      expectedBatch: campaign.currentBatch,
      nextBatch: campaign.currentBatch + 1,
      nextBatchAt: pause,
      now,
    });
    if (!moved) {
      // Rows of this batch are leased by someone else (or in doubt, awaiting recovery).
      return { kind: 'wait', until: now + Math.min(options.pollIntervalMs, options.leaseMs) };
    }
    const batches = await store.listBatches(campaignId);
    this.ctx.emit('batch:completed', {
      campaignId,
      batch: batches.find((b) => b.batch === campaign.currentBatch) ?? null,
      next: isLast ? null : moved.currentBatch,
    });
    if (!isLast) {
      this.ctx.emit('batch:started', { campaignId, batch: moved.currentBatch });
      return { kind: 'progressed', processed: 0, batchFinished: true };
    }
    const fresh = moved;
    if (fresh.counters.pending + fresh.counters.sending > 0) {
      // Recipients added while the last batch ran live in a later batch: keep going.
      return { kind: 'progressed', processed: 0, batchFinished: true };
    }
    const done = await store.transitionCampaign(campaignId, { from: ['running'], to: 'completed', now: clock.now() });
    if (done) this.ctx.emit('campaign:completed', { campaign: done });
    void limits;
    return { kind: 'finished' };
  }

  private async allDailyCapped(campaign: Campaign): Promise<boolean> {
    const now = this.ctx.clock.now();
    const accounts = await this.ctx.store.listAccounts(campaign.accountIds);
    return accounts.length > 0 && accounts.every((a) => !isUsable(a, now) || isDailyCapped(a, now, this.ctx.options.hourKeyTimeZone));
  }

  private async pause(campaign: Campaign, reason: 'no_accounts' | 'daily_cap'): Promise<void> {
    const paused = await this.ctx.store.transitionCampaign(campaign.id, {
      from: ['running'],
      to: 'paused',
      pauseReason: reason,
      now: this.ctx.clock.now(),
    });
    if (paused) {
      this.ctx.logger.warn(`campaign ${campaign.id} paused: ${reason === 'daily_cap' ? 'every account reached its daily cap' : 'no usable sender account'}`, { campaignId: campaign.id });
      this.ctx.emit('campaign:paused', { campaign: paused, reason });
    }
  }

  /** Send a claimed slice through the campaign's local accounts; hand back whatever is left. */
  private async work(campaign: Campaign, claimed: Recipient[], accounts: AccountRecord[], limits: TickLimits, sticky: Map<string, string>): Promise<TickResult> {
    const queue = claimed.slice();
    // A lane takes the next recipient that is not pinned to another account.
    const next = (accountId: string): Recipient | undefined => {
      const i = sticky.size === 0 ? 0 : queue.findIndex((r) => (sticky.get(r.phone) ?? accountId) === accountId);
      return i < 0 ? undefined : queue.splice(i, 1)[0];
    };
    let processed = 0;
    let retryAt: number | null = null;
    const runLane = async (record: AccountRecord) => {
      const account = this.ctx.accounts.get(record.id)!;
      const carry: Carry = { outcomes: [], events: [] };
      let exit: LaneExit | null = null;
      try {
        const groupSize = this.groupSize(account);
        while (queue.length > 0 && !limits.signal.aborted) {
          if (groupSize > 1) {
            const group: Recipient[] = [];
            for (let r = next(record.id); r; r = group.length < groupSize ? next(record.id) : undefined) group.push(r);
            if (group.length === 0) break;
            const more = queue.length > 0;
            const done = await account.mutex.run(() => this.sendGroup(campaign, group, account, record, carry, limits, more));
            processed += done.processed;
            queue.unshift(...done.back);
            exit = done.exit;
            if (exit) break;
            continue;
          }
          const recipient = next(record.id);
          if (!recipient) break;
          const more = queue.length > 0;
          exit = await account.mutex.run(() => this.sendOne(campaign, recipient, account, record, carry, limits, more));
          if (exit) break;
          processed++;
        }
      } finally {
        await this.flush(carry).catch((error) => this.keepUnrecorded(carry, error));
      }
      if (exit?.kind === 'deferred') retryAt = retryAt === null ? exit.retryAt : Math.min(retryAt, exit.retryAt);
    };
    // Every lane ends before the rest goes back, also when one failed (the store down past its retries).
    const lanes = await Promise.allSettled(accounts.map(runLane));
    await this.giveBack(campaign.id, queue.splice(0));
    const failed = lanes.find((lane): lane is PromiseRejectedResult => lane.status === 'rejected');
    if (failed) throw failed.reason;
    if (processed === 0 && retryAt !== null) {
      if (await this.allDailyCapped(campaign)) {
        await this.pause(campaign, 'daily_cap');
        return { kind: 'finished' };
      }
      return { kind: 'wait', until: retryAt };
    }
    return { kind: 'progressed', processed, batchFinished: false };
  }

  /**
   * Release leased rows this tick will not send. If the store refuses, they are handed back at the
   * next tick (see `unrecorded`): left leased, the heartbeat would keep them from everyone.
   */
  private async giveBack(campaignId: string, rows: Recipient[]): Promise<void> {
    if (rows.length === 0) return;
    try {
      await this.ctx.store.release(
        this.owner,
        rows.map((r) => r.id),
      );
    } catch (error) {
      const now = this.ctx.clock.now();
      this.keepUnrecorded({ outcomes: rows.map((r) => handBack(r, campaignId, now)), events: [] }, error);
    }
  }

  private template(source: string): CompiledTemplate {
    let t = this.templates.get(source);
    if (!t) {
      t = compileTemplate(source);
      this.templates.set(source, t);
    }
    return t;
  }

  /**
   * One recipient through one account: render, reserve the account's slot and write ahead
   * (`sending`) in one store step, wait for the slot, send, classify, record. Returns why the
   * lane must stop, or null to go on.
   */
  private async sendOne(
    campaign: Campaign,
    recipient: Recipient,
    account: AccountRuntime,
    record: AccountRecord,
    carry: Carry,
    limits: TickLimits,
    more: boolean,
    /** The first attempt already happened (in a group) and failed with this. */
    failed?: unknown,
  ): Promise<LaneExit | null> {
    const { store, clock, options } = this.ctx;
    const key = idempotencyKey(campaign.id, recipient.phone);
    const ref = { campaignId: campaign.id, recipientId: recipient.id, phone: recipient.phone };

    // After a failed first attempt in a group, the text is known and the attempt already counted.
    const text = failed !== undefined && recipient.text !== null ? recipient.text : this.prepare(campaign, recipient, carry);
    if (text === null) {
      await this.flush(carry);
      return null;
    }

    const message: OutboundMessage = { to: recipient.phone, text, media: campaign.media, idempotencyKey: key };
    const pacing = account.pacing;
    const typingMs = pacing.typingMsPerChar > 0 ? Math.min(pacing.typingMaxMs, Math.round(text.length * pacing.typingMsPerChar)) : 0;
    let attempts = recipient.attempts;
    let handBack: Outcome | null = null;
    let lastGap = 0;
    let startedAt = clock.now();

    const attempt = async (): Promise<SendResult> => {
      // Reserve the slot and write ahead in one store step (with any outcomes still to record).
      for (;;) {
        if (limits.signal.aborted) throw new AbortError(new Halted());
        const now = clock.now();
        const gapMs = between(this.ctx.random, pacing.intervalMs.min, pacing.intervalMs.max);
        const slot: SlotRequest = { accountId: account.id, gapMs, leadMs: typingMs, ...capWindows(pacing, now, options.hourKeyTimeZone) };
        const outcomes = carry.outcomes.splice(0);
        const events = carry.events.splice(0);
        if (handBack) outcomes.push(handBack);
        handBack = null;
        let result: Awaited<ReturnType<typeof store.advance>>;
        try {
          result = await this.durably('recording a send ahead', () =>
            store.advance({
              owner: this.owner,
              now,
              leaseMs: options.leaseMs,
              outcomes,
              begin: { recipientId: recipient.id, campaignId: campaign.id, text, attempt: attempts + 1, slot },
            }),
          );
        } catch (error) {
          // The store stays down: keep what is unrecorded for the lane's last flush, and stop the lane.
          carry.outcomes.unshift(...outcomes);
          carry.events.unshift(...events);
          throw new AbortError(new StoreDown(error));
        }
        this.afterOutcomes(outcomes, events, result.outcomes);
        const begin = result.begin!;
        if (begin.granted) {
          lastGap = gapMs;
          startedAt = now;
          if (begin.slotAt > now) {
            if (typingMs > 0 && account.transport.typing) {
              void account.transport.typing(recipient.phone, typingMs).catch(() => undefined);
            }
            await this.sleepUntil(begin.slotAt, limits, true);
          }
          break;
        }
        if (begin.reason === 'lease_lost') throw new AbortError(new LeaseLost());
        if (begin.reason === 'account_unavailable') throw new AbortError(new AccountGone());
        if (begin.reason === 'hourly_cap' || begin.reason === 'daily_cap') throw new AbortError(new Deferred(begin.retryAt, begin.reason));
        await this.sleepUntil(begin.retryAt, limits, false);
      }
      attempts++;
      try {
        return await this.sendChecked(account, message, startedAt);
      } catch (error) {
        if (TransportError.isInstance(error) && error.kind === 'ambiguous' && campaign.settings.inDoubt === 'at-most-once') throw new AbortError(error);
        throw error;
      }
    };

    // Attempts are counted here, not by p-retry: a rate limit consumes none, and the count must
    // survive restarts (it is stored with the write-ahead). p-retry drives the loop and hooks.
    const retryable = (err: TransportError) =>
      err.kind === 'rate_limited' ||
      ((err.kind === 'transient' || (err.kind === 'ambiguous' && campaign.settings.inDoubt === 'at-least-once')) && attempts < campaign.settings.maxAttempts);
    const onFailedAttempt = async (error: unknown) => {
      const err = asTransportError(error);
      if (err.kind === 'rate_limited') {
        attempts--; // a rate limit consumes no attempt
        const until = clock.now() + (err.retryAfterMs ?? 60_000);
        await store.updateAccount(account.id, { nextSendAtAtLeast: until }, clock.now());
      }
      if (!retryable(err)) return;
      // The row is `sending`; hand it back in the same step as the next write-ahead.
      handBack = {
        recipientId: recipient.id,
        campaignId: campaign.id,
        status: 'pending',
        keepLease: true,
        attempts,
        at: clock.now(),
        accountId: account.id,
        error: err.message,
        accountEffect: err.kind === 'transient' ? 'failure' : 'none',
      };
      this.ctx.emit('message:retrying', { ...ref, accountId: account.id, attempt: attempts, error: err.message, kind: err.kind });
      if (err.kind === 'transient') {
        const backoff = between(this.ctx.random, campaign.settings.retryBackoffMs.min, campaign.settings.retryBackoffMs.max);
        await this.sleepUntil(clock.now() + backoff, limits, false);
      }
    };
    let result: SendResult;
    try {
      // Fast path: the first attempt outside p-retry (most sends succeed at once; p-retry's loop
      // costs more than the send itself on a fast transport). Failures follow p-retry's rules.
      try {
        if (failed !== undefined) throw failed;
        result = await attempt();
      } catch (first) {
        if (first instanceof AbortError) throw first;
        await onFailedAttempt(first);
        if (!retryable(asTransportError(first))) throw first;
        result = await pRetry(attempt, {
          retries: Number.POSITIVE_INFINITY,
          minTimeout: 0,
          maxTimeout: 0,
          shouldRetry: ({ error }) => retryable(asTransportError(error)),
          onFailedAttempt: ({ error }) => onFailedAttempt(error),
        });
      }
    } catch (raw) {
      return this.onGiveUp(raw, { campaign, recipient, account, record, carry, ref, attempts });
    }

    const outcome: Outcome = {
      recipientId: recipient.id,
      campaignId: campaign.id,
      status: 'sent',
      attempts,
      at: result.acceptedAt,
      accountId: account.id,
      providerMessageId: result.providerMessageId,
      accountEffect: 'success',
    };
    carry.outcomes.push(outcome);
    carry.events.push(() =>
      this.ctx.emit('message:sent', { ...ref, accountId: account.id, providerMessageId: result.providerMessageId, attempt: attempts }),
    );
    if (record.state === 'disabled') carry.reEnable = account.id;
    // Record now unless the account's next send follows at once (no gap): then the outcome rides in
    // that send's write-ahead step, one commit per message; it is still recorded before that send.
    if (!(more && lastGap === 0 && typingMs === 0) || carry.reEnable) await this.flush(carry);
    return null;
  }

  /** How many sends of this account to check in at once: the configured group, within `maxDelayMs` of its pacing. */
  private groupSize(account: AccountRuntime): number {
    const { groupSize, maxDelayMs } = this.ctx.options.checkpoints;
    if (groupSize <= 1 || !this.ctx.store.advanceGroup) return 1;
    const p = account.pacing;
    const perSend = (p.intervalMs.min + p.intervalMs.max) / 2 + (p.typingMsPerChar > 0 ? p.typingMaxMs / 2 : 0);
    return perSend <= 0 ? groupSize : Math.max(1, Math.min(groupSize, Math.floor(maxDelayMs / perSend)));
  }

  /** The text to send (rendered once, then kept with the row), or null when the recipient ended here (carried). */
  private prepare(campaign: Campaign, recipient: Recipient, carry: Carry): string | null {
    const key = idempotencyKey(campaign.id, recipient.phone);
    const ref = { campaignId: campaign.id, recipientId: recipient.id, phone: recipient.phone };
    let text = recipient.text;
    if (text === null) {
      try {
        text = renderTemplate(this.template(pickTemplate(campaign.templates, key)), recipient.vars, key);
        if (text.length > MAX_TEXT_LENGTH) throw new RangeError(`rendered text has ${text.length} characters, over WhatsApp's ${MAX_TEXT_LENGTH}`);
        if (text.length === 0) throw new RangeError('rendered text is empty');
      } catch (error) {
        const detail = error instanceof MissingVariableError || error instanceof RangeError ? error.message : String(error);
        this.terminal(carry, recipient, campaign, { status: 'skipped', skipReason: 'template_error', error: detail, attempts: recipient.attempts }, () =>
          this.ctx.emit('message:skipped', { ...ref, reason: 'template_error', detail }),
        );
        return null;
      }
    }
    if (recipient.attempts >= campaign.settings.maxAttempts) {
      this.terminal(carry, recipient, campaign, { status: 'failed', error: 'max attempts reached', attempts: recipient.attempts }, () =>
        this.ctx.emit('message:failed', { ...ref, accountId: null, error: 'max attempts reached', kind: 'max_attempts' }),
      );
      return null;
    }
    return text;
  }

  /** Send once; a send that may have left (ambiguous) is looked up before anyone decides about it. */
  private async sendChecked(account: AccountRuntime, message: OutboundMessage, startedAt: number): Promise<SendResult> {
    try {
      return await this.callTransport(account, message);
    } catch (error) {
      if (!TransportError.isInstance(error) || error.kind !== 'ambiguous') throw error;
      const found = await this.lookup(account, message, startedAt);
      if (found) return found;
      throw error;
    }
  }

  /**
   * Grouped checkpoints: write a group of recipients ahead through one account in one store step (with
   * the outcomes carried so far), send them at their slots, and carry their outcomes to the next step.
   * A send that fails leaves the group: it goes on alone through `sendOne` (retries, give-up rules), and
   * the group's unsent rest is handed back (lease kept) to the front of the queue.
   */
  private async sendGroup(
    campaign: Campaign,
    recipients: Recipient[],
    account: AccountRuntime,
    record: AccountRecord,
    carry: Carry,
    limits: TickLimits,
    more: boolean,
  ): Promise<{ exit: LaneExit | null; processed: number; back: Recipient[] }> {
    const { store, clock, options } = this.ctx;
    const pacing = account.pacing;
    let processed = 0;
    const items: Array<{ recipient: Recipient; text: string; typingMs: number; gapMs: number }> = [];
    for (const r of recipients) {
      const text = this.prepare(campaign, r, carry);
      if (text === null) processed++;
      else {
        const typingMs = pacing.typingMsPerChar > 0 ? Math.min(pacing.typingMaxMs, Math.round(text.length * pacing.typingMsPerChar)) : 0;
        items.push({ recipient: r, text, typingMs, gapMs: between(this.ctx.random, pacing.intervalMs.min, pacing.intervalMs.max) });
      }
    }
    if (items.length === 0) {
      if (!more) await this.flush(carry);
      return { exit: null, processed, back: [] };
    }
    const backOutcome = (r: Recipient, keepLease: boolean): Outcome => handBack(r, campaign.id, clock.now(), { keepLease });

    // Write the group ahead (and record what is carried) in one step; wait out pacing if refused for it.
    let begins: BeginResult[];
    for (;;) {
      if (limits.signal.aborted) {
        for (const it of items) carry.outcomes.push(backOutcome(it.recipient, false));
        await this.flush(carry);
        return { exit: { kind: 'halted' }, processed, back: [] };
      }
      const now = clock.now();
      const outcomes = carry.outcomes.splice(0);
      const events = carry.events.splice(0);
      let result: AdvanceGroupResult;
      try {
        result = await this.durably('recording a group of sends ahead', () =>
          store.advanceGroup!({
            owner: this.owner,
            now,
            leaseMs: options.leaseMs,
            outcomes,
            begin: {
              accountId: account.id,
              ...capWindows(pacing, now, options.hourKeyTimeZone),
              items: items.map((it) => ({
                recipientId: it.recipient.id,
                campaignId: campaign.id,
                text: it.text,
                attempt: it.recipient.attempts + 1,
                gapMs: it.gapMs,
                leadMs: it.typingMs,
              })),
            },
          }),
        );
      } catch (error) {
        carry.outcomes.unshift(...outcomes);
        carry.events.unshift(...events);
        // None of the group was sent (sends wait for the grant): hand them all back when the store is back.
        for (const it of items) carry.outcomes.push(backOutcome(it.recipient, false));
        this.ctx.fail(`campaign ${campaign.id}, a group of ${items.length} sends`, new StoreDown(error));
        return { exit: { kind: 'halted' }, processed, back: [] };
      }
      this.afterOutcomes(outcomes, events, result.outcomes, carry);
      begins = result.begins;
      const pacingOnly = begins.every((b) => !b.granted && b.reason === 'pacing');
      if (!pacingOnly) break;
      try {
        await this.sleepUntil((begins[0] as { retryAt: number }).retryAt, limits, false);
      } catch (error) {
        // Stopped, or the slot lies past the step's budget: hand the group back for later.
        for (const it of items) carry.outcomes.push(backOutcome(it.recipient, false));
        await this.flush(carry);
        const reason = error instanceof AbortError ? error.originalError : error;
        return { exit: reason instanceof Deferred ? { kind: 'deferred', retryAt: reason.retryAt } : { kind: 'halted' }, processed, back: [] };
      }
    }

    const back: Recipient[] = [];
    let exit: LaneExit | null = null;
    let lastFlush = clock.now();
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      const b = begins[i]!;
      const r = it.recipient;
      if (!b.granted) {
        if (b.reason === 'lease_lost') {
          this.ctx.logger.warn(`lease lost on recipient ${r.id}; another worker owns it now`, { campaignId: campaign.id, recipientId: r.id });
          continue;
        }
        // Refused without a slot (account gone, cap reached): hand it back for later or for another account.
        carry.outcomes.push(backOutcome(r, false));
        if (b.reason === 'account_unavailable') exit ??= { kind: 'account_gone' };
        else exit ??= { kind: 'deferred', retryAt: b.retryAt };
        continue;
      }
      if (exit) {
        carry.outcomes.push(backOutcome(r, false));
        continue;
      }
      const ref = { campaignId: campaign.id, recipientId: r.id, phone: r.phone };
      const startedAt = clock.now();
      try {
        if (b.slotAt > startedAt) {
          if (it.typingMs > 0 && account.transport.typing) void account.transport.typing(r.phone, it.typingMs).catch(() => undefined);
          await this.sleepUntil(b.slotAt, limits, true);
        }
        if (limits.signal.aborted) throw new AbortError(new Halted());
      } catch {
        // Stopped before this send: it and the rest go back unsent, attempts untouched.
        for (const rest of items.slice(i)) if (begins[items.indexOf(rest)]!.granted) carry.outcomes.push(backOutcome(rest.recipient, false));
        exit = { kind: 'halted' };
        break;
      }
      const message: OutboundMessage = { to: r.phone, text: it.text, media: campaign.media, idempotencyKey: idempotencyKey(campaign.id, r.phone) };
      const attempt = r.attempts + 1;
      let sent: SendResult;
      try {
        sent = await this.sendChecked(account, message, startedAt);
      } catch (error) {
        // This one leaves the group; the unsent rest goes back to the queue, still leased to us.
        for (let j = i + 1; j < items.length; j++) {
          if (!begins[j]!.granted) continue;
          carry.outcomes.push(backOutcome(items[j]!.recipient, true));
          back.push(items[j]!.recipient);
        }
        const wrapped = TransportError.isInstance(error) && error.kind === 'ambiguous' && campaign.settings.inDoubt === 'at-most-once' ? new AbortError(error) : error;
        exit = await this.sendOne(campaign, { ...r, text: it.text, attempts: attempt }, account, record, carry, limits, more || back.length > 0, wrapped);
        if (!exit) processed++;
        break;
      }
      processed++;
      carry.outcomes.push({
        recipientId: r.id,
        campaignId: campaign.id,
        status: 'sent',
        attempts: attempt,
        at: sent.acceptedAt,
        accountId: account.id,
        providerMessageId: sent.providerMessageId,
        accountEffect: 'success',
      });
      carry.events.push(() => this.ctx.emit('message:sent', { ...ref, accountId: account.id, providerMessageId: sent.providerMessageId, attempt }));
      if (record.state === 'disabled') carry.reEnable = account.id;
      if (carry.reEnable || clock.now() - lastFlush >= options.checkpoints.maxDelayMs) {
        await this.flush(carry);
        lastFlush = clock.now();
      }
    }
    // The outcomes ride with the next group's step, unless nothing follows at once.
    if (!more || exit || back.length > 0 || carry.reEnable) await this.flush(carry);
    return { exit, processed, back };
  }

  private async onGiveUp(
    raw: unknown,
    s: {
      campaign: Campaign;
      recipient: Recipient;
      account: AccountRuntime;
      record: AccountRecord;
      carry: Carry;
      ref: { campaignId: string; recipientId: string; phone: string };
      attempts: number;
    },
  ): Promise<LaneExit | null> {
    const { campaign, recipient, account, carry, ref } = s;
    // p-retry unwraps AbortError thrown by the attempt, not one thrown from onFailedAttempt.
    if (raw instanceof AbortError) raw = raw.originalError;
    const now = this.ctx.clock.now();
    const handBackNow = async (accountEffect: Outcome['accountEffect'] = 'none') => {
      carry.outcomes.push(handBack({ id: recipient.id, attempts: s.attempts }, campaign.id, now, { accountEffect }));
      await this.flush(carry);
    };
    if (raw instanceof LeaseLost) {
      this.ctx.logger.warn(`lease lost on recipient ${recipient.id}; another worker owns it now`, ref);
      await this.flush(carry);
      return null;
    }
    if (raw instanceof StoreDown) {
      // Nothing more can be recorded now. This recipient was not sent (a send waits for its write-ahead
      // to be granted): it is handed back, with what is carried, by the lane's last flush or, if the
      // store is still down then, at the next tick (see `unrecorded`).
      carry.outcomes.push(handBack({ id: recipient.id, attempts: s.attempts }, campaign.id, now));
      this.ctx.fail(`campaign ${campaign.id}, recipient ${recipient.id}`, raw);
      return { kind: 'halted' };
    }
    if (raw instanceof Halted) {
      await handBackNow();
      return { kind: 'halted' };
    }
    if (raw instanceof Deferred) {
      await handBackNow();
      return { kind: 'deferred', retryAt: raw.retryAt };
    }
    if (raw instanceof AccountGone) {
      await handBackNow();
      return { kind: 'account_gone' };
    }
    const err = asTransportError(raw);
    switch (err.kind) {
      case 'account': {
        await handBackNow();
        await this.accountLost(account.id, err);
        return { kind: 'account_gone' };
      }
      case 'invalid_recipient': {
        this.terminal(carry, recipient, campaign, { status: 'skipped', skipReason: 'not_on_whatsapp', error: err.message, attempts: s.attempts, accountId: account.id }, () =>
          this.ctx.emit('message:skipped', { ...ref, reason: 'not_on_whatsapp', detail: err.message }),
        );
        await this.flush(carry);
        return null;
      }
      case 'ambiguous': {
        // Lookup found nothing (or the transport has none), and the policy forbids a resend.
        this.terminal(carry, recipient, campaign, { status: 'unknown', error: err.message, attempts: s.attempts, accountId: account.id }, () =>
          this.ctx.emit('message:unknown', { ...ref, accountId: account.id }),
        );
        await this.flush(carry);
        return null;
      }
      default: {
        // transient with no attempts left, or permanent
        const failure = err.kind === 'transient' || err.kind === 'permanent' ? 'failure' : 'none';
        this.terminal(carry, recipient, campaign, { status: 'failed', error: err.message, attempts: s.attempts, accountId: account.id, accountEffect: failure }, () =>
          this.ctx.emit('message:failed', { ...ref, accountId: account.id, error: err.message, kind: err.kind }),
        );
        await this.flush(carry);
        return carry.lastDisabled === account.id ? { kind: 'account_gone' } : null;
      }
    }
  }

  /**
   * A store write that records sends, retried with backoff when it fails (a deadlock victim, a dropped
   * connection, a failover): an outcome lost here would leave its row `sending` under a live lease.
   * Safe to repeat: outcomes apply only to rows still leased and open, and a repeated write-ahead is
   * granted again without a second slot.
   */
  private async durably<T>(what: string, write: () => Promise<T>): Promise<T> {
    for (let tried = 1; ; tried++) {
      try {
        return await write();
      } catch (error) {
        if (tried >= STORE_WRITE_TRIES) throw error;
        this.ctx.fail(`${what} (try ${tried} of ${STORE_WRITE_TRIES}, retrying)`, error);
        await this.ctx.clock.sleep(Math.min(4_000, 100 * 2 ** (tried - 1)));
      }
    }
  }

  private async lookup(account: AccountRuntime, message: OutboundMessage, since: number): Promise<SendResult | null> {
    if (!account.transport.lookup) return null;
    try {
      return await account.transport.lookup({ message, since });
    } catch (error) {
      this.ctx.fail(`lookup on account ${account.id}`, error);
      return null;
    }
  }

  private terminal(
    carry: Carry,
    recipient: Recipient,
    campaign: Campaign,
    o: { status: Outcome['status']; attempts: number; error?: string; skipReason?: SkipReason; accountId?: string; providerMessageId?: string; accountEffect?: Outcome['accountEffect']; at?: number },
    event: () => void,
  ): void {
    carry.outcomes.push({
      recipientId: recipient.id,
      campaignId: campaign.id,
      status: o.status,
      attempts: o.attempts,
      at: o.at ?? this.ctx.clock.now(),
      accountId: o.accountId ?? null,
      providerMessageId: o.providerMessageId ?? null,
      error: o.error ?? null,
      skipReason: o.skipReason ?? null,
      accountEffect: o.accountEffect ?? 'none',
    });
    carry.events.push(event);
  }

  /** Record the outcomes kept while the store was down (see `unrecorded`); throws if it still fails. */
  async flushUnrecorded(): Promise<void> {
    if (this.unrecorded.outcomes.length > 0) await this.flush(this.unrecorded);
  }

  /** How many outcomes are waiting for the store (see `unrecorded`). */
  get unrecordedCount(): number {
    return this.unrecorded.outcomes.length;
  }

  private keepUnrecorded(carry: Carry, error: unknown): void {
    const n = carry.outcomes.length;
    this.unrecorded.outcomes.push(...carry.outcomes.splice(0));
    this.unrecorded.events.push(...carry.events.splice(0));
    if (carry.reEnable) this.unrecorded.reEnable = carry.reEnable;
    this.ctx.fail(`recording ${n} outcome(s) or hand-back(s): kept in memory (their rows stay leased) and recorded at the next tick`, error);
  }

  /** Record carried outcomes now (one store step), then emit their events. */
  async flush(carry: Carry): Promise<void> {
    if (carry.outcomes.length === 0) return;
    const outcomes = carry.outcomes.splice(0);
    const events = carry.events.splice(0);
    const now = this.ctx.clock.now();
    let result: Awaited<ReturnType<StateStore['advance']>>;
    try {
      result = await this.durably('recording outcomes', () => this.ctx.store.advance({ owner: this.owner, now, leaseMs: this.ctx.options.leaseMs, outcomes }));
    } catch (error) {
      carry.outcomes.unshift(...outcomes);
      carry.events.unshift(...events);
      throw error;
    }
    this.afterOutcomes(outcomes, events, result.outcomes, carry);
    if (carry.reEnable) {
      const id = carry.reEnable;
      carry.reEnable = undefined;
      const updated = await this.ctx.store.updateAccount(id, { state: 'active', disabledUntil: null, disabledReason: null }, this.ctx.clock.now());
      if (updated) this.ctx.emit('account:enabled', { accountId: id });
    }
  }

  private afterOutcomes(outcomes: Outcome[], events: Array<() => void>, results: Array<{ applied: boolean; consecutiveFailures?: number }>, carry?: Carry): void {
    for (let i = 0; i < outcomes.length; i++) {
      const r = results[i];
      if (r && !r.applied) this.ctx.logger.warn(`outcome for recipient ${outcomes[i]!.recipientId} not recorded: lease lost`);
      const o = outcomes[i]!;
      if (o.accountEffect === 'failure' && o.accountId && r?.consecutiveFailures !== undefined && r.consecutiveFailures >= this.ctx.options.failureThreshold) {
        void this.disableAccount(o.accountId, r.consecutiveFailures);
        if (carry) carry.lastDisabled = o.accountId;
      }
    }
    for (const emit of events) emit();
  }

  private async disableAccount(accountId: string, failures: number): Promise<void> {
    const now = this.ctx.clock.now();
    const until = now + this.ctx.options.cooldownMs;
    const reason = `${failures} send failures in a row`;
    try {
      await this.ctx.store.updateAccount(accountId, { state: 'disabled', disabledUntil: until, disabledReason: reason, consecutiveFailures: 0 }, now);
      this.ctx.logger.warn(`account ${accountId} disabled until ${new Date(until).toISOString()}: ${reason}`);
      this.ctx.emit('account:disabled', { accountId, reason, until });
    } catch (error) {
      this.ctx.fail(`disabling account ${accountId}`, error);
    }
  }

  /** A send said the account cannot send: mark it, so every worker moves its work to the others. */
  private async accountLost(accountId: string, err: TransportError): Promise<void> {
    const now = this.ctx.clock.now();
    const stop = err.accountReason && err.accountReason !== 'disconnected';
    if (stop) {
      await this.ctx.store.updateAccount(accountId, { state: 'stopped', connection: 'close', disabledReason: `${err.accountReason}: ${err.message}` }, now);
      this.ctx.logger.error(`account ${accountId} stopped (${err.accountReason}): ${err.message}. It needs a human: reconnect or replace the number.`);
      this.ctx.emit('account:stopped', { accountId, reason: err.accountReason! });
    } else {
      await this.ctx.store.updateAccount(accountId, { connection: 'close' }, now);
      this.ctx.emit('account:connection', { accountId, state: 'close', detail: err.message });
    }
  }

  private async callTransport(account: AccountRuntime, message: OutboundMessage): Promise<SendResult> {
    const { clock, options } = this.ctx;
    const controller = new AbortController();
    // The send timeout runs on the engine's clock; a send that times out may have left: ambiguous.
    const cancel = startTimer(clock, options.sendTimeoutMs, () =>
      controller.abort(new TransportError('ambiguous', `send timed out after ${options.sendTimeoutMs} ms`)),
    );
    try {
      return await account.transport.send(message, { signal: controller.signal });
    } catch (error) {
      if (controller.signal.aborted && !TransportError.isInstance(error)) throw controller.signal.reason;
      throw error;
    } finally {
      cancel();
    }
  }

  private async sleepUntil(at: number, limits: TickLimits, granted: boolean): Promise<void> {
    const now = this.ctx.clock.now();
    if (at <= now) return;
    if (limits.deadline !== null && at > limits.deadline && !granted) throw new AbortError(new Deferred(at, 'past the step budget'));
    try {
      await this.ctx.clock.sleep(at - now, limits.signal);
    } catch {
      throw new AbortError(new Halted());
    }
  }
}

interface Carry {
  outcomes: Outcome[];
  events: Array<() => void>;
  reEnable?: string | undefined;
  lastDisabled?: string | undefined;
}

export function isUsable(a: AccountRecord, now: number): boolean {
  if (a.state === 'stopped' || a.connection === 'close') return false;
  if (a.state === 'disabled' && a.disabledUntil !== null && a.disabledUntil > now) return false;
  return true;
}

/** When a currently unusable account may come back by itself (cooldown end), or null if none will. */
function earliestReturn(accounts: AccountRecord[], now: number): number | null {
  let at: number | null = null;
  for (const a of accounts) {
    if (a.state === 'disabled' && a.connection !== 'close' && a.disabledUntil !== null && a.disabledUntil > now) {
      at = at === null ? a.disabledUntil : Math.min(at, a.disabledUntil);
    }
  }
  return at;
}

function asTransportError(error: unknown): TransportError {
  if (TransportError.isInstance(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new TransportError('transient', message, { cause: error });
}


export type { TransportErrorKind };
