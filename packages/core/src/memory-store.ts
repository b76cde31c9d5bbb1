import { ConflictError, NotFoundError } from './errors.js';
import { canTransition, isFinished } from './state-machine.js';
import type {
  AccountPatch,
  AddRecipientsResult,
  AdvanceBatchInput,
  AdvanceGroupInput,
  AdvanceGroupResult,
  AdvanceInput,
  AdvanceResult,
  BeginResult,
  SlotRequest,
  CampaignFilter,
  CampaignPatch,
  CampaignTransition,
  ClaimInput,
  ContactSend,
  InDoubtSettlement,
  NewCampaign,
  NewRecipient,
  Outcome,
  OutcomeResult,
  RecipientQuery,
  SlotRefusal,
  StateStore,
  StatusUpdate,
  StatusUpdateResult,
} from './store.js';
import {
  emptyCounters,
  type AccountRecord,
  type BatchRecord,
  type Campaign,
  type OptOut,
  type Pacing,
  type Recipient,
  type RecipientStatus,
} from './types.js';

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

/** Internal row: the record plus its index in its batch's row list (claim cursor bookkeeping). */
type Row = Recipient & { bi: number };

interface BatchState {
  record: BatchRecord;
  /** The batch's rows in `seq` order. */
  rows: Row[];
  /** Every row before this index is not `pending`: claims start scanning here. */
  low: number;
}

interface CampaignState {
  c: Campaign;
  /** All rows; `rows[seq - 1]`. */
  rows: Row[];
  byPhone: Map<string, Row>;
  batches: Map<number, BatchState>;
  /** `processedAt` of every terminal row, ascending (rows become terminal once), for countProcessedSince. */
  processed: number[];
}

type BatchField = 'sent' | 'failed' | 'skipped' | 'unknown';

const batchField = (s: RecipientStatus): BatchField | null => {
  switch (s) {
    case 'sent':
    case 'delivered':
    case 'read':
      return 'sent';
    case 'failed':
      return 'failed';
    case 'skipped':
      return 'skipped';
    case 'unknown':
      return 'unknown';
    default:
      return null;
  }
};

const isOpen = (s: RecipientStatus) => s === 'pending' || s === 'sending';
const DELIVERY_RANK: Partial<Record<RecipientStatus, number>> = { sent: 1, delivered: 2, read: 3 };

function copyRow(r: Row): Recipient {
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

const copyPacing = (p: Pacing): Pacing => ({ ...p, intervalMs: { ...p.intervalMs }, warmup: p.warmup ? { ...p.warmup } : null });
const copyAccount = (a: AccountRecord): AccountRecord => ({ ...a, pacing: copyPacing(a.pacing) });
const copyCampaign = (c: Campaign): Campaign => structuredClone(c);

/**
 * A complete StateStore in process memory. NOT durable: everything is lost when the process
 * exits, and it cannot be shared between processes. For tests, demos, simulations and
 * single-process hosts that accept losing a campaign on restart.
 *
 * Every method runs synchronously inside its promise, so each call is atomic with respect to
 * every other call (JavaScript runs one at a time), which gives the same guarantees as the
 * database stores' transactions. Hot-path calls (claim, advance, heartbeat, receipts) touch only
 * the rows involved: per-batch row lists with a claim cursor, maps by id, phone, provider id and
 * lease owner, and a set of `sending` rows.
 *
 * Choices where store.ts leaves room (the database stores follow the same ones; the conformance
 * suite checks them):
 * - `transitionCampaign` also refuses a move the status table forbids, even when `from` lists it (I4).
 * - `addRecipients` checks duplicates before the suppression list; a row whose `ceil(seq / batchSize)`
 *   is a batch the campaign has already passed joins the current batch instead, so rows added late
 *   are never stranded in a finished batch.
 * - claims fill `limit` past suppressed rows (those are skipped and do not count).
 * - in doubt means `leaseExpiresAt <= now`, in `listInDoubt` as in `settleInDoubt` and claims.
 * - slot reservation checks the daily cap before the hourly one (its retry time is the later one).
 * - receipts leave `sending` rows to their worker (settling one under a live lease would refuse the
 *   worker's outcome and its account effect), settle `unknown` rows forward, and never move `processedAt`.
 */
export class MemoryStore implements StateStore {
  readonly name = 'memory';

  private campaigns = new Map<string, CampaignState>();
  private byId = new Map<string, Row>();
  private byPid = new Map<string, Row>();
  private owners = new Map<string, Set<Row>>();
  private sending = new Set<Row>();
  private accounts = new Map<string, AccountRecord>();
  private optOuts = new Map<string, OptOut>();
  private nextRowId = 0;

  // ---- campaigns -------------------------------------------------------

  async createCampaign(input: NewCampaign): Promise<Campaign> {
    if (this.campaigns.has(input.id)) throw new ConflictError(`A campaign with id "${input.id}" already exists in the memory store.`);
    const c: Campaign = {
      id: input.id,
      name: input.name,
      templates: [...input.templates],
      media: input.media ? { ...input.media } : null,
      accountIds: [...input.accountIds],
      status: input.status,
      pauseReason: null,
      settings: structuredClone(input.settings),
      scheduledAt: input.scheduledAt,
      currentBatch: 0,
      nextBatchAt: null,
      counters: emptyCounters(),
      lastError: null,
      metadata: structuredClone(input.metadata),
      createdAt: input.now,
      updatedAt: input.now,
      startedAt: null,
      finishedAt: null,
    };
    this.campaigns.set(c.id, { c, rows: [], byPhone: new Map(), batches: new Map(), processed: [] });
    return copyCampaign(c);
  }

  async getCampaign(id: string): Promise<Campaign | null> {
    const cs = this.campaigns.get(id);
    return cs ? copyCampaign(cs.c) : null;
  }

  /** Oldest first (`createdAt`, then id). */
  async listCampaigns(filter: CampaignFilter = {}): Promise<Campaign[]> {
    let list = [...this.campaigns.values()].map((cs) => cs.c);
    if (filter.status) {
      const wanted = filter.status;
      list = list.filter((c) => wanted.includes(c.status));
    }
    list.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    if (filter.limit !== undefined) list = list.slice(0, Math.max(0, filter.limit));
    return list.map(copyCampaign);
  }

  async transitionCampaign(id: string, change: CampaignTransition): Promise<Campaign | null> {
    const c = this.campaigns.get(id)?.c;
    if (!c || !change.from.includes(c.status) || !canTransition(c.status, change.to)) return null;
    c.status = change.to;
    c.updatedAt = change.now;
    c.pauseReason = change.to === 'paused' ? (change.pauseReason ?? null) : null;
    if (change.scheduledAt !== undefined) c.scheduledAt = change.scheduledAt;
    if (change.lastError !== undefined) c.lastError = change.lastError;
    if (change.to === 'running' && c.startedAt === null) c.startedAt = change.now;
    if (isFinished(change.to)) c.finishedAt = change.now;
    return copyCampaign(c);
  }

  async updateCampaign(id: string, patch: CampaignPatch, now: number): Promise<Campaign | null> {
    const c = this.campaigns.get(id)?.c;
    if (!c) return null;
    if (patch.name !== undefined) c.name = patch.name;
    if (patch.templates !== undefined) c.templates = [...patch.templates];
    if (patch.media !== undefined) c.media = patch.media ? { ...patch.media } : null;
    if (patch.accountIds !== undefined) c.accountIds = [...patch.accountIds];
    if (patch.settings !== undefined) c.settings = structuredClone(patch.settings);
    if (patch.metadata !== undefined) c.metadata = structuredClone(patch.metadata);
    if (patch.scheduledAt !== undefined) c.scheduledAt = patch.scheduledAt;
    c.updatedAt = now;
    return copyCampaign(c);
  }

  async advanceBatch(input: AdvanceBatchInput): Promise<Campaign | null> {
    const cs = this.campaigns.get(input.campaignId);
    if (!cs || cs.c.currentBatch !== input.expectedBatch) return null;
    const finished = cs.batches.get(input.expectedBatch);
    if (finished) {
      const r = finished.record;
      // Rows still pending or sending = size minus every terminal category.
      if (r.size - r.sent - r.failed - r.skipped - r.unknown > 0) return null;
      r.finishedAt = input.now;
    }
    cs.c.currentBatch = input.nextBatch;
    cs.c.nextBatchAt = input.nextBatchAt;
    cs.c.updatedAt = input.now;
    return copyCampaign(cs.c);
  }

  // ---- recipients ------------------------------------------------------

  async addRecipients(campaignId: string, rows: NewRecipient[], now: number): Promise<AddRecipientsResult> {
    const cs = this.campaigns.get(campaignId);
    if (!cs) throw new NotFoundError('campaign', campaignId);
    const result: AddRecipientsResult = { inserted: 0, duplicates: 0, optedOut: 0 };
    const batchSize = Math.max(1, cs.c.settings.batchSize);
    let suppressedHere: Set<string> | null = null; // opted-out phones seen in this call: repeats are duplicates
    for (const input of rows) {
      const phone = input.phone;
      if (cs.byPhone.has(phone) || suppressedHere?.has(phone)) {
        result.duplicates++;
        continue;
      }
      if (this.optOuts.has(phone)) {
        (suppressedHere ??= new Set()).add(phone);
        result.optedOut++;
        continue;
      }
      const seq = cs.rows.length + 1;
      // Never into a batch the campaign has already left: such a row would never be claimed.
      const batch = Math.max(Math.ceil(seq / batchSize), cs.c.currentBatch);
      let b = cs.batches.get(batch);
      if (!b) {
        b = {
          record: { campaignId, batch, size: 0, sent: 0, failed: 0, skipped: 0, unknown: 0, startedAt: null, finishedAt: null, error: null },
          rows: [],
          low: 0,
        };
        cs.batches.set(batch, b);
      }
      const row: Row = {
        id: `r${++this.nextRowId}`,
        campaignId,
        phone,
        vars: { ...input.vars },
        seq,
        batch,
        status: 'pending',
        skipReason: null,
        text: null,
        attempts: 0,
        lastError: null,
        providerMessageId: null,
        accountId: null,
        leaseOwner: null,
        leaseExpiresAt: null,
        sentAt: null,
        deliveredAt: null,
        readAt: null,
        processedAt: null,
        updatedAt: now,
        bi: b.rows.length,
      };
      b.rows.push(row);
      b.record.size++;
      cs.rows.push(row);
      cs.byPhone.set(phone, row);
      this.byId.set(row.id, row);
      cs.c.counters.total++;
      cs.c.counters.pending++;
      result.inserted++;
    }
    return result;
  }

  /** Ordered by `seq`; every matching row when `limit` is absent. */
  async listRecipients(campaignId: string, query: RecipientQuery = {}): Promise<Recipient[]> {
    const cs = this.campaigns.get(campaignId);
    if (!cs) return [];
    const limit = query.limit ?? Number.POSITIVE_INFINITY;
    const wanted = query.status;
    const out: Recipient[] = [];
    // rows[i].seq === i + 1, so keyset paging starts right at `afterSeq`.
    for (let i = Math.max(0, query.afterSeq ?? 0); i < cs.rows.length && out.length < limit; i++) {
      const r = cs.rows[i]!;
      if (!wanted || wanted.includes(r.status)) out.push(copyRow(r));
    }
    return out;
  }

  async getRecipientByProviderId(providerMessageId: string): Promise<Recipient | null> {
    const r = this.byPid.get(providerMessageId);
    return r ? copyRow(r) : null;
  }

  // ---- work ------------------------------------------------------------

  async claimRecipients(input: ClaimInput): Promise<Recipient[]> {
    const cs = this.campaigns.get(input.campaignId);
    const b = cs?.batches.get(input.batch);
    if (!cs || !b) return [];
    const { now, owner } = input;
    if (b.record.startedAt === null) b.record.startedAt = now;
    const out: Recipient[] = [];
    const rows = b.rows;
    let i = b.low;
    while (i < rows.length && rows[i]!.status !== 'pending') i++;
    b.low = i;
    const expiresAt = now + input.leaseMs;
    for (; i < rows.length && out.length < input.limit; i++) {
      const row = rows[i]!;
      if (row.status !== 'pending') continue;
      if (row.leaseOwner !== null && row.leaseExpiresAt !== null && row.leaseExpiresAt > now) continue; // live lease
      if (this.optOuts.has(row.phone)) {
        // Opted out after import: never sent, and it does not count toward `limit`.
        this.setLease(row, null, null);
        row.skipReason = 'opted_out';
        row.lastError = 'contact opted out';
        row.updatedAt = now;
        this.finish(cs, row, 'skipped', now);
        continue;
      }
      this.setLease(row, owner, expiresAt);
      row.updatedAt = now;
      out.push(copyRow(row));
    }
    return out;
  }

  async advance(input: AdvanceInput): Promise<AdvanceResult> {
    const outcomes: OutcomeResult[] = [];
    if (input.outcomes) for (const o of input.outcomes) outcomes.push(this.applyOutcome(o, input.owner, input.now, input.leaseMs));
    if (!input.begin) return { outcomes };
    return { outcomes, begin: this.begin(input) };
  }

  async advanceGroup(input: AdvanceGroupInput): Promise<AdvanceGroupResult> {
    const outcomes: OutcomeResult[] = [];
    if (input.outcomes) for (const o of input.outcomes) outcomes.push(this.applyOutcome(o, input.owner, input.now, input.leaseMs));
    const begins: BeginResult[] = [];
    const g = input.begin;
    if (!g) return { outcomes, begins };
    // Each item is reserved when the previous one's gap ends; only the first new reservation can meet pacing.
    let at = input.now;
    for (const item of g.items) {
      const slot: SlotRequest = { accountId: g.accountId, gapMs: item.gapMs, leadMs: item.leadMs, ...(g.hourly ? { hourly: g.hourly } : {}), ...(g.daily ? { daily: g.daily } : {}) };
      const r = this.begin({ owner: input.owner, now: input.now, leaseMs: input.leaseMs, begin: { ...item, slot } }, at);
      if (r.granted) at = Math.max(at, this.accounts.get(g.accountId)?.nextSendAt ?? at);
      begins.push(r);
    }
    return { outcomes, begins };
  }

  async heartbeat(owner: string, now: number, leaseMs: number): Promise<number> {
    const held = this.owners.get(owner);
    if (!held) return 0;
    const expiresAt = now + leaseMs;
    for (const row of held) row.leaseExpiresAt = expiresAt;
    return held.size;
  }

  async release(owner: string, recipientIds?: string[]): Promise<number> {
    const held = this.owners.get(owner);
    if (!held) return 0;
    const targets = recipientIds ? recipientIds.map((id) => this.byId.get(id)) : [...held];
    let released = 0;
    for (const row of targets) {
      if (!row || row.leaseOwner !== owner || row.status !== 'pending') continue;
      this.setLease(row, null, null);
      released++;
    }
    return released;
  }

  // ---- recovery --------------------------------------------------------

  /** Oldest expiry first. `sending` rows are few (about one per account per worker), so this is cheap. */
  async listInDoubt(now: number, limit: number, campaignId?: string): Promise<Recipient[]> {
    const found: Row[] = [];
    for (const row of this.sending) {
      if (campaignId !== undefined && row.campaignId !== campaignId) continue;
      if (row.leaseExpiresAt === null || row.leaseExpiresAt <= now) found.push(row);
    }
    found.sort((a, b) => (a.leaseExpiresAt ?? 0) - (b.leaseExpiresAt ?? 0) || a.seq - b.seq);
    return found.slice(0, Math.max(0, limit)).map(copyRow);
  }

  async settleInDoubt(settlements: InDoubtSettlement[], now: number): Promise<number> {
    let applied = 0;
    for (const s of settlements) {
      const row = this.byId.get(s.recipientId);
      if (!row || row.status !== 'sending' || (row.leaseExpiresAt !== null && row.leaseExpiresAt > now)) continue;
      const cs = this.campaigns.get(row.campaignId)!;
      this.setLease(row, null, null);
      row.updatedAt = now;
      if (s.status === 'sent') {
        if (s.providerMessageId) this.setPid(row, s.providerMessageId);
        row.sentAt = s.sentAt ?? now;
        this.finish(cs, row, 'sent', now);
      } else if (s.status === 'unknown') {
        this.finish(cs, row, 'unknown', now);
      } else {
        this.move(cs, row, 'pending');
      }
      applied++;
    }
    return applied;
  }

  // ---- accounts --------------------------------------------------------

  async upsertAccount(id: string, pacing: Pacing, now: number): Promise<AccountRecord> {
    let a = this.accounts.get(id);
    if (a) {
      a.pacing = copyPacing(pacing);
      a.updatedAt = now;
    } else {
      a = {
        id,
        pacing: copyPacing(pacing),
        state: 'active',
        connection: 'unknown',
        consecutiveFailures: 0,
        disabledUntil: null,
        disabledReason: null,
        nextSendAt: now,
        hourKey: null,
        sentThisHour: 0,
        dayKey: null,
        sentToday: 0,
        createdAt: now,
        updatedAt: now,
      };
      this.accounts.set(id, a);
    }
    return copyAccount(a);
  }

  async getAccount(id: string): Promise<AccountRecord | null> {
    const a = this.accounts.get(id);
    return a ? copyAccount(a) : null;
  }

  /** In the order of `ids` (unknown ids left out), or every account by id. */
  async listAccounts(ids?: string[]): Promise<AccountRecord[]> {
    if (ids) {
      const seen = new Set<string>();
      const out: AccountRecord[] = [];
      for (const id of ids) {
        const a = this.accounts.get(id);
        if (a && !seen.has(id)) {
          seen.add(id);
          out.push(copyAccount(a));
        }
      }
      return out;
    }
    return [...this.accounts.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map(copyAccount);
  }

  async updateAccount(id: string, patch: AccountPatch, now: number): Promise<AccountRecord | null> {
    const a = this.accounts.get(id);
    if (!a) return null;
    if (patch.state !== undefined) a.state = patch.state;
    if (patch.connection !== undefined) a.connection = patch.connection;
    if (patch.consecutiveFailures !== undefined) a.consecutiveFailures = patch.consecutiveFailures;
    if (patch.disabledUntil !== undefined) a.disabledUntil = patch.disabledUntil;
    if (patch.disabledReason !== undefined) a.disabledReason = patch.disabledReason;
    if (patch.nextSendAtAtLeast !== undefined && patch.nextSendAtAtLeast > a.nextSendAt) a.nextSendAt = patch.nextSendAtAtLeast;
    a.updatedAt = now;
    return copyAccount(a);
  }

  // ---- delivery --------------------------------------------------------

  async applyStatusUpdates(updates: StatusUpdate[], now: number): Promise<StatusUpdateResult> {
    const result: StatusUpdateResult = { applied: 0, ignored: 0, unmatched: 0, changed: [] };
    for (const u of updates) {
      const row = this.byPid.get(u.providerMessageId);
      if (!row) {
        result.unmatched++;
        continue;
      }
      const from = row.status;
      let to: RecipientStatus | null = null;
      if (u.status === 'failed') {
        // Only before delivered: after a delivery receipt a failure report is stale.
        if (from === 'sent' || from === 'unknown') to = 'failed';
      } else if (from === 'unknown') {
        to = u.status; // the provider has it after all: settle forward
      } else {
        const rank = DELIVERY_RANK[from];
        if (rank !== undefined && DELIVERY_RANK[u.status]! > rank) to = u.status;
      }
      // pending/sending rows (their worker records the outcome), skipped, failed: nothing to do.
      if (to === null) {
        result.ignored++;
        continue;
      }
      const cs = this.campaigns.get(row.campaignId)!;
      if (to === 'failed') {
        row.lastError = u.error ?? 'the provider reported the message failed';
      } else {
        row.sentAt ??= u.at;
        if (to === 'delivered' || to === 'read') row.deliveredAt ??= u.at;
        if (to === 'read') row.readAt = u.at;
      }
      row.updatedAt = now;
      this.move(cs, row, to);
      result.applied++;
      result.changed.push({ recipientId: row.id, campaignId: row.campaignId, from, to });
    }
    return result;
  }

  // ---- contacts --------------------------------------------------------

  async addOptOuts(entries: OptOut[], now: number): Promise<{ added: number; cancelled: number }> {
    let added = 0;
    let cancelled = 0;
    for (const e of entries) {
      if (!this.optOuts.has(e.phone)) {
        this.optOuts.set(e.phone, { ...e });
        added++;
      }
      // One lookup per campaign, not a scan of rows.
      for (const cs of this.campaigns.values()) {
        const row = cs.byPhone.get(e.phone);
        if (!row || row.status !== 'pending') continue;
        this.setLease(row, null, null);
        row.skipReason = 'opted_out';
        row.lastError = 'contact opted out';
        row.updatedAt = now;
        this.finish(cs, row, 'skipped', now);
        cancelled++;
      }
    }
    return { added, cancelled };
  }

  async removeOptOut(phone: string): Promise<boolean> {
    return this.optOuts.delete(phone);
  }

  async listOptOuts(phones?: string[]): Promise<OptOut[]> {
    if (!phones) return [...this.optOuts.values()].map((o) => ({ ...o }));
    const out: OptOut[] = [];
    for (const phone of new Set(phones)) {
      const o = this.optOuts.get(phone);
      if (o) out.push({ ...o });
    }
    return out;
  }

  async contactHistory(phones: string[], since: number): Promise<ContactSend[]> {
    const out: ContactSend[] = [];
    for (const phone of new Set(phones)) {
      for (const cs of this.campaigns.values()) {
        const r = cs.byPhone.get(phone);
        if (r && batchField(r.status) === 'sent' && r.sentAt !== null && r.sentAt >= since) {
          out.push({ phone, campaignId: r.campaignId, accountId: r.accountId, sentAt: r.sentAt });
        }
      }
    }
    return out.sort((a, b) => b.sentAt - a.sentAt);
  }

  /** A report, not the hot path: it scans the rows. */
  async accountSendTimes(accountId: string, since: number, limit: number): Promise<number[]> {
    const times: number[] = [];
    for (const cs of this.campaigns.values()) {
      for (const r of cs.rows) {
        if (r.accountId === accountId && r.sentAt !== null && r.sentAt >= since && batchField(r.status) === 'sent') times.push(r.sentAt);
      }
    }
    return times.sort((a, b) => a - b).slice(0, Math.max(0, limit));
  }

  // ---- progress & maintenance -------------------------------------------

  async listBatches(campaignId: string): Promise<BatchRecord[]> {
    const cs = this.campaigns.get(campaignId);
    if (!cs) return [];
    return [...cs.batches.values()].map((b) => ({ ...b.record })).sort((a, b) => a.batch - b.batch);
  }

  async countProcessedSince(campaignId: string, since: number): Promise<number> {
    const log = this.campaigns.get(campaignId)?.processed;
    if (!log) return 0;
    return log.length - lowerBound(log, since);
  }

  async cleanup(olderThan: number): Promise<{ campaigns: number; recipients: number }> {
    let campaigns = 0;
    let recipients = 0;
    for (const [id, cs] of this.campaigns) {
      const c = cs.c;
      if (!isFinished(c.status) || c.finishedAt === null || c.finishedAt >= olderThan) continue;
      for (const row of cs.rows) {
        this.setLease(row, null, null);
        this.setPid(row, null);
        this.sending.delete(row);
        this.byId.delete(row.id);
      }
      recipients += cs.rows.length;
      this.campaigns.delete(id);
      campaigns++;
    }
    return { campaigns, recipients };
  }

  async close(): Promise<void> {
    // Nothing to release: the data lives in this object.
  }

  /** Raw reader of the store's state for the conformance suite (bypasses the StateStore methods). */
  inspector(): MemoryStoreInspector {
    return {
      campaign: async (id) => {
        const cs = this.campaigns.get(id);
        return cs ? copyCampaign(cs.c) : null;
      },
      recipients: async (campaignId) => (this.campaigns.get(campaignId)?.rows ?? []).map(copyRow),
      batches: async (campaignId) => {
        const cs = this.campaigns.get(campaignId);
        return cs ? [...cs.batches.values()].map((b) => ({ ...b.record })).sort((a, b) => a.batch - b.batch) : [];
      },
      account: async (id) => {
        const a = this.accounts.get(id);
        return a ? copyAccount(a) : null;
      },
    };
  }

  // ---- internals ---------------------------------------------------------

  /** Record one outcome if `owner` still leases the row (pending or sending). */
  private applyOutcome(o: Outcome, owner: string, now: number, leaseMs: number): OutcomeResult {
    const row = this.byId.get(o.recipientId);
    if (!row || row.campaignId !== o.campaignId || row.leaseOwner !== owner || !isOpen(row.status)) {
      return { recipientId: o.recipientId, applied: false };
    }
    const cs = this.campaigns.get(row.campaignId)!;
    row.attempts = o.attempts;
    row.updatedAt = now;
    // Absent or null keeps what the row knows (the write-ahead set the account).
    if (o.accountId) row.accountId = o.accountId;
    if (o.providerMessageId) this.setPid(row, o.providerMessageId);
    if (o.error !== undefined) row.lastError = o.error;
    if (o.status === 'pending' && o.keepLease) {
      // A retry by the same owner follows (often in this very step): keep the row, renewed like a heartbeat.
      this.setLease(row, owner, now + leaseMs);
    } else {
      this.setLease(row, null, null);
    }
    if (o.status === 'pending') {
      this.move(cs, row, 'pending');
    } else {
      row.skipReason = o.status === 'skipped' ? (o.skipReason ?? null) : null;
      if (o.status === 'sent') row.sentAt = o.at;
      this.finish(cs, row, o.status, o.at);
    }
    const result: OutcomeResult = { recipientId: o.recipientId, applied: true };
    const accountId = o.accountId ?? row.accountId;
    const account = accountId ? this.accounts.get(accountId) : undefined;
    if (account) {
      if (o.accountEffect === 'success' && account.consecutiveFailures !== 0) {
        account.consecutiveFailures = 0;
        account.updatedAt = now;
      } else if (o.accountEffect === 'failure') {
        account.consecutiveFailures++;
        account.updatedAt = now;
      }
      result.consecutiveFailures = account.consecutiveFailures;
    }
    return result;
  }

  /** Reserve the account's slot and, only when granted, write the recipient ahead as `sending`. */
  private begin(input: AdvanceInput, reserveAt = input.now): BeginResult {
    const b = input.begin!;
    const { now, owner } = input;
    const refuse = (reason: SlotRefusal, retryAt: number): BeginResult => ({ granted: false, reason, retryAt });
    const row = this.byId.get(b.recipientId);
    if (!row || row.campaignId !== b.campaignId || row.leaseOwner !== owner) return refuse('lease_lost', now);
    if (row.status === 'sending') {
      // The same write-ahead again (a retried call whose first commit was not heard): granted, no new slot.
      const repeat = row.attempts === b.attempt && row.leaseExpiresAt !== null && row.leaseExpiresAt > now;
      return repeat ? { granted: true, slotAt: now } : refuse('lease_lost', now);
    }
    if (row.status !== 'pending') return refuse('lease_lost', now);
    const slot = b.slot;
    const a = this.accounts.get(slot.accountId);
    if (!a || a.state === 'stopped' || (a.state === 'disabled' && a.disabledUntil !== null && a.disabledUntil > now) || a.connection === 'close') {
      return refuse('account_unavailable', now);
    }
    if (slot.daily && a.dayKey === slot.daily.key && a.sentToday >= slot.daily.limit) return refuse('daily_cap', slot.daily.endsAt);
    if (slot.hourly && a.hourKey === slot.hourly.key && a.sentThisHour >= slot.hourly.limit) return refuse('hourly_cap', slot.hourly.endsAt);
    if (a.nextSendAt > reserveAt) return refuse('pacing', a.nextSendAt);

    const slotAt = reserveAt + slot.leadMs;
    a.nextSendAt = slotAt + slot.gapMs;
    if (slot.hourly) {
      if (a.hourKey === slot.hourly.key) a.sentThisHour++;
      else {
        a.hourKey = slot.hourly.key;
        a.sentThisHour = 1;
      }
    }
    if (slot.daily) {
      if (a.dayKey === slot.daily.key) a.sentToday++;
      else {
        a.dayKey = slot.daily.key;
        a.sentToday = 1;
      }
    }
    a.updatedAt = now;

    const cs = this.campaigns.get(row.campaignId)!;
    row.text = b.text;
    row.accountId = slot.accountId;
    row.attempts = b.attempt;
    if (b.providerMessageId) this.setPid(row, b.providerMessageId);
    this.setLease(row, owner, now + input.leaseMs);
    row.updatedAt = now;
    this.move(cs, row, 'sending');
    return { granted: true, slotAt };
  }

  /** Change a row's status, keeping campaign counters, batch record and indexes equal to the rows. */
  private move(cs: CampaignState, row: Row, to: RecipientStatus): void {
    const from = row.status;
    if (from === to) return;
    const counters = cs.c.counters;
    counters[from]--;
    counters[to]++;
    const b = cs.batches.get(row.batch)!;
    const before = batchField(from);
    const after = batchField(to);
    if (before !== after) {
      if (before) b.record[before]--;
      if (after) b.record[after]++;
    }
    if (from === 'sending') this.sending.delete(row);
    else if (to === 'sending') this.sending.add(row);
    if (to === 'pending' && row.bi < b.low) b.low = row.bi; // claimable again: pull the cursor back
    row.status = to;
  }

  /** Move an open row to a terminal status reached at `at`. */
  private finish(cs: CampaignState, row: Row, to: RecipientStatus, at: number): void {
    row.processedAt = at;
    const log = cs.processed;
    // Mostly appends; an out-of-order time is inserted where it belongs.
    if (log.length === 0 || log[log.length - 1]! <= at) log.push(at);
    else log.splice(upperBound(log, at), 0, at);
    this.move(cs, row, to);
  }

  private setLease(row: Row, owner: string | null, expiresAt: number | null): void {
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

  private setPid(row: Row, pid: string | null): void {
    if (row.providerMessageId === pid) return;
    if (row.providerMessageId !== null && this.byPid.get(row.providerMessageId) === row) this.byPid.delete(row.providerMessageId);
    row.providerMessageId = pid;
    if (pid !== null) this.byPid.set(pid, row);
  }
}

/** First index whose value is >= `x` in an ascending array. */
function lowerBound(xs: number[], x: number): number {
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

/** A fresh, empty in-memory store (not durable; see MemoryStore). */
export function createMemoryStore(): MemoryStore {
  return new MemoryStore();
}
