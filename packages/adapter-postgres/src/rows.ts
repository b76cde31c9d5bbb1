import type { AccountRecord, BatchRecord, Campaign, OptOut, Recipient } from '@disparo/core';

// node-postgres returns bigint and numeric as strings, PGlite as numbers: everything goes through these.
export const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
export const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const json = <T>(v: unknown): T => (typeof v === 'string' ? (JSON.parse(v) as T) : (v as T));

export function toCampaign(r: any): Campaign {
  return {
    id: r.id,
    name: r.name,
    templates: json<string[]>(r.templates),
    media: r.media === null || r.media === undefined ? null : json(r.media),
    accountIds: json<string[]>(r.account_ids),
    status: r.status,
    pauseReason: r.pause_reason ?? null,
    settings: json(r.settings),
    scheduledAt: numOrNull(r.scheduled_at),
    currentBatch: num(r.current_batch),
    nextBatchAt: numOrNull(r.next_batch_at),
    counters: {
      total: num(r.n_total),
      pending: num(r.n_pending),
      sending: num(r.n_sending),
      sent: num(r.n_sent),
      delivered: num(r.n_delivered),
      read: num(r.n_read),
      failed: num(r.n_failed),
      skipped: num(r.n_skipped),
      unknown: num(r.n_unknown),
    },
    lastError: r.last_error ?? null,
    metadata: json(r.metadata),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
    startedAt: numOrNull(r.started_at),
    finishedAt: numOrNull(r.finished_at),
  };
}

export function toRecipient(r: any): Recipient {
  return {
    id: String(r.id),
    campaignId: r.campaign_id,
    phone: r.phone,
    vars: json(r.vars),
    seq: num(r.seq),
    batch: num(r.batch),
    status: r.status,
    skipReason: r.skip_reason ?? null,
    text: r.text ?? null,
    attempts: num(r.attempts),
    lastError: r.last_error ?? null,
    providerMessageId: r.provider_message_id ?? null,
    accountId: r.account_id ?? null,
    leaseOwner: r.lease_owner ?? null,
    leaseExpiresAt: numOrNull(r.lease_expires_at),
    sentAt: numOrNull(r.sent_at),
    deliveredAt: numOrNull(r.delivered_at),
    readAt: numOrNull(r.read_at),
    processedAt: numOrNull(r.processed_at),
    updatedAt: num(r.updated_at),
  };
}

export function toBatch(r: any): BatchRecord {
  return {
    campaignId: r.campaign_id,
    batch: num(r.batch),
    size: num(r.size),
    sent: num(r.sent),
    failed: num(r.failed),
    skipped: num(r.skipped),
    unknown: num(r.unknown),
    startedAt: numOrNull(r.started_at),
    finishedAt: numOrNull(r.finished_at),
    error: r.error ?? null,
  };
}

export function toAccount(r: any): AccountRecord {
  return {
    id: r.id,
    pacing: json(r.pacing),
    state: r.state,
    connection: r.connection,
    consecutiveFailures: num(r.consecutive_failures),
    disabledUntil: numOrNull(r.disabled_until),
    disabledReason: r.disabled_reason ?? null,
    nextSendAt: num(r.next_send_at),
    hourKey: r.hour_key ?? null,
    sentThisHour: num(r.sent_this_hour),
    dayKey: r.day_key ?? null,
    sentToday: num(r.sent_today),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

export function toOptOut(r: any): OptOut {
  return { phone: r.phone, reason: r.reason, source: r.source, at: num(r.at) };
}
