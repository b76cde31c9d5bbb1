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
 */
export class RecipientQueue {
  private entries: Entry[];

  constructor(
    recipients: Recipient[],
    private readonly sticky: Map<string, string>,
  ) {
    this.entries = recipients.map((recipient) => ({ recipient, notBefore: 0 }));
  }

  private mayTake(e: Entry, accountId: string): boolean {
    return (e.pinnedTo ?? this.sticky.get(e.recipient.phone) ?? accountId) === accountId;
  }

  get size(): number {
    return this.entries.length;
  }

  /** Up to `n` recipients for `accountId` that are ready at `now`, in queue order. */
  take(accountId: string, n: number, now: number): Recipient[] {
    const out: Recipient[] = [];
    for (let i = 0; i < this.entries.length && out.length < n; ) {
      const e = this.entries[i]!;
      if (e.notBefore <= now && this.mayTake(e, accountId)) {
        out.push(e.recipient);
        this.entries.splice(i, 1);
      } else i++;
    }
    return out;
  }

  /** When the next recipient `accountId` may take becomes ready; null when it has none left. */
  nextReady(accountId: string): number | null {
    let at: number | null = null;
    for (const e of this.entries) {
      if (!this.mayTake(e, accountId)) continue;
      at = at === null ? e.notBefore : Math.min(at, e.notBefore);
    }
    return at;
  }

  /** Put recipients back at the front (in order), ready at `notBefore`, for any account or only `pinnedTo`. */
  putBack(recipients: Recipient[], notBefore = 0, pinnedTo?: string): void {
    this.entries.unshift(...recipients.map((recipient) => ({ recipient, notBefore, pinnedTo })));
  }

  /** Empty the queue, returning what was left. */
  drain(): Recipient[] {
    return this.entries.splice(0).map((e) => e.recipient);
  }
}
