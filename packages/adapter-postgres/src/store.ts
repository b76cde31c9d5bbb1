import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  ConflictError,
  NotFoundError,
  StoreError,
  ValidationError,
  canTransition,
  isFinished,
  type AccountPatch,
  type AccountRecord,
  type AddRecipientsResult,
  type AdvanceBatchInput,
  type AdvanceGroupInput,
  type AdvanceGroupResult,
  type AdvanceInput,
  type AdvanceResult,
  type BatchRecord,
  type BeginResult,
  type SlotRefusal,
  type Campaign,
  type CampaignFilter,
  type CampaignPatch,
  type CampaignTransition,
  type ClaimInput,
  type ContactSend,
  type InDoubtSettlement,
  type NewCampaign,
  type NewRecipient,
  type OptOut,
  type Pacing,
  type Recipient,
  type RecipientQuery,
  type StateStore,
  type StatusUpdate,
  type StatusUpdateResult,
} from '@disparo/core';
import copyStreams from 'pg-copy-streams';
import { z } from 'zod';
import { Db, type Queryable, isPGlite, quoteIdent, type PoolClientLike } from './client.js';
import { migrate, schemaVersion, LATEST_SCHEMA_VERSION, type MigrateResult } from './migrate.js';
import { num, toAccount, toBatch, toCampaign, toOptOut, toRecipient } from './rows.js';

export interface PostgresStoreOptions {
  /** Schema holding Disparo's tables. Default `disparo`. */
  schema?: string;
  /**
   * How recipients are imported: `copy` streams them with COPY (node-postgres pools only), `insert`
   * sends them as JSON in one statement per call. Default: `copy` on a pool, `insert` otherwise.
   */
  importMode?: 'copy' | 'insert';
}

const optionsSchema = z
  .object({
    schema: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, 'a plain identifier: letters, digits and _ (not starting with a digit), up to 63 characters')
      .default('disparo'),
    importMode: z.enum(['copy', 'insert']).optional(),
  })
  .strict();

const COUNTS = `SELECT sum(n_total) AS n_total, sum(n_pending) AS n_pending, sum(n_sending) AS n_sending, sum(n_sent) AS n_sent,
  sum(n_delivered) AS n_delivered, sum(n_read) AS n_read, sum(n_failed) AS n_failed, sum(n_skipped) AS n_skipped, sum(n_unknown) AS n_unknown`;

/** The notification channel that wakes idle workers of one schema. */
export const wakeChannel = (schema: string) => `disparo_wake_${schema}`.toLowerCase();

/**
 * The durable StateStore on PostgreSQL (a `pg.Pool`) or PGlite. Every method is one statement or one
 * transaction; counters are written in the same transaction as the rows they count.
 */
export class PostgresStore implements StateStore {
  readonly name: string;
  readonly schema: string;
  private readonly db: Db;
  private readonly s: string;
  private readonly importMode: 'copy' | 'insert';
  /** Keyset cursor per owner, campaign and batch: the highest seq this worker claimed there. */
  private readonly cursors = new Map<string, number>();

  constructor(client: Queryable, options: PostgresStoreOptions = {}) {
    const parsed = optionsSchema.safeParse(options ?? {});
    if (!parsed.success) throw ValidationError.fromZod('Postgres store options', parsed.error);
    this.db = new Db(client);
    this.schema = parsed.data.schema;
    this.s = quoteIdent(this.schema);
    this.importMode = parsed.data.importMode ?? (this.db.pool ? 'copy' : 'insert');
    if (this.importMode === 'copy' && !this.db.pool) {
      throw new ValidationError('importMode "copy" needs a node-postgres Pool (COPY runs on a checked-out connection); use "insert" with this client.', [
        { path: 'importMode', message: 'copy needs a pg.Pool' },
      ]);
    }
    this.name = isPGlite(client) ? 'pglite' : 'postgres';
  }

  /** Create or upgrade the schema (safe when many workers call it at once). */
  migrate(): Promise<MigrateResult> {
    return migrate(this.db, this.schema);
  }

  /** The schema's version: 0 before `migrate()`, {@link LATEST_SCHEMA_VERSION} after. */
  version(): Promise<number> {
    return schemaVersion(this.db, this.schema);
  }

  private async q<R = any>(text: string, params?: unknown[]): Promise<R[]> {
    try {
      return await this.db.query<R>(text, params);
    } catch (error) {
      throw this.wrap(error);
    }
  }

  private wrap(error: unknown): Error {
    if (error instanceof Error && 'code' in error && typeof (error as { code: unknown }).code === 'string') {
      const code = (error as { code: string }).code;
      if (code === '42P01' || code === '42883' || code === '3F000') {
        return new StoreError(`The Disparo schema "${this.schema}" is missing or out of date (${error.message}). Call store.migrate() first.`, { cause: error });
      }
      if (/^(08|57P)/.test(code)) {
        return new StoreError(`Lost the connection to PostgreSQL (${error.message}). Check the database is up; the engine retries.`, { cause: error });
      }
    }
    return error instanceof Error ? error : new StoreError(String(error));
  }

  // ---- campaigns -------------------------------------------------------

  async createCampaign(input: NewCampaign): Promise<Campaign> {
    try {
      const rows = await this.db.query(
        `INSERT INTO ${this.s}.campaigns (id, name, templates, media, account_ids, status, settings, scheduled_at, metadata, created_at, updated_at)
         VALUES ($1, $2, $3::jsonb, $4::jsonb, $5::jsonb, $6, $7::jsonb, $8, $9::jsonb, $10, $10) RETURNING *`,
        [
          input.id,
          input.name,
          JSON.stringify(input.templates),
          input.media === null ? null : JSON.stringify(input.media),
          JSON.stringify(input.accountIds),
          input.status,
          JSON.stringify(input.settings),
          input.scheduledAt,
          JSON.stringify(input.metadata),
          input.now,
        ],
      );
      return toCampaign(rows[0]);
    } catch (error) {
      if ((error as { code?: string }).code === '23505') throw new ConflictError(`A campaign with id "${input.id}" already exists in schema "${this.schema}".`);
      throw this.wrap(error);
    }
  }

  async getCampaign(id: string): Promise<Campaign | null> {
    const rows = await this.q(`SELECT * FROM ${this.s}.campaign_view WHERE id = $1`, [id]);
    return rows[0] ? toCampaign(rows[0]) : null;
  }

  async listCampaigns(filter: CampaignFilter = {}): Promise<Campaign[]> {
    const rows = await this.q(
      `SELECT * FROM ${this.s}.campaign_view WHERE ($1::text[] IS NULL OR status = ANY ($1)) ORDER BY created_at, id LIMIT $2`,
      [filter.status ?? null, filter.limit === undefined ? null : Math.max(0, filter.limit)],
    );
    return rows.map(toCampaign);
  }

  /** An UPDATE of the campaign row returning it with its counters (the counter shards are not touched by it). */
  private async updateReturning(set: string, where: string, params: unknown[]): Promise<Campaign | null> {
    const rows = await this.q(
      `WITH u AS (UPDATE ${this.s}.campaigns c SET ${set} WHERE ${where} RETURNING c.*)
       SELECT u.*, k.* FROM u LEFT JOIN LATERAL (${COUNTS} FROM ${this.s}.campaign_counts s WHERE s.campaign_id = u.id) k ON true`,
      params,
    );
    return rows[0] ? toCampaign(rows[0]) : null;
  }

  async transitionCampaign(id: string, change: CampaignTransition): Promise<Campaign | null> {
    const from = change.from.filter((f) => canTransition(f, change.to));
    if (from.length === 0) return null;
    return this.updateReturning(
      `status = $3, updated_at = $4,
       pause_reason = CASE WHEN $3 = 'paused' THEN $5 ELSE NULL END,
       scheduled_at = CASE WHEN $6 THEN $7 ELSE scheduled_at END,
       last_error = CASE WHEN $8 THEN $9 ELSE last_error END,
       started_at = CASE WHEN $3 = 'running' THEN coalesce(started_at, $4) ELSE started_at END,
       finished_at = CASE WHEN $10 THEN $4 ELSE finished_at END`,
      `c.id = $1 AND c.status = ANY ($2::text[])`,
      [
        id,
        from,
        change.to,
        change.now,
        change.pauseReason ?? null,
        change.scheduledAt !== undefined,
        change.scheduledAt ?? null,
        change.lastError !== undefined,
        change.lastError ?? null,
        isFinished(change.to),
      ],
    );
  }

  async updateCampaign(id: string, patch: CampaignPatch, now: number): Promise<Campaign | null> {
    const sets = ['updated_at = $2'];
    const params: unknown[] = [id, now];
    const add = (column: string, value: unknown, cast = '') => {
      params.push(value);
      sets.push(`${column} = $${params.length}${cast}`);
    };
    if (patch.name !== undefined) add('name', patch.name);
    if (patch.templates !== undefined) add('templates', JSON.stringify(patch.templates), '::jsonb');
    if (patch.media !== undefined) add('media', patch.media === null ? null : JSON.stringify(patch.media), '::jsonb');
    if (patch.accountIds !== undefined) add('account_ids', JSON.stringify(patch.accountIds), '::jsonb');
    if (patch.settings !== undefined) add('settings', JSON.stringify(patch.settings), '::jsonb');
    if (patch.metadata !== undefined) add('metadata', JSON.stringify(patch.metadata), '::jsonb');
    if (patch.scheduledAt !== undefined) add('scheduled_at', patch.scheduledAt);
    return this.updateReturning(sets.join(', '), 'c.id = $1', params);
  }

  async advanceBatch(input: AdvanceBatchInput): Promise<Campaign | null> {
    const rows = await this.q(`SELECT * FROM ${this.s}.advance_batch($1, $2, $3, $4, $5)`, [
      input.campaignId,
      input.expectedBatch,
      input.nextBatch,
      input.nextBatchAt,
      input.now,
    ]);
    return rows[0] ? toCampaign(rows[0]) : null;
  }

  // ---- recipients ------------------------------------------------------

  async addRecipients(campaignId: string, rows: NewRecipient[], now: number): Promise<AddRecipientsResult> {
    if (rows.length === 0) {
      if (!(await this.getCampaign(campaignId))) throw new NotFoundError('campaign', campaignId);
      return { inserted: 0, duplicates: 0, optedOut: 0 };
    }
    try {
      const r = this.importMode === 'copy' ? await this.importCopy(campaignId, rows, now) : await this.importJson(campaignId, rows, now);
      return { inserted: num(r.inserted), duplicates: num(r.duplicates), optedOut: num(r.opted_out) };
    } catch (error) {
      if ((error as { code?: string }).code === 'P0002') throw new NotFoundError('campaign', campaignId);
      throw this.wrap(error);
    }
  }

  private async importJson(campaignId: string, rows: NewRecipient[], now: number): Promise<any> {
    const payload = JSON.stringify(rows.map((r) => ({ phone: r.phone, vars: r.vars })));
    const out = await this.db.query(`SELECT * FROM ${this.s}.import_json($1, $2::jsonb, $3)`, [campaignId, payload, now]);
    return out[0];
  }

  /** COPY the rows into the session's staging table, then merge them in the same transaction. */
  private async importCopy(campaignId: string, rows: NewRecipient[], now: number): Promise<any> {
    return this.db.transaction(async (conn) => {
      await conn.query(
        'CREATE TEMPORARY TABLE IF NOT EXISTS disparo_import (ord integer NOT NULL, phone text NOT NULL, vars jsonb NOT NULL) ON COMMIT DELETE ROWS',
      );
      const copy = (conn as PoolClientLike & { query(stream: unknown): any }).query(
        copyStreams.from('COPY pg_temp.disparo_import (ord, phone, vars) FROM STDIN'),
      ) as NodeJS.WritableStream;
      await pipeline(Readable.from(copyLines(rows)), copy);
      const out = await conn.query(`SELECT * FROM ${this.s}._import_staged($1, $2)`, [campaignId, now]);
      return out.rows[0];
    });
  }

  async listRecipients(campaignId: string, query: RecipientQuery = {}): Promise<Recipient[]> {
    const rows = await this.q(
      `SELECT * FROM ${this.s}.recipients WHERE campaign_id = $1 AND seq > $2 AND ($3::text[] IS NULL OR status = ANY ($3))
       ORDER BY seq LIMIT $4`,
      [campaignId, Math.max(0, query.afterSeq ?? 0), query.status ?? null, query.limit === undefined ? null : Math.max(0, query.limit)],
    );
    return rows.map(toRecipient);
  }

  async getRecipientByProviderId(providerMessageId: string): Promise<Recipient | null> {
    const rows = await this.q(
      `SELECT * FROM ${this.s}.recipients WHERE provider_message_id = $1 ORDER BY updated_at DESC, id DESC LIMIT 1`,
      [providerMessageId],
    );
    return rows[0] ? toRecipient(rows[0]) : null;
  }

  // ---- work ------------------------------------------------------------

  async claimRecipients(input: ClaimInput): Promise<Recipient[]> {
    const key = `${input.owner}\u0000${input.campaignId}\u0000${input.batch}`;
    const after = this.cursors.get(key) ?? 0;
    const rows = (
      await this.q(`SELECT * FROM ${this.s}.claim($1, $2, $3, $4, $5, $6, $7)`, [
        input.campaignId,
        input.batch,
        input.owner,
        input.limit,
        input.now,
        input.leaseMs,
        after,
      ])
    )
      .map(toRecipient)
      .sort((a, b) => a.seq - b.seq);
    // A short claim means the batch has no more above the cursor: start from the bottom next time.
    if (rows.length === 0 || rows.length < input.limit) this.cursors.delete(key);
    else this.cursors.set(key, rows[rows.length - 1]!.seq);
    return rows;
  }

  async advance(input: AdvanceInput): Promise<AdvanceResult> {
    const outcomes = input.outcomes?.length
      ? JSON.stringify(
          input.outcomes.map((o) => ({
            r: rowId(o.recipientId),
            c: o.campaignId,
            s: o.status,
            k: o.keepLease ?? false,
            n: o.attempts,
            t: o.at,
            a: o.accountId ?? null,
            p: o.providerMessageId ?? null,
            e: o.error ?? null,
            he: o.error !== undefined,
            sr: o.skipReason ?? null,
            fx: o.accountEffect ?? 'none',
          })),
        )
      : null;
    const b = input.begin;
    const begin = b
      ? JSON.stringify({
          r: rowId(b.recipientId),
          c: b.campaignId,
          tx: b.text,
          n: b.attempt,
          p: b.providerMessageId ?? null,
          acc: b.slot.accountId,
          gap: Math.round(b.slot.gapMs),
          lead: Math.round(b.slot.leadMs),
          hk: b.slot.hourly?.key ?? null,
          hl: b.slot.hourly?.limit ?? null,
          hx: b.slot.hourly?.endsAt ?? null,
          dk: b.slot.daily?.key ?? null,
          dl: b.slot.daily?.limit ?? null,
          dx: b.slot.daily?.endsAt ?? null,
        })
      : null;
    const rows = await this.q<{ r: any }>(`SELECT ${this.s}.advance($1, $2, $3, $4::jsonb, $5::jsonb) AS r`, [
      input.owner,
      input.now,
      input.leaseMs,
      outcomes,
      begin,
    ]);
    const r = typeof rows[0]!.r === 'string' ? JSON.parse(rows[0]!.r) : rows[0]!.r;
    const result: AdvanceResult = {
      outcomes: (input.outcomes ?? []).map((o, i) => {
        const x = r.o?.[i] ?? { ok: false };
        return x.ok && x.cf !== null && x.cf !== undefined
          ? { recipientId: o.recipientId, applied: true, consecutiveFailures: num(x.cf) }
          : { recipientId: o.recipientId, applied: Boolean(x.ok) };
      }),
    };
    if (b) {
      const g = r.b;
      const beginResult: BeginResult = g?.g ? { granted: true, slotAt: num(g.at) } : { granted: false, reason: g?.why ?? 'lease_lost', retryAt: num(g?.at ?? input.now) };
      result.begin = beginResult;
    }
    return result;
  }

  async advanceGroup(input: AdvanceGroupInput): Promise<AdvanceGroupResult> {
    const os = input.outcomes ?? [];
    const g = input.begin;
    const items = g?.items ?? [];
    const [row] = await this.q<{ ok: boolean[] | null; cf: Array<number | string | null> | null; granted: boolean[] | null; slot_at: Array<number | string> | null; why: Array<string | null> | null }>(
      `SELECT * FROM ${this.s}.advance_group($1, $2, $3,
         $4::bigint[], $5::text[], $6::text[], $7::boolean[], $8::integer[], $9::bigint[], $10::text[], $11::text[], $12::text[], $13::boolean[], $14::text[], $15::text[],
         $16, $17, $18, $19, $20, $21, $22,
         $23::bigint[], $24::text[], $25::text[], $26::integer[], $27::text[], $28::bigint[], $29::bigint[])`,
      [
        input.owner,
        input.now,
        input.leaseMs,
        os.map((o) => rowId(o.recipientId) ?? '0'),
        os.map((o) => o.campaignId),
        os.map((o) => o.status),
        os.map((o) => o.keepLease ?? false),
        os.map((o) => o.attempts),
        os.map((o) => o.at),
        os.map((o) => o.accountId ?? null),
        os.map((o) => o.providerMessageId ?? null),
        os.map((o) => o.error ?? null),
        os.map((o) => o.error !== undefined),
        os.map((o) => o.skipReason ?? null),
        os.map((o) => o.accountEffect ?? 'none'),
        g?.accountId ?? null,
        g?.hourly?.key ?? null,
        g?.hourly?.limit ?? null,
        g?.hourly?.endsAt ?? null,
        g?.daily?.key ?? null,
        g?.daily?.limit ?? null,
        g?.daily?.endsAt ?? null,
        items.map((b) => rowId(b.recipientId) ?? '0'),
        items.map((b) => b.campaignId),
        items.map((b) => b.text),
        items.map((b) => b.attempt),
        items.map((b) => b.providerMessageId ?? null),
        items.map((b) => Math.round(b.gapMs)),
        items.map((b) => Math.round(b.leadMs)),
      ],
    );
    const ok = row?.ok ?? [];
    const cf = row?.cf ?? [];
    return {
      outcomes: os.map((o, i) =>
        ok[i] && cf[i] !== null && cf[i] !== undefined ? { recipientId: o.recipientId, applied: true, consecutiveFailures: num(cf[i]) } : { recipientId: o.recipientId, applied: Boolean(ok[i]) },
      ),
      begins: items.map((_, i): BeginResult => {
        const at = num(row?.slot_at?.[i] ?? input.now);
        return row?.granted?.[i] ? { granted: true, slotAt: at } : { granted: false, reason: (row?.why?.[i] ?? 'lease_lost') as SlotRefusal, retryAt: at };
      }),
    };
  }

  async heartbeat(owner: string, now: number, leaseMs: number): Promise<number> {
    const rows = await this.q(
      // SKIP LOCKED: a row another statement of this owner holds (its advance step) is skipped, not
      // waited for; waiting, in whatever order the scan meets rows, could deadlock with that step.
      `WITH l AS (SELECT id FROM ${this.s}.recipients WHERE lease_owner = $1 FOR UPDATE SKIP LOCKED),
       u AS (UPDATE ${this.s}.recipients r SET lease_expires_at = $2 FROM l WHERE r.id = l.id AND r.lease_owner = $1 RETURNING 1)
       SELECT count(*) AS n FROM u`,
      [owner, now + leaseMs],
    );
    return num(rows[0]?.n);
  }

  async release(owner: string, recipientIds?: string[]): Promise<number> {
    const rows = await this.q(
      // Rows locked in id order (two releases never deadlock); sending rows are not touched.
      `WITH l AS (SELECT id FROM ${this.s}.recipients WHERE lease_owner = $1 AND status = 'pending' AND ($2::bigint[] IS NULL OR id = ANY ($2))
         ORDER BY id FOR UPDATE),
       u AS (UPDATE ${this.s}.recipients r SET lease_owner = NULL, lease_expires_at = NULL FROM l
         WHERE r.id = l.id AND r.lease_owner = $1 AND r.status = 'pending' RETURNING 1)
       SELECT count(*) AS n FROM u`,
      [owner, recipientIds ? recipientIds.filter((id) => rowId(id) !== null) : null],
    );
    return num(rows[0]?.n);
  }

  // ---- recovery --------------------------------------------------------

  async listInDoubt(now: number, limit: number, campaignId?: string): Promise<Recipient[]> {
    const rows = await this.q(
      `SELECT * FROM ${this.s}.recipients
       WHERE lease_owner IS NOT NULL AND status = 'sending' AND (lease_expires_at IS NULL OR lease_expires_at <= $1)
         AND ($3::text IS NULL OR campaign_id = $3)
       ORDER BY lease_expires_at NULLS FIRST, seq LIMIT $2`,
      [now, Math.max(0, limit), campaignId ?? null],
    );
    return rows.map(toRecipient);
  }

  async settleInDoubt(settlements: InDoubtSettlement[], now: number): Promise<number> {
    if (settlements.length === 0) return 0;
    const items = settlements
      .filter((x) => rowId(x.recipientId) !== null)
      .map((x) => ({ r: x.recipientId, s: x.status, p: x.providerMessageId ?? null, t: x.sentAt ?? null }));
    const rows = await this.q(`SELECT ${this.s}.settle($1::jsonb, $2) AS n`, [JSON.stringify(items), now]);
    return num(rows[0]?.n);
  }

  // ---- accounts --------------------------------------------------------

  async upsertAccount(id: string, pacing: Pacing, now: number): Promise<AccountRecord> {
    const rows = await this.q(
      `INSERT INTO ${this.s}.accounts (id, pacing, next_send_at, created_at, updated_at) VALUES ($1, $2::jsonb, $3, $3, $3)
       ON CONFLICT (id) DO UPDATE SET pacing = excluded.pacing, updated_at = excluded.updated_at RETURNING *`,
      [id, JSON.stringify(pacing), now],
    );
    return toAccount(rows[0]);
  }

  async getAccount(id: string): Promise<AccountRecord | null> {
    const rows = await this.q(`SELECT * FROM ${this.s}.accounts WHERE id = $1`, [id]);
    return rows[0] ? toAccount(rows[0]) : null;
  }

  async listAccounts(ids?: string[]): Promise<AccountRecord[]> {
    if (!ids) return (await this.q(`SELECT * FROM ${this.s}.accounts ORDER BY id`)).map(toAccount);
    if (ids.length === 0) return [];
    const rows = (await this.q(`SELECT * FROM ${this.s}.accounts WHERE id = ANY ($1::text[])`, [ids])).map(toAccount);
    const byId = new Map(rows.map((a) => [a.id, a]));
    const out: AccountRecord[] = [];
    for (const id of new Set(ids)) {
      const a = byId.get(id);
      if (a) out.push(a);
    }
    return out;
  }

  async updateAccount(id: string, patch: AccountPatch, now: number): Promise<AccountRecord | null> {
    const sets = ['updated_at = $2'];
    const params: unknown[] = [id, now];
    const add = (expr: (p: string) => string, value: unknown) => {
      params.push(value);
      sets.push(expr(`$${params.length}`));
    };
    if (patch.state !== undefined) add((p) => `state = ${p}`, patch.state);
    if (patch.connection !== undefined) add((p) => `connection = ${p}`, patch.connection);
    if (patch.consecutiveFailures !== undefined) add((p) => `consecutive_failures = ${p}`, patch.consecutiveFailures);
    if (patch.disabledUntil !== undefined) add((p) => `disabled_until = ${p}::bigint`, patch.disabledUntil);
    if (patch.disabledReason !== undefined) add((p) => `disabled_reason = ${p}::text`, patch.disabledReason);
    if (patch.nextSendAtAtLeast !== undefined) add((p) => `next_send_at = greatest(next_send_at, ${p}::bigint)`, Math.ceil(patch.nextSendAtAtLeast));
    const rows = await this.q(`UPDATE ${this.s}.accounts SET ${sets.join(', ')} WHERE id = $1 RETURNING *`, params);
    return rows[0] ? toAccount(rows[0]) : null;
  }

  // ---- delivery --------------------------------------------------------

  async applyStatusUpdates(updates: StatusUpdate[], now: number): Promise<StatusUpdateResult> {
    if (updates.length === 0) return { applied: 0, ignored: 0, unmatched: 0, changed: [] };
    const items = updates.map((u) => ({ p: u.providerMessageId, s: u.status, t: u.at, e: u.error ?? null }));
    const rows = await this.q(`SELECT ${this.s}.apply_receipts($1::jsonb, $2) AS r`, [JSON.stringify(items), now]);
    const r = typeof rows[0]!.r === 'string' ? JSON.parse(rows[0]!.r) : rows[0]!.r;
    return {
      applied: num(r.applied),
      ignored: num(r.ignored),
      unmatched: num(r.unmatched),
      changed: (r.changed as Array<{ r: unknown; c: string; f: any; to: any }>).map((x) => ({ recipientId: String(x.r), campaignId: x.c, from: x.f, to: x.to })),
    };
  }

  // ---- contacts --------------------------------------------------------

  async addOptOuts(entries: OptOut[], now: number): Promise<{ added: number; cancelled: number }> {
    if (entries.length === 0) return { added: 0, cancelled: 0 };
    const items = entries.map((e) => ({ p: e.phone, r: e.reason, s: e.source, t: e.at }));
    const rows = await this.q(`SELECT * FROM ${this.s}.add_opt_outs($1::jsonb, $2)`, [JSON.stringify(items), now]);
    return { added: num(rows[0]?.added), cancelled: num(rows[0]?.cancelled) };
  }

  async removeOptOut(phone: string): Promise<boolean> {
    const rows = await this.q(`DELETE FROM ${this.s}.opt_outs WHERE phone = $1 RETURNING phone`, [phone]);
    return rows.length > 0;
  }

  async listOptOuts(phones?: string[]): Promise<OptOut[]> {
    const rows = await this.q(`SELECT * FROM ${this.s}.opt_outs WHERE ($1::text[] IS NULL OR phone = ANY ($1)) ORDER BY at, phone`, [phones ?? null]);
    return rows.map(toOptOut);
  }

  async contactHistory(phones: string[], since: number): Promise<ContactSend[]> {
    if (phones.length === 0) return [];
    const rows = await this.q(
      `SELECT phone, campaign_id, account_id, sent_at FROM ${this.s}.recipients
       WHERE phone = ANY ($1::text[]) AND status IN ('sent', 'delivered', 'read') AND sent_at >= $2 ORDER BY sent_at DESC, id DESC`,
      [[...new Set(phones)], since],
    );
    return rows.map((r) => ({ phone: r.phone, campaignId: r.campaign_id, accountId: r.account_id ?? null, sentAt: num(r.sent_at) }));
  }

  async accountSendTimes(accountId: string, since: number, limit: number): Promise<number[]> {
    const rows = await this.q(
      `SELECT sent_at FROM ${this.s}.recipients WHERE account_id = $1 AND status IN ('sent', 'delivered', 'read') AND sent_at >= $2
       ORDER BY sent_at LIMIT $3`,
      [accountId, since, Math.max(0, limit)],
    );
    return rows.map((r) => num(r.sent_at));
  }

  // ---- progress & maintenance -------------------------------------------

  async listBatches(campaignId: string): Promise<BatchRecord[]> {
    return (await this.q(`SELECT * FROM ${this.s}.batch_view WHERE campaign_id = $1 ORDER BY batch`, [campaignId])).map(toBatch);
  }

  async countProcessedSince(campaignId: string, since: number): Promise<number> {
    const rows = await this.q(`SELECT count(*) AS n FROM ${this.s}.recipients WHERE campaign_id = $1 AND processed_at >= $2`, [campaignId, since]);
    return num(rows[0]?.n);
  }

  async cleanup(olderThan: number): Promise<{ campaigns: number; recipients: number }> {
    const rows = await this.q(
      `WITH c AS (DELETE FROM ${this.s}.campaigns WHERE status IN ('completed', 'cancelled', 'failed') AND finished_at < $1 RETURNING id),
        r AS (DELETE FROM ${this.s}.recipients WHERE campaign_id IN (SELECT id FROM c) RETURNING 1),
        b AS (DELETE FROM ${this.s}.batches WHERE campaign_id IN (SELECT id FROM c) RETURNING 1),
        k AS (DELETE FROM ${this.s}.campaign_counts WHERE campaign_id IN (SELECT id FROM c) RETURNING 1),
        bk AS (DELETE FROM ${this.s}.batch_counts WHERE campaign_id IN (SELECT id FROM c) RETURNING 1)
       SELECT (SELECT count(*) FROM c) AS campaigns, (SELECT count(*) FROM r) AS recipients,
         (SELECT count(*) FROM b) + (SELECT count(*) FROM k) + (SELECT count(*) FROM bk) AS other`,
      [olderThan],
    );
    return { campaigns: num(rows[0]?.campaigns), recipients: num(rows[0]?.recipients) };
  }

  // ---- wake-ups (LISTEN/NOTIFY) -------------------------------------------

  /** Tell idle workers of this schema to look for work now (a campaign started, resumed or scheduled). */
  async notifyWake(): Promise<void> {
    await this.q('SELECT pg_notify($1, $2)', [wakeChannel(this.schema), '']);
  }

  /**
   * Call `listener` when any worker of this schema notifies. Holds one connection of the pool (LISTEN).
   * When that connection breaks (server restart, network), it is dropped and LISTEN is re-established
   * with backoff (0.5 s doubling to 30 s), and `listener` is called once on reconnect for any wake-up
   * missed meanwhile. Polling stays the fallback. Returns the unsubscribe function.
   */
  async subscribeWake(listener: () => void): Promise<() => Promise<void>> {
    const channel = wakeChannel(this.schema);
    const client = this.db.client;
    if (isPGlite(client)) return client.listen!(channel, () => listener());
    const pool = this.db.pool;
    if (!pool) return async () => undefined; // a single pg.Client: polling only
    const onNotification = (m: { channel: string }) => {
      if (m.channel === channel) listener();
    };
    let conn: PoolClientLike | null = null;
    let closed = false;
    let retry: ReturnType<typeof setTimeout> | null = null;
    let delayMs = 500;
    const drop = (c: PoolClientLike, error?: Error) => {
      c.removeListener?.('notification', onNotification);
      c.removeListener?.('error', onError);
      c.release(error ?? true);
    };
    const onError = (error: Error) => {
      // Only the live LISTEN connection reconnects; an error during LISTEN itself fails listen() instead.
      const broken = conn;
      if (!broken) return;
      conn = null;
      drop(broken, error);
      if (!closed) schedule();
    };
    const listen = async () => {
      const c = await pool.connect();
      c.on?.('error', onError);
      c.on?.('notification', onNotification);
      try {
        await c.query(`LISTEN ${quoteIdent(channel)}`);
      } catch (error) {
        drop(c, error as Error);
        throw error;
      }
      if (closed) {
        drop(c);
        return;
      }
      conn = c;
      delayMs = 500;
    };
    const schedule = () => {
      retry = setTimeout(() => {
        retry = null;
        listen().then(
          () => {
            if (!closed) listener(); // a wake-up may have been sent while we were not listening
          },
          () => {
            delayMs = Math.min(30_000, delayMs * 2);
            if (!closed) schedule();
          },
        );
      }, delayMs);
      (retry as { unref?: () => void }).unref?.();
    };
    await listen();
    return async () => {
      if (closed) return;
      closed = true;
      if (retry) clearTimeout(retry);
      const c = conn;
      conn = null;
      if (!c) return;
      const ok = await c.query(`UNLISTEN ${quoteIdent(channel)}`).then(() => true, () => false);
      c.removeListener?.('notification', onNotification);
      c.removeListener?.('error', onError);
      c.release(ok ? undefined : true);
    };
  }

  /** Raw reader of the tables for `describeStateStore` and tests: SQL on the tables, not the StateStore methods. */
  inspector() {
    const s = this.s;
    const db = this.db;
    return {
      campaign: async (id: string) => {
        const rows = await db.query(
          `SELECT c.*, k.* FROM ${s}.campaigns c LEFT JOIN LATERAL (${COUNTS} FROM ${s}.campaign_counts x WHERE x.campaign_id = c.id) k ON true WHERE c.id = $1`,
          [id],
        );
        return rows[0] ? toCampaign(rows[0]) : null;
      },
      recipients: async (campaignId: string) => (await db.query(`SELECT * FROM ${s}.recipients WHERE campaign_id = $1 ORDER BY seq`, [campaignId])).map(toRecipient),
      batches: async (campaignId: string) =>
        (await db.query(`SELECT * FROM ${s}.batch_view WHERE campaign_id = $1 ORDER BY batch`, [campaignId])).map(toBatch),
      account: async (id: string) => {
        const rows = await db.query(`SELECT * FROM ${s}.accounts WHERE id = $1`, [id]);
        return rows[0] ? toAccount(rows[0]) : null;
      },
      query: (text: string, params?: unknown[]) => db.query(text, params),
    };
  }
}

/** Row ids are bigint: an id that is not one matches no row (null never equals anything). */
const rowId = (id: string): string | null => (/^\d{1,18}$/.test(id) ? id : null);

/** COPY text format: one line per row, tab-separated, backslash escapes. */
function* copyLines(rows: NewRecipient[]): Generator<string> {
  const esc = (v: string) => v.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
  let buf = '';
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    buf += `${i + 1}\t${esc(r.phone)}\t${esc(JSON.stringify(r.vars ?? {}))}\n`;
    if (buf.length > 64 * 1024) {
      yield buf;
      buf = '';
    }
  }
  if (buf) yield buf;
}

/**
 * A StateStore on PostgreSQL or PGlite. `client` is a `pg.Pool` (production), a `pg.Client`, or a PGlite
 * instance (embedded). Call `await store.migrate()` once before use (safe from every worker at start).
 */
export function createPostgresStore(client: Queryable, options: PostgresStoreOptions = {}): PostgresStore {
  return new PostgresStore(client, options);
}

export { LATEST_SCHEMA_VERSION };
