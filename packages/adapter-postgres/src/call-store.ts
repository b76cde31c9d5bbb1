import type {
  AccountPatch,
  AccountRecord,
  AddRecipientsResult,
  BatchRecord,
  Campaign,
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
  OptOut,
  Pacing,
  Recipient,
  RecipientQuery,
  StateStore,
  StatusUpdate,
  StatusUpdateResult,
} from '@disparo/core/store';
import { calls, ClaimCursors, type Call } from './calls.js';
import { wakeChannel } from './wake.js';

/**
 * A StateStore whose every method is one call of one SQL function (`calls`). A store says how a call
 * runs (`run`: over a database connection, over PostgREST) and overrides what it does differently (the
 * PostgreSQL store imports with COPY and listens for wake-ups; the Supabase store pages past PostgREST's
 * row cap), so each method is written once for both.
 */
export abstract class CallStore implements StateStore {
  abstract readonly name: string;
  abstract readonly schema: string;
  protected readonly cursors = new ClaimCursors();

  /** Run one call: its function with its arguments, the answer decoded, a failure typed. */
  protected abstract run<T>(call: Call<T>): Promise<T>;

  // ---- campaigns -------------------------------------------------------

  createCampaign(input: NewCampaign): Promise<Campaign> {
    return this.run(calls.createCampaign(input));
  }

  getCampaign(id: string): Promise<Campaign | null> {
    return this.run(calls.getCampaign(id));
  }

  listCampaigns(filter?: CampaignFilter): Promise<Campaign[]> {
    return this.run(calls.listCampaigns(filter));
  }

  transitionCampaign(id: string, change: CampaignTransition): Promise<Campaign | null> {
    return this.run(calls.transitionCampaign(id, change));
  }

  updateCampaign(id: string, patch: CampaignPatch, now: number): Promise<Campaign | null> {
    return this.run(calls.updateCampaign(id, patch, now));
  }

  nextBatch(input: NextBatchInput): Promise<Campaign | null> {
    return this.run(calls.nextBatch(input));
  }

  // ---- recipients ------------------------------------------------------

  /** The JSON import (`add_recipients`), one call per chunk the engine sends. */
  addRecipients(campaignId: string, rows: NewRecipient[], now: number): Promise<AddRecipientsResult> {
    return this.run(calls.addRecipients(campaignId, rows, now));
  }

  listRecipients(campaignId: string, query?: RecipientQuery): Promise<Recipient[]> {
    return this.run(calls.listRecipients(campaignId, query));
  }

  getRecipientByProviderId(providerMessageId: string): Promise<Recipient | null> {
    return this.run(calls.getRecipientByProviderId(providerMessageId));
  }

  // ---- work ------------------------------------------------------------

  /** From where this store's last claim of the batch ended (see `ClaimCursors`). */
  async claimRecipients(input: ClaimInput): Promise<Recipient[]> {
    const rows = await this.run(calls.claimRecipients(input, this.cursors.after(input)));
    this.cursors.claimed(input, rows);
    return rows;
  }

  checkpoint(input: CheckpointInput): Promise<CheckpointResult> {
    return this.run(calls.checkpoint(input));
  }

  heartbeat(owner: string, now: number, leaseMs: number): Promise<number> {
    return this.run(calls.heartbeat(owner, now, leaseMs));
  }

  release(owner: string, recipientIds?: string[]): Promise<number> {
    return this.run(calls.release(owner, recipientIds));
  }

  // ---- recovery --------------------------------------------------------

  listInDoubt(now: number, limit: number, campaignId?: string): Promise<Recipient[]> {
    return this.run(calls.listInDoubt(now, limit, campaignId));
  }

  settleInDoubt(settlements: InDoubtSettlement[], now: number): Promise<number> {
    return this.run(calls.settleInDoubt(settlements, now));
  }

  // ---- accounts --------------------------------------------------------

  upsertAccount(id: string, pacing: Pacing, now: number): Promise<AccountRecord> {
    return this.run(calls.upsertAccount(id, pacing, now));
  }

  getAccount(id: string): Promise<AccountRecord | null> {
    return this.run(calls.getAccount(id));
  }

  listAccounts(ids?: string[]): Promise<AccountRecord[]> {
    return this.run(calls.listAccounts(ids));
  }

  updateAccount(id: string, patch: AccountPatch, now: number): Promise<AccountRecord | null> {
    return this.run(calls.updateAccount(id, patch, now));
  }

  // ---- delivery --------------------------------------------------------

  applyStatusUpdates(updates: StatusUpdate[], now: number): Promise<StatusUpdateResult> {
    return this.run(calls.applyStatusUpdates(updates, now));
  }

  // ---- contacts --------------------------------------------------------

  addOptOuts(entries: OptOut[], now: number): Promise<{ added: number; cancelled: number }> {
    return this.run(calls.addOptOuts(entries, now));
  }

  removeOptOut(phone: string): Promise<boolean> {
    return this.run(calls.removeOptOut(phone));
  }

  listOptOuts(phones?: string[]): Promise<OptOut[]> {
    return this.run(calls.listOptOuts(phones));
  }

  contactHistory(phones: string[], since: number): Promise<ContactSend[]> {
    return this.run(calls.contactHistory(phones, since));
  }

  accountSendTimes(accountId: string, since: number, limit: number): Promise<number[]> {
    return this.run(calls.accountSendTimes(accountId, since, limit));
  }

  // ---- progress & maintenance -------------------------------------------

  listBatches(campaignId: string): Promise<BatchRecord[]> {
    return this.run(calls.listBatches(campaignId));
  }

  countProcessedSince(campaignId: string, since: number): Promise<number> {
    return this.run(calls.countProcessedSince(campaignId, since));
  }

  cleanup(olderThan: number): Promise<{ campaigns: number; recipients: number }> {
    return this.run(calls.cleanup(olderThan));
  }

  // ---- wake-ups ---------------------------------------------------------

  /** Tell idle workers of this schema to look for work now (a NOTIFY on its wake channel). */
  notifyWake(): Promise<void> {
    return this.run(calls.notifyWake(wakeChannel(this.schema)));
  }
}
