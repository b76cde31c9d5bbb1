import type { EngineContext } from '../context.js';
import { backoffMs } from '../pacing/backoff.js';
import type { CheckpointResult, Outcome, WriteAhead } from '../store/contract.js';
import { disableAccount, enableAccount } from './account-health.js';

/** Outcomes not yet recorded, with the events to emit once they are. */
export class PendingOutcomes {
  outcomes: Outcome[] = [];
  events: Array<() => void> = [];
  /** An account whose probe send succeeded: enable it once recorded. */
  reEnable: string | undefined;

  add(outcome: Outcome, event?: () => void): void {
    this.outcomes.push(outcome);
    if (event) this.events.push(event);
  }

  get size(): number {
    return this.outcomes.length;
  }

  /** Move everything from `other` to the end of this one. */
  absorb(other: PendingOutcomes): void {
    this.outcomes.push(...other.outcomes.splice(0));
    this.events.push(...other.events.splice(0));
    this.reEnable = other.reEnable ?? this.reEnable;
    other.reEnable = undefined;
  }
}

/** Tries of a store write that records sends: backoff with jitter from ~100 ms to ~4 s (about 11 s in all). */
const STORE_WRITE_TRIES = 7;

/**
 * The one way outcomes reach the store: `checkpoint` records what is pending (and writes the next
 * sends ahead in the same store call), retrying a failing write with backoff; then it acts on what
 * the store answered (accounts to disable or enable, events). Outcomes the store would not take even
 * after the retries stay pending (their rows stay leased to this owner, renewed by the heartbeat) and
 * are recorded first thing at the next tick: see `keep`.
 */
export class Recorder {
  /** Outcomes of sends already made that the store refused past its retries (it stayed down). */
  private readonly kept = new PendingOutcomes();

  constructor(
    private readonly ctx: EngineContext,
    readonly owner: string,
  ) {}

  /** Record `pending` (all of it) and write `writeAhead` ahead, in one store call. Throws when the store stays down; `pending` then keeps its outcomes. */
  async checkpoint(pending: PendingOutcomes, writeAhead?: WriteAhead): Promise<CheckpointResult & { disabled: string[] }> {
    const outcomes = pending.outcomes.splice(0);
    const events = pending.events.splice(0);
    const reEnable = pending.reEnable;
    pending.reEnable = undefined;
    const { store, clock, options } = this.ctx;
    let result: CheckpointResult;
    try {
      result = await this.withRetries(writeAhead ? 'recording sends ahead' : 'recording outcomes', () =>
        store.checkpoint({ owner: this.owner, now: clock.now(), leaseMs: options.leaseMs, outcomes, ...(writeAhead ? { writeAhead } : {}) }),
      );
    } catch (error) {
      pending.outcomes.unshift(...outcomes);
      pending.events.unshift(...events);
      pending.reEnable ??= reEnable;
      throw error;
    }
    const disabled = this.afterRecorded(outcomes, result);
    for (const emit of events) emit();
    if (reEnable && !disabled.includes(reEnable)) await enableAccount(this.ctx, reEnable);
    return { ...result, disabled };
  }

  /** Record what is pending, if anything. Returns the accounts this disabled. */
  async flush(pending: PendingOutcomes): Promise<string[]> {
    if (pending.size === 0 && !pending.reEnable) return [];
    return (await this.checkpoint(pending)).disabled;
  }

  /**
   * The store stayed down: keep `pending` for the next tick, and say so. A retry kept its lease to be
   * sent again in this tick; the tick is over, so it is kept releasing its row instead: leased to us
   * once recorded, with nothing left here to send it, it would stay `pending` for good (the heartbeat
   * renewing its lease), and its campaign would never complete.
   */
  keep(pending: PendingOutcomes, error: unknown): void {
    const n = pending.size;
    for (const [i, o] of pending.outcomes.entries()) if (o.status === 'pending' && o.keepLease) pending.outcomes[i] = { ...o, keepLease: false };
    this.kept.absorb(pending);
    this.ctx.fail(`recording ${n} outcome(s): kept in memory (their rows stay leased) and recorded at the next tick`, error);
  }

  /** Record the outcomes kept while the store was down; throws if it still fails. */
  async recordKept(): Promise<void> {
    await this.flush(this.kept);
  }

  get keptCount(): number {
    return this.kept.size;
  }

  /** Warn about lost leases; disable accounts whose run of real failures reached the threshold. Returns those accounts. */
  private afterRecorded(outcomes: Outcome[], result: CheckpointResult): string[] {
    const disabled: string[] = [];
    outcomes.forEach((o, i) => {
      const r = result.outcomes[i];
      if (r && !r.applied) this.ctx.log.warn(`outcome for recipient ${o.recipientId} not recorded: lease lost`, { recipientId: o.recipientId });
      if (o.accountEffect === 'failure' && o.accountId && r?.consecutiveFailures !== undefined && r.consecutiveFailures >= this.ctx.options.failureThreshold && !disabled.includes(o.accountId)) {
        disabled.push(o.accountId);
        void disableAccount(this.ctx, o.accountId, r.consecutiveFailures);
      }
    });
    return disabled;
  }

  /**
   * A store write that records sends, retried with backoff and jitter when it fails (a deadlock victim,
   * a dropped connection, a failover): an outcome lost here would leave its row `sending` under a live
   * lease. Safe to repeat: outcomes apply only to rows still leased and open, and a repeated
   * write-ahead is granted again without a second slot. A retry is a warning; only giving up is an error.
   */
  private async withRetries<T>(what: string, write: () => Promise<T>): Promise<T> {
    for (let tried = 1; ; tried++) {
      try {
        return await write();
      } catch (error) {
        if (tried >= STORE_WRITE_TRIES) throw error;
        this.ctx.log.warn(`${what} failed (try ${tried} of ${STORE_WRITE_TRIES}, retrying): ${error instanceof Error ? error.message : String(error)}`);
        await this.ctx.clock.sleep(backoffMs(tried, { minMs: 200, maxMs: 4_000 }, this.ctx.random));
      }
    }
  }
}
