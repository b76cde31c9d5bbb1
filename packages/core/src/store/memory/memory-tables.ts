import type { AccountRecord, BatchRecord, Campaign, OptOut, Pacing, Recipient, RecipientStatus } from '../../domain/types.js';
import { BATCH_COUNT, moveCount } from '../../rules/counters.js';
import type { StatusUpdate } from '../contract.js';

/** Internal row: the record plus its index in its batch's row list (claim cursor bookkeeping). */
export type Row = Recipient & { bi: number };

export interface BatchState {
  record: BatchRecord;
  /** The batch's rows in `seq` order. */
  rows: Row[];
  /** Every row before this index is not `pending`: claims start scanning here. */
  low: number;
}

export interface CampaignState {
  c: Campaign;
  /** All rows; `rows[seq - 1]`. */
  rows: Row[];
  byPhone: Map<string, Row>;
  batches: Map<number, BatchState>;
  /** `processedAt` of every terminal row, ascending (rows become terminal once), for countProcessedSince. */
  processed: number[];
}

/**
 * The memory store's tables and the bookkeeping that keeps their indexes, counters and batch records
 * equal to the rows. Every status change goes through `move`, every lease change through `setLease`.
 */
export class MemoryTables {
  readonly campaigns = new Map<string, CampaignState>();
  readonly byId = new Map<string, Row>();
  readonly byPid = new Map<string, Row>();
  readonly owners = new Map<string, Set<Row>>();
  /** `sending` rows per account: in flight while their lease is live, in doubt after. */
  readonly sendingByAccount = new Map<string, Set<Row>>();
  readonly accounts = new Map<string, AccountRecord>();
  readonly optOuts = new Map<string, OptOut>();
  /** Receipts held until their row can take them (`holdsReceipt`), oldest first, with when each was held. */
  held: Array<{ update: StatusUpdate; heldAt: number }> = [];
  private nextRowId = 0;

  newRowId(): string {
    return `r${++this.nextRowId}`;
  }

  /** Sends of `accountId` written ahead without an outcome (on the wire, or in doubt until settled): its window in use. */
  inFlight(accountId: string): number {
    return this.sendingByAccount.get(accountId)?.size ?? 0;
  }

  /** Change a row's status, keeping campaign counters, batch record and indexes equal to the rows. */
  move(cs: CampaignState, row: Row, to: RecipientStatus): void {
    const from = row.status;
    if (from === to) return;
    moveCount(cs.c.counters, from, to);
    const b = cs.batches.get(row.batch)!;
    const before = BATCH_COUNT[from];
    const after = BATCH_COUNT[to];
    if (before !== after) {
      if (before) b.record[before]--;
      if (after) b.record[after]++;
    }
    if (from === 'sending') this.sendingByAccount.get(row.accountId ?? '')?.delete(row);
    else if (to === 'sending') {
      const key = row.accountId ?? '';
      (this.sendingByAccount.get(key) ?? this.sendingByAccount.set(key, new Set()).get(key)!).add(row);
    }
    if (to === 'pending' && row.bi < b.low) b.low = row.bi; // claimable again: pull the cursor back
    row.status = to;
  }

  /** Move an open row to a terminal status reached at `at`. */
  finish(cs: CampaignState, row: Row, to: RecipientStatus, at: number): void {
    row.processedAt = at;
    const log = cs.processed;
    // Mostly appends; an out-of-order time is inserted where it belongs.
    if (log.length === 0 || log[log.length - 1]! <= at) log.push(at);
    else log.splice(upperBound(log, at), 0, at);
    this.move(cs, row, to);
  }

  /** Skip a pending row whose contact opted out (see `OPT_OUT_CANCELS`). */
  skipOptedOut(cs: CampaignState, row: Row, now: number): void {
    this.setLease(row, null, null);
    row.skipReason = 'opted_out';
    row.lastError = 'contact opted out';
    row.updatedAt = now;
    this.finish(cs, row, 'skipped', now);
  }

  setLease(row: Row, owner: string | null, expiresAt: number | null): void {
    if (row.leaseOwner !== owner) {
      if (row.leaseOwner !== null) {
        const held = this.owners.get(row.leaseOwner);
        if (held) {
          held.delete(row);
          if (held.size === 0) this.owners.delete(row.leaseOwner);
        }
      }
      if (owner !== null) {
        let held = this.owners.get(owner);
        if (!held) this.owners.set(owner, (held = new Set()));
        held.add(row);
      }
      row.leaseOwner = owner;
    }
    row.leaseExpiresAt = expiresAt;
  }

  setPid(row: Row, pid: string | null): void {
    if (row.providerMessageId === pid) return;
    if (row.providerMessageId !== null && this.byPid.get(row.providerMessageId) === row) this.byPid.delete(row.providerMessageId);
    row.providerMessageId = pid;
    if (pid !== null) this.byPid.set(pid, row);
  }

  /** The account a `sending` row is counted under changes only while it is not `sending`. */
  setAccount(row: Row, accountId: string | null): void {
    if (row.accountId === accountId) return;
    if (row.status === 'sending') {
      this.sendingByAccount.get(row.accountId ?? '')?.delete(row);
      const key = accountId ?? '';
      (this.sendingByAccount.get(key) ?? this.sendingByAccount.set(key, new Set()).get(key)!).add(row);
    }
    row.accountId = accountId;
  }

  /** Forget every row of a campaign (cleanup). */
  dropCampaign(id: string): number {
    const cs = this.campaigns.get(id);
    if (!cs) return 0;
    for (const row of cs.rows) {
      this.setLease(row, null, null);
      this.setPid(row, null);
      this.sendingByAccount.get(row.accountId ?? '')?.delete(row);
      this.byId.delete(row.id);
    }
    this.campaigns.delete(id);
    return cs.rows.length;
  }
}

export function copyRow(r: Row): Recipient {
  // Spelled out (not a spread) so the internal `bi` never leaks and V8 keeps one object shape.
  return {
    id: r.id,
    campaignId: r.campaignId,
    phone: r.phone,
    vars: r.vars,
    seq: r.seq,
    batch: r.batch,
    status: r.status,
    skipReason: r.skipReason,
    text: r.text,
    attempts: r.attempts,
    lastError: r.lastError,
    providerMessageId: r.providerMessageId,
    accountId: r.accountId,
    leaseOwner: r.leaseOwner,
    leaseExpiresAt: r.leaseExpiresAt,
    sentAt: r.sentAt,
    deliveredAt: r.deliveredAt,
    readAt: r.readAt,
    processedAt: r.processedAt,
    updatedAt: r.updatedAt,
  };
}

export const copyPacing = (p: Pacing): Pacing => ({ ...p, intervalMs: { ...p.intervalMs }, warmup: p.warmup ? { ...p.warmup } : null });
export const copyAccount = (a: AccountRecord): AccountRecord => ({ ...a, pacing: copyPacing(a.pacing) });
export const copyCampaign = (c: Campaign): Campaign => structuredClone(c);

/** First index whose value is >= `x` in an ascending array. */
export function lowerBound(xs: number[], x: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (xs[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index whose value is > `x` in an ascending array. */
function upperBound(xs: number[], x: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (xs[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Raw view of what the store holds, for the conformance suite (`describeStateStore`). Same shape as
 * `StoreInspector` in `@disparo/core/testing`; declared here so the main entry never imports test code.
 */
export interface MemoryStoreInspector {
  campaign(id: string): Promise<Campaign | null>;
  recipients(campaignId: string): Promise<Recipient[]>;
  batches(campaignId: string): Promise<BatchRecord[]>;
  account(id: string): Promise<AccountRecord | null>;
}

export function inspectTables(t: MemoryTables): MemoryStoreInspector {
  return {
    campaign: async (id) => {
      const cs = t.campaigns.get(id);
      return cs ? copyCampaign(cs.c) : null;
    },
    recipients: async (campaignId) => (t.campaigns.get(campaignId)?.rows ?? []).map(copyRow),
    batches: async (campaignId) => {
      const cs = t.campaigns.get(campaignId);
      return cs ? [...cs.batches.values()].map((b) => ({ ...b.record })).sort((a, b) => a.batch - b.batch) : [];
    },
    account: async (id) => {
      const a = t.accounts.get(id);
      return a ? copyAccount(a) : null;
    },
  };
}
