import type { AccountRecord, BatchRecord, Campaign, Recipient } from '@disparo/core/store';
import type { StoreInspector } from '@disparo/core/testing';

/** Anything with `query(text, params)`: a pg.Pool, a pg.Client, PGlite. */
interface Queryable {
  query(text: string, params?: unknown[]): Promise<{ rows: any[] }>;
}

const num = (v: unknown): number => Number(v ?? 0);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const json = (v: unknown): any => (typeof v === 'string' ? JSON.parse(v) : v);

/**
 * The raw reader the conformance suite checks what was persisted with: plain SQL on the tables (never
 * the store's functions), each record mapped here on its own, so a wrong mapping in the store does not
 * hide itself.
 */
export function inspector(db: Queryable, schema: string): StoreInspector & { query(text: string, params?: unknown[]): Promise<any[]> } {
  const s = `"${schema}"`;
  const q = async (text: string, params?: unknown[]) => (await db.query(text, params)).rows;
  return {
    campaign: async (id) => {
      const [c] = await q(
        `SELECT c.*, sum(k.n_total) AS n_total, sum(k.n_pending) AS n_pending, sum(k.n_sending) AS n_sending, sum(k.n_sent) AS n_sent,
           sum(k.n_delivered) AS n_delivered, sum(k.n_read) AS n_read, sum(k.n_failed) AS n_failed, sum(k.n_skipped) AS n_skipped,
           sum(k.n_unknown) AS n_unknown
         FROM ${s}.campaigns c LEFT JOIN ${s}.campaign_counts k ON k.campaign_id = c.id WHERE c.id = $1 GROUP BY c.id`,
        [id],
      );
      return c ? toCampaign(c) : null;
    },
    // Each row with the lease that holds it, by the store's own rule (ranges included: sql/functions/_shown.sql).
    recipients: async (campaignId) =>
      (await q(`SELECT w.* FROM ${s}.recipients r CROSS JOIN LATERAL ${s}._shown(r) w WHERE r.campaign_id = $1 ORDER BY r.seq`, [campaignId])).map(toRecipient),
    batches: async (campaignId) =>
      (
        await q(
          `SELECT b.*, sum(k.n_total) AS size, sum(k.n_sent + k.n_delivered + k.n_read) AS sent, sum(k.n_failed) AS failed,
             sum(k.n_skipped) AS skipped, sum(k.n_unknown) AS unknown
           FROM ${s}.batches b LEFT JOIN ${s}.batch_counts k ON k.campaign_id = b.campaign_id AND k.batch = b.batch
           WHERE b.campaign_id = $1 GROUP BY b.campaign_id, b.batch ORDER BY b.batch`,
          [campaignId],
        )
      ).map(toBatch),
    account: async (id) => {
      const [a] = await q(`SELECT * FROM ${s}.accounts WHERE id = $1`, [id]);
      return a ? toAccount(a) : null;
    },
    query: q,
  };
}

function toCampaign(r: any): Campaign {
  return {
    id: r.id,
    name: r.name,
    templates: json(r.templates),
    media: json(r.media) ?? null,
    accountIds: json(r.account_ids),
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

function toRecipient(r: any): Recipient {
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

function toBatch(r: any): BatchRecord {
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

function toAccount(r: any): AccountRecord {
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
