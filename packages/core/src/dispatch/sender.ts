import type { AccountRuntime, EngineContext } from '../context.js';
import type { AccountRecord, Campaign, Recipient } from '../domain/types.js';
import { writeAhead, type PlannedSend } from '../pacing/plan.js';
import type { Grant } from '../rules/slots.js';
import type { CheckpointResult, Outcome, WriteAhead } from '../store/contract.js';
import type { OutboundMessage } from '../transport/contract.js';
import { backOffAccount, disableAccount, markAccountLost } from './account-health.js';
import { autoPause } from './batches.js';
import { decideAfterFailure } from './decide.js';
import { recordOptOut } from './opt-out.js';
import type { RecipientQueue } from './queue.js';
import { PendingOutcomes, type Recorder } from './recorder.js';
import { textFor, type TemplateCache } from './render.js';
import { idempotencyKey, sendOnce, type SendAttempt } from './send.js';

/** Bounds of one tick: step mode's deadline (no new wait may end after it) and the stop signal. */
export interface TickLimits {
  deadline: number | null;
  signal: AbortSignal;
}

/** Why an account's sender stopped before the queue ran dry. */
export type SenderStop = { kind: 'account_gone' } | { kind: 'deferred'; retryAt: number } | { kind: 'halted' };

/** What a sender works with, from the dispatcher that runs it. */
export interface SenderRoom {
  readonly ctx: EngineContext;
  readonly recorder: Recorder;
  readonly templates: TemplateCache;
}

/**
 * A sent message's outcome reaches the store within this long of its answer, however few have come
 * back: a receipt (Meta posts "sent" and "delivered" within a second or so) that reaches the store
 * before the outcome finds the row still `sending` and is ignored.
 */
export const RECORD_WITHIN_MS = 50;

/** A pacing wait longer than this records the answers that come back meanwhile (see `waitRecording`). */
const LONG_WAIT_MS = 1_000;

/** How often a sender asks again while the account's window is full (another worker's send is on the wire). */
const IN_FLIGHT_POLL_MS = 100;

export interface Planned extends PlannedSend {
  recipient: Recipient;
}

/**
 * One account's share of a tick: the one send path. It takes recipients from the shared queue in
 * groups (a single send is a group of one), renders them, writes the group ahead in one checkpoint
 * together with the outcomes still to record, waits for each slot, sends, and turns each answer into
 * an outcome or, on failure, into a decision (`decideAfterFailure`): a retry goes back to the queue;
 * nothing is thrown to steer the flow. Two schedules share these stages: `IntervalSender` for
 * human-paced accounts (one send after the other's answer, the gap counted from that answer) and
 * `RateSender` for rate-paced ones (up to the account's window on the wire at once).
 */
export abstract class AccountSender {
  protected readonly pending = new PendingOutcomes();
  protected processed = 0;
  protected stop: SenderStop | null = null;
  private probed = false;
  /** Outcomes this sender recorded disabled its account (their run of failures reached the threshold). */
  private disabledHere = false;

  /**
   * The account's cooldown has ended and its next send is the probe that decides whether it returns
   * (DESIGN mechanism 5): until one of this sender's sends goes through, one at a time, and the first
   * real failure disables it again.
   */
  protected get probing(): boolean {
    return this.record.state === 'disabled' && !this.probed;
  }

  constructor(
    protected readonly d: SenderRoom,
    protected readonly campaign: Campaign,
    protected readonly account: AccountRuntime,
    protected readonly record: AccountRecord,
    protected readonly queue: RecipientQueue,
    protected readonly limits: TickLimits,
  ) {}

  /** Send what the queue has for this account; record (or keep) every outcome before returning. */
  async run(): Promise<{ processed: number; stop: SenderStop | null }> {
    try {
      await this.schedule();
    } finally {
      await this.d.recorder.flush(this.pending).catch((error) => this.d.recorder.keep(this.pending, error));
    }
    return { processed: this.processed, stop: this.stop };
  }

  protected abstract schedule(): Promise<void>;

  /**
   * Take the account's turn in this process. Whoever holds it may be waiting for the account's window
   * to free up, so we never wait for it while sitting on outcomes that hold that window: they are
   * recorded first.
   */
  protected async withTurn(fn: () => Promise<void>): Promise<void> {
    if (this.account.turn.busy && this.pending.size > 0) await this.flush();
    await this.account.turn.run(fn);
  }

  /** Render the recipients' texts; those that end here (template error, attempts used up) are counted. */
  protected plan(recipients: Recipient[], gaps: (n: number) => number[], lead: (text: string) => number): Planned[] {
    const planned: Planned[] = [];
    for (const recipient of recipients) {
      const text = textFor(this.d.ctx, this.d.templates, this.campaign, recipient, this.pending);
      if (text === null) this.processed++;
      else planned.push({ recipient, recipientId: recipient.id, campaignId: this.campaign.id, text, attempt: recipient.attempts + 1, gapMs: 0, leadMs: lead(text) });
    }
    gaps(planned.length).forEach((gap, i) => (planned[i]!.gapMs = gap));
    return planned;
  }

  /** Send one written-ahead message now. */
  protected send(p: Planned): Promise<SendAttempt> {
    const message: OutboundMessage = { to: p.recipient.phone, text: p.text, media: this.campaign.media, idempotencyKey: idempotencyKey(this.campaign.id, p.recipient.phone) };
    return sendOnce(this.d.ctx, this.account, message, this.d.ctx.clock.now());
  }

  /**
   * Write `planned` ahead (with the outcomes still to record), waiting out pacing and a full window.
   * `notBefore`: pacing this sender knows already (no round trip to be told "not yet"); `aheadMs`: how
   * far ahead the first slot may lie. Null when the sender stopped (they went back to the queue).
   */
  protected async writeAhead(planned: Planned[], window: number, notBefore = 0, aheadMs = 0): Promise<Grant[] | null> {
    const { ctx } = this.d;
    for (;;) {
      if (this.limits.signal.aborted) this.stop = { kind: 'halted' };
      if (this.stop || (notBefore > ctx.clock.now() && !(await this.waitUntil(notBefore, false)))) {
        this.queue.putBack(planned.map((p) => p.recipient));
        return null;
      }
      const now = ctx.clock.now();
      let grants: Grant[];
      try {
        grants = (await this.checkpoint(writeAhead(this.account.id, this.account.pacing, planned.map(toItem), window, now, ctx.options.capTimeZone, aheadMs))).grants;
      } catch (error) {
        // The store stays down. None of these was sent (a send waits for its grant), but the write-ahead
        // may have committed with its answer lost: its rows would then show `sending`, leased to us,
        // which no release frees. Each goes back to pending with its attempts as they were, recorded
        // with the outcomes kept for the next tick. (Not to the queue: another account of this
        // process could write it ahead before that outcome lands, and the outcome would undo it.)
        ctx.fail(`campaign ${this.campaign.id}: writing ${planned.length} send(s) ahead through ${this.account.id}`, error);
        const at = ctx.clock.now();
        for (const p of planned) this.pending.add(returnToPending(p.recipient, this.campaign.id, p.attempt - 1, at, false));
        this.stop = { kind: 'halted' };
        return null;
      }
      const first = grants[0]!;
      if (first.granted || !grants.every((g) => !g.granted && (g.reason === 'pacing' || g.reason === 'in_flight'))) return grants;
      if (first.reason === 'in_flight') {
        // The window is full. Its sends may be other senders' of this process, whose outcomes are
        // recorded only once they get the turn we hold: give it back and wait outside (see `windowFull`).
        this.queue.putBack(planned.map((p) => p.recipient));
        this.windowFull = true;
        return null;
      }
      if (!(await this.waitRecording(first.retryAt))) {
        this.queue.putBack(planned.map((p) => p.recipient));
        return null;
      }
    }
  }

  /** Record the pending outcomes and write `ahead` ahead, in one store call (see `Recorder.checkpoint`). */
  protected checkpoint(ahead: WriteAhead): Promise<CheckpointResult & { disabled: string[] }> {
    return this.d.recorder.checkpoint(this.pending, ahead);
  }

  /** Record the pending outcomes, if any; the accounts they disabled. */
  protected recordPending(): Promise<string[]> {
    return this.d.recorder.flush(this.pending);
  }

  /** How many of this sender's sends are on the wire now (a rate-paced sender has several). */
  protected onWire(): number {
    return 0;
  }

  /**
   * Wait until `at` holding no slot (as `waitUntil`). A long wait records within RECORD_WITHIN_MS the
   * answers of sends still on the wire meanwhile: an account backed off by a rate limit waits out up to
   * a minute here, and its sends' outcomes, which free the window for every worker and which a crash
   * would otherwise turn into sends in doubt, are not held that long. A short one (the pipeline's own
   * pacing) lets them ride with the write-ahead that follows it: recorded on their own every 50 ms,
   * the extra store calls made sends late (4 x 1,000/s: 944 sends given a new slot against 338).
   */
  private async waitRecording(at: number): Promise<boolean> {
    const { clock } = this.d.ctx;
    if (at - clock.now() <= LONG_WAIT_MS) return this.waitUntil(at, false);
    for (;;) {
      if (this.stop) return false;
      const waiting = this.onWire() > 0 || this.pending.size > 0;
      if (!waiting || (this.limits.deadline !== null && at > this.limits.deadline)) return this.waitUntil(at, false);
      if (this.pending.size > 0) await this.flush();
      const until = Math.min(at, clock.now() + RECORD_WITHIN_MS);
      if (!(await this.waitUntil(until, false))) return false;
      if (until >= at) return true;
    }
  }

  /** The last write-ahead found the account's window full; the caller waits outside the turn (`waitForWindow`). */
  protected windowFull = false;

  /** Wait a moment for the account's window to free up, outside the turn. False when the sender must stop. */
  protected async waitForWindow(): Promise<boolean> {
    this.windowFull = false;
    await this.flush();
    return this.waitUntil(this.d.ctx.clock.now() + IN_FLIGHT_POLL_MS, false);
  }

  /** Record a send the provider took. `accountNextSendAt`: pacing from this answer (interval schedule). */
  protected sent(p: Planned, providerMessageId: string, acceptedAt: number, accountNextSendAt?: number): void {
    const { ctx } = this.d;
    const ref = { campaignId: this.campaign.id, recipientId: p.recipient.id, phone: p.recipient.phone };
    this.processed++;
    const outcome: Outcome = {
      recipientId: p.recipient.id,
      campaignId: this.campaign.id,
      status: 'sent',
      attempts: p.attempt,
      at: acceptedAt,
      accountId: this.account.id,
      providerMessageId,
      accountEffect: 'success',
    };
    if (accountNextSendAt !== undefined) outcome.accountNextSendAt = accountNextSendAt;
    const accountId = this.account.id;
    this.pending.add(outcome, () => ctx.emit('message:sent', { campaignId: ref.campaignId, recipientId: ref.recipientId, phone: ref.phone, accountId, providerMessageId, attempt: p.attempt }));
    if (this.record.state === 'disabled' && !this.probed) {
      // The probe after a cooldown went through: the account comes back.
      this.probed = true;
      this.pending.reEnable = this.account.id;
    }
  }

  /** A write-ahead the store refused for this item (the group's first grant went through). */
  protected refused(p: Planned, g: Extract<Grant, { granted: false }>): void {
    if (g.reason === 'lease_lost') {
      this.d.ctx.log.warn(`lease lost on recipient ${p.recipient.id}; another worker owns it now`, { campaignId: this.campaign.id, recipientId: p.recipient.id });
      return;
    }
    // Not written ahead: back to the queue, for later or for another account.
    this.queue.putBack([p.recipient]);
    if (g.reason === 'account_unavailable') this.stop ??= { kind: 'account_gone' };
    else if (g.reason === 'daily_cap' || g.reason === 'hourly_cap') this.stop ??= { kind: 'deferred', retryAt: g.retryAt };
  }

  /**
   * Act on a failed send as `decideAfterFailure` says. The attempt happened (an ambiguous one may even
   * have reached the provider), so its outcome paces the account like a sent one: `accountNextSendAt`.
   */
  protected async failed(p: Planned, attempt: Extract<SendAttempt, { ok: false }>, accountNextSendAt?: number): Promise<void> {
    const { ctx } = this.d;
    const { error } = attempt;
    const now = ctx.clock.now();
    const decision = decideAfterFailure({ error, attempts: p.attempt, ...(attempt.lookup ? { lookup: attempt.lookup } : {}) }, this.campaign.settings, ctx.random);
    if (this.probing && decision.action !== 'account_lost' && decision.accountEffect === 'failure') {
      // The probe failed: the account goes back to its cooldown now, not after N more failures.
      this.probed = true;
      this.stop = { kind: 'account_gone' };
      await this.failedOnce(p, attempt, decision, now, accountNextSendAt);
      await this.flush();
      // (Unless its outcome took the account's run of failures to the threshold: disabled already.)
      if (!this.disabledHere) await disableAccount(ctx, this.account.id, 1, `the probe after its cooldown failed (${error.message})`);
      return;
    }
    await this.failedOnce(p, attempt, decision, now, accountNextSendAt);
  }

  private async failedOnce(
    p: Planned,
    attempt: Extract<SendAttempt, { ok: false }>,
    decision: ReturnType<typeof decideAfterFailure>,
    now: number,
    accountNextSendAt: number | undefined,
  ): Promise<void> {
    const { ctx } = this.d;
    const { error } = attempt;
    const ref = { campaignId: this.campaign.id, recipientId: p.recipient.id, phone: p.recipient.phone };
    switch (decision.action) {
      case 'retry': {
        if (error.kind === 'rate_limited' && error.scope !== 'recipient') this.account.throttle.slowDown(now);
        // A backoff rides with the outcome too: should the store refuse the write below, the outcome,
        // recorded later, still moves the account's next slot past it.
        const until = decision.backOffAccountMs === undefined ? accountNextSendAt : Math.max(accountNextSendAt ?? 0, now + decision.backOffAccountMs);
        this.pending.add({ ...returnToPending(p.recipient, this.campaign.id, decision.attempts, now, true), accountId: this.account.id, error: error.message, accountEffect: decision.accountEffect, ...paced(until) });
        ctx.emit('message:retrying', { ...ref, accountId: this.account.id, attempt: decision.attempts, error: error.message, kind: error.kind });
        // Its return to the queue is in this sender's pending outcomes: only this account retries it.
        this.queue.putBack([{ ...p.recipient, attempts: decision.attempts, text: p.text }], now + decision.afterMs, this.account.id);
        if (decision.backOffAccountMs !== undefined) {
          const ms = decision.backOffAccountMs;
          await this.storeEffect(`backing ${this.account.id} off for ${ms} ms`, () => backOffAccount(ctx, this.account.id, ms));
        }
        return;
      }
      case 'account_lost':
        // At once, before any await: sends of this account already granted must not leave now.
        this.account.lostAt = now;
        this.stop = { kind: 'account_gone' };
        // No attempt consumed; the recipient goes back to pending for another account or later.
        this.pending.add({ ...returnToPending(p.recipient, this.campaign.id, p.attempt - 1, now, false), accountId: this.account.id, ...paced(accountNextSendAt) });
        await this.flush();
        await this.storeEffect(`marking ${this.account.id} lost`, () => markAccountLost(ctx, this.account.id, error));
        this.stop = { kind: 'account_gone' };
        return;
      case 'finish': {
        this.processed++;
        const outcome: Outcome = {
          recipientId: p.recipient.id,
          campaignId: this.campaign.id,
          status: decision.status,
          attempts: p.attempt,
          at: now,
          accountId: this.account.id,
          error: error.message,
          skipReason: decision.skipReason ?? null,
          accountEffect: decision.accountEffect,
          ...paced(accountNextSendAt),
        };
        this.pending.add(outcome, () => {
          if (decision.status === 'skipped') ctx.emit('message:skipped', { ...ref, reason: decision.skipReason!, detail: error.message });
          else if (decision.status === 'unknown') ctx.emit('message:unknown', { ...ref, accountId: this.account.id });
          else ctx.emit('message:failed', { ...ref, accountId: this.account.id, error: error.message, kind: decision.kind });
        });
        const disabled = await this.flush();
        if (decision.optOut) {
          const why = `the provider says the contact stopped receiving messages (${error.message})`;
          await this.storeEffect(`opting ${p.recipient.phone} out`, () => recordOptOut(ctx, [p.recipient.phone], why, 'inbound'));
        }
        if (disabled.includes(this.account.id)) this.stop = { kind: 'account_gone' };
        if (error.scope === 'campaign') {
          // Every recipient would meet it (a template the provider rejects): stop spending sends on it.
          this.stop = { kind: 'halted' };
          await this.storeEffect(`pausing campaign ${this.campaign.id}`, () => autoPause(ctx, this.campaign, 'error_threshold', error.message));
        }
        return;
      }
    }
  }

  /**
   * A store write a failed send calls for besides its outcome (an account's backoff, a lost account, an
   * opt-out, a pause). The outcome is pending before it runs, and it never throws: when the store is
   * down it is reported, and the sender stops as when outcomes cannot be recorded (`flush`).
   */
  private async storeEffect(what: string, write: () => Promise<unknown>): Promise<void> {
    try {
      await write();
    } catch (error) {
      this.d.ctx.fail(`campaign ${this.campaign.id}: ${what}`, error);
      this.stop ??= { kind: 'halted' };
    }
  }

  /** Wait for a granted slot, showing "typing..." meanwhile. False when stopped first. */
  protected async waitForSlot(at: number, p: Planned): Promise<boolean> {
    if (at > this.d.ctx.clock.now() && p.leadMs > 0 && this.account.transport.typing) {
      void this.account.transport.typing(p.recipient.phone, p.leadMs).catch(() => undefined);
    }
    return this.waitUntil(at, true);
  }

  /**
   * Sleep until `at` on the engine's clock. False when the sender must stop instead: stopped
   * (halted), or, for a wait that holds no granted slot, `at` lies past the step's deadline (deferred).
   */
  protected async waitUntil(at: number, granted: boolean): Promise<boolean> {
    const { clock } = this.d.ctx;
    const now = clock.now();
    if (this.limits.signal.aborted) {
      this.stop ??= { kind: 'halted' };
      return false;
    }
    if (at <= now) return true;
    if (!granted && this.limits.deadline !== null && at > this.limits.deadline) {
      this.stop ??= { kind: 'deferred', retryAt: at };
      return false;
    }
    try {
      await clock.sleep(at - now, this.limits.signal);
      return true;
    } catch {
      this.stop ??= { kind: 'halted' };
      return false;
    }
  }

  /**
   * Record what is pending now. When the store stays down past its retries the outcomes stay pending
   * (the run's last flush keeps them for the next tick) and the sender stops. Returns the accounts
   * the outcomes disabled.
   */
  protected async flush(): Promise<string[]> {
    try {
      const disabled = await this.recordPending();
      if (disabled.includes(this.account.id)) this.disabledHere = true;
      return disabled;
    } catch (error) {
      this.d.ctx.fail(`campaign ${this.campaign.id}: recording outcomes of ${this.account.id}`, error);
      this.stop = { kind: 'halted' };
      return [];
    }
  }
}

const paced = (accountNextSendAt: number | undefined) => (accountNextSendAt !== undefined ? { accountNextSendAt } : {});

const toItem = (p: Planned): PlannedSend => ({ recipientId: p.recipientId, campaignId: p.campaignId, text: p.text, attempt: p.attempt, gapMs: p.gapMs, leadMs: p.leadMs });

/** The outcome that returns a leased recipient to pending: for a retry by the same owner (keeping the lease), or for anyone. */
export function returnToPending(r: { id: string }, campaignId: string, attempts: number, at: number, keepLease: boolean): Outcome {
  return { recipientId: r.id, campaignId, status: 'pending', keepLease, attempts, at, accountEffect: 'none' };
}
