import { calls, ClaimCursors, wakeChannel, type Call } from '@disparo/adapter-postgres/calls';
import {
  StoreError,
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
  type StateStore,
  type StatusUpdate,
  type StatusUpdateResult,
} from '@disparo/core/store';
import { checkClient, type RpcBuilder, type RpcResponse, type SupabaseClientLike } from './client.js';
import { toSupabaseError } from './errors.js';
import { parseOptions, type ResolvedOptions, type SupabaseStoreOptions } from './options.js';

type RpcTarget = ReturnType<SupabaseClientLike['schema']>;

const chunks = <T>(list: T[], size: number): T[][] => {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
};

/**
 * The StateStore on Supabase, through `supabase.rpc()` only: it runs wherever a Supabase client does
 * (Edge Functions on Deno, Node). Every method is one call of one of @disparo/adapter-postgres's SQL
 * functions (its `calls`: the same arguments and the same decoding), so the rules live in SQL once and
 * this class only carries them over HTTP. The exceptions come from PostgREST's row cap (`maxRows`): a
 * listing longer than that is read in pages, one call each.
 *
 * Wake-ups: `notifyWake` sends the same NOTIFY as the PostgreSQL store, so workers on
 * @disparo/adapter-postgres that LISTEN on this schema wake up when a campaign starts here. There is no
 * `subscribeWake`: a LISTEN needs a session, which HTTP calls do not keep (Supabase Realtime could carry
 * it, through a table or a broadcast of its own); engines on this store find work by polling, and an
 * Edge Function driven by pg_cron has no idle loop to wake.
 */
export class SupabaseStore implements StateStore {
  readonly name = 'supabase';
  readonly schema: string;
  private readonly o: ResolvedOptions;
  private readonly db: RpcTarget;
  private readonly cursors = new ClaimCursors();

  constructor(client: SupabaseClientLike, options: SupabaseStoreOptions = {}) {
    this.o = parseOptions(options);
    this.schema = this.o.schema;
    this.db = checkClient(client).schema(this.schema);
  }

  /** One RPC: `schema.fn(args)` over PostgREST, its error typed, given up after `timeoutMs`. */
  private async run<T>(call: Call<T>): Promise<T> {
    const ctx = { method: call.method, fn: call.fn, schema: this.schema, input: call.input, ...(call.id !== undefined ? { id: call.id } : {}) };
    const signal = AbortSignal.timeout(this.o.timeoutMs);
    let response: RpcResponse;
    try {
      const builder = this.db.rpc(call.fn, call.args) as RpcBuilder;
      response = await (builder.abortSignal ? builder.abortSignal(signal) : builder);
    } catch (error) {
      // supabase-js answers failures in `error`; a custom fetch that throws lands here.
      throw new StoreError(`${call.method} (${this.schema}.${call.fn}): the Supabase client threw: ${error instanceof Error ? error.message : String(error)}. The engine retries.`, {
        cause: error,
      });
    }
    if (response.error) {
      if (signal.aborted) {
        throw new StoreError(`${call.method} (${this.schema}.${call.fn}) got no answer from Supabase within ${this.o.timeoutMs} ms; the engine retries.`, { cause: response.error });
      }
      throw toSupabaseError(response.error, response.status, ctx);
    }
    const data = response.data;
    // A set-returning function answers a JSON array; be lenient with a single object.
    return call.decode(call.returns === 'rows' ? (Array.isArray(data) ? data : data === null || data === undefined ? [] : [data]) : data);
  }

  /** A listing PostgREST may have cut at `maxRows` rows: refuse to pass it on as complete. */
  private whole<T>(rows: T[], what: string, instead: string): T[] {
    if (rows.length >= this.o.maxRows) {
      throw new StoreError(`${what} returned ${rows.length} rows, the Data API's row cap (maxRows ${this.o.maxRows}): the list may be cut. ${instead}`);
    }
    return rows;
  }

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

  /** The JSON import (`add_recipients`): COPY does not exist over HTTP. One call per chunk the engine sends. */
  addRecipients(campaignId: string, rows: NewRecipient[], now: number): Promise<AddRecipientsResult> {
    return this.run(calls.addRecipients(campaignId, rows, now));
  }

  /** Paged by `seq` when more than `maxRows` rows are asked for (or no limit is given). */
  async listRecipients(campaignId: string, query: RecipientQuery = {}): Promise<Recipient[]> {
    const want = query.limit === undefined ? Number.POSITIVE_INFINITY : Math.max(0, Math.floor(query.limit));
    const out: Recipient[] = [];
    let after = query.afterSeq ?? 0;
    for (;;) {
      const limit = Math.min(this.o.maxRows, want - out.length);
      if (limit <= 0) return out;
      const page = await this.run(calls.listRecipients(campaignId, { ...query, afterSeq: after, limit }));
      out.push(...page);
      if (page.length < limit) return out;
      after = page[page.length - 1]!.seq;
    }
  }

  getRecipientByProviderId(providerMessageId: string): Promise<Recipient | null> {
    return this.run(calls.getRecipientByProviderId(providerMessageId));
  }

  // ---- work ------------------------------------------------------------

  /** At most `maxRows` per call: the function leases every row it returns, so none may be cut off on the way. */
  async claimRecipients(input: ClaimInput): Promise<Recipient[]> {
    const capped = input.limit > this.o.maxRows ? { ...input, limit: this.o.maxRows } : input;
    const rows = await this.run(calls.claimRecipients(capped, this.cursors.after(capped)));
    this.cursors.claimed(capped, rows);
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

  /** Up to `min(limit, maxRows)`: recovery asks again for the rest. */
  listInDoubt(now: number, limit: number, campaignId?: string): Promise<Recipient[]> {
    return this.run(calls.listInDoubt(now, Math.min(limit, this.o.maxRows), campaignId));
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

  async listAccounts(ids?: string[]): Promise<AccountRecord[]> {
    if (!ids) return this.whole(await this.run(calls.listAccounts()), 'listAccounts()', 'Raise the project\'s "Max rows" and the maxRows option, or pass the ids.');
    if (ids.length <= this.o.maxRows) return this.run(calls.listAccounts(ids));
    const out: AccountRecord[] = [];
    for (const part of chunks(ids, this.o.maxRows)) out.push(...(await this.run(calls.listAccounts(part))));
    return out;
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

  async listOptOuts(phones?: string[]): Promise<OptOut[]> {
    if (!phones) return this.whole(await this.run(calls.listOptOuts()), 'listOptOuts()', 'Pass the phones to check, or raise the project\'s "Max rows" and the maxRows option.');
    if (phones.length <= this.o.maxRows) return this.run(calls.listOptOuts(phones));
    const out: OptOut[] = [];
    for (const part of chunks(phones, this.o.maxRows)) out.push(...(await this.run(calls.listOptOuts(part))));
    return out.sort((a, b) => a.at - b.at || (a.phone < b.phone ? -1 : a.phone > b.phone ? 1 : 0));
  }

  /** Newest first. Phones go in groups whose sends fit under `maxRows`; a group that fills it is split. */
  async contactHistory(phones: string[], since: number): Promise<ContactSend[]> {
    const out: ContactSend[] = [];
    const pending = chunks([...new Set(phones)], this.o.maxRows);
    for (let part = pending.shift(); part; part = pending.shift()) {
      const rows = await this.run(calls.contactHistory(part, since));
      if (rows.length >= this.o.maxRows && part.length > 1) {
        const half = Math.ceil(part.length / 2);
        pending.unshift(part.slice(0, half), part.slice(half));
        continue;
      }
      // One phone with maxRows sends or more in the window: its newest maxRows are enough for any cap or sticky sender.
      out.push(...rows);
    }
    return out.sort((a, b) => b.sentAt - a.sentAt);
  }

  /** Ascending, paged from the last time seen (rows at that very time are not counted twice). */
  async accountSendTimes(accountId: string, since: number, limit: number): Promise<number[]> {
    const want = Math.max(0, Math.floor(limit));
    const out: number[] = [];
    let from = since;
    let seenAtFrom = 0;
    while (out.length < want) {
      const ask = Math.min(this.o.maxRows, want - out.length + seenAtFrom);
      const page = await this.run(calls.accountSendTimes(accountId, from, ask));
      const fresh = page.slice(seenAtFrom);
      out.push(...fresh.slice(0, want - out.length));
      if (page.length < ask || fresh.length === 0) break;
      const last = page[page.length - 1]!;
      if (last === from) break; // a whole page at one instant: nothing more can be told apart
      seenAtFrom = page.filter((t) => t === last).length;
      from = last;
    }
    return out;
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

  // ---- wake-ups -------------------------------------------------------------

  /** NOTIFY the PostgreSQL store's wake channel of this schema (see the class comment). */
  notifyWake(): Promise<void> {
    return this.run(calls.notifyWake(wakeChannel(this.schema)));
  }
}

/**
 * A StateStore on Supabase. `client` is a `@supabase/supabase-js` 2.x client created with the project's
 * service_role key (`createClient(SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY)`); the schema must hold the
 * Disparo migration this package ships and be exposed to the Data API.
 */
export function createSupabaseStore(client: SupabaseClientLike, options: SupabaseStoreOptions = {}): SupabaseStore {
  return new SupabaseStore(client, options);
}
