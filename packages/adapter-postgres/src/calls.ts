import {
  HELD_RECEIPT_MS,
  canTransition,
  isFinished,
  type AccountPatch,
  type AccountRecord,
  type AddRecipientsResult,
  type BatchRecord,
  type Campaign,
  type CampaignFilter,
  type CampaignPatch,
  type CampaignTransition,
  type CheckpointInput,
  type CheckpointResult,
  type ClaimInput,
  type ContactSend,
  type InDoubtSettlement,
  type NewCampaign,
  type NewRecipient,
  type NextBatchInput,
  type OptOut,
  type Pacing,
  type Recipient,
  type RecipientQuery,
  type StatusUpdate,
  type StatusUpdateResult,
} from '@disparo/core/store';
import { checkpointArgs, checkpointResult } from './checkpoint-codec.js';
import { batchFromJson, campaignFromJson, listOf, num, toAccount, toContactSend, toOptOut, toRecipient } from './rows.js';

/**
 * One call of one SQL function: every StateStore method is one. `args` are the function's named
 * parameters (`p_*`) with JSON-friendly values (strings, numbers, booleans, null, and plain objects
 * or arrays for its jsonb parameters), so a client that speaks PostgREST passes them as they are
 * (`supabase.rpc(call.fn, call.args)`), and node-postgres sends the objects as JSON text.
 */
export interface Call<T> {
  /** The function, `sql/functions/<fn>.sql`. */
  fn: string;
  args: Record<string, unknown>;
  /** `value`: the function returns one value (jsonb, integer, boolean); `rows`: a set of rows. */
  returns: 'value' | 'rows';
  /** The function's result (the value, or the array of rows) as the method's result. */
  decode(result: unknown): T;
  /** For errors: the StateStore method, its input (searched for what PostgreSQL refused), the id it names. */
  method: string;
  input?: unknown;
  id?: string;
  /**
   * Run as a prepared statement where the client can (node-postgres): the hot path's calls, made
   * once per message, whose text never changes and whose result is one value of a fixed type.
   */
  prepared?: boolean;
}

type Extra = Pick<Call<unknown>, 'input' | 'id' | 'prepared'>;
const value = <T>(method: string, fn: string, args: Record<string, unknown>, decode: (v: unknown) => T, extra: Extra = {}): Call<T> => ({ method, fn, args, returns: 'value', decode, ...extra });
const rows = <T>(method: string, fn: string, args: Record<string, unknown>, decode: (rows: Array<Record<string, unknown>>) => T, extra: Extra = {}): Call<T> => ({
  method,
  fn,
  args,
  returns: 'rows',
  decode: (r) => decode((r ?? []) as Array<Record<string, unknown>>),
  ...extra,
});

/** Whole milliseconds (the columns are bigint). */
const ms = (t: number) => Math.round(t);
const msOrNull = (t: number | null | undefined) => (t === null || t === undefined ? null : Math.round(t));
const count = (n: number | undefined) => (n === undefined ? null : Math.max(0, Math.floor(n)));
const campaignOrNull = (v: unknown) => (v === null || v === undefined ? null : campaignFromJson(v));
const first = <T>(map: (r: Record<string, unknown>) => T) => (list: Array<Record<string, unknown>>) => (list[0] ? map(list[0]) : null);
const withTimes = <T extends object>(o: T, keys: Array<keyof T>): T => {
  const x = { ...o };
  for (const k of keys) if (typeof x[k] === 'number') (x as Record<keyof T, unknown>)[k] = ms(x[k] as number);
  return x;
};

export const calls = {
  createCampaign: (input: NewCampaign): Call<Campaign> =>
    value('createCampaign', 'create_campaign', { p_campaign: withTimes(input, ['now', 'scheduledAt']) }, campaignFromJson, { input, id: input.id }),
  getCampaign: (id: string): Call<Campaign | null> => value('getCampaign', 'get_campaign', { p_id: id }, campaignOrNull),
  listCampaigns: (filter: CampaignFilter = {}): Call<Campaign[]> =>
    value('listCampaigns', 'list_campaigns', { p_statuses: filter.status ?? null, p_limit: count(filter.limit) }, (v) => listOf(v).map(campaignFromJson)),
  /** `from` narrowed to the statuses that may go to `to` (core's CAMPAIGN_TRANSITIONS), `finished` from core's isFinished. */
  transitionCampaign: (id: string, change: CampaignTransition): Call<Campaign | null> =>
    value(
      'transitionCampaign',
      'transition_campaign',
      { p_id: id, p_change: { ...withTimes(change, ['now', 'scheduledAt']), from: change.from.filter((f) => canTransition(f, change.to)), finished: isFinished(change.to) } },
      campaignOrNull,
      { input: change },
    ),
  updateCampaign: (id: string, patch: CampaignPatch, now: number): Call<Campaign | null> =>
    value('updateCampaign', 'update_campaign', { p_id: id, p_patch: withTimes(patch, ['scheduledAt']), p_now: ms(now) }, campaignOrNull, { input: patch }),
  nextBatch: (input: NextBatchInput): Call<Campaign | null> =>
    value(
      'nextBatch',
      'next_batch',
      { p_campaign_id: input.campaignId, p_current: input.current, p_next: input.next, p_next_batch_at: msOrNull(input.nextBatchAt), p_now: ms(input.now) },
      campaignOrNull,
    ),

  /** The JSON import (PGlite, single connections, PostgREST); node-postgres pools COPY instead (see import.ts). */
  addRecipients: (campaignId: string, list: NewRecipient[], now: number): Call<AddRecipientsResult> =>
    value('addRecipients', 'add_recipients', { p_campaign_id: campaignId, p_rows: list.map((r) => ({ phone: r.phone, vars: r.vars ?? {} })), p_now: ms(now) }, importResult, {
      input: { rows: list },
      id: campaignId,
    }),
  listRecipients: (campaignId: string, query: RecipientQuery = {}): Call<Recipient[]> =>
    rows(
      'listRecipients',
      'list_recipients',
      { p_campaign_id: campaignId, p_statuses: query.status ?? null, p_after_seq: count(query.afterSeq), p_limit: count(query.limit) },
      (r) => r.map(toRecipient),
    ),
  getRecipientByProviderId: (providerMessageId: string): Call<Recipient | null> =>
    rows('getRecipientByProviderId', 'get_recipient_by_provider_id', { p_provider_message_id: providerMessageId }, first(toRecipient), { input: providerMessageId }),

  /** `afterSeq`: the caller's keyset cursor in this batch (see ClaimCursors). */
  claimRecipients: (input: ClaimInput, afterSeq: number): Call<Recipient[]> =>
    rows(
      'claimRecipients',
      'claim_recipients',
      {
        p_campaign_id: input.campaignId,
        p_batch: input.batch,
        p_owner: input.owner,
        p_limit: Math.max(0, Math.floor(input.limit)),
        p_now: ms(input.now),
        p_lease_ms: ms(input.leaseMs),
        p_after_seq: afterSeq,
      },
      (r) => r.map(toRecipient).sort((a, b) => a.seq - b.seq),
      { input },
    ),
  checkpoint: (input: CheckpointInput): Call<CheckpointResult> => value('checkpoint', 'checkpoint', { ...checkpointArgs(input) }, (v) => checkpointResult(input, v), { input, prepared: true }),
  heartbeat: (owner: string, now: number, leaseMs: number): Call<number> => value('heartbeat', 'heartbeat', { p_owner: owner, p_now: ms(now), p_lease_ms: ms(leaseMs) }, num),
  release: (owner: string, recipientIds?: string[]): Call<number> => value('release', 'release', { p_owner: owner, p_recipient_ids: recipientIds ?? null }, num),

  listInDoubt: (now: number, limit: number, campaignId?: string): Call<Recipient[]> =>
    rows('listInDoubt', 'list_in_doubt', { p_now: ms(now), p_limit: Math.max(0, Math.floor(limit)), p_campaign_id: campaignId ?? null }, (r) => r.map(toRecipient)),
  settleInDoubt: (settlements: InDoubtSettlement[], now: number): Call<number> =>
    value('settleInDoubt', 'settle_in_doubt', { p_settlements: settlements.map((s) => withTimes(s, ['sentAt'])), p_now: ms(now) }, num, { input: settlements }),

  upsertAccount: (id: string, pacing: Pacing, now: number): Call<AccountRecord> =>
    rows('upsertAccount', 'upsert_account', { p_id: id, p_pacing: pacing, p_now: ms(now) }, (r) => toAccount(r[0]!), { input: pacing }),
  getAccount: (id: string): Call<AccountRecord | null> => rows('getAccount', 'get_account', { p_id: id }, first(toAccount)),
  listAccounts: (ids?: string[]): Call<AccountRecord[]> => rows('listAccounts', 'list_accounts', { p_ids: ids ?? null }, (r) => r.map(toAccount)),
  updateAccount: (id: string, patch: AccountPatch, now: number): Call<AccountRecord | null> => {
    const p: AccountPatch = withTimes(patch, ['disabledUntil']);
    if (patch.nextSendAtAtLeast !== undefined) p.nextSendAtAtLeast = Math.ceil(patch.nextSendAtAtLeast);
    return rows('updateAccount', 'update_account', { p_id: id, p_patch: p, p_now: ms(now) }, first(toAccount), { input: patch });
  },

  applyStatusUpdates: (updates: StatusUpdate[], now: number): Call<StatusUpdateResult> =>
    value('applyStatusUpdates', 'apply_status_updates', { p_updates: updates.map((u) => withTimes(u, ['at'])), p_now: ms(now), p_held_ms: HELD_RECEIPT_MS }, statusUpdateResult, { input: updates }),

  addOptOuts: (entries: OptOut[], now: number): Call<{ added: number; cancelled: number }> =>
    value(
      'addOptOuts',
      'add_opt_outs',
      { p_entries: entries.map((e) => withTimes(e, ['at'])), p_now: ms(now) },
      (v) => {
        const r = (v ?? {}) as Record<string, unknown>;
        return { added: num(r.added), cancelled: num(r.cancelled) };
      },
      { input: entries },
    ),
  removeOptOut: (phone: string): Call<boolean> => value('removeOptOut', 'remove_opt_out', { p_phone: phone }, (v) => v === true || v === 't', { input: phone }),
  listOptOuts: (phones?: string[]): Call<OptOut[]> => rows('listOptOuts', 'list_opt_outs', { p_phones: phones ?? null }, (r) => r.map(toOptOut), { input: phones }),
  contactHistory: (phones: string[], since: number): Call<ContactSend[]> =>
    rows('contactHistory', 'contact_history', { p_phones: phones, p_since: ms(since) }, (r) => r.map(toContactSend), { input: phones }),
  accountSendTimes: (accountId: string, since: number, limit: number): Call<number[]> =>
    rows('accountSendTimes', 'account_send_times', { p_account_id: accountId, p_since: ms(since), p_limit: Math.max(0, Math.floor(limit)) }, (r) => r.map((x) => num(x.sent_at))),

  listBatches: (campaignId: string): Call<BatchRecord[]> => value('listBatches', 'list_batches', { p_campaign_id: campaignId }, (v) => listOf(v).map(batchFromJson)),
  countProcessedSince: (campaignId: string, since: number): Call<number> =>
    value('countProcessedSince', 'count_processed_since', { p_campaign_id: campaignId, p_since: ms(since) }, num),
  cleanup: (olderThan: number): Call<{ campaigns: number; recipients: number }> =>
    value('cleanup', 'cleanup', { p_older_than: ms(olderThan) }, (v) => {
      const r = (v ?? {}) as Record<string, unknown>;
      return { campaigns: num(r.campaigns), recipients: num(r.recipients) };
    }),
  notifyWake: (channel: string): Call<void> => value('notifyWake', 'notify_wake', { p_channel: channel }, () => undefined),
};

export function importResult(v: unknown): AddRecipientsResult {
  const r = (typeof v === 'string' ? JSON.parse(v) : (v ?? {})) as Record<string, unknown>;
  return { inserted: num(r.inserted), duplicates: num(r.duplicates), optedOut: num(r.optedOut) };
}

function statusUpdateResult(v: unknown): StatusUpdateResult {
  const r = (typeof v === 'string' ? JSON.parse(v) : (v ?? {})) as Record<string, unknown>;
  return {
    applied: num(r.applied),
    ignored: num(r.ignored),
    unmatched: num(r.unmatched),
    held: num(r.held),
    changed: listOf(r.changed).map((c) => {
      const x = c as Record<string, unknown>;
      return { recipientId: String(x.recipientId), campaignId: String(x.campaignId), from: x.from as Recipient['status'], to: x.to as Recipient['status'] };
    }),
  };
}

/**
 * Each worker's keyset cursor per campaign and batch: the highest seq it claimed there (see
 * claim_recipients). A short claim means the batch has nothing left above it: start from the bottom.
 */
export class ClaimCursors {
  private readonly at = new Map<string, number>();

  after(input: ClaimInput): number {
    return this.at.get(this.key(input)) ?? 0;
  }

  claimed(input: ClaimInput, got: Recipient[]): void {
    const key = this.key(input);
    if (got.length === 0 || got.length < input.limit) this.at.delete(key);
    else this.at.set(key, got[got.length - 1]!.seq);
  }

  private key(input: ClaimInput): string {
    return `${input.owner}\u0000${input.campaignId}\u0000${input.batch}`;
  }
}
