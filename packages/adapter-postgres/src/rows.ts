import type { AccountRecord, BatchRecord, Campaign, ContactSend, OptOut, Recipient, RecipientCounters } from '@disparo/core/store';

/**
 * What the SQL functions return, as the contract's records. Table rows (recipients, accounts,
 * opt-outs) come with their snake_case columns; campaigns and batch records, whose counts are sums
 * of counter shards, come as JSON already shaped like the records. The same results arrive through
 * node-postgres (bigint as a string), PGlite (numbers) and PostgREST (JSON), so every number goes
 * through `num`.
 */

export const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
export const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const json = <T>(v: unknown): T => (typeof v === 'string' ? (JSON.parse(v) as T) : (v as T));
const textOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

type Row = Record<string, unknown>;

export function toRecipient(r: Row): Recipient {
  return {
    id: String(r.id),
    campaignId: String(r.campaign_id),
    phone: String(r.phone),
    vars: json(r.vars),
    seq: num(r.seq),
    batch: num(r.batch),
    status: r.status as Recipient['status'],
    skipReason: (r.skip_reason ?? null) as Recipient['skipReason'],
    text: textOrNull(r.text),
    attempts: num(r.attempts),
    lastError: textOrNull(r.last_error),
    providerMessageId: textOrNull(r.provider_message_id),
    accountId: textOrNull(r.account_id),
    leaseOwner: textOrNull(r.lease_owner),
    leaseExpiresAt: numOrNull(r.lease_expires_at),
    sentAt: numOrNull(r.sent_at),
    deliveredAt: numOrNull(r.delivered_at),
    readAt: numOrNull(r.read_at),
    processedAt: numOrNull(r.processed_at),
    updatedAt: num(r.updated_at),
  };
}

export function toAccount(r: Row): AccountRecord {
  return {
    id: String(r.id),
    pacing: json(r.pacing),
    state: r.state as AccountRecord['state'],
    connection: r.connection as AccountRecord['connection'],
    consecutiveFailures: num(r.consecutive_failures),
    disabledUntil: numOrNull(r.disabled_until),
    disabledReason: textOrNull(r.disabled_reason),
    nextSendAt: num(r.next_send_at),
    hourKey: textOrNull(r.hour_key),
    sentThisHour: num(r.sent_this_hour),
    dayKey: textOrNull(r.day_key),
    sentToday: num(r.sent_today),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

export const toOptOut = (r: Row): OptOut => ({ phone: String(r.phone), reason: String(r.reason), source: r.source as OptOut['source'], at: num(r.at) });

export const toContactSend = (r: Row): ContactSend => ({ phone: String(r.phone), campaignId: String(r.campaign_id), accountId: textOrNull(r.account_id), sentAt: num(r.sent_at) });

const COUNTERS: Array<keyof RecipientCounters> = ['total', 'pending', 'sending', 'sent', 'delivered', 'read', 'failed', 'skipped', 'unknown'];

/** A campaign as `_campaign_json` builds it. */
export function campaignFromJson(value: unknown): Campaign {
  const c = json<Campaign & Record<string, unknown>>(value);
  const counters = {} as RecipientCounters;
  for (const k of COUNTERS) counters[k] = num(c.counters?.[k]);
  return {
    id: c.id,
    name: c.name,
    templates: c.templates,
    media: c.media ?? null,
    accountIds: c.accountIds,
    status: c.status,
    pauseReason: c.pauseReason ?? null,
    settings: c.settings,
    scheduledAt: numOrNull(c.scheduledAt),
    currentBatch: num(c.currentBatch),
    nextBatchAt: numOrNull(c.nextBatchAt),
    counters,
    lastError: c.lastError ?? null,
    metadata: c.metadata ?? {},
    createdAt: num(c.createdAt),
    updatedAt: num(c.updatedAt),
    startedAt: numOrNull(c.startedAt),
    finishedAt: numOrNull(c.finishedAt),
  };
}

/** A batch record as `list_batches` builds it. */
export function batchFromJson(value: unknown): BatchRecord {
  const b = json<Record<string, unknown>>(value);
  return {
    campaignId: String(b.campaignId),
    batch: num(b.batch),
    size: num(b.size),
    sent: num(b.sent),
    failed: num(b.failed),
    skipped: num(b.skipped),
    unknown: num(b.unknown),
    startedAt: numOrNull(b.startedAt),
    finishedAt: numOrNull(b.finishedAt),
    error: textOrNull(b.error),
  };
}

/** A JSON array (or its text) as a list. */
export const listOf = (value: unknown): unknown[] => (value === null || value === undefined ? [] : json<unknown[]>(value));
