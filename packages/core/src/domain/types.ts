/**
 * Domain records as every StateStore persists them. Times are epoch milliseconds
 * (numbers), so records are plain JSON and every store maps them the same way.
 */

export const CAMPAIGN_STATUSES = ['draft', 'scheduled', 'running', 'paused', 'completed', 'cancelled'] as const;
export type CampaignStatus = (typeof CAMPAIGN_STATUSES)[number];

export const PAUSE_REASONS = ['manual', 'no_accounts', 'send_window', 'daily_cap', 'error_threshold'] as const;
export type PauseReason = (typeof PAUSE_REASONS)[number];

export const RECIPIENT_STATUSES = ['pending', 'sending', 'sent', 'delivered', 'read', 'failed', 'skipped', 'unknown'] as const;
export type RecipientStatus = (typeof RECIPIENT_STATUSES)[number];

/** Statuses a recipient never leaves by sending (delivery receipts may still move sent -> delivered -> read). */
export const TERMINAL_STATUSES: readonly RecipientStatus[] = ['sent', 'delivered', 'read', 'failed', 'skipped', 'unknown'];

/** Why a stored recipient was skipped. (Duplicates and invalid numbers are counted at import and never stored.) */
export const SKIP_REASONS = ['opted_out', 'not_on_whatsapp', 'template_error', 'frequency_capped'] as const;
export type SkipReason = (typeof SKIP_REASONS)[number];

export type InDoubtPolicy = 'at-most-once' | 'at-least-once';

export interface Range {
  min: number;
  max: number;
}

/** Per-status counts of a campaign's recipient rows; `total` is their sum. Stores keep them equal to the rows (I2). */
export interface RecipientCounters {
  total: number;
  pending: number;
  sending: number;
  sent: number;
  delivered: number;
  read: number;
  failed: number;
  skipped: number;
  unknown: number;
}


export interface MediaSpec {
  url: string;
  type: 'image' | 'video' | 'document' | 'audio';
  mimeType?: string | undefined;
  fileName?: string | undefined;
}

/** A daily send window in a time zone, e.g. 09:00-18:00 America/Sao_Paulo. `end` before `start` spans midnight. */
export interface SendWindow {
  start: string; // "HH:MM"
  end: string; // "HH:MM"
  timeZone: string;
  /** ISO weekdays (1 = Monday .. 7 = Sunday) on which the window opens; all when absent. */
  days?: number[] | undefined;
}

export interface CampaignSettings {
  batchSize: number;
  /** Pause between two batches of this campaign. */
  batchPauseMs: Range;
  /** Attempts per recipient for transient failures (rate limits and account errors consume none). */
  maxAttempts: number;
  /** Backoff between transient retries. */
  retryBackoffMs: Range;
  inDoubt: InDoubtPolicy;
  sendWindow: SendWindow | null;
  /** Keep a contact on the account that last wrote to them, across campaigns. */
  stickySender: boolean;
  /** Ask the transport whether numbers are on WhatsApp before spending a send. */
  precheckNumbers: boolean;
  /** At most `max` messages to one contact per `periodMs`, across every campaign (skipped as `frequency_capped`). */
  contactCap: { max: number; periodMs: number } | null;
}

export interface Campaign {
  id: string;
  name: string;
  /** One or more templates; each recipient gets one chosen deterministically. */
  templates: string[];
  media: MediaSpec | null;
  accountIds: string[];
  status: CampaignStatus;
  pauseReason: PauseReason | null;
  settings: CampaignSettings;
  scheduledAt: number | null;
  /** Batch being worked (1-based); 0 before the first claim. The seeds' `lote_atual`. */
  currentBatch: number;
  /** Earliest time the current batch may be claimed (batch pause). */
  nextBatchAt: number | null;
  counters: RecipientCounters;
  lastError: string | null;
  metadata: Record<string, unknown>;
  createdAt: number;
  updatedAt: number;
  startedAt: number | null;
  finishedAt: number | null;
}

export interface Recipient {
  id: string;
  campaignId: string;
  /** E.164 digits without '+', e.g. 5511987654321. */
  phone: string;
  vars: Record<string, string>;
  /** Position in the campaign (1-based, in insertion order, no gaps). */
  seq: number;
  batch: number;
  status: RecipientStatus;
  skipReason: SkipReason | null;
  /** The rendered text actually sent (stored before the send). */
  text: string | null;
  attempts: number;
  lastError: string | null;
  providerMessageId: string | null;
  accountId: string | null;
  leaseOwner: string | null;
  leaseExpiresAt: number | null;
  sentAt: number | null;
  deliveredAt: number | null;
  readAt: number | null;
  /** When the recipient reached its current terminal status (sent/failed/skipped/unknown). */
  processedAt: number | null;
  updatedAt: number;
}

export interface BatchRecord {
  campaignId: string;
  batch: number;
  size: number;
  sent: number;
  failed: number;
  skipped: number;
  unknown: number;
  startedAt: number | null;
  finishedAt: number | null;
  error: string | null;
}

export interface Pacing {
  /** Random gap between two sends of this account. Seed default 5-15 s. */
  intervalMs: Range;
  hourlyCap: number | null;
  dailyCap: number | null;
  /** Warm-up for new numbers: the daily cap on day N (0-based since `startedAt`) is min(dailyCap, start * growth^N). */
  warmup: { startedAt: number; start: number; growth: number } | null;
  /** Typing presence before a send: ms per character of text, capped. 0 disables. */
  typingMsPerChar: number;
  typingMaxMs: number;
  /**
   * The account's in-flight window W: at most this many of its sends written ahead without an
   * outcome (on the wire, or in doubt after a crash), across every worker. 1 (the default) for
   * human-paced providers; raise it only for official APIs that take bursts.
   */
  maxInFlight: number;
  /**
   * Pace by rate instead of by a human interval (official APIs): sends spaced evenly at this many per
   * second (a little under it, so a late send never pushes a second over), up to `maxInFlight` on the
   * wire at once. Null (the default): the `intervalMs` gap, one send after another's answer.
   */
  ratePerSecond: number | null;
}

export type AccountState = 'active' | 'disabled' | 'stopped';
export type ConnectionState = 'open' | 'connecting' | 'close' | 'unknown';

export interface AccountRecord {
  id: string;
  pacing: Pacing;
  /** active: may send; disabled: cooling down until `disabledUntil` after N failures; stopped: needs a human (logged out, banned). */
  state: AccountState;
  connection: ConnectionState;
  consecutiveFailures: number;
  disabledUntil: number | null;
  disabledReason: string | null;
  /** Earliest time this account may send next; reserved atomically in the store. */
  nextSendAt: number;
  hourKey: string | null;
  sentThisHour: number;
  dayKey: string | null;
  sentToday: number;
  createdAt: number;
  updatedAt: number;
}

export interface OptOut {
  phone: string;
  reason: string;
  source: 'api' | 'inbound' | 'import';
  at: number;
}
