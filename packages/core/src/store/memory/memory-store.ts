import { ConflictError, NotFoundError } from '../../errors.js';
import { canTransition, isFinished } from '../../domain/campaign-status.js';
import type { AccountRecord, BatchRecord, Campaign, OptOut, Pacing, Recipient } from '../../domain/types.js';
import { emptyCounters } from '../../rules/counters.js';
import { batchForRow } from '../../rules/recipients.js';
import type {
  AccountPatch,
  AddRecipientsResult,
  CampaignFilter,
  CampaignPatch,
  CampaignTransition,
  CheckpointInput,
  CheckpointResult,
  ClaimInput,
  ContactSend,
  InDoubtSettlement,
  NewCampaign,
  NewRecipient,
  NextBatchInput,
  RecipientQuery,
  StateStore,
  StatusUpdate,
  StatusUpdateResult,
} from '../contract.js';
import { MemoryTables, copyAccount, copyCampaign, copyPacing, copyRow, inspectTables, lowerBound, type MemoryStoreInspector, type Row } from './memory-tables.js';
export type { MemoryStoreInspector } from './memory-tables.js';
import * as contacts from './memory-contacts.js';
import * as work from './memory-work.js';

/**
 * A complete StateStore in process memory. NOT durable: everything is lost when the process
 * exits, and it cannot be shared between processes. For tests, demos, simulations and
 * single-process hosts that accept losing a campaign on restart.
 *
 * Every method runs synchronously inside its promise, so each call is atomic with respect to
 * every other call (JavaScript runs one at a time), which gives the same guarantees as the
 * database stores' transactions. Hot-path calls (claim, checkpoint, heartbeat, receipts) touch only
 * the rows involved: per-batch row lists with a claim cursor, maps by id, phone, provider id and
 * lease owner, and the `sending` rows of each account. The store's rules come from `rules/`, the
 * same source the conformance suite checks SQL stores against.
 */
export class MemoryStore implements StateStore {
  readonly name = 'memory';
  private readonly t = new MemoryTables();

  // ---- campaigns -------------------------------------------------------

  async createCampaign(input: NewCampaign): Promise<Campaign> {
    if (this.t.campaigns.has(input.id)) throw new ConflictError(`A campaign with id "${input.id}" already exists in the memory store.`);
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
    this.t.campaigns.set(c.id, { c, rows: [], byPhone: new Map(), batches: new Map(), processed: [] });
    return copyCampaign(c);
  }

  async getCampaign(id: string): Promise<Campaign | null> {
    const cs = this.t.campaigns.get(id);
    return cs ? copyCampaign(cs.c) : null;
  }

  /** Oldest first (`createdAt`, then id). */
  async listCampaigns(filter: CampaignFilter = {}): Promise<Campaign[]> {
    let list = [...this.t.campaigns.values()].map((cs) => cs.c);
    if (filter.status) {
      const wanted = filter.status;
      list = list.filter((c) => wanted.includes(c.status));
    }
    list.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    if (filter.limit !== undefined) list = list.slice(0, Math.max(0, filter.limit));
    return list.map(copyCampaign);
  }

  async transitionCampaign(id: string, change: CampaignTransition): Promise<Campaign | null> {
    const c = this.t.campaigns.get(id)?.c;
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
    const c = this.t.campaigns.get(id)?.c;
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

  async nextBatch(input: NextBatchInput): Promise<Campaign | null> {
    const cs = this.t.campaigns.get(input.campaignId);
    if (!cs || cs.c.currentBatch !== input.current) return null;
    const finished = cs.batches.get(input.current);
    if (finished) {
      const r = finished.record;
      // Rows still pending or sending = size minus every terminal category.
      if (r.size - r.sent - r.failed - r.skipped - r.unknown > 0) return null;
      r.finishedAt = input.now;
    }
    cs.c.currentBatch = input.next;
    cs.c.nextBatchAt = input.nextBatchAt;
    cs.c.updatedAt = input.now;
    return copyCampaign(cs.c);
  }

  // ---- recipients ------------------------------------------------------

  async addRecipients(campaignId: string, rows: NewRecipient[], now: number): Promise<AddRecipientsResult> {
    const cs = this.t.campaigns.get(campaignId);
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
      if (this.t.optOuts.has(phone)) {
        (suppressedHere ??= new Set()).add(phone);
        result.optedOut++;
        continue;
      }
      const seq = cs.rows.length + 1;
      const batch = batchForRow(seq, batchSize, cs.c.currentBatch);
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
        id: this.t.newRowId(),
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
      this.t.byId.set(row.id, row);
      cs.c.counters.total++;
      cs.c.counters.pending++;
      result.inserted++;
    }
    return result;
  }

  /** Ordered by `seq`; every matching row when `limit` is absent. */
  async listRecipients(campaignId: string, query: RecipientQuery = {}): Promise<Recipient[]> {
    const cs = this.t.campaigns.get(campaignId);
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
    const r = this.t.byPid.get(providerMessageId);
    return r ? copyRow(r) : null;
  }

  // ---- work ------------------------------------------------------------

  async claimRecipients(input: ClaimInput): Promise<Recipient[]> {
    return work.claim(this.t, input);
  }

  async checkpoint(input: CheckpointInput): Promise<CheckpointResult> {
    return work.checkpoint(this.t, input);
  }

  async heartbeat(owner: string, now: number, leaseMs: number): Promise<number> {
    return work.heartbeat(this.t, owner, now, leaseMs);
  }

  async release(owner: string, recipientIds?: string[]): Promise<number> {
    return work.release(this.t, owner, recipientIds);
  }

  // ---- recovery --------------------------------------------------------

  async listInDoubt(now: number, limit: number, campaignId?: string): Promise<Recipient[]> {
    return work.listInDoubt(this.t, now, limit, campaignId);
  }

  async settleInDoubt(settlements: InDoubtSettlement[], now: number): Promise<number> {
    return work.settleInDoubt(this.t, settlements, now);
  }

  // ---- accounts --------------------------------------------------------

  async upsertAccount(id: string, pacing: Pacing, now: number): Promise<AccountRecord> {
    let a = this.t.accounts.get(id);
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
      this.t.accounts.set(id, a);
    }
    return copyAccount(a);
  }

  async getAccount(id: string): Promise<AccountRecord | null> {
    const a = this.t.accounts.get(id);
    return a ? copyAccount(a) : null;
  }

  /** In the order of `ids` (unknown ids left out), or every account by id. */
  async listAccounts(ids?: string[]): Promise<AccountRecord[]> {
    if (ids) {
      const seen = new Set<string>();
      const out: AccountRecord[] = [];
      for (const id of ids) {
        const a = this.t.accounts.get(id);
        if (a && !seen.has(id)) {
          seen.add(id);
          out.push(copyAccount(a));
        }
      }
      return out;
    }
    return [...this.t.accounts.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map(copyAccount);
  }

  async updateAccount(id: string, patch: AccountPatch, now: number): Promise<AccountRecord | null> {
    const a = this.t.accounts.get(id);
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
    return work.applyStatusUpdates(this.t, updates, now);
  }

  // ---- contacts --------------------------------------------------------

  async addOptOuts(entries: OptOut[], now: number): Promise<{ added: number; cancelled: number }> {
    return contacts.addOptOuts(this.t, entries, now);
  }

  async removeOptOut(phone: string): Promise<boolean> {
    return this.t.optOuts.delete(phone);
  }

  async listOptOuts(phones?: string[]): Promise<OptOut[]> {
    return contacts.listOptOuts(this.t, phones);
  }

  async contactHistory(phones: string[], since: number): Promise<ContactSend[]> {
    return contacts.contactHistory(this.t, phones, since);
  }

  /** A report, not the hot path: it scans the rows. */
  async accountSendTimes(accountId: string, since: number, limit: number): Promise<number[]> {
    return contacts.accountSendTimes(this.t, accountId, since, limit);
  }

  // ---- progress & maintenance -------------------------------------------

  async listBatches(campaignId: string): Promise<BatchRecord[]> {
    const cs = this.t.campaigns.get(campaignId);
    if (!cs) return [];
    return [...cs.batches.values()].map((b) => ({ ...b.record })).sort((a, b) => a.batch - b.batch);
  }

  async countProcessedSince(campaignId: string, since: number): Promise<number> {
    const log = this.t.campaigns.get(campaignId)?.processed;
    if (!log) return 0;
    return log.length - lowerBound(log, since);
  }

  async cleanup(olderThan: number): Promise<{ campaigns: number; recipients: number }> {
    let campaigns = 0;
    let recipients = 0;
    for (const [id, cs] of [...this.t.campaigns]) {
      const c = cs.c;
      if (!isFinished(c.status) || c.finishedAt === null || c.finishedAt >= olderThan) continue;
      recipients += this.t.dropCampaign(id);
      campaigns++;
    }
    return { campaigns, recipients };
  }

  async close(): Promise<void> {
    // Nothing to release: the data lives in this object.
  }

  /** Raw reader of the store's state for the conformance suite (bypasses the StateStore methods). */
  inspector(): MemoryStoreInspector {
    return inspectTables(this.t);
  }
}

/** A fresh, empty in-memory store (not durable; see MemoryStore). */
export function createMemoryStore(): MemoryStore {
  return new MemoryStore();
}
