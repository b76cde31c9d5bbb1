import type { Recipient } from '../domain/types.js';
import { drawGap, groupSize, inFlightWindow, typingMs } from '../pacing/plan.js';
import type { Grant } from '../rules/slots.js';
import { AccountSender, returnToPending, type Planned } from './sender.js';

/**
 * The schedule of human-paced accounts (Evolution, Baileys): one send after the other's answer, the
 * gap counted from that answer (`notBefore`), so consecutive sends are never closer than the gap as
 * the provider sees them, whatever the network did. Grouped checkpoints write several ahead at once
 * and still send them one after the other.
 */
export class IntervalSender extends AccountSender {
  /** The account's next send comes no earlier than this: its last answer plus the gap after it. */
  private notBefore = 0;

  private get group(): number {
    return groupSize(this.account.pacing, this.d.ctx.options.checkpoints);
  }

  protected async schedule(): Promise<void> {
    const { clock } = this.d.ctx;
    for (;;) {
      if (this.stop || this.limits.signal.aborted) break;
      // The next slice is claimed while this one is sent (see Dispatcher.refill).
      const claiming = this.queue.topUp(this.group);
      if (this.queue.size === 0) {
        if (!claiming) break;
        await claiming;
        continue;
      }
      const recipients = this.queue.take(this.account.id, this.group, clock.now());
      if (recipients.length === 0) {
        const ready = this.queue.nextReady(this.account.id);
        if (ready === null) {
          if (!claiming) break;
          await claiming;
          continue;
        }
        // Before waiting: nothing of ours may hold the account's window meanwhile.
        await this.flush();
        if (!(await this.waitUntil(ready, false))) break;
        continue;
      }
      await this.withTurn(() => this.sendGroup(recipients));
      if (this.windowFull && !(await this.waitForWindow())) break;
    }
  }

  private async sendGroup(recipients: Recipient[]): Promise<void> {
    const { ctx } = this.d;
    const pacing = this.account.pacing;
    const planned = this.plan(
      recipients,
      (n) => Array.from({ length: n }, () => drawGap(pacing, ctx.random)),
      (text) => typingMs(pacing, text),
    );
    if (planned.length > 0) {
      const grants = await this.writeAhead(planned, inFlightWindow(pacing, this.group), this.notBefore);
      if (grants) await this.sendGranted(planned, grants);
    }
    // The outcomes ride with the next write-ahead when it follows at once, from this sender, holding
    // the turn. Otherwise record them now: a send's outcome frees the account's window, and another
    // sender (another campaign here, another worker) must not wait on outcomes we sit on.
    const now = ctx.clock.now();
    const next = this.queue.nextReady(this.account.id, now);
    const followsAtOnce = !this.stop && next !== null && next <= now && this.notBefore <= now && !this.pending.reEnable && !this.account.turn.contended;
    if (!followsAtOnce) await this.flush();
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
      const attempt = await this.send(p);
      const endedAt = ctx.clock.now();
      this.notBefore = endedAt + p.gapMs;
      if (!attempt.ok) {
        // This one leaves the group; the unsent rest goes back to the queue, still leased to us.
        const rest = planned.slice(i + 1).filter((_, j) => grants[i + 1 + j]!.granted);
        for (const r of rest) this.pending.add(returnToPending(r.recipient, this.campaign.id, r.attempt - 1, endedAt, true));
        // Pinned to this account: their returns to pending are this sender's outcomes, recorded with
        // its next write-ahead. Another account of this process could write them ahead before that
        // (a "repeat" of a row still `sending`, outside its pacing and window), and the returns,
        // landing after, would put back to pending a message the provider had accepted.
        this.queue.putBack(
          rest.map((r) => r.recipient),
          0,
          this.account.id,
        );
        for (let j = i + 1; j < planned.length; j++) {
          const later = grants[j]!;
          if (!later.granted) this.refused(planned[j]!, later);
        }
        await this.failed(p, attempt, endedAt + p.gapMs);
        return;
      }
      this.sent(p, attempt.sent.providerMessageId, attempt.sent.acceptedAt, endedAt + p.gapMs);
      if (this.pending.reEnable || (this.group > 1 && endedAt - lastFlush >= ctx.options.checkpoints.maxDelayMs)) {
        await this.flush();
        lastFlush = ctx.clock.now();
      }
    }
  }
}
