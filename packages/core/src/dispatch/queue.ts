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
 * The queue is refilled while the accounts send (`refillWith`, `topUp`).
 */
export class RecipientQueue {
  private entries: Array<Entry | null>;
  private head = 0;
  private count: number;
  private halted = false;
  private refiller: (() => Promise<boolean>) | null = null;
  private refilling: Promise<void> | null = null;
  /** Claim the next slice once fewer than this are left, at least (`refillWith`). */
  private refillLow = 0;

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
    if (this.halted) return out;
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
    if (this.halted) return at;
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

  /** Add recipients claimed later in the tick at the back, with the contacts they are pinned to. */
  add(recipients: Recipient[], sticky: Map<string, string>): void {
    for (const [phone, accountId] of sticky) this.sticky.set(phone, accountId);
    if (this.head > 1_024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    for (const recipient of recipients) this.entries.push({ recipient, notBefore: 0 });
    this.count += recipients.length;
  }

  /** Hand out nothing more (the campaign stopped running); what is left is released by `close`. */
  halt(): void {
    this.halted = true;
    this.refiller = null;
  }

  /**
   * Let the senders claim more while they work. `claim` adds the next slice (`add`) and says whether
   * more may follow: false once the tick must take no more (the batch ran dry, the campaign stopped
   * running, the tick's time is up). `low`: claim once fewer than this are left, at least (half a
   * slice: every account of the queue draws on it while a claim of a whole slice is under way).
   */
  refillWith(claim: () => Promise<boolean>, low = 0): void {
    this.refiller = claim;
    this.refillLow = low;
  }

  /**
   * Claim the next slice when fewer than `low` (or the queue's own threshold, if higher) recipients
   * are left, one claim at a time. Returns the claim under way (to wait for when there is nothing
   * else to do), or null when none is.
   */
  topUp(low: number): Promise<void> | null {
    if (this.refilling || !this.refiller || this.count >= Math.max(low, this.refillLow)) return this.refilling;
    const claim = this.refiller;
    this.refilling = claim()
      .then(
        (more) => {
          if (!more && this.refiller === claim) this.refiller = null;
        },
        () => {
          this.refiller = null;
        },
      )
      .finally(() => (this.refilling = null));
    return this.refilling;
  }

  /** Claim no more, wait for a claim under way, and empty the queue, returning what was left. */
  async close(): Promise<Recipient[]> {
    this.refiller = null;
    await this.refilling;
    return this.drain();
  }

  /** Empty the queue, returning what was left; no more is claimed into it. */
  drain(): Recipient[] {
    this.refiller = null;
    const left = this.entries.slice(this.head).flatMap((e) => (e ? [e.recipient] : []));
    this.entries = [];
    this.head = 0;
    this.count = 0;
    return left;
  }
}
