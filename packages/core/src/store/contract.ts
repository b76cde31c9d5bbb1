import type { CapWindow } from '../domain/calendar.js';
import type {
  AccountRecord,
  AccountState,
  BatchRecord,
  Campaign,
  CampaignSettings,
  CampaignStatus,
  ConnectionState,
  MediaSpec,
  OptOut,
  Pacing,
  PauseReason,
  Recipient,
  RecipientStatus,
  SkipReason,
} from '../domain/types.js';
import type { Grant } from '../rules/slots.js';

/**
 * Everything durable lives behind this interface. It is batch-oriented so that a
 * database store can do each call in one round trip (one statement or one
 * transaction). Every method is atomic on its own. `now` always comes from the
 * engine's Clock, never from the store's own clock, so virtual time works.
 *
 * A store is done when it passes `describeStateStore` from `@disparo/core/testing`.
 */
export interface StateStore {
  /** Short name used in error messages and logs, e.g. `memory`, `postgres`. */
  readonly name: string;

  // ---- campaigns -------------------------------------------------------
  createCampaign(input: NewCampaign): Promise<Campaign>;
  getCampaign(id: string): Promise<Campaign | null>;
  listCampaigns(filter?: CampaignFilter): Promise<Campaign[]>;
  /**
   * Compare-and-set: when the campaign's status is one of `from`, set `to` and the
   * patch, and return the updated campaign; otherwise change nothing and return null.
   */
  transitionCampaign(id: string, change: CampaignTransition): Promise<Campaign | null>;
  /** Change settings/templates/accounts/metadata (the engine only allows it outside `running`). */
  updateCampaign(id: string, patch: CampaignPatch, now: number): Promise<Campaign | null>;
  /**
   * Move the campaign's batch pointer from `current` to `next` (and set the pause before it) when its
   * current batch is `current` and no recipient of that batch is pending or sending. Marks the finished
   * batch record. Returns the updated campaign, or null when the batch is not finished or another worker
   * moved the pointer first.
   */
  nextBatch(input: NextBatchInput): Promise<Campaign | null>;

  // ---- recipients ------------------------------------------------------
  /**
   * Insert already normalised recipients (in order). Idempotent on (campaignId, phone): a phone already
   * in the campaign, or repeated in `rows`, counts as a duplicate and is not inserted. A phone on the
   * suppression list is not inserted and counts as `optedOut`. Inserted rows get consecutive `seq`
   * numbers after the campaign's last, `batch = ceil(seq / batchSize)`, status `pending`; the campaign's
   * counters and the batch records' sizes grow with them in the same transaction.
   */
  addRecipients(campaignId: string, rows: NewRecipient[], now: number): Promise<AddRecipientsResult>;
  /**
   * Optional, with `addRecipientBuffer`: an empty chunk of an import in the store's own form (e.g.
   * the bytes it will send), or null to take arrays (async like every store method, so wrappers that
   * proxy a store's methods keep working). The engine pushes each row into it as it reads
   * the source, so no row object outlives its reading (a chunk of objects, held while the next was
   * read, was most of a large import's memory), then writes it with `addRecipientBuffer`, which does
   * exactly what `addRecipients` does with the same rows in the same order.
   */
  recipientBuffer?(): Promise<RecipientBuffer | null>;
  addRecipientBuffer?(campaignId: string, rows: RecipientBuffer, now: number): Promise<AddRecipientsResult>;
  listRecipients(campaignId: string, query?: RecipientQuery): Promise<Recipient[]>;
  getRecipientByProviderId(providerMessageId: string): Promise<Recipient | null>;

  // ---- work ------------------------------------------------------------
  /**
   * Lease up to `limit` pending recipients of `campaignId` in batch `batch`, lowest `seq` first, that no live
   * lease holds (`leaseOwner` null or `leaseExpiresAt <= now`). They stay `pending`, with
   * `leaseOwner = owner` and `leaseExpiresAt = now + leaseMs`. Two callers never get the same row
   * (Postgres: FOR UPDATE SKIP LOCKED). Rows whose phone is on the suppression list are not returned:
   * they become `skipped`/`opted_out` in the same step. Marks the batch record started.
   */
  claimRecipients(input: ClaimInput): Promise<Recipient[]>;
  /**
   * The checkpoint of the send path, atomic: first record `outcomes` in order (each applied only while
   * its row is open and leased by `owner`; see `outcomeApplies`), then, when `writeAhead` is given,
   * reserve the account's slots for its items (`reserveSlots`: checks in the order of `SLOT_CHECKS`,
   * counting the account's sends in flight across every owner) and write each granted item ahead:
   * `sending`, with its text, account and attempt. A single send is a group of one; with one call per
   * message a database store spends one commit per message.
   */
  checkpoint(input: CheckpointInput): Promise<CheckpointResult>;
  /** Extend every lease `owner` holds to `now + leaseMs`. Returns the number of rows extended. */
  heartbeat(owner: string, now: number, leaseMs: number): Promise<number>;
  /** Drop `owner`'s leases on `pending` rows (all, or the ids given). `sending` rows are left to recovery. */
  release(owner: string, recipientIds?: string[]): Promise<number>;

  // ---- recovery --------------------------------------------------------
  /** Recipients in `sending` whose lease expired before `now`: sends that may or may not have happened. */
  listInDoubt(now: number, limit: number, campaignId?: string): Promise<Recipient[]>;
  /**
   * Settle in-doubt recipients. Each applies only if the row is still `sending` with an expired lease
   * (`leaseExpiresAt <= now`), so two recovering workers cannot both settle it. A settled row frees its
   * account's window and paces it (`nextSendAfterSettling`). Returns how many applied.
   */
  settleInDoubt(settlements: InDoubtSettlement[], now: number): Promise<number>;

  // ---- accounts --------------------------------------------------------
  /** Create the account, or update its pacing; state and pacing position are kept. */
  upsertAccount(id: string, pacing: Pacing, now: number): Promise<AccountRecord>;
  getAccount(id: string): Promise<AccountRecord | null>;
  listAccounts(ids?: string[]): Promise<AccountRecord[]>;
  updateAccount(id: string, patch: AccountPatch, now: number): Promise<AccountRecord | null>;

  // ---- delivery --------------------------------------------------------
  /**
   * Apply provider receipts keyed on provider message id (or, for a row that has none yet, on the
   * idempotency key `campaignId:phone` the receipt carries). Monotonic: sent < delivered < read; `failed`
   * only before delivered; a repeated or late update changes nothing (`DELIVERY_TRANSITIONS`). A
   * receipt settles an `unknown` row forward. One that finds no row, or a `sending` one (its outcome
   * not recorded yet), is held for `HELD_RECEIPT_MS`; a call with no `updates` tries the held ones
   * again, oldest first (`holdsReceipt`). Counters follow.
   */
  applyStatusUpdates(updates: StatusUpdate[], now: number): Promise<StatusUpdateResult>;

  // ---- contacts --------------------------------------------------------
  /** Add phones to the suppression list and skip (`opted_out`) their pending, unleased or leased, sends in every campaign. */
  addOptOuts(entries: OptOut[], now: number): Promise<{ added: number; cancelled: number }>;
  removeOptOut(phone: string): Promise<boolean>;
  listOptOuts(phones?: string[]): Promise<OptOut[]>;

  /**
   * Optional: sends (rows in sent/delivered/read) to these phones at or after `since`, in any campaign,
   * newest first. Enables sticky senders and per-contact frequency caps.
   */
  contactHistory?(phones: string[], since: number): Promise<ContactSend[]>;
  /** Optional: `sentAt` of this account's sends at or after `since`, ascending (pacing report). */
  accountSendTimes?(accountId: string, since: number, limit: number): Promise<number[]>;

  // ---- progress & maintenance -------------------------------------------
  listBatches(campaignId: string): Promise<BatchRecord[]>;
  /** How many recipients of the campaign reached a terminal status at or after `since`. */
  countProcessedSince(campaignId: string, since: number): Promise<number>;
  /** Delete finished (completed/cancelled) campaigns whose `finishedAt` is before `olderThan`, with their rows. */
  cleanup(olderThan: number): Promise<{ campaigns: number; recipients: number }>;

  /**
   * Optional: tell idle workers elsewhere that work arrived (a campaign started, resumed or was
   * scheduled), e.g. PostgreSQL NOTIFY. Polling stays the fallback, so a lost wake-up only delays.
   */
  notifyWake?(): Promise<void>;
  /** Optional: call `listener` on every wake-up sent by any worker; resolves to the unsubscribe function. */
  subscribeWake?(listener: () => void): Promise<() => Promise<void>>;

  /** Release resources the store owns (not a client the user passed in). */
  close?(): Promise<void>;
}

export interface ContactSend {
  phone: string;
  campaignId: string;
  accountId: string | null;
  sentAt: number;
}

export interface NewCampaign {
  id: string;
  name: string;
  templates: string[];
  media: MediaSpec | null;
  accountIds: string[];
  settings: CampaignSettings;
  status: 'draft' | 'scheduled';
  scheduledAt: number | null;
  metadata: Record<string, unknown>;
  now: number;
}

export interface CampaignFilter {
  status?: CampaignStatus[];
  limit?: number;
}

export interface CampaignTransition {
  from: CampaignStatus[];
  to: CampaignStatus;
  now: number;
  /** Set when `to` is `paused`; cleared otherwise. */
  pauseReason?: PauseReason | null;
  scheduledAt?: number | null;
  lastError?: string | null;
}

export interface CampaignPatch {
  name?: string;
  templates?: string[];
  media?: MediaSpec | null;
  accountIds?: string[];
  settings?: CampaignSettings;
  metadata?: Record<string, unknown>;
  scheduledAt?: number | null;
}

export interface NextBatchInput {
  campaignId: string;
  /** The batch the caller saw as current (compare-and-set). */
  current: number;
  next: number;
  /** When the next batch may start (now + batch pause); null for no pause. */
  nextBatchAt: number | null;
  now: number;
}

export interface NewRecipient {
  phone: string;
  vars: Record<string, string>;
}

/** A chunk of an import as a store keeps it (see `StateStore.recipientBuffer`): rows go in, in order. */
export interface RecipientBuffer {
  push(row: NewRecipient): void;
  /** Rows pushed so far. */
  readonly length: number;
}

export interface AddRecipientsResult {
  inserted: number;
  duplicates: number;
  optedOut: number;
}

export interface RecipientQuery {
  status?: RecipientStatus[];
  /** Rows with `seq` greater than this (keyset paging). */
  afterSeq?: number;
  limit?: number;
}

export interface ClaimInput {
  campaignId: string;
  batch: number;
  owner: string;
  limit: number;
  now: number;
  leaseMs: number;
}

/** The result of one send, or the return of a leased recipient to pending. */
export interface Outcome {
  recipientId: string;
  campaignId: string;
  /**
   * `sent`, `failed`, `skipped`, `unknown` are terminal. `pending` returns the recipient to the queue
   * (account error, shutdown), clearing its lease, with `attempts` as given.
   */
  status: 'sent' | 'failed' | 'skipped' | 'unknown' | 'pending';
  /** With `pending`: keep the lease (a retry by the same owner follows, often in the same checkpoint). */
  keepLease?: boolean;
  attempts: number;
  at: number;
  accountId?: string | null;
  providerMessageId?: string | null;
  error?: string | null;
  skipReason?: SkipReason | null;
  /**
   * Effect on the account's run of consecutive real failures: `success` resets it, `failure` adds one,
   * `none` leaves it (rate limits, invalid recipients, account errors). See `failuresAfter`.
   */
  accountEffect?: 'success' | 'failure' | 'none';
  /**
   * Pacing from the send as it really happened: the account's next slot comes no earlier than this
   * (when this send's answer came back, plus its gap). `nextSendAt` only ever moves later.
   */
  accountNextSendAt?: number;
}

export interface OutcomeResult {
  recipientId: string;
  /** False when the lease was lost (another worker owns the row now): nothing was written. */
  applied: boolean;
  /** The account's consecutive failures after this outcome (when it had an account). */
  consecutiveFailures?: number;
}

export interface CheckpointInput {
  owner: string;
  now: number;
  leaseMs: number;
  outcomes?: Outcome[];
  writeAhead?: WriteAhead;
}

/** Sends through one account to write ahead, reserved as consecutive slots. */
export interface WriteAhead {
  accountId: string;
  /** The account's window W (see `Pacing.maxInFlight`; grouped checkpoints widen it to the group). */
  maxInFlight: number;
  /** How far ahead of now the first slot may lie (see `SlotRequest.aheadMs`); 0 when absent. */
  aheadMs?: number;
  hourly?: CapWindow;
  daily?: CapWindow;
  items: WriteAheadItem[];
}

export interface WriteAheadItem {
  recipientId: string;
  campaignId: string;
  text: string;
  /** The attempt this send is (stored attempts + 1). */
  attempt: number;
  /** Known before the send for transports that choose the id (Baileys). */
  providerMessageId?: string | null;
  /** Gap reserved after this send. */
  gapMs: number;
  /** Time between the slot and the send (typing presence). */
  leadMs: number;
}

export interface CheckpointResult {
  outcomes: OutcomeResult[];
  /** One per `writeAhead` item, in order (empty without a write-ahead). */
  grants: Grant[];
}

export interface InDoubtSettlement {
  recipientId: string;
  status: 'sent' | 'pending' | 'unknown';
  providerMessageId?: string | null;
  sentAt?: number | null;
}

export interface AccountPatch {
  state?: AccountState;
  connection?: ConnectionState;
  consecutiveFailures?: number;
  disabledUntil?: number | null;
  disabledReason?: string | null;
  /** Push `nextSendAt` to at least this time (never earlier): rate-limit backoff. */
  nextSendAtAtLeast?: number;
}

export interface StatusUpdate {
  providerMessageId: string;
  /**
   * The message's idempotency key, when the provider echoes a correlation string (Cloud API
   * `biz_opaque_callback_data`): the receipt then matches its recipient even when the send's answer
   * (and so the provider id) was lost, and the recipient learns its provider id.
   */
  idempotencyKey?: string | null;
  status: 'sent' | 'delivered' | 'read' | 'failed';
  at: number;
  error?: string | null;
}

export interface StatusUpdateResult {
  applied: number;
  /** Known ids whose update did not move the status forward (repeats, late receipts). */
  ignored: number;
  /** Ids no recipient carries (test sends, other systems, or a send whose answer is not recorded yet). */
  unmatched: number;
  /**
   * Receipts of this call kept to be tried again (no row yet, or the row still `sending`: see
   * `holdsReceipt`). Held receipts that apply in a call with no updates count in its `applied` and `changed`.
   */
  held: number;
  /** The recipients that changed, for events. */
  changed: Array<{ recipientId: string; campaignId: string; from: RecipientStatus; to: RecipientStatus }>;
}
