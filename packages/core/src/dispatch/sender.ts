import type { AccountRuntime } from '../context.js';
import type { AccountRecord, Campaign, Recipient } from '../domain/types.js';
import { drawGap, groupSize, inFlightWindow, typingMs, writeAhead, type PlannedSend } from '../pacing/plan.js';
import type { Grant } from '../rules/slots.js';
import type { Outcome } from '../store/contract.js';
import type { OutboundMessage } from '../transport/contract.js';
import { backOffAccount, markAccountLost } from './account-health.js';
import { decideAfterFailure } from './decide.js';
import type { Dispatcher } from './dispatcher.js';
import { recordOptOut } from './opt-out.js';
import type { RecipientQueue } from './queue.js';
import { PendingOutcomes } from './recorder.js';
import { textFor } from './render.js';
import { idempotencyKey, sendOnce, type SendAttempt } from './send.js';

/** Bounds of one tick: step mode's deadline (no new wait may end after it) and the stop signal. */
export interface TickLimits {
  deadline: number | null;
  signal: AbortSignal;
}

/** Why an account's sender stopped before the queue ran dry. */
export type SenderStop = { kind: 'account_gone' } | { kind: 'deferred'; retryAt: number } | { kind: 'halted' };

/** How often a sender asks again while the account's window is full (another worker's send is on the wire). */
const IN_FLIGHT_POLL_MS = 100;

interface Planned extends PlannedSend {
  recipient: Recipient;
}

/**
 * One account's share of a tick: the one send path. It takes recipients from the shared queue in
 * groups (a single send is a group of one), writes the group ahead in one checkpoint together with
 * the outcomes still to record, waits for each slot, sends, and turns each answer into an outcome or,
 * on failure, into a decision (`decideAfterFailure`): a retry goes back to the queue; nothing is
 * thrown to steer the flow. Pacing follows the sends as they really happened: the next send of the
 * account waits for the previous answer plus its gap (`notBefore`), whatever the slot said.
 */
export class AccountSender {
  private readonly pending = new PendingOutcomes();
  private readonly group: number;
  private readonly window: number;
  private processed = 0;
  private stop: SenderStop | null = null;
  /** The account's next send comes no earlier than this: its last answer plus the gap after it. */
  private notBefore = 0;
  private probed = false;

  constructor(
    private readonly d: Dispatcher,
    private readonly campaign: Campaign,
    private readonly account: AccountRuntime,
    private readonly record: AccountRecord,
    private readonly queue: RecipientQueue,
    private readonly limits: TickLimits,
  ) {
    this.group = groupSize(account.pacing, d.ctx.options.checkpoints);
    this.window = inFlightWindow(account.pacing, this.group);
  }

  async run(): Promise<{ processed: number; stop: SenderStop | null }> {
    const { clock } = this.d.ctx;
    try {
      while (!this.stop && this.queue.size > 0 && !this.limits.signal.aborted) {
        const recipients = this.queue.take(this.account.id, this.group, clock.now());
        if (recipients.length === 0) {
          const ready = this.queue.nextReady(this.account.id);
          if (ready === null) break;
          // Before waiting: nothing of ours may hold the account's window meanwhile.
          await this.flush();
          if (!(await this.waitUntil(ready, false))) break;
          continue;
        }
        await this.account.turn.run(() => this.sendGroup(recipients));
      }
    } finally {
      await this.d.recorder.flush(this.pending).catch((error) => this.d.recorder.keep(this.pending, error));
    }
    return { processed: this.processed, stop: this.stop };
  }

  private async sendGroup(recipients: Recipient[]): Promise<void> {
    const { ctx } = this.d;
    const pacing = this.account.pacing;
    const planned: Planned[] = [];
    for (const recipient of recipients) {
      const text = textFor(ctx, this.d.templates, this.campaign, recipient, this.pending);
      if (text === null) this.processed++;
      else planned.push({ recipient, recipientId: recipient.id, campaignId: this.campaign.id, text, attempt: recipient.attempts + 1, gapMs: drawGap(pacing, ctx.random), leadMs: typingMs(pacing, text) });
    }
    if (planned.length > 0) {
      const grants = await this.writeAhead(planned);
      if (grants) await this.sendGranted(planned, grants);
    }
    // The outcomes ride with the next write-ahead when it follows at once, from this sender, holding
    // the turn. Otherwise record them now: a send's outcome frees the account's window, and another
    // sender (another campaign here, another worker) must not wait on outcomes we sit on.
    const now = ctx.clock.now();
    const next = this.queue.nextReady(this.account.id);
    const followsAtOnce = !this.stop && next !== null && next <= now && this.notBefore <= now && !this.pending.reEnable && !this.account.turn.contended;
    if (!followsAtOnce) await this.flush();
  }

  /** Write `planned` ahead, waiting out pacing and a full window. Null when the sender stopped (they went back to the queue). */
  private async writeAhead(planned: Planned[]): Promise<Grant[] | null> {
    const { ctx } = this.d;
    for (;;) {
      if (this.limits.signal.aborted) this.stop = { kind: 'halted' };
      // Pacing from what this sender knows first: no round trip to be told "not yet".
      if (this.stop || (this.notBefore > ctx.clock.now() && !(await this.waitUntil(this.notBefore, false)))) {
        this.queue.putBack(planned.map((p) => p.recipient));
        return null;
      }
      const now = ctx.clock.now();
      let grants: Grant[];
      try {
        grants = (await this.d.recorder.checkpoint(this.pending, writeAhead(this.account.id, this.account.pacing, planned.map(toItem), this.window, now, ctx.options.capTimeZone))).grants;
      } catch (error) {
        // The store stays down. None of these was sent (a send waits for its grant); the slice releases them.
        ctx.fail(`campaign ${this.campaign.id}: writing ${planned.length} send(s) ahead through ${this.account.id}`, error);
        this.queue.putBack(planned.map((p) => p.recipient));
        this.stop = { kind: 'halted' };
        return null;
      }
      const first = grants[0]!;
      const waiting = grants.every((g) => !g.granted && (g.reason === 'pacing' || g.reason === 'in_flight'));
      if (!waiting) return grants;
      const retryAt = !first.granted && first.reason === 'pacing' ? first.retryAt : now + IN_FLIGHT_POLL_MS;
      if (!(await this.waitUntil(retryAt, false))) {
        this.queue.putBack(planned.map((p) => p.recipient));
        return null;
      }
    }
  }

  private async sendGranted(planned: Planned[], grants: Grant[]): Promise<void> {
    const { ctx } = this.d;
    let lastFlush = ctx.clock.now();
    for (let i = 0; i < planned.length; i++) {
      const p = planned[i]!;
      const g = grants[i]!;
      if (!g.granted) {
        this.refused(p, g);
        continue;
      }
      // Written ahead (`sending`) but not to be sent now: back to pending, attempts untouched.
      if (this.stop || !(await this.waitForSlot(Math.max(g.slotAt, this.notBefore), p))) {
        this.pending.add(returnToPending(p.recipient, this.campaign.id, p.attempt - 1, ctx.clock.now(), false));
        continue;
      }
      const startedAt = ctx.clock.now();
      const message: OutboundMessage = { to: p.recipient.phone, text: p.text, media: this.campaign.media, idempotencyKey: idempotencyKey(this.campaign.id, p.recipient.phone) };
      const attempt = await sendOnce(ctx, this.account, message, startedAt);
      const endedAt = ctx.clock.now();
      this.notBefore = endedAt + p.gapMs;
      if (!attempt.ok) {
        // This one leaves the group; the unsent rest goes back to the queue, still leased to us.
        const rest = planned.slice(i + 1).filter((_, j) => grants[i + 1 + j]!.granted);
        for (const r of rest) this.pending.add(returnToPending(r.recipient, this.campaign.id, r.attempt - 1, endedAt, true));
        this.queue.putBack(rest.map((r) => r.recipient));
        for (let j = i + 1; j < planned.length; j++) {
          const later = grants[j]!;
          if (!later.granted) this.refused(planned[j]!, later);
        }
        await this.failed(p, attempt, endedAt + p.gapMs);
        return;
      }
      this.sent(p, attempt.sent.providerMessageId, attempt.sent.acceptedAt, endedAt);
      if (this.pending.reEnable || (this.group > 1 && endedAt - lastFlush >= ctx.options.checkpoints.maxDelayMs)) {
        await this.flush();
        lastFlush = ctx.clock.now();
      }
    }
  }

  private sent(p: Planned, providerMessageId: string, acceptedAt: number, endedAt: number): void {
    const { ctx } = this.d;
    const ref = { campaignId: this.campaign.id, recipientId: p.recipient.id, phone: p.recipient.phone };
    this.processed++;
    this.pending.add(
      {
        recipientId: p.recipient.id,
        campaignId: this.campaign.id,
        status: 'sent',
        attempts: p.attempt,
        at: acceptedAt,
        accountId: this.account.id,
        providerMessageId,
        accountEffect: 'success',
        accountNextSendAt: endedAt + p.gapMs,
      },
      () => ctx.emit('message:sent', { ...ref, accountId: this.account.id, providerMessageId, attempt: p.attempt }),
    );
    if (this.record.state === 'disabled' && !this.probed) {
      // The probe after a cooldown went through: the account comes back.
      this.probed = true;
      this.pending.reEnable = this.account.id;
    }
  }

  /** A write-ahead the store refused for this item (the group's first grant went through). */
  private refused(p: Planned, g: Extract<Grant, { granted: false }>): void {
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
  private async failed(p: Planned, attempt: Extract<SendAttempt, { ok: false }>, accountNextSendAt: number): Promise<void> {
    const { ctx } = this.d;
    const { error } = attempt;
    const ref = { campaignId: this.campaign.id, recipientId: p.recipient.id, phone: p.recipient.phone };
    const now = ctx.clock.now();
    const decision = decideAfterFailure({ error, attempts: p.attempt, ...(attempt.lookup ? { lookup: attempt.lookup } : {}) }, this.campaign.settings, ctx.random);
    switch (decision.action) {
      case 'retry': {
        if (decision.backOffAccountMs !== undefined) await backOffAccount(ctx, this.account.id, decision.backOffAccountMs);
        this.pending.add({ ...returnToPending(p.recipient, this.campaign.id, decision.attempts, now, true), accountId: this.account.id, error: error.message, accountEffect: decision.accountEffect, accountNextSendAt });
        ctx.emit('message:retrying', { ...ref, accountId: this.account.id, attempt: decision.attempts, error: error.message, kind: error.kind });
        // Its return to the queue is in this sender's pending outcomes: only this account retries it.
        this.queue.putBack([{ ...p.recipient, attempts: decision.attempts, text: p.text }], now + decision.afterMs, this.account.id);
        return;
      }
      case 'account_lost':
        // No attempt consumed; the recipient goes back to pending for another account or later.
        this.pending.add({ ...returnToPending(p.recipient, this.campaign.id, p.attempt - 1, now, false), accountId: this.account.id, accountNextSendAt });
        await this.flush();
        await markAccountLost(ctx, this.account.id, error);
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
          accountNextSendAt,
        };
        this.pending.add(outcome, () => {
          if (decision.status === 'skipped') ctx.emit('message:skipped', { ...ref, reason: decision.skipReason!, detail: error.message });
          else if (decision.status === 'unknown') ctx.emit('message:unknown', { ...ref, accountId: this.account.id });
          else ctx.emit('message:failed', { ...ref, accountId: this.account.id, error: error.message, kind: decision.kind });
        });
        const disabled = await this.flush();
        if (decision.optOut) await recordOptOut(ctx, [p.recipient.phone], `the provider says the contact stopped receiving messages (${error.message})`, 'inbound');
        if (disabled.includes(this.account.id)) this.stop = { kind: 'account_gone' };
        return;
      }
    }
  }

  /** Wait for a granted slot, showing "typing..." meanwhile. False when stopped first. */
  private async waitForSlot(at: number, p: Planned): Promise<boolean> {
    if (at > this.d.ctx.clock.now() && p.leadMs > 0 && this.account.transport.typing) {
      void this.account.transport.typing(p.recipient.phone, p.leadMs).catch(() => undefined);
    }
    return this.waitUntil(at, true);
  }

  /**
   * Sleep until `at` on the engine's clock. False when the sender must stop instead: stopped
   * (halted), or, for a wait that holds no granted slot, `at` lies past the step's deadline (deferred).
   */
  private async waitUntil(at: number, granted: boolean): Promise<boolean> {
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
  private async flush(): Promise<string[]> {
    try {
      return await this.d.recorder.flush(this.pending);
    } catch (error) {
      this.d.ctx.fail(`campaign ${this.campaign.id}: recording outcomes of ${this.account.id}`, error);
      this.stop = { kind: 'halted' };
      return [];
    }
  }
}

const toItem = (p: Planned): PlannedSend => ({ recipientId: p.recipientId, campaignId: p.campaignId, text: p.text, attempt: p.attempt, gapMs: p.gapMs, leadMs: p.leadMs });

/** The outcome that returns a leased recipient to pending: for a retry by the same owner (keeping the lease), or for anyone. */
export function returnToPending(r: { id: string }, campaignId: string, attempts: number, at: number, keepLease: boolean): Outcome {
  return { recipientId: r.id, campaignId, status: 'pending', keepLease, attempts, at, accountEffect: 'none' };
}
