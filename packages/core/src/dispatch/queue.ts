import type { Recipient } from '../domain/types.js';

interface Entry {
  recipient: Recipient;
  /** Not to be sent before this time (a retry's backoff, one contact's rate limit). */
  notBefore: number;
  /** Only this account may take it (a retry: its return to the queue is recorded with that account's outcomes). */
  pinnedTo?: string | undefined;
}

/**
 * The claimed recipients of one tick, shared by the campaign's account senders: each takes the next
 * ready recipient that is not pinned to another account (sticky senders), so faster accounts take
 * more (round robin weighted by readiness). Retries come back to the front with a `notBefore`.
 * Taken entries leave holes that `head` skips, so taking from the front costs O(1), not a shift.
 */
export class RecipientQueue {
  private entries: Array<Entry | null>;
  private head = 0;
  private count: number;

  constructor(
    recipients: Recipient[],
    private readonly sticky: Map<string, string>,
  ) {
    this.entries = recipients.map((recipient) => ({ recipient, notBefore: 0 }));
    this.count = recipients.length;
  }

  get size(): number {
    return this.count;
  }

  private mayTake(e: Entry, accountId: string): boolean {
    return (e.pinnedTo ?? (this.sticky.size === 0 ? undefined : this.sticky.get(e.recipient.phone)) ?? accountId) === accountId;
  }

  /** Up to `n` recipients for `accountId` that are ready at `now`, in queue order. */
  take(accountId: string, n: number, now: number): Recipient[] {
    const out: Recipient[] = [];
    for (let i = this.head; i < this.entries.length && out.length < n; i++) {
      const e = this.entries[i];
      if (!e || e.notBefore > now || !this.mayTake(e, accountId)) continue;
      out.push(e.recipient);
      this.entries[i] = null;
      this.count--;
    }
    while (this.head < this.entries.length && this.entries[this.head] === null) this.head++;
    return out;
  }

  /** When the next recipient `accountId` may take becomes ready (`now` or earlier if one is ready); null when it has none. */
  nextReady(accountId: string, now = Number.NEGATIVE_INFINITY): number | null {
    let at: number | null = null;
    for (let i = this.head; i < this.entries.length; i++) {
      const e = this.entries[i];
      if (!e || !this.mayTake(e, accountId)) continue;
      if (e.notBefore <= now) return e.notBefore;
      at = at === null ? e.notBefore : Math.min(at, e.notBefore);
    }
    return at;
  }

  /** Put recipients back at the front (in order), ready at `notBefore`, for any account or only `pinnedTo`. */
  putBack(recipients: Recipient[], notBefore = 0, pinnedTo?: string): void {
    const back = recipients.map((recipient): Entry => ({ recipient, notBefore, pinnedTo }));
    if (back.length <= this.head) {
      this.head -= back.length;
      for (let i = 0; i < back.length; i++) this.entries[this.head + i] = back[i]!;
    } else {
      this.entries.splice(this.head, 0, ...back);
    }
    this.count += back.length;
  }

  /** Empty the queue, returning what was left. */
  drain(): Recipient[] {
    const left = this.entries.slice(this.head).flatMap((e) => (e ? [e.recipient] : []));
    this.entries = [];
    this.head = 0;
    this.count = 0;
    return left;
  }
}
