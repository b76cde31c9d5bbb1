import type { Recipient } from '../domain/types.js';
import type { WriteAhead } from '../store/contract.js';
import { LATE_TOLERANCE_MS, rateGaps } from '../pacing/plan.js';
import { AccountSender, RECORD_WITHIN_MS, returnToPending, type Planned } from './sender.js';

/**
 * The schedule of rate-paced accounts (official APIs, `pacing.ratePerSecond`): sends leave at their
 * slots, spaced evenly at the account's rate, without waiting for each other's answers, up to its
 * window `maxInFlight` on the wire at once (the store counts them across every worker). The next
 * sends are written ahead while the current ones are still leaving (`aheadMs`), so the pipeline stays
 * full; their outcomes ride with that write-ahead. A send that would leave later than
 * `LATE_TOLERANCE_MS` after its slot is scheduled again instead of sent late (it could bunch with the
 * next ones and push a second over the rate). "Too fast" answers shrink the rate and the window for a
 * while (`Throttle`).
 */

export class RateSender extends AccountSender {
  private readonly outstanding = new Set<Promise<void>>();
  /**
   * Resolves when the next outstanding send ends. One promise for all of them: a race over the whole
   * window at every turn of the loop cost O(W) per send (a quarter of the process's CPU at 4 x 1,000/s).
   */
  private ended: { promise: Promise<void>; resolve: () => void } | null = null;
  /** Sends planned so far by this sender: their slots continue one exact spacing (see `rateGaps`). */
  private slotsPlanned = 0;
  /** Wakes the schedule when the oldest outcome is due to be recorded (RECORD_WITHIN_MS). */
  private due: Promise<void> | null = null;

  /** The window in use now: the configured one, shrunk after "too fast" answers; one send while probing. */
  private get window(): number {
    if (this.probing) return 1;
    return Math.max(1, Math.floor(this.account.pacing.maxInFlight * this.account.throttle.share));
  }

  protected override onWire(): number {
    return this.outstanding.size;
  }

  /** This sender's store calls under way, and when the last of them settles (see `inOrder`). */
  private storeCalls = 0;
  private lastCall: Promise<unknown> = Promise.resolve();

  /**
   * Run `call` after this sender's store calls before it. Its sends record from their own tasks (a
   * failure flushes) while the schedule writes the next ones ahead. Had a write-ahead passed a flush
   * still retrying, it could write a retried recipient ahead before that recipient's return to pending
   * was recorded: the store refuses it (lease lost), and the return then lands and leaves the
   * recipient pending, leased to us, never sent. (An interval sender makes one call at a time anyway.)
   */
  private inOrder<T>(call: () => Promise<T>): Promise<T> {
    // At once when none is under way (the common case: no wait for a turn of the microtask queue).
    const next = this.storeCalls === 0 ? call() : this.lastCall.then(call, call);
    this.storeCalls++;
    const settled = () => void this.storeCalls--;
    this.lastCall = next.then(settled, settled);
    return next;
  }

  protected override checkpoint(ahead: WriteAhead) {
    return this.inOrder(() => super.checkpoint(ahead));
  }

  protected override recordPending() {
    return this.inOrder(() => super.recordPending());
  }

  protected async schedule(): Promise<void> {
    const { clock } = this.d.ctx;
    try {
      for (;;) {
        if (this.limits.signal.aborted) this.stop ??= { kind: 'halted' };
        // The next slice is claimed while this one leaves, so the window stays full across slices.
        const claiming = this.stop ? null : this.queue.topUp(this.window);
        const room = this.window - this.outstanding.size;
        // Write ahead in groups of a quarter window at least (fewer store calls), unless nothing is on the wire.
        if (!this.stop && room > 0 && (room * 4 >= this.window || this.outstanding.size === 0)) {
          const recipients = this.queue.take(this.account.id, room, clock.now());
          if (recipients.length > 0) {
            await this.withTurn(() => this.launch(recipients));
            if (this.windowFull) {
              // Our own sends coming back free it; otherwise wait a moment for other workers' to.
              if (this.outstanding.size === 0) {
                if (!(await this.waitForWindow())) break;
              } else {
                this.windowFull = false;
                await this.nextEnd();
              }
            }
            continue;
          }
          if (this.outstanding.size === 0) {
            if (claiming) {
              await claiming;
              continue;
            }
            const ready = this.queue.nextReady(this.account.id);
            if (ready === null) break;
            await this.flush();
            if (!(await this.waitUntil(ready, false))) break;
            continue;
          }
        }
        if (this.outstanding.size === 0) {
          if (!claiming) break;
          await claiming;
          continue;
        }
        // Outcomes free the window (for other workers too): record them once an eighth of a window has come
        // back, or the oldest has waited RECORD_WITHIN_MS; then look again (every send may have come back
        // meanwhile: there would be nothing to wait for).
        const waited = this.pending.size > 0 ? clock.now() - this.pending.outcomes[0]!.at : 0;
        if (!this.stop && this.pending.size > 0 && (this.pending.size * 8 >= this.window || waited >= RECORD_WITHIN_MS)) {
          await this.flush();
          continue;
        }
        if (!this.stop && this.pending.size > 0 && !this.due) {
          this.due = clock
            .sleep(Math.min(RECORD_WITHIN_MS, RECORD_WITHIN_MS - waited), this.limits.signal)
            .catch(() => undefined)
            .finally(() => (this.due = null));
        }
        await Promise.race([this.nextEnd(), ...(claiming ? [claiming] : []), ...(this.due ? [this.due] : [])]);
      }
    } finally {
      await Promise.allSettled([...this.outstanding]);
    }
  }

  /** Write a group ahead and start each granted send at its slot. */
  private async launch(recipients: Recipient[]): Promise<void> {
    const pacing = this.account.pacing;
    const share = this.account.throttle.share;
    const planned = this.plan(
      recipients,
      (n) => rateGaps(pacing, n, share, (this.slotsPlanned += n) - n),
      () => 0,
    );
    if (planned.length === 0) return;
    // The first slot may lie as far ahead as a full window of sends takes at this rate.
    const aheadMs = Math.ceil((this.window * 1_000) / (pacing.ratePerSecond! * share));
    const grants = await this.writeAhead(planned, this.window, 0, aheadMs);
    if (!grants) return;
    const grantedAt = this.d.ctx.clock.now();
    grants.forEach((g, i) => {
      const p = planned[i]!;
      if (!g.granted) return this.refused(p, g);
      // A send's task never rejects: nothing awaits it until the schedule ends, and a rejection left
      // unhandled that long would take the process down (failed() keeps its store writes from throwing).
      const task: Promise<void> = this.sendAt(p, g.slotAt, grantedAt).catch((error: unknown) => {
        this.d.ctx.fail(`campaign ${this.campaign.id}: sending through ${this.account.id}`, error);
        this.stop ??= { kind: 'halted' };
      }).finally(() => {
        this.outstanding.delete(task);
        const ended = this.ended;
        this.ended = null;
        ended?.resolve();
      });
      this.outstanding.add(task);
    });
  }

  /** A promise that resolves when the next outstanding send ends. */
  private nextEnd(): Promise<void> {
    if (!this.ended) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.ended = { promise, resolve };
    }
    return this.ended.promise;
  }

  private async sendAt(p: Planned, slotAt: number, grantedAt: number): Promise<void> {
    const { clock } = this.d.ctx;
    // Stopped meanwhile (the campaign paused), or the account was lost since (by any sender here): not sent.
    if (!(await this.waitUntil(slotAt, true)) || this.stop || this.account.lostAt >= grantedAt) {
      this.pending.add(returnToPending(p.recipient, this.campaign.id, p.attempt - 1, clock.now(), false));
      return;
    }
    if (clock.now() > slotAt + LATE_TOLERANCE_MS) {
      // Too late for its slot: not an attempt; it gets a new slot (its lease kept, this sender retries it).
      this.pending.add(returnToPending(p.recipient, this.campaign.id, p.attempt - 1, clock.now(), true));
      this.queue.putBack([{ ...p.recipient, text: p.text }], 0, this.account.id);
      return;
    }
    const attempt = await this.send(p);
    if (attempt.ok) {
      this.sent(p, attempt.sent.providerMessageId, attempt.sent.acceptedAt);
      this.account.throttle.sent();
    } else {
      await this.failed(p, attempt);
    }
  }
}
