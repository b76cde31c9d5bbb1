import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { seededRandom } from '../random.js';
import type { BeginResult, CapWindow, NewCampaign, Outcome, OutcomeResult, StateStore } from '../store.js';
import type { AccountRecord, BatchRecord, Campaign, CampaignSettings, Pacing, Recipient, RecipientCounters, RecipientStatus } from '../types.js';

/** Raw reader supplied by the adapter, reading what is persisted (the database directly), not through the StateStore methods. */
export interface StoreInspector {
  campaign(id: string): Promise<Campaign | null>;
  recipients(campaignId: string): Promise<Recipient[]>;
  batches(campaignId: string): Promise<BatchRecord[]>;
  account(id: string): Promise<AccountRecord | null>;
}

/** A fresh, isolated, empty store each call. */
export type StoreFactory = () => Promise<StateStore>;

export interface StoreSuiteOptions {
  /** Another StateStore instance on the same database as `store` (another worker's connection). Enables the concurrency cases. */
  share?: (store: StateStore) => Promise<StateStore>;
  /** Skip the cases that need several real connections (PGlite has one session). */
  concurrency?: boolean;
  /** Called after each case with the store, to close it. */
  teardown?: (store: StateStore) => Promise<void>;
}

const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);
const LEASE_MS = 30_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const LIMIT_ALL = 100_000;

const SENT_LIKE: readonly RecipientStatus[] = ['sent', 'delivered', 'read'];
const TERMINAL: readonly RecipientStatus[] = ['sent', 'delivered', 'read', 'failed', 'skipped', 'unknown'];
const RANK: Partial<Record<RecipientStatus, number>> = { sent: 1, delivered: 2, read: 3 };

const settings = (o: Partial<CampaignSettings> = {}): CampaignSettings => ({
  batchSize: 3,
  batchPauseMs: { min: 0, max: 0 },
  maxAttempts: 3,
  retryBackoffMs: { min: 0, max: 0 },
  inDoubt: 'at-most-once',
  sendWindow: null,
  stickySender: false,
  precheckNumbers: false,
  contactCap: null,
  ...o,
});

const pacing = (o: Partial<Pacing> = {}): Pacing => ({
  intervalMs: { min: 0, max: 0 },
  hourlyCap: null,
  dailyCap: null,
  warmup: null,
  typingMsPerChar: 0,
  typingMaxMs: 0,
  ...o,
});

const newCampaign = (id: string, o: Partial<Omit<NewCampaign, 'settings'>> & { batchSize?: number } = {}): NewCampaign => {
  const { batchSize, ...rest } = o;
  return {
    id,
    name: `campaign ${id}`,
    templates: ['Oi {{name|amigo}}'],
    media: null,
    accountIds: ['a1'],
    settings: settings({ batchSize: batchSize ?? 3 }),
    status: 'draft',
    scheduledAt: null,
    metadata: {},
    now: T0,
    ...rest,
  };
};

const phone = (i: number) => `55119${String(70_000_000 + i).padStart(8, '0')}`;
const people = (n: number, from = 0) => Array.from({ length: n }, (_, i) => ({ phone: phone(from + i), vars: { name: `n${from + i}` } }));
const zero = (): RecipientCounters => ({ total: 0, pending: 0, sending: 0, sent: 0, delivered: 0, read: 0, failed: 0, skipped: 0, unknown: 0 });
const bySeq = (a: Recipient, b: Recipient) => a.seq - b.seq;
const seqs = (rows: Recipient[]) => rows.map((r) => r.seq);

/**
 * The conformance suite every StateStore runs. Each case gets a fresh store from `factory` and checks
 * what was persisted through `inspect` (the adapter's raw reader), including that every campaign's
 * counters and batch records equal its rows (I2).
 */
export function describeStateStore(name: string, factory: StoreFactory, inspect: (store: StateStore) => StoreInspector, options: StoreSuiteOptions = {}): void {
  describe(`StateStore conformance: ${name}`, () => {
    let store: StateStore;
    let raw: StoreInspector;
    let peers: StateStore[] = [];

    beforeEach(async () => {
      store = await factory();
      raw = inspect(store);
      peers = [];
    });

    afterEach(async () => {
      if (!options.teardown) return;
      const all = new Set<StateStore>([...peers, store]);
      all.delete(store);
      for (const peer of all) await options.teardown(peer);
      await options.teardown(store);
    });

    // ---- helpers (they use the current case's store) ------------------------

    const rowsOf = async (campaignId = 'c1') => (await store.listRecipients(campaignId, { limit: LIMIT_ALL })).sort(bySeq);
    const rawRows = async (campaignId = 'c1') => (await raw.recipients(campaignId)).slice().sort(bySeq);
    const rawRow = async (id: string, campaignId = 'c1') => {
      const row = (await raw.recipients(campaignId)).find((r) => r.id === id);
      if (!row) throw new Error(`row ${id} is not persisted`);
      return row;
    };

    /** A campaign with `n` recipients and account `a1` (no pacing). Returns its rows by seq. */
    const seed = async (o: { id?: string; n?: number; from?: number; batchSize?: number } = {}) => {
      const id = o.id ?? 'c1';
      await store.createCampaign(newCampaign(id, { batchSize: o.batchSize ?? 10 }));
      if ((o.n ?? 0) > 0) await store.addRecipients(id, people(o.n!, o.from ?? 0), T0);
      if (!(await store.getAccount('a1'))) await store.upsertAccount('a1', pacing(), T0);
      return rowsOf(id);
    };

    const claim = (owner: string, o: { campaignId?: string; batch?: number; limit?: number; now?: number } = {}) =>
      store.claimRecipients({ campaignId: o.campaignId ?? 'c1', batch: o.batch ?? 1, owner, limit: o.limit ?? 100, now: o.now ?? T0, leaseMs: LEASE_MS });

    const begin = async (
      owner: string,
      r: Recipient,
      o: { now?: number; gapMs?: number; leadMs?: number; accountId?: string; pid?: string; text?: string; attempt?: number; hourly?: CapWindow; daily?: CapWindow } = {},
    ): Promise<BeginResult> => {
      const result = await store.advance({
        owner,
        now: o.now ?? T0,
        leaseMs: LEASE_MS,
        begin: {
          recipientId: r.id,
          campaignId: r.campaignId,
          text: o.text ?? `Oi ${r.phone}`,
          attempt: o.attempt ?? 1,
          providerMessageId: o.pid ?? null,
          slot: {
            accountId: o.accountId ?? 'a1',
            gapMs: o.gapMs ?? 0,
            leadMs: o.leadMs ?? 0,
            ...(o.hourly ? { hourly: o.hourly } : {}),
            ...(o.daily ? { daily: o.daily } : {}),
          },
        },
      });
      expect(result.begin).toBeDefined();
      return result.begin!;
    };

    const out = (r: Recipient, status: Outcome['status'], o: Partial<Outcome> = {}): Outcome => ({ recipientId: r.id, campaignId: r.campaignId, status, attempts: 1, at: T0, ...o });

    const record = async (owner: string, outcomes: Outcome[], now = T0): Promise<OutcomeResult[]> => (await store.advance({ owner, now, leaseMs: LEASE_MS, outcomes })).outcomes;

    /** Claim `rows` for `owner`, write each ahead and record it sent with provider id `pid-<seq>` (or the prefix given). */
    const sendAll = async (rows: Recipient[], owner = 'o1', o: { prefix?: string; at?: number; campaignId?: string } = {}) => {
      await claim(owner, { campaignId: o.campaignId ?? rows[0]?.campaignId ?? 'c1', limit: LIMIT_ALL, batch: rows[0]?.batch ?? 1 });
      for (const r of rows) {
        expect((await begin(owner, r)).granted).toBe(true);
        const [res] = await record(owner, [out(r, 'sent', { providerMessageId: `${o.prefix ?? 'pid'}-${r.seq}`, accountId: 'a1', at: o.at ?? T0 })]);
        expect(res?.applied).toBe(true);
      }
    };

    /** I2 on what is persisted: counters equal the rows, batch records equal the rows of each batch. */
    const consistent = async (campaignId = 'c1') => {
      const c = await raw.campaign(campaignId);
      expect(c, `campaign ${campaignId} persisted`).not.toBeNull();
      const rows = await rawRows(campaignId);
      const counted = zero();
      counted.total = rows.length;
      const perBatch = new Map<number, { batch: number; size: number; sent: number; failed: number; skipped: number; unknown: number }>();
      for (const r of rows) {
        counted[r.status]++;
        let b = perBatch.get(r.batch);
        if (!b) perBatch.set(r.batch, (b = { batch: r.batch, size: 0, sent: 0, failed: 0, skipped: 0, unknown: 0 }));
        b.size++;
        if (SENT_LIKE.includes(r.status)) b.sent++;
        else if (r.status === 'failed') b.failed++;
        else if (r.status === 'skipped') b.skipped++;
        else if (r.status === 'unknown') b.unknown++;
        // Leases: terminal rows hold none, sending rows always have an owner.
        if (TERMINAL.includes(r.status)) expect(r.leaseOwner, `terminal row ${r.seq} holds no lease`).toBeNull();
        if (r.status === 'sending') expect(r.leaseOwner, `sending row ${r.seq} has an owner`).not.toBeNull();
      }
      expect(c!.counters, `counters of ${campaignId} equal its rows`).toEqual(counted);
      expect(seqs(rows), 'seq is 1..n without gaps').toEqual(rows.map((_, i) => i + 1));
      expect(new Set(rows.map((r) => r.phone)).size, 'one row per phone').toBe(rows.length);
      for (let i = 1; i < rows.length; i++) expect(rows[i]!.batch).toBeGreaterThanOrEqual(rows[i - 1]!.batch);
      const records = (await raw.batches(campaignId))
        .filter((b) => b.size + b.sent + b.failed + b.skipped + b.unknown > 0)
        .map((b) => ({ batch: b.batch, size: b.size, sent: b.sent, failed: b.failed, skipped: b.skipped, unknown: b.unknown }))
        .sort((a, b) => a.batch - b.batch);
      expect(records, `batch records of ${campaignId} equal its rows`).toEqual([...perBatch.values()].sort((a, b) => a.batch - b.batch));
      return { campaign: c!, rows };
    };

    // ---- campaigns ------------------------------------------------------------

    describe('campaigns', () => {
      it('creates a campaign with empty counters at batch 0 and reads it back', async () => {
        const created = await store.createCampaign(
          newCampaign('c1', { status: 'scheduled', scheduledAt: T0 + 60_000, metadata: { source: 'suite', nested: { a: 1 } }, media: { url: 'https://x.test/a.png', type: 'image' } }),
        );
        expect(created).toMatchObject({
          id: 'c1',
          name: 'campaign c1',
          templates: ['Oi {{name|amigo}}'],
          media: { url: 'https://x.test/a.png', type: 'image' },
          accountIds: ['a1'],
          status: 'scheduled',
          pauseReason: null,
          scheduledAt: T0 + 60_000,
          currentBatch: 0,
          nextBatchAt: null,
          lastError: null,
          metadata: { source: 'suite', nested: { a: 1 } },
          createdAt: T0,
          updatedAt: T0,
          startedAt: null,
          finishedAt: null,
        });
        expect(created.counters).toEqual(zero());
        expect(created.settings).toEqual(settings({ batchSize: 3 }));
        expect(await store.getCampaign('c1')).toEqual(created);
        expect(await raw.campaign('c1')).toEqual(created);
        expect(await store.getCampaign('missing')).toBeNull();
      });

      it('returns copies: changing a returned campaign changes nothing stored', async () => {
        const created = await store.createCampaign(newCampaign('c1', { metadata: { tag: 'x' } }));
        const got = (await store.getCampaign('c1'))!;
        got.name = 'mutated';
        got.counters.total = 99;
        got.settings.batchSize = 1;
        got.templates.push('extra');
        got.metadata.tag = 'y';
        created.accountIds.push('a9');
        expect(await raw.campaign('c1')).toEqual(await store.getCampaign('c1'));
        expect(await raw.campaign('c1')).toMatchObject({ name: 'campaign c1', counters: zero(), settings: { batchSize: 3 }, templates: ['Oi {{name|amigo}}'], metadata: { tag: 'x' }, accountIds: ['a1'] });
      });

      it('refuses a second campaign with the same id and keeps the first', async () => {
        await store.createCampaign(newCampaign('c1'));
        await expect(store.createCampaign(newCampaign('c1', { name: 'impostor' }))).rejects.toThrow();
        expect((await raw.campaign('c1'))!.name).toBe('campaign c1');
        expect((await store.listCampaigns()).map((c) => c.id)).toEqual(['c1']);
      });

      it('lists campaigns oldest first, filtered by status, with a limit', async () => {
        await store.createCampaign(newCampaign('c1', { now: T0 }));
        await store.createCampaign(newCampaign('c2', { now: T0 + 1, status: 'scheduled', scheduledAt: T0 + 5_000 }));
        await store.createCampaign(newCampaign('c3', { now: T0 + 2 }));
        expect((await store.listCampaigns()).map((c) => c.id)).toEqual(['c1', 'c2', 'c3']);
        expect((await store.listCampaigns({ status: ['draft'] })).map((c) => c.id)).toEqual(['c1', 'c3']);
        expect((await store.listCampaigns({ status: ['draft', 'scheduled'], limit: 2 })).map((c) => c.id)).toEqual(['c1', 'c2']);
        expect(await store.listCampaigns({ status: ['running'] })).toEqual([]);
        await store.transitionCampaign('c3', { from: ['draft'], to: 'running', now: T0 + 3 });
        expect((await store.listCampaigns({ status: ['running'] })).map((c) => c.id)).toEqual(['c3']);
      });

      it('transitions by compare-and-set and stamps start, pause reason, schedule, error and finish', async () => {
        await store.createCampaign(newCampaign('c1'));
        const running = await store.transitionCampaign('c1', { from: ['draft', 'scheduled'], to: 'running', now: T0 + 10 });
        expect(running).toMatchObject({ status: 'running', startedAt: T0 + 10, updatedAt: T0 + 10, pauseReason: null, finishedAt: null });
        const paused = await store.transitionCampaign('c1', { from: ['running'], to: 'paused', pauseReason: 'no_accounts', now: T0 + 20 });
        expect(paused).toMatchObject({ status: 'paused', pauseReason: 'no_accounts', startedAt: T0 + 10, updatedAt: T0 + 20 });
        const resumed = await store.transitionCampaign('c1', { from: ['paused'], to: 'running', now: T0 + 30 });
        expect(resumed).toMatchObject({ status: 'running', pauseReason: null, startedAt: T0 + 10 });
        const done = await store.transitionCampaign('c1', { from: ['running'], to: 'completed', now: T0 + 40 });
        expect(done).toMatchObject({ status: 'completed', finishedAt: T0 + 40, startedAt: T0 + 10 });
        expect(await raw.campaign('c1')).toEqual(done);

        await store.createCampaign(newCampaign('c2'));
        const scheduled = await store.transitionCampaign('c2', { from: ['draft'], to: 'scheduled', scheduledAt: T0 + 99_000, now: T0 + 1 });
        expect(scheduled).toMatchObject({ status: 'scheduled', scheduledAt: T0 + 99_000, startedAt: null });
        await store.transitionCampaign('c2', { from: ['scheduled'], to: 'running', now: T0 + 2 });
        const failed = await store.transitionCampaign('c2', { from: ['running'], to: 'failed', lastError: 'boom', now: T0 + 3 });
        expect(failed).toMatchObject({ status: 'failed', lastError: 'boom', finishedAt: T0 + 3, scheduledAt: T0 + 99_000 });
        expect(await raw.campaign('c2')).toEqual(failed);
      });

      it('refuses a stale or illegal transition and changes nothing', async () => {
        await store.createCampaign(newCampaign('c1'));
        const before = await raw.campaign('c1');
        expect(await store.transitionCampaign('c1', { from: ['running'], to: 'paused', pauseReason: 'manual', now: T0 + 1 })).toBeNull();
        // draft -> completed and draft -> paused are not in the table, even when `from` names draft (I4).
        expect(await store.transitionCampaign('c1', { from: ['draft'], to: 'completed', now: T0 + 1 })).toBeNull();
        expect(await store.transitionCampaign('c1', { from: ['draft', 'running'], to: 'paused', pauseReason: 'manual', now: T0 + 1 })).toBeNull();
        expect(await store.transitionCampaign('missing', { from: ['draft'], to: 'running', now: T0 + 1 })).toBeNull();
        expect(await raw.campaign('c1')).toEqual(before);
        expect(await store.transitionCampaign('c1', { from: ['draft'], to: 'cancelled', now: T0 + 2 })).not.toBeNull();
        const cancelled = await raw.campaign('c1');
        expect(await store.transitionCampaign('c1', { from: ['cancelled'], to: 'running', now: T0 + 3 })).toBeNull();
        expect(await raw.campaign('c1')).toEqual(cancelled);
      });

      it('updates name, templates, media, accounts, settings, metadata and schedule without touching status or counters', async () => {
        await seed({ n: 2 });
        const before = (await raw.campaign('c1'))!;
        const updated = await store.updateCampaign(
          'c1',
          {
            name: 'renamed',
            templates: ['A {{name}}', 'B {{name}}'],
            media: { url: 'https://x.test/doc.pdf', type: 'document', fileName: 'doc.pdf' },
            accountIds: ['a1', 'a2'],
            settings: settings({ batchSize: 50, maxAttempts: 5 }),
            metadata: { owner: 'crm' },
            scheduledAt: T0 + 1_000,
          },
          T0 + 5,
        );
        expect(updated).toMatchObject({
          name: 'renamed',
          templates: ['A {{name}}', 'B {{name}}'],
          media: { url: 'https://x.test/doc.pdf', type: 'document', fileName: 'doc.pdf' },
          accountIds: ['a1', 'a2'],
          settings: { batchSize: 50, maxAttempts: 5 },
          metadata: { owner: 'crm' },
          scheduledAt: T0 + 1_000,
          status: before.status,
          counters: before.counters,
          createdAt: T0,
          updatedAt: T0 + 5,
        });
        expect(await raw.campaign('c1')).toEqual(updated);
        const partial = await store.updateCampaign('c1', { name: 'again' }, T0 + 6);
        expect(partial).toMatchObject({ name: 'again', templates: ['A {{name}}', 'B {{name}}'], accountIds: ['a1', 'a2'], scheduledAt: T0 + 1_000 });
        expect(await store.updateCampaign('missing', { name: 'x' }, T0)).toBeNull();
        await consistent();
      });
    });

    // ---- recipients -----------------------------------------------------------

    describe('recipients', () => {
      it('numbers rows with consecutive seq and batch = ceil(seq / batchSize) across calls', async () => {
        await store.createCampaign(newCampaign('c1', { batchSize: 3 }));
        expect(await store.addRecipients('c1', people(4), T0)).toEqual({ inserted: 4, duplicates: 0, optedOut: 0 });
        expect(await store.addRecipients('c1', people(4, 4), T0 + 1)).toEqual({ inserted: 4, duplicates: 0, optedOut: 0 });
        const rows = await rawRows();
        expect(seqs(rows)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
        expect(rows.map((r) => r.batch)).toEqual([1, 1, 1, 2, 2, 2, 3, 3]);
        expect(rows.map((r) => r.phone)).toEqual(people(8).map((p) => p.phone));
        expect(new Set(rows.map((r) => r.id)).size).toBe(8);
        for (const [i, r] of rows.entries()) {
          expect(r).toMatchObject({ campaignId: 'c1', status: 'pending', vars: { name: `n${i}` }, attempts: 0, text: null, leaseOwner: null, skipReason: null, providerMessageId: null, processedAt: null });
        }
        expect(await rowsOf()).toEqual(rows);
        const batches = await store.listBatches('c1');
        expect(batches.map((b) => [b.batch, b.size, b.sent, b.failed, b.skipped, b.unknown])).toEqual([
          [1, 3, 0, 0, 0, 0],
          [2, 3, 0, 0, 0, 0],
          [3, 2, 0, 0, 0, 0],
        ]);
        expect(batches.every((b) => b.campaignId === 'c1' && b.startedAt === null && b.finishedAt === null)).toBe(true);
        const { campaign } = await consistent();
        expect(campaign.counters).toMatchObject({ total: 8, pending: 8 });
      });

      it('counts duplicates within a call and across calls and inserts each phone once', async () => {
        await store.createCampaign(newCampaign('c1'));
        const [p0, p1, p2, p3] = people(4);
        expect(await store.addRecipients('c1', [p0!, p1!, p0!, p2!], T0)).toEqual({ inserted: 3, duplicates: 1, optedOut: 0 });
        expect(await store.addRecipients('c1', [{ phone: p1!.phone, vars: { name: 'changed' } }, p3!, p3!], T0)).toEqual({ inserted: 1, duplicates: 2, optedOut: 0 });
        const rows = await rawRows();
        expect(rows.map((r) => r.phone)).toEqual([p0!.phone, p1!.phone, p2!.phone, p3!.phone]);
        expect(rows[1]!.vars).toEqual({ name: 'n1' });
        expect(rows[3]!.seq).toBe(4);
        await consistent();
      });

      it('does not insert phones on the suppression list and counts them as opted out', async () => {
        await store.createCampaign(newCampaign('c1'));
        const [p0, p1, p2] = people(3);
        await store.addOptOuts([{ phone: p1!.phone, reason: 'asked', source: 'api', at: T0 }], T0);
        const result = await store.addRecipients('c1', [p0!, p1!, p2!, p1!], T0);
        expect(result.inserted).toBe(2);
        expect(result.optedOut).toBeGreaterThanOrEqual(1);
        expect(result.optedOut + result.duplicates).toBe(2);
        const rows = await rawRows();
        expect(rows.map((r) => [r.phone, r.seq])).toEqual([
          [p0!.phone, 1],
          [p2!.phone, 2],
        ]);
        await consistent();
      });

      it('rejects rows for an unknown campaign and stores nothing', async () => {
        await expect(store.addRecipients('missing', people(2), T0)).rejects.toThrow();
        expect(await raw.recipients('missing')).toEqual([]);
        expect(await raw.campaign('missing')).toBeNull();
      });

      it('lists recipients by status with keyset paging, and finds them by provider message id', async () => {
        const rows = await seed({ n: 7 });
        await claim('o1', { limit: 3 });
        await begin('o1', rows[0]!);
        await record('o1', [out(rows[0]!, 'sent', { providerMessageId: 'pid-1', accountId: 'a1' }), out(rows[1]!, 'failed', { error: 'permanent' })]);
        expect(seqs(await store.listRecipients('c1', { status: ['pending'], limit: 100 }))).toEqual([3, 4, 5, 6, 7]);
        expect(seqs(await store.listRecipients('c1', { status: ['sent', 'failed'], limit: 100 }))).toEqual([1, 2]);
        expect(seqs(await store.listRecipients('c1', { afterSeq: 2, limit: 3 }))).toEqual([3, 4, 5]);
        expect(seqs(await store.listRecipients('c1', { afterSeq: 5, limit: 10 }))).toEqual([6, 7]);
        expect(seqs(await store.listRecipients('c1', { status: ['pending'], afterSeq: 4, limit: 2 }))).toEqual([5, 6]);
        expect(await store.listRecipients('missing', { limit: 10 })).toEqual([]);
        const found = await store.getRecipientByProviderId('pid-1');
        expect(found).toMatchObject({ id: rows[0]!.id, status: 'sent', providerMessageId: 'pid-1', accountId: 'a1' });
        expect(found).toEqual(await rawRow(rows[0]!.id));
        expect(await store.getRecipientByProviderId('pid-unknown')).toBeNull();
      });

      it('returns copies: changing a returned recipient changes nothing stored', async () => {
        const [r] = await seed({ n: 1 });
        r!.status = 'sent';
        r!.leaseOwner = 'thief';
        const [claimed] = await claim('o1');
        claimed!.leaseOwner = 'thief';
        expect(await rawRow(r!.id)).toMatchObject({ status: 'pending', leaseOwner: 'o1' });
      });

      it('puts rows added after their batch finished into the current batch, so they are still sent', async () => {
        const rows = await seed({ n: 3, batchSize: 2 });
        expect(await store.advanceBatch({ campaignId: 'c1', expectedBatch: 0, nextBatch: 1, nextBatchAt: null, now: T0 })).not.toBeNull();
        await sendAll(rows.slice(0, 2));
        expect(await store.advanceBatch({ campaignId: 'c1', expectedBatch: 1, nextBatch: 2, nextBatchAt: null, now: T0 })).not.toBeNull();
        await sendAll(rows.slice(2));
        expect((await store.advanceBatch({ campaignId: 'c1', expectedBatch: 2, nextBatch: 3, nextBatchAt: null, now: T0 }))?.currentBatch).toBe(3);
        expect(await store.addRecipients('c1', people(2, 10), T0 + 1)).toMatchObject({ inserted: 2 });
        const late = (await rawRows()).slice(3);
        expect(late.map((r) => [r.seq, r.batch])).toEqual([
          [4, 3],
          [5, 3],
        ]);
        expect(seqs(await claim('o1', { batch: 3 }))).toEqual([4, 5]);
        await consistent();
      });
    });

    // ---- claims ---------------------------------------------------------------

    describe('claims', () => {
      it('leases the lowest seq first, up to the limit, within the batch, and marks the batch started', async () => {
        await seed({ n: 8, batchSize: 5 });
        const first = await claim('o1', { limit: 3, now: T0 + 100 });
        expect(seqs(first)).toEqual([1, 2, 3]);
        for (const r of first) expect(r).toMatchObject({ status: 'pending', leaseOwner: 'o1', leaseExpiresAt: T0 + 100 + LEASE_MS });
        for (const r of first) expect(await rawRow(r.id)).toMatchObject({ status: 'pending', leaseOwner: 'o1', leaseExpiresAt: T0 + 100 + LEASE_MS });
        const batches = await raw.batches('c1');
        expect(batches.find((b) => b.batch === 1)!.startedAt).toBe(T0 + 100);
        expect(batches.find((b) => b.batch === 2)!.startedAt).toBeNull();
        expect(seqs(await claim('o2', { limit: 10, now: T0 + 200 }))).toEqual([4, 5]); // stops at the batch's end
        expect(await claim('o1', { limit: 10, now: T0 + 300 })).toEqual([]); // every lease is live
        expect(await claim('o3', { limit: 0, batch: 2, now: T0 + 300 })).toEqual([]);
        expect(seqs(await claim('o2', { batch: 2, now: T0 + 400 }))).toEqual([6, 7, 8]);
        expect((await raw.batches('c1')).find((b) => b.batch === 1)!.startedAt).toBe(T0 + 100);
        const { campaign } = await consistent();
        expect(campaign.counters).toMatchObject({ pending: 8, sending: 0 });
      });

      it('never hands out a live lease, and hands out an expired one again', async () => {
        await seed({ n: 4 });
        expect(seqs(await claim('o1', { now: T0 }))).toEqual([1, 2, 3, 4]);
        expect(await claim('o2', { now: T0 + LEASE_MS - 1 })).toEqual([]);
        const again = await claim('o2', { now: T0 + LEASE_MS, limit: 3 });
        expect(seqs(again)).toEqual([1, 2, 3]);
        for (const r of again) expect(await rawRow(r.id)).toMatchObject({ leaseOwner: 'o2', leaseExpiresAt: T0 + 2 * LEASE_MS });
        expect(seqs(await claim('o3', { now: T0 + LEASE_MS }))).toEqual([4]);
        expect(await claim('o1', { now: T0 + LEASE_MS + 1 })).toEqual([]);
        await consistent();
      });

      it('claims a row again when it returns to pending behind rows already done (hand-back, recovery)', async () => {
        const rows = await seed({ n: 4 });
        await claim('o1');
        expect((await begin('o1', rows[0]!)).granted).toBe(true);
        expect((await begin('o1', rows[1]!)).granted).toBe(true);
        await record('o1', [out(rows[2]!, 'sent', { providerMessageId: 'd3' }), out(rows[3]!, 'sent', { providerMessageId: 'd4' })]);
        // Nothing claimable now: a store cursor may have moved past every row.
        expect(await claim('o2', { now: T0 + 1 })).toEqual([]);
        expect((await record('o1', [out(rows[0]!, 'pending', { attempts: 1 })], T0 + 2))[0]!.applied).toBe(true);
        expect(seqs(await claim('o2', { now: T0 + 3 }))).toEqual([1]);
        expect(await store.settleInDoubt([{ recipientId: rows[1]!.id, status: 'pending' }], T0 + LEASE_MS)).toBe(1);
        expect(seqs(await claim('o3', { now: T0 + LEASE_MS }))).toEqual([2]);
        await consistent();
      });

      it('skips phones opted out after import: skipped/opted_out, counted, never returned', async () => {
        const rows = await seed({ n: 3 });
        await claim('o1');
        expect((await begin('o1', rows[1]!)).granted).toBe(true);
        // On the wire when the opt-out arrives: not cancelled; handed back, the claim must catch it.
        expect(await store.addOptOuts([{ phone: rows[1]!.phone, reason: 'SAIR', source: 'inbound', at: T0 + 1 }], T0 + 1)).toEqual({ added: 1, cancelled: 0 });
        expect((await record('o1', [out(rows[1]!, 'pending', { attempts: 1 })], T0 + 2))[0]!.applied).toBe(true);
        expect(await store.release('o1')).toBe(2);
        const claimed = await claim('o2', { now: T0 + 3 });
        expect(seqs(claimed)).toEqual([1, 3]);
        expect(await rawRow(rows[1]!.id)).toMatchObject({ status: 'skipped', skipReason: 'opted_out', leaseOwner: null });
        const { campaign } = await consistent();
        expect(campaign.counters).toMatchObject({ skipped: 1, pending: 2 });
        expect((await raw.batches('c1'))[0]).toMatchObject({ skipped: 1 });
      });

      it('claims nothing for an unknown campaign or batch', async () => {
        await seed({ n: 2 });
        expect(await claim('o1', { campaignId: 'missing' })).toEqual([]);
        expect(await claim('o1', { batch: 9 })).toEqual([]);
        expect((await rawRows()).every((r) => r.leaseOwner === null)).toBe(true);
      });
    });

    // ---- advance: outcomes ------------------------------------------------------

    describe('advance: outcomes', () => {
      it('records each outcome status while the owner holds the lease', async () => {
        const rows = await seed({ n: 6 });
        const [r1, r2, r3, r4, r5] = rows;
        await claim('o1');
        for (const r of [r1!, r2!, r4!, r5!]) expect((await begin('o1', r, { text: `text ${r.seq}` })).granted).toBe(true);
        const results = await record(
          'o1',
          [
            out(r1!, 'sent', { at: T0 + 5, providerMessageId: 'p1', accountId: 'a1' }),
            out(r2!, 'failed', { at: T0 + 6, error: 'permanent: bad request', accountId: 'a1' }),
            out(r3!, 'skipped', { at: T0 + 7, skipReason: 'template_error', error: 'missing {{name}}', attempts: 0 }),
            out(r4!, 'unknown', { at: T0 + 8, error: 'timed out' }),
            out(r5!, 'pending', { at: T0 + 9, attempts: 1, error: 'transient' }),
          ],
          T0 + 10,
        );
        expect(results.map((r) => [r.recipientId, r.applied])).toEqual([r1, r2, r3, r4, r5].map((r) => [r!.id, true]));
        expect(await rawRow(r1!.id)).toMatchObject({ status: 'sent', sentAt: T0 + 5, processedAt: T0 + 5, providerMessageId: 'p1', accountId: 'a1', attempts: 1, text: 'text 1', leaseOwner: null, leaseExpiresAt: null });
        expect(await rawRow(r2!.id)).toMatchObject({ status: 'failed', lastError: 'permanent: bad request', processedAt: T0 + 6, leaseOwner: null });
        expect(await rawRow(r3!.id)).toMatchObject({ status: 'skipped', skipReason: 'template_error', processedAt: T0 + 7, attempts: 0, leaseOwner: null });
        expect(await rawRow(r4!.id)).toMatchObject({ status: 'unknown', processedAt: T0 + 8, leaseOwner: null });
        expect(await rawRow(r5!.id)).toMatchObject({ status: 'pending', attempts: 1, lastError: 'transient', text: 'text 5', leaseOwner: null, leaseExpiresAt: null, processedAt: null });
        expect(await rawRow(rows[5]!.id)).toMatchObject({ status: 'pending', leaseOwner: 'o1' });
        const { campaign } = await consistent();
        expect(campaign.counters).toEqual({ ...zero(), total: 6, sent: 1, failed: 1, skipped: 1, unknown: 1, pending: 2 });
        expect((await raw.batches('c1'))[0]).toMatchObject({ size: 6, sent: 1, failed: 1, skipped: 1, unknown: 1 });
        // The handed-back row is claimable at once; the still-leased one is not.
        expect(seqs(await claim('o2', { now: T0 + 11 }))).toEqual([5]);
      });

      it('a pending outcome with keepLease leaves the row leased to its owner, so the retry begins in the same step', async () => {
        const rows = await seed({ n: 2 });
        await claim('o1');
        expect((await begin('o1', rows[0]!)).granted).toBe(true);
        const retry = await store.advance({
          owner: 'o1',
          now: T0 + 10,
          leaseMs: LEASE_MS,
          outcomes: [out(rows[0]!, 'pending', { keepLease: true, attempts: 1, error: 'transient', accountId: 'a1', accountEffect: 'failure' })],
          begin: { recipientId: rows[0]!.id, campaignId: 'c1', text: 'again', attempt: 2, slot: { accountId: 'a1', gapMs: 0, leadMs: 0 } },
        });
        expect(retry.outcomes.map((o) => o.applied)).toEqual([true]);
        expect(retry.begin).toEqual({ granted: true, slotAt: T0 + 10 });
        expect(await rawRow(rows[0]!.id)).toMatchObject({ status: 'sending', attempts: 2, text: 'again', leaseOwner: 'o1', lastError: 'transient' });
        // Handed back with the lease kept (the retry waits out a backoff): still the owner's, nobody else's.
        expect((await record('o1', [out(rows[0]!, 'pending', { keepLease: true, attempts: 2 })], T0 + 20))[0]!.applied).toBe(true);
        expect(await rawRow(rows[0]!.id)).toMatchObject({ status: 'pending', leaseOwner: 'o1', attempts: 2 });
        expect(seqs(await claim('o2', { now: T0 + 20 }))).toEqual([]);
        // Without keepLease, a hand-back clears the lease: the same step's write-ahead is refused.
        const plain = await store.advance({
          owner: 'o1',
          now: T0 + 30,
          leaseMs: LEASE_MS,
          outcomes: [out(rows[0]!, 'pending', { attempts: 2 })],
          begin: { recipientId: rows[0]!.id, campaignId: 'c1', text: 'again', attempt: 3, slot: { accountId: 'a1', gapMs: 0, leadMs: 0 } },
        });
        expect(plain.outcomes.map((o) => o.applied)).toEqual([true]);
        expect(plain.begin).toMatchObject({ granted: false, reason: 'lease_lost' });
        expect(await rawRow(rows[0]!.id)).toMatchObject({ status: 'pending', leaseOwner: null });
        expect(seqs(await claim('o2', { now: T0 + 31 }))).toEqual([1]);
        await consistent();
      });

      it('refuses outcomes without the lease and writes nothing', async () => {
        const rows = await seed({ n: 4 });
        const [r1, r2, r3] = rows;
        await claim('o1', { limit: 2 });
        const before = await rawRows();
        const refused = await record('o2', [out(r1!, 'sent', { providerMessageId: 'x1' })]);
        expect(refused).toEqual([{ recipientId: r1!.id, applied: false }]);
        expect((await record('o1', [out(r3!, 'sent', { providerMessageId: 'x3' })]))[0]!.applied).toBe(false); // never leased
        expect((await record('o1', [{ ...out(r1!, 'sent'), campaignId: 'other' }]))[0]!.applied).toBe(false);
        expect((await record('o1', [{ ...out(r1!, 'sent'), recipientId: 'missing' }]))[0]!.applied).toBe(false);
        expect(await rawRows()).toEqual(before);
        expect(await store.getRecipientByProviderId('x1')).toBeNull();

        expect((await record('o1', [out(r2!, 'sent', { providerMessageId: 'x2' })]))[0]!.applied).toBe(true);
        expect((await record('o1', [out(r2!, 'failed', { error: 'late' })]))[0]!.applied).toBe(false); // already terminal
        expect(await rawRow(r2!.id)).toMatchObject({ status: 'sent', lastError: null });

        // The lease expired and another worker took the row: the old owner's word no longer counts.
        expect(seqs(await claim('o2', { now: T0 + LEASE_MS }))).toEqual([1, 3, 4]);
        expect((await record('o1', [out(r1!, 'sent')], T0 + LEASE_MS + 1))[0]!.applied).toBe(false);
        expect(await rawRow(r1!.id)).toMatchObject({ status: 'pending', leaseOwner: 'o2' });
        await consistent();
      });

      it('keeps the account run of consecutive real failures', async () => {
        const rows = await seed({ n: 5 });
        await claim('o1');
        const fail = (r: Recipient) => out(r, 'failed', { accountId: 'a1', accountEffect: 'failure', error: 'transient' });
        expect((await record('o1', [fail(rows[0]!)]))[0]!.consecutiveFailures).toBe(1);
        expect((await record('o1', [fail(rows[1]!)]))[0]!.consecutiveFailures).toBe(2);
        await record('o1', [out(rows[2]!, 'skipped', { accountId: 'a1', accountEffect: 'none', skipReason: 'not_on_whatsapp' })]);
        expect((await raw.account('a1'))!.consecutiveFailures).toBe(2);
        // A refused outcome has no effect on the account.
        expect((await record('o2', [fail(rows[3]!)]))[0]!.applied).toBe(false);
        expect((await raw.account('a1'))!.consecutiveFailures).toBe(2);
        const success = await record('o1', [out(rows[3]!, 'sent', { accountId: 'a1', accountEffect: 'success', providerMessageId: 'ok' })]);
        expect(success[0]!.consecutiveFailures ?? 0).toBe(0);
        expect((await raw.account('a1'))!.consecutiveFailures).toBe(0);
        await consistent();
      });
    });

    // ---- advance: slot reservation ----------------------------------------------

    describe('advance: slot reservation and write-ahead', () => {
      it('grants a slot at now + lead, reserves the next one, and writes the recipient ahead as sending', async () => {
        const rows = await seed({ n: 2 });
        await claim('o1');
        const granted = await begin('o1', rows[0]!, { now: T0 + 1_000, gapMs: 5_000, leadMs: 300, text: 'Oi Ana', attempt: 2, pid: 'bp-1' });
        expect(granted).toEqual({ granted: true, slotAt: T0 + 1_300 });
        expect((await raw.account('a1'))!.nextSendAt).toBe(T0 + 6_300);
        expect(await rawRow(rows[0]!.id)).toMatchObject({
          status: 'sending',
          text: 'Oi Ana',
          accountId: 'a1',
          attempts: 2,
          providerMessageId: 'bp-1',
          leaseOwner: 'o1',
          leaseExpiresAt: T0 + 1_000 + LEASE_MS,
        });
        expect((await store.getRecipientByProviderId('bp-1'))?.id).toBe(rows[0]!.id);
        const { campaign } = await consistent();
        expect(campaign.counters).toMatchObject({ sending: 1, pending: 1 });
      });

      it('a repeated write-ahead (same owner, same attempt: a retried call whose commit was not heard) is granted again without a second slot', async () => {
        const rows = await seed({ n: 2 });
        await claim('o1');
        expect(await begin('o1', rows[0]!, { gapMs: 5_000 })).toEqual({ granted: true, slotAt: T0 });
        const account = await raw.account('a1');
        const row = await rawRow(rows[0]!.id);
        expect(await begin('o1', rows[0]!, { now: T0 + 10, gapMs: 5_000 })).toEqual({ granted: true, slotAt: T0 + 10 });
        expect(await raw.account('a1')).toEqual(account); // no second reservation
        expect((await rawRow(rows[0]!.id)).status).toBe('sending');
        expect((await rawRow(rows[0]!.id)).attempts).toBe(row.attempts);
        // Another owner, or another attempt number, is not a repeat.
        expect(await begin('o2', rows[0]!, { now: T0 + 10 })).toMatchObject({ granted: false, reason: 'lease_lost' });
        expect(await begin('o1', rows[0]!, { now: T0 + 10, attempt: 2 })).toMatchObject({ granted: false, reason: 'lease_lost' });
        // Nor is one after the lease ran out (the row is in doubt then, recovery's to settle).
        expect(await begin('o1', rows[0]!, { now: T0 + LEASE_MS + 1 })).toMatchObject({ granted: false, reason: 'lease_lost' });
        await consistent();
      });

      it('refuses a slot before nextSendAt (pacing) with its time, changing nothing, and grants it at that time', async () => {
        const rows = await seed({ n: 2 });
        await claim('o1');
        expect(await begin('o1', rows[0]!, { gapMs: 5_000 })).toEqual({ granted: true, slotAt: T0 });
        const account = await raw.account('a1');
        const row = await rawRow(rows[1]!.id);
        expect(await begin('o1', rows[1]!, { now: T0 + 4_999, gapMs: 5_000 })).toEqual({ granted: false, reason: 'pacing', retryAt: T0 + 5_000 });
        expect(await raw.account('a1')).toEqual(account);
        expect(await rawRow(rows[1]!.id)).toEqual(row);
        expect(await begin('o1', rows[1]!, { now: T0 + 5_000, gapMs: 5_000 })).toEqual({ granted: true, slotAt: T0 + 5_000 });
        expect((await raw.account('a1'))!.nextSendAt).toBe(T0 + 10_000);
        await consistent();
      });

      it('enforces the hourly cap per window and restarts the count in a new window', async () => {
        const rows = await seed({ n: 4 });
        await claim('o1');
        const h1: CapWindow = { key: '2026-01-05T12', limit: 2, endsAt: T0 + HOUR_MS };
        expect((await begin('o1', rows[0]!, { hourly: h1 })).granted).toBe(true);
        expect((await begin('o1', rows[1]!, { hourly: h1 })).granted).toBe(true);
        expect(await raw.account('a1')).toMatchObject({ hourKey: h1.key, sentThisHour: 2 });
        const account = await raw.account('a1');
        expect(await begin('o1', rows[2]!, { hourly: h1 })).toEqual({ granted: false, reason: 'hourly_cap', retryAt: T0 + HOUR_MS });
        expect(await raw.account('a1')).toEqual(account);
        expect((await rawRow(rows[2]!.id)).status).toBe('pending');
        const h2: CapWindow = { key: '2026-01-05T13', limit: 2, endsAt: T0 + 2 * HOUR_MS };
        expect((await begin('o1', rows[2]!, { now: T0 + HOUR_MS, hourly: h2 })).granted).toBe(true);
        expect(await raw.account('a1')).toMatchObject({ hourKey: h2.key, sentThisHour: 1 });
        await consistent();
      });

      it('enforces the daily cap, and a full day wins over a full hour', async () => {
        const rows = await seed({ n: 3 });
        await claim('o1');
        const d1: CapWindow = { key: '2026-01-05', limit: 2, endsAt: T0 + 12 * HOUR_MS };
        const h1: CapWindow = { key: '2026-01-05T12', limit: 2, endsAt: T0 + HOUR_MS };
        expect((await begin('o1', rows[0]!, { daily: d1, hourly: h1 })).granted).toBe(true);
        expect((await begin('o1', rows[1]!, { daily: d1, hourly: h1 })).granted).toBe(true);
        expect(await raw.account('a1')).toMatchObject({ dayKey: d1.key, sentToday: 2, hourKey: h1.key, sentThisHour: 2 });
        expect(await begin('o1', rows[2]!, { daily: d1, hourly: h1 })).toEqual({ granted: false, reason: 'daily_cap', retryAt: d1.endsAt });
        const d2: CapWindow = { key: '2026-01-06', limit: 2, endsAt: T0 + 12 * HOUR_MS + DAY_MS };
        expect(await begin('o1', rows[2]!, { daily: d2, hourly: h1 })).toEqual({ granted: false, reason: 'hourly_cap', retryAt: h1.endsAt });
        expect(await raw.account('a1')).toMatchObject({ dayKey: d1.key, sentToday: 2, sentThisHour: 2 });
        const h2: CapWindow = { key: '2026-01-06T00', limit: 2, endsAt: T0 + 13 * HOUR_MS };
        expect((await begin('o1', rows[2]!, { now: T0 + 12 * HOUR_MS, daily: d2, hourly: h2 })).granted).toBe(true);
        expect(await raw.account('a1')).toMatchObject({ dayKey: d2.key, sentToday: 1, hourKey: h2.key, sentThisHour: 1 });
        await consistent();
      });

      it('refuses an unavailable account (missing, stopped, cooling down, disconnected) and changes nothing', async () => {
        const rows = await seed({ n: 1 });
        await claim('o1');
        const r = rows[0]!;
        const row = await rawRow(r.id);
        expect(await begin('o1', r, { accountId: 'ghost' })).toMatchObject({ granted: false, reason: 'account_unavailable' });
        await store.updateAccount('a1', { state: 'stopped', disabledReason: 'logged_out' }, T0);
        const stopped = await raw.account('a1');
        expect(await begin('o1', r)).toMatchObject({ granted: false, reason: 'account_unavailable' });
        expect(await raw.account('a1')).toEqual(stopped);
        await store.updateAccount('a1', { state: 'active', connection: 'close' }, T0);
        expect(await begin('o1', r)).toMatchObject({ granted: false, reason: 'account_unavailable' });
        await store.updateAccount('a1', { state: 'disabled', connection: 'open', disabledUntil: T0 + 10_000 }, T0);
        expect(await begin('o1', r, { now: T0 + 9_999 })).toMatchObject({ granted: false, reason: 'account_unavailable' });
        expect(await rawRow(r.id)).toEqual(row);
        // The cooldown is over: the probe send may go.
        expect(await begin('o1', r, { now: T0 + 10_000 })).toEqual({ granted: true, slotAt: T0 + 10_000 });
        await consistent();
      });

      it('refuses lease_lost when the caller does not lease the pending row, and reserves nothing', async () => {
        const rows = await seed({ n: 2 });
        await claim('o1', { limit: 1 });
        const account = await raw.account('a1');
        expect(await begin('o2', rows[0]!, { gapMs: 5_000 })).toMatchObject({ granted: false, reason: 'lease_lost' });
        expect(await begin('o1', rows[1]!, { gapMs: 5_000 })).toMatchObject({ granted: false, reason: 'lease_lost' }); // never claimed
        expect(await begin('o1', rows[1]!, { accountId: 'ghost' })).toMatchObject({ granted: false, reason: 'lease_lost' }); // the lease is checked first
        expect(await begin('o1', { ...rows[0]!, campaignId: 'other' })).toMatchObject({ granted: false, reason: 'lease_lost' });
        expect(await raw.account('a1')).toEqual(account);
        expect(await begin('o1', rows[0]!, { gapMs: 5_000 })).toMatchObject({ granted: true });
        // Already sending: a write-ahead of another attempt must not pass (the same one again is a repeat, below).
        expect(await begin('o1', rows[0]!, { now: T0 + 5_000, attempt: 2 })).toMatchObject({ granted: false, reason: 'lease_lost' });
        expect((await raw.account('a1'))!.nextSendAt).toBe(T0 + 5_000);
        await consistent();
      });

      it('records outcomes and begins the next send in one step, even when the slot is refused', async () => {
        const rows = await seed({ n: 3 });
        await claim('o1');
        expect((await begin('o1', rows[0]!)).granted).toBe(true);
        const step = await store.advance({
          owner: 'o1',
          now: T0 + 1,
          leaseMs: LEASE_MS,
          outcomes: [out(rows[0]!, 'sent', { providerMessageId: 'm1', accountId: 'a1', accountEffect: 'success' })],
          begin: { recipientId: rows[1]!.id, campaignId: 'c1', text: 'two', attempt: 1, slot: { accountId: 'a1', gapMs: 1_000, leadMs: 0 } },
        });
        expect(step.outcomes.map((o) => o.applied)).toEqual([true]);
        expect(step.begin).toEqual({ granted: true, slotAt: T0 + 1 });
        const refused = await store.advance({
          owner: 'o1',
          now: T0 + 2,
          leaseMs: LEASE_MS,
          outcomes: [out(rows[1]!, 'sent', { providerMessageId: 'm2', accountId: 'a1' })],
          begin: { recipientId: rows[2]!.id, campaignId: 'c1', text: 'three', attempt: 1, slot: { accountId: 'a1', gapMs: 1_000, leadMs: 0 } },
        });
        expect(refused.outcomes.map((o) => o.applied)).toEqual([true]);
        expect(refused.begin).toEqual({ granted: false, reason: 'pacing', retryAt: T0 + 1_001 });
        expect((await rawRows()).map((r) => r.status)).toEqual(['sent', 'sent', 'pending']);
        expect((await rawRow(rows[2]!.id)).text).toBeNull();
        await consistent();
      });
    });

    describe('advanceGroup: grouped checkpoints (when implemented)', () => {
      const group = (owner: string, rows: Recipient[], o: { now?: number; gapMs?: number; leadMs?: number; outcomes?: Outcome[]; hourly?: CapWindow; attempt?: number } = {}) =>
        store.advanceGroup!({
          owner,
          now: o.now ?? T0,
          leaseMs: LEASE_MS,
          outcomes: o.outcomes ?? [],
          begin: {
            accountId: 'a1',
            ...(o.hourly ? { hourly: o.hourly } : {}),
            items: rows.map((r) => ({ recipientId: r.id, campaignId: r.campaignId, text: `Oi ${r.seq}`, attempt: o.attempt ?? 1, providerMessageId: null, gapMs: o.gapMs ?? 0, leadMs: o.leadMs ?? 0 })),
          },
        });

      it('records outcomes first, then reserves consecutive slots in order and writes each item ahead', async (ctx) => {
        if (!store.advanceGroup) return ctx.skip();
        const rows = await seed({ n: 5 });
        await claim('o1');
        const first = await group('o1', rows.slice(0, 3), { gapMs: 1_000, leadMs: 100 });
        expect(first.begins).toEqual([
          { granted: true, slotAt: T0 + 100 },
          { granted: true, slotAt: T0 + 1_200 },
          { granted: true, slotAt: T0 + 2_300 },
        ]);
        expect((await raw.account('a1'))!.nextSendAt).toBe(T0 + 3_300);
        for (const r of rows.slice(0, 3)) expect(await rawRow(r.id)).toMatchObject({ status: 'sending', text: `Oi ${r.seq}`, accountId: 'a1', attempts: 1, leaseOwner: 'o1' });
        expect((await consistent()).campaign.counters).toMatchObject({ sending: 3, pending: 2 });

        // Too early: every new item is refused for pacing, the outcomes still land.
        const early = await group('o1', rows.slice(3), {
          now: T0 + 3_000,
          outcomes: [out(rows[0]!, 'sent', { providerMessageId: 'g1', accountId: 'a1', accountEffect: 'success' })],
        });
        expect(early.outcomes.map((x) => x.applied)).toEqual([true]);
        expect(early.begins).toEqual([
          { granted: false, reason: 'pacing', retryAt: T0 + 3_300 },
          { granted: false, reason: 'pacing', retryAt: T0 + 3_300 },
        ]);
        const next = await group('o1', rows.slice(3), {
          now: T0 + 3_300,
          outcomes: [out(rows[1]!, 'sent', { providerMessageId: 'g2', accountId: 'a1' }), out(rows[2]!, 'failed', { accountId: 'a1', error: 'boom', accountEffect: 'failure' })],
        });
        expect(next.outcomes.map((x) => [x.applied, x.consecutiveFailures])).toEqual([
          [true, 0],
          [true, 1],
        ]);
        expect(next.begins.map((b) => b.granted)).toEqual([true, true]);
        expect((await rawRows()).map((r) => r.status)).toEqual(['sent', 'sent', 'failed', 'sending', 'sending']);
        expect((await store.getRecipientByProviderId('g2'))?.id).toBe(rows[1]!.id);
        await consistent();
      });

      it('refuses rows the owner does not lease without taking a slot, and cuts the group at a full cap', async (ctx) => {
        if (!store.advanceGroup) return ctx.skip();
        const rows = await seed({ n: 6 });
        await claim('o1', { limit: 2 });
        await claim('o2', { limit: 1 }); // row 3 belongs to o2
        await claim('o1', { limit: 3 });
        const hourly = { key: 'h1', limit: 3, endsAt: T0 + HOUR_MS };
        const r = await group('o1', rows, { gapMs: 10, hourly });
        expect(r.begins).toEqual([
          { granted: true, slotAt: T0 },
          { granted: true, slotAt: T0 + 10 },
          { granted: false, reason: 'lease_lost', retryAt: T0 },
          { granted: true, slotAt: T0 + 20 },
          { granted: false, reason: 'hourly_cap', retryAt: T0 + HOUR_MS },
          { granted: false, reason: 'hourly_cap', retryAt: T0 + HOUR_MS },
        ]);
        expect(await raw.account('a1')).toMatchObject({ nextSendAt: T0 + 30, sentThisHour: 3, hourKey: 'h1' });
        expect((await rawRows()).map((x) => x.status)).toEqual(['sending', 'sending', 'pending', 'sending', 'pending', 'pending']);
        expect((await rawRow(rows[2]!.id)).leaseOwner).toBe('o2');
        await consistent();
      });

      it('a repeated group (its commit was not heard) is granted again without new slots', async (ctx) => {
        if (!store.advanceGroup) return ctx.skip();
        const rows = await seed({ n: 3 });
        await claim('o1');
        const outcomes = [] as Outcome[];
        expect((await group('o1', rows, { gapMs: 500, outcomes })).begins.every((b) => b.granted)).toBe(true);
        const account = await raw.account('a1');
        const again = await group('o1', rows, { now: T0 + 5, gapMs: 500 });
        expect(again.begins.every((b) => b.granted)).toBe(true);
        expect(await raw.account('a1')).toEqual(account);
        expect((await consistent()).campaign.counters).toMatchObject({ sending: 3 });
      });
    });

    // ---- heartbeat & release ---------------------------------------------------

    describe('heartbeat and release', () => {
      it('heartbeat extends every lease the owner holds, pending or sending, and no one else', async () => {
        const rows = await seed({ n: 4 });
        await claim('o1', { limit: 2 });
        await claim('o2', { limit: 1 });
        expect((await begin('o1', rows[0]!)).granted).toBe(true);
        expect(await store.heartbeat('o1', T0 + 10_000, LEASE_MS)).toBe(2);
        expect(await rawRow(rows[0]!.id)).toMatchObject({ status: 'sending', leaseExpiresAt: T0 + 10_000 + LEASE_MS });
        expect(await rawRow(rows[1]!.id)).toMatchObject({ status: 'pending', leaseExpiresAt: T0 + 10_000 + LEASE_MS });
        expect(await rawRow(rows[2]!.id)).toMatchObject({ leaseOwner: 'o2', leaseExpiresAt: T0 + LEASE_MS });
        expect(await store.heartbeat('nobody', T0 + 10_000, LEASE_MS)).toBe(0);
        // Past the original expiry, the extended leases still hold.
        expect(seqs(await claim('o3', { now: T0 + LEASE_MS + 1 }))).toEqual([3, 4]);
        expect(await store.listInDoubt(T0 + LEASE_MS + 1, 10)).toEqual([]);
      });

      it('release drops pending leases (all or the ids given) and leaves sending rows to recovery', async () => {
        const rows = await seed({ n: 5 });
        await claim('o1', { limit: 4 });
        expect((await begin('o1', rows[0]!)).granted).toBe(true);
        expect(await store.release('o1', [rows[1]!.id, rows[4]!.id, rows[0]!.id])).toBe(1);
        expect(await rawRow(rows[1]!.id)).toMatchObject({ leaseOwner: null, leaseExpiresAt: null, status: 'pending' });
        expect(await store.release('o1')).toBe(2);
        expect(await rawRow(rows[0]!.id)).toMatchObject({ status: 'sending', leaseOwner: 'o1' });
        expect(await store.release('o1')).toBe(0);
        expect(await store.release('o2', [rows[0]!.id])).toBe(0);
        expect(seqs(await claim('o2', { now: T0 + 1 }))).toEqual([2, 3, 4, 5]);
        await consistent();
      });
    });

    // ---- recovery --------------------------------------------------------------

    describe('recovery of in-doubt sends', () => {
      it('lists only sending rows whose lease expired, oldest first, by campaign, up to the limit', async () => {
        const c1 = await seed({ n: 4 });
        const c2 = await seed({ id: 'c2', n: 2, from: 100 });
        await claim('o1');
        await claim('o1', { campaignId: 'c2' });
        expect((await begin('o1', c1[0]!, { now: T0 })).granted).toBe(true);
        expect((await begin('o1', c2[0]!, { now: T0 + 500 })).granted).toBe(true);
        expect((await begin('o1', c1[1]!, { now: T0 + 1_000 })).granted).toBe(true);
        expect(await store.listInDoubt(T0 + LEASE_MS - 1, 10)).toEqual([]);
        expect((await store.listInDoubt(T0 + LEASE_MS, 10)).map((r) => r.id)).toEqual([c1[0]!.id]);
        const all = await store.listInDoubt(T0 + LEASE_MS + 1_000, 10);
        expect(all.map((r) => r.id)).toEqual([c1[0]!.id, c2[0]!.id, c1[1]!.id]);
        expect(all[0]).toMatchObject({ status: 'sending', text: `Oi ${c1[0]!.phone}`, accountId: 'a1', leaseOwner: 'o1' });
        expect((await store.listInDoubt(T0 + LEASE_MS + 1_000, 10, 'c1')).map((r) => r.id)).toEqual([c1[0]!.id, c1[1]!.id]);
        expect((await store.listInDoubt(T0 + LEASE_MS + 1_000, 1)).map((r) => r.id)).toEqual([c1[0]!.id]);
        // Leased pending rows with expired leases are simply claimable, never in doubt.
        expect((await store.listInDoubt(T0 + 10 * LEASE_MS, 100)).every((r) => r.status === 'sending')).toBe(true);
      });

      it('settles each in-doubt row once, as sent, pending or unknown, and only after its lease expired', async () => {
        const rows = await seed({ n: 3 });
        await claim('o1');
        for (const r of rows) expect((await begin('o1', r)).granted).toBe(true);
        const settlements = [
          { recipientId: rows[0]!.id, status: 'sent' as const, providerMessageId: 'found-1', sentAt: T0 + 200 },
          { recipientId: rows[1]!.id, status: 'pending' as const },
          { recipientId: rows[2]!.id, status: 'unknown' as const },
        ];
        const live = await rawRows();
        expect(await store.settleInDoubt(settlements, T0 + LEASE_MS - 1)).toBe(0);
        expect(await rawRows()).toEqual(live);
        expect(await store.settleInDoubt(settlements, T0 + LEASE_MS)).toBe(3);
        expect(await rawRow(rows[0]!.id)).toMatchObject({ status: 'sent', providerMessageId: 'found-1', sentAt: T0 + 200, leaseOwner: null });
        expect((await rawRow(rows[0]!.id)).processedAt).not.toBeNull();
        expect(await rawRow(rows[1]!.id)).toMatchObject({ status: 'pending', leaseOwner: null, text: `Oi ${rows[1]!.phone}` });
        expect(await rawRow(rows[2]!.id)).toMatchObject({ status: 'unknown', leaseOwner: null });
        expect((await rawRow(rows[2]!.id)).processedAt).not.toBeNull();
        expect(await store.settleInDoubt(settlements, T0 + LEASE_MS + 1)).toBe(0);
        expect((await store.getRecipientByProviderId('found-1'))?.id).toBe(rows[0]!.id);
        // The dead worker's late outcome no longer applies; the pending row is claimable again.
        expect((await record('o1', [out(rows[2]!, 'sent')], T0 + LEASE_MS + 2))[0]!.applied).toBe(false);
        expect(seqs(await claim('o2', { now: T0 + LEASE_MS + 2 }))).toEqual([2]);
        const { campaign } = await consistent();
        expect(campaign.counters).toMatchObject({ sent: 1, pending: 1, unknown: 1, sending: 0 });
        expect((await raw.batches('c1'))[0]).toMatchObject({ sent: 1, unknown: 1 });
      });
    });

    // ---- batches ---------------------------------------------------------------

    describe('batches', () => {
      it('advances only when the current batch is finished, and only once', async () => {
        const rows = await seed({ n: 3, batchSize: 2 });
        const first = await store.advanceBatch({ campaignId: 'c1', expectedBatch: 0, nextBatch: 1, nextBatchAt: null, now: T0 });
        expect(first).toMatchObject({ currentBatch: 1, nextBatchAt: null });
        expect(await store.advanceBatch({ campaignId: 'c1', expectedBatch: 0, nextBatch: 1, nextBatchAt: null, now: T0 })).toBeNull();
        await claim('o1');
        const next = { campaignId: 'c1', expectedBatch: 1, nextBatch: 2, nextBatchAt: T0 + 20_000, now: T0 + 50 };
        expect(await store.advanceBatch(next)).toBeNull(); // pending rows
        expect((await begin('o1', rows[0]!)).granted).toBe(true);
        await record('o1', [out(rows[1]!, 'sent', { providerMessageId: 'b1' })]);
        expect(await store.advanceBatch(next)).toBeNull(); // a row is still sending
        expect((await raw.campaign('c1'))!.currentBatch).toBe(1);
        await record('o1', [out(rows[0]!, 'failed', { error: 'permanent' })]);
        const moved = await store.advanceBatch(next);
        expect(moved).toMatchObject({ currentBatch: 2, nextBatchAt: T0 + 20_000 });
        expect(await raw.campaign('c1')).toMatchObject({ currentBatch: 2, nextBatchAt: T0 + 20_000 });
        expect(await store.advanceBatch(next)).toBeNull(); // the racing worker loses
        const records = await store.listBatches('c1');
        expect(records.map((b) => [b.batch, b.size, b.sent, b.failed, b.finishedAt])).toEqual([
          [1, 2, 1, 1, T0 + 50],
          [2, 1, 0, 0, null],
        ]);
        await claim('o1', { batch: 2 });
        await record('o1', [out(rows[2]!, 'skipped', { skipReason: 'not_on_whatsapp' })]);
        expect(await store.advanceBatch({ campaignId: 'c1', expectedBatch: 2, nextBatch: 3, nextBatchAt: null, now: T0 + 60 })).toMatchObject({ currentBatch: 3, nextBatchAt: null });
        expect(await store.advanceBatch({ campaignId: 'missing', expectedBatch: 0, nextBatch: 1, nextBatchAt: null, now: T0 })).toBeNull();
        await consistent();
      });

      it('lists batch records in order with size, counts and start/finish times', async () => {
        await seed({ n: 5, batchSize: 2 });
        await claim('o1', { batch: 2, now: T0 + 7 });
        const records = await store.listBatches('c1');
        expect(records.map((b) => [b.batch, b.size, b.startedAt, b.finishedAt, b.error])).toEqual([
          [1, 2, null, null, null],
          [2, 2, T0 + 7, null, null],
          [3, 1, null, null, null],
        ]);
        expect(await store.listBatches('missing')).toEqual([]);
        await consistent();
      });
    });

    // ---- accounts --------------------------------------------------------------

    describe('accounts', () => {
      it('upsert creates an active account and afterwards changes only its pacing', async () => {
        const created = await store.upsertAccount('a1', pacing({ intervalMs: { min: 5_000, max: 15_000 } }), T0);
        expect(created).toMatchObject({ id: 'a1', state: 'active', consecutiveFailures: 0, disabledUntil: null, disabledReason: null, hourKey: null, sentThisHour: 0, dayKey: null, sentToday: 0 });
        expect(created.connection).not.toBe('close');
        expect(created.nextSendAt).toBeLessThanOrEqual(T0);
        expect(created.pacing.intervalMs).toEqual({ min: 5_000, max: 15_000 });
        expect(await raw.account('a1')).toEqual(created);
        await store.updateAccount('a1', { state: 'disabled', disabledUntil: T0 + 60_000, disabledReason: '5 failures', consecutiveFailures: 3, connection: 'open', nextSendAtAtLeast: T0 + 50_000 }, T0 + 1);
        const again = await store.upsertAccount('a1', pacing({ hourlyCap: 10, dailyCap: 100 }), T0 + 2);
        expect(again).toMatchObject({ state: 'disabled', disabledUntil: T0 + 60_000, disabledReason: '5 failures', consecutiveFailures: 3, connection: 'open', nextSendAt: T0 + 50_000 });
        expect(again.pacing).toMatchObject({ hourlyCap: 10, dailyCap: 100 });
        expect(await raw.account('a1')).toEqual(again);
        expect(await store.getAccount('a1')).toEqual(again);
        expect(await store.getAccount('missing')).toBeNull();
        await store.upsertAccount('a2', pacing(), T0);
        expect((await store.listAccounts(['a2', 'a1', 'missing'])).map((a) => a.id).sort()).toEqual(['a1', 'a2']);
        expect((await store.listAccounts()).map((a) => a.id).sort()).toEqual(['a1', 'a2']);
        expect(await store.listAccounts([])).toEqual([]);
      });

      it('updateAccount patches fields, and nextSendAtAtLeast never moves nextSendAt earlier', async () => {
        await store.upsertAccount('a1', pacing(), T0);
        expect((await store.updateAccount('a1', { nextSendAtAtLeast: T0 + 10_000 }, T0 + 1))!.nextSendAt).toBe(T0 + 10_000);
        expect((await store.updateAccount('a1', { nextSendAtAtLeast: T0 + 5_000 }, T0 + 2))!.nextSendAt).toBe(T0 + 10_000);
        expect((await raw.account('a1'))!.nextSendAt).toBe(T0 + 10_000);
        const patched = await store.updateAccount('a1', { state: 'disabled', connection: 'connecting', consecutiveFailures: 2, disabledUntil: T0 + 1, disabledReason: 'cooldown' }, T0 + 3);
        expect(patched).toMatchObject({ state: 'disabled', connection: 'connecting', consecutiveFailures: 2, disabledUntil: T0 + 1, disabledReason: 'cooldown', nextSendAt: T0 + 10_000, updatedAt: T0 + 3 });
        const cleared = await store.updateAccount('a1', { state: 'active', disabledUntil: null, disabledReason: null }, T0 + 4);
        expect(cleared).toMatchObject({ state: 'active', disabledUntil: null, disabledReason: null, consecutiveFailures: 2, connection: 'connecting' });
        expect(await raw.account('a1')).toEqual(cleared);
        expect(await store.updateAccount('missing', { state: 'stopped' }, T0)).toBeNull();
        expect(await raw.account('missing')).toBeNull();
      });
    });

    // ---- delivery --------------------------------------------------------------

    describe('delivery receipts', () => {
      it('moves sent -> delivered -> read, ignores repeats and late receipts, and counts unmatched ids', async () => {
        const rows = await seed({ n: 3 });
        await sendAll(rows);
        const first = await store.applyStatusUpdates(
          [
            { providerMessageId: 'pid-1', status: 'delivered', at: T0 + 10 },
            { providerMessageId: 'pid-1', status: 'delivered', at: T0 + 11 },
            { providerMessageId: 'pid-2', status: 'read', at: T0 + 20 },
            { providerMessageId: 'ghost', status: 'delivered', at: T0 + 20 },
          ],
          T0 + 30,
        );
        expect(first).toMatchObject({ applied: 2, ignored: 1, unmatched: 1 });
        expect(first.changed).toEqual([
          { recipientId: rows[0]!.id, campaignId: 'c1', from: 'sent', to: 'delivered' },
          { recipientId: rows[1]!.id, campaignId: 'c1', from: 'sent', to: 'read' },
        ]);
        expect(await rawRow(rows[0]!.id)).toMatchObject({ status: 'delivered', deliveredAt: T0 + 10 });
        expect(await rawRow(rows[1]!.id)).toMatchObject({ status: 'read', readAt: T0 + 20 });
        const late = await store.applyStatusUpdates(
          [
            { providerMessageId: 'pid-2', status: 'delivered', at: T0 + 40 },
            { providerMessageId: 'pid-1', status: 'sent', at: T0 + 40 },
            { providerMessageId: 'pid-2', status: 'read', at: T0 + 41 },
          ],
          T0 + 50,
        );
        expect(late).toMatchObject({ applied: 0, ignored: 3, unmatched: 0, changed: [] });
        expect((await rawRows()).map((r) => r.status)).toEqual(['delivered', 'read', 'sent']);
        expect(await rawRow(rows[1]!.id)).toMatchObject({ readAt: T0 + 20 });
        const { campaign } = await consistent();
        expect(campaign.counters).toMatchObject({ sent: 1, delivered: 1, read: 1 });
        expect((await raw.batches('c1'))[0]).toMatchObject({ sent: 3 });
        // Later, it moves on.
        expect(await store.applyStatusUpdates([{ providerMessageId: 'pid-1', status: 'read', at: T0 + 60 }], T0 + 60)).toMatchObject({ applied: 1 });
      });

      it('applies failed only before delivered', async () => {
        const rows = await seed({ n: 3 });
        await sendAll(rows);
        await store.applyStatusUpdates([{ providerMessageId: 'pid-2', status: 'delivered', at: T0 + 1 }], T0 + 1);
        const result = await store.applyStatusUpdates(
          [
            { providerMessageId: 'pid-1', status: 'failed', at: T0 + 2, error: '131026: undeliverable' },
            { providerMessageId: 'pid-2', status: 'failed', at: T0 + 2, error: 'too late' },
          ],
          T0 + 3,
        );
        expect(result).toMatchObject({ applied: 1, ignored: 1 });
        expect(result.changed).toEqual([{ recipientId: rows[0]!.id, campaignId: 'c1', from: 'sent', to: 'failed' }]);
        expect(await rawRow(rows[0]!.id)).toMatchObject({ status: 'failed', lastError: '131026: undeliverable' });
        expect((await rawRow(rows[1]!.id)).status).toBe('delivered');
        const { campaign } = await consistent();
        expect(campaign.counters).toMatchObject({ sent: 1, delivered: 1, failed: 1 });
        expect((await raw.batches('c1'))[0]).toMatchObject({ sent: 2, failed: 1 });
      });

      it('settles unknown rows forward, leaves sending rows to their worker, and counters follow', async () => {
        const rows = await seed({ n: 3 });
        await claim('o1');
        for (const [i, r] of rows.entries()) expect((await begin('o1', r, { pid: `bp-${i}` })).granted).toBe(true);
        await record('o1', [out(rows[1]!, 'unknown', { error: 'timed out' }), out(rows[2]!, 'unknown', { error: 'timed out' })]);
        const result = await store.applyStatusUpdates(
          [
            { providerMessageId: 'bp-0', status: 'delivered', at: T0 + 5 },
            { providerMessageId: 'bp-1', status: 'read', at: T0 + 6 },
            { providerMessageId: 'bp-2', status: 'sent', at: T0 + 7 },
          ],
          T0 + 8,
        );
        expect(result).toMatchObject({ applied: 2, ignored: 1, unmatched: 0 });
        expect(result.changed).toEqual([
          { recipientId: rows[1]!.id, campaignId: 'c1', from: 'unknown', to: 'read' },
          { recipientId: rows[2]!.id, campaignId: 'c1', from: 'unknown', to: 'sent' },
        ]);
        expect(await rawRow(rows[0]!.id)).toMatchObject({ status: 'sending', leaseOwner: 'o1' });
        expect(await rawRow(rows[1]!.id)).toMatchObject({ status: 'read', readAt: T0 + 6 });
        expect(await rawRow(rows[2]!.id)).toMatchObject({ status: 'sent', sentAt: T0 + 7 });
        // The worker still records its own outcome for the row that was sending.
        expect((await record('o1', [out(rows[0]!, 'sent', { providerMessageId: 'bp-0' })], T0 + 9))[0]!.applied).toBe(true);
        const { campaign } = await consistent();
        expect(campaign.counters).toMatchObject({ sent: 2, read: 1, unknown: 0, sending: 0 });
        expect((await raw.batches('c1'))[0]).toMatchObject({ sent: 3, unknown: 0 });
      });
    });

    // ---- contacts --------------------------------------------------------------

    describe('opt-outs', () => {
      it('cancel pending sends, leased or not, in every campaign, and block later imports', async () => {
        const c1 = await seed({ n: 4 }); // p0..p3
        const c2 = await seed({ id: 'c2', n: 4, from: 2 }); // p2..p5
        await claim('o1', { limit: 3 });
        expect((await begin('o1', c1[0]!)).granted).toBe(true);
        const [p0, , p2] = people(3);
        const result = await store.addOptOuts(
          [
            { phone: p0!.phone, reason: 'SAIR', source: 'inbound', at: T0 + 5 },
            { phone: p2!.phone, reason: 'api', source: 'api', at: T0 + 5 },
            { phone: phone(99), reason: 'api', source: 'api', at: T0 + 5 },
          ],
          T0 + 5,
        );
        // p0 is on the wire in c1 (left alone); p2 is leased in c1 and unleased in c2.
        expect(result).toEqual({ added: 3, cancelled: 2 });
        expect(await rawRow(c1[0]!.id)).toMatchObject({ status: 'sending' });
        expect(await rawRow(c1[2]!.id)).toMatchObject({ status: 'skipped', skipReason: 'opted_out', leaseOwner: null });
        expect(await rawRow(c2[0]!.id, 'c2')).toMatchObject({ status: 'skipped', skipReason: 'opted_out' });
        expect(await begin('o1', c1[2]!)).toMatchObject({ granted: false, reason: 'lease_lost' });
        expect((await record('o1', [out(c1[2]!, 'sent')]))[0]!.applied).toBe(false);
        expect(await store.addOptOuts([{ phone: p0!.phone, reason: 'again', source: 'api', at: T0 + 6 }], T0 + 6)).toEqual({ added: 0, cancelled: 0 });
        expect((await store.listOptOuts()).map((o) => o.phone).sort()).toEqual([p0!.phone, p2!.phone, phone(99)].sort());
        expect(await store.listOptOuts([p0!.phone, phone(5)])).toEqual([{ phone: p0!.phone, reason: 'SAIR', source: 'inbound', at: T0 + 5 }]);
        expect(await store.addRecipients('c2', [{ phone: phone(99), vars: {} }], T0 + 7)).toEqual({ inserted: 0, duplicates: 0, optedOut: 1 });
        expect(await store.removeOptOut(phone(99))).toBe(true);
        expect(await store.removeOptOut(phone(99))).toBe(false);
        expect(await store.addRecipients('c2', [{ phone: phone(99), vars: {} }], T0 + 8)).toEqual({ inserted: 1, duplicates: 0, optedOut: 0 });
        expect((await consistent('c1')).campaign.counters).toMatchObject({ skipped: 1, sending: 1, pending: 2 });
        expect((await consistent('c2')).campaign.counters).toMatchObject({ skipped: 1, pending: 4 });
      });
    });

    // ---- progress & maintenance -------------------------------------------------

    describe('progress and maintenance', () => {
      it('countProcessedSince counts rows that reached a terminal status at or after the time', async () => {
        const rows = await seed({ n: 5 });
        await seed({ id: 'c2', n: 1, from: 50 });
        await claim('o1');
        expect((await begin('o1', rows[3]!)).granted).toBe(true);
        await record('o1', [out(rows[0]!, 'sent', { at: T0 + 100, providerMessageId: 'm1' }), out(rows[1]!, 'failed', { at: T0 + 200 }), out(rows[2]!, 'skipped', { at: T0 + 300, skipReason: 'not_on_whatsapp' })]);
        await store.addOptOuts([{ phone: rows[4]!.phone, reason: 'x', source: 'api', at: T0 + 400 }], T0 + 400);
        expect(await store.countProcessedSince('c1', T0)).toBe(4);
        expect(await store.countProcessedSince('c1', T0 + 200)).toBe(3);
        expect(await store.countProcessedSince('c1', T0 + 301)).toBe(1);
        expect(await store.countProcessedSince('c1', T0 + 401)).toBe(0);
        expect(await store.countProcessedSince('c2', T0)).toBe(0);
        expect(await store.countProcessedSince('missing', T0)).toBe(0);
      });

      it('cleanup deletes only finished campaigns finished before the cut, with their rows', async () => {
        const old = await seed({ n: 2 });
        await store.transitionCampaign('c1', { from: ['draft'], to: 'running', now: T0 + 10 });
        await sendAll(old, 'o1', { prefix: 'old' });
        await store.transitionCampaign('c1', { from: ['running'], to: 'completed', now: T0 + 100 });
        await seed({ id: 'c2', n: 1, from: 10 });
        await store.transitionCampaign('c2', { from: ['draft'], to: 'cancelled', now: T0 + 500 });
        await seed({ id: 'c3', n: 1, from: 20 });
        await store.transitionCampaign('c3', { from: ['draft'], to: 'running', now: T0 + 10 });
        await seed({ id: 'c4', n: 1, from: 30 });

        expect(await store.cleanup(T0 + 200)).toEqual({ campaigns: 1, recipients: 2 });
        expect(await store.getCampaign('c1')).toBeNull();
        expect(await raw.campaign('c1')).toBeNull();
        expect(await raw.recipients('c1')).toEqual([]);
        expect(await store.listBatches('c1')).toEqual([]);
        expect(await store.getRecipientByProviderId('old-1')).toBeNull();
        expect((await store.listCampaigns()).map((c) => c.id)).toEqual(['c2', 'c3', 'c4']);
        expect(await store.cleanup(T0 + 200)).toEqual({ campaigns: 0, recipients: 0 });
        expect(await store.cleanup(T0 + 10 * DAY_MS)).toEqual({ campaigns: 1, recipients: 1 });
        expect((await store.listCampaigns()).map((c) => c.id)).toEqual(['c3', 'c4']);
        await consistent('c3');
        await consistent('c4');
      });

      it('contactHistory lists sends to the phones in any campaign, newest first (when implemented)', async () => {
        if (!store.contactHistory) return;
        const c1 = await seed({ n: 2 });
        const c2 = await seed({ id: 'c2', n: 1 }); // the same first phone
        await sendAll(c1.slice(0, 1), 'o1', { at: T0 + 10 });
        await sendAll(c2, 'o1', { prefix: 'c2', at: T0 + 20, campaignId: 'c2' });
        const history = await store.contactHistory([phone(0), phone(1)], T0);
        expect(history).toEqual([
          { phone: phone(0), campaignId: 'c2', accountId: 'a1', sentAt: T0 + 20 },
          { phone: phone(0), campaignId: 'c1', accountId: 'a1', sentAt: T0 + 10 },
        ]);
        expect((await store.contactHistory([phone(0)], T0 + 15)).map((h) => h.campaignId)).toEqual(['c2']);
      });

      it("accountSendTimes lists an account's send times ascending (when implemented)", async () => {
        if (!store.accountSendTimes) return;
        const rows = await seed({ n: 3 });
        await claim('o1');
        for (const [i, r] of rows.entries()) {
          expect((await begin('o1', r)).granted).toBe(true);
          await record('o1', [out(r, 'sent', { at: T0 + 1_000 * (3 - i), providerMessageId: `t${i}`, accountId: 'a1' })]);
        }
        expect(await store.accountSendTimes('a1', T0, 10)).toEqual([T0 + 1_000, T0 + 2_000, T0 + 3_000]);
        expect(await store.accountSendTimes('a1', T0 + 1_500, 1)).toEqual([T0 + 2_000]);
        expect(await store.accountSendTimes('a2', T0, 10)).toEqual([]);
      });
    });

    // ---- randomized ------------------------------------------------------------

    describe('randomized', () => {
      for (const seedValue of [1, 2, 3]) {
        it(`keeps counters equal to rows and statuses monotonic under a mixed sequence (seed ${seedValue})`, async () => {
          await randomized(seedValue);
        });
      }
    });

    /**
     * A deterministic mixed sequence of every operation (imports with duplicates, claims by several
     * owners, write-aheads, outcomes right and wrong, heartbeats, releases, time passing, recovery,
     * opt-outs, receipts, batch moves), checking I2 and monotonic statuses along the way.
     */
    const randomized = async (seedValue: number) => {
      const rng = seededRandom(seedValue);
      const int = (n: number) => Math.floor(rng() * n);
      const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
      const campaigns = ['c1', 'c2'];
      await store.createCampaign(newCampaign('c1', { batchSize: 4 }));
      await store.createCampaign(newCampaign('c2', { batchSize: 5 }));
      await store.upsertAccount('a1', pacing(), T0);
      await store.upsertAccount('a2', pacing(), T0);
      const owners = ['o1', 'o2', 'o3'];
      const pids: string[] = [];
      let now = T0;
      let pidSeq = 0;
      const last = new Map<string, RecipientStatus>();

      const checkpoint = async () => {
        for (const id of campaigns) {
          const { rows } = await consistent(id);
          for (const r of rows) {
            const before = last.get(r.id);
            if (before && TERMINAL.includes(before)) {
              expect(TERMINAL.includes(r.status), `row ${r.id} went back from ${before} to ${r.status}`).toBe(true);
              if (RANK[before] !== undefined && RANK[r.status] !== undefined) expect(RANK[r.status]!).toBeGreaterThanOrEqual(RANK[before]!);
            }
            last.set(r.id, r.status);
          }
        }
      };

      for (let step = 0; step < 160; step++) {
        const campaignId = pick(campaigns);
        const roll = rng();
        if (roll < 0.1) {
          const batch = Array.from({ length: 1 + int(6) }, () => {
            const k = int(40);
            return { phone: phone(k), vars: { k: String(k) } };
          });
          await store.addRecipients(campaignId, batch, now);
        } else if (roll < 0.25) {
          await claim(pick(owners), { campaignId, batch: 1 + int(3), limit: 1 + int(4), now });
        } else if (roll < 0.45) {
          const leased = (await store.listRecipients(campaignId, { status: ['pending'], limit: LIMIT_ALL })).filter((r) => r.leaseOwner !== null);
          if (leased.length > 0) {
            const r = pick(leased);
            const pid = rng() < 0.5 ? `rp-${++pidSeq}` : undefined;
            const result = await begin(rng() < 0.9 ? r.leaseOwner! : pick(owners), r, { now, accountId: pick(['a1', 'a2']), gapMs: pick([0, 0, 500]), ...(pid ? { pid } : {}) });
            if (result.granted && pid) pids.push(pid);
          }
        } else if (roll < 0.65) {
          const open = (await store.listRecipients(campaignId, { status: ['pending', 'sending'], limit: LIMIT_ALL })).filter((r) => r.leaseOwner !== null);
          if (open.length > 0) {
            const r = pick(open);
            const status = pick(['sent', 'sent', 'failed', 'skipped', 'unknown', 'pending'] as const);
            const pid = status === 'sent' ? `op-${++pidSeq}` : undefined;
            const [res] = await record(
              rng() < 0.85 ? r.leaseOwner! : pick(owners),
              [out(r, status, { at: now, attempts: r.attempts + 1, accountEffect: pick(['success', 'failure', 'none'] as const), accountId: pick(['a1', 'a2']), ...(pid ? { providerMessageId: pid } : {}), ...(status === 'skipped' ? { skipReason: 'not_on_whatsapp' as const } : {}) })],
              now,
            );
            if (res?.applied && pid) pids.push(pid);
          }
        } else if (roll < 0.7) {
          await store.heartbeat(pick(owners), now, LEASE_MS);
        } else if (roll < 0.75) {
          await store.release(pick(owners));
        } else if (roll < 0.83) {
          now += int(LEASE_MS / 2);
        } else if (roll < 0.88) {
          const doubt = await store.listInDoubt(now, 5);
          await store.settleInDoubt(
            doubt.map((r) => ({ recipientId: r.id, status: pick(['sent', 'pending', 'unknown'] as const), providerMessageId: `sp-${++pidSeq}`, sentAt: now })),
            now,
          );
        } else if (roll < 0.9) {
          await store.addOptOuts([{ phone: phone(int(40)), reason: 'random', source: 'api', at: now }], now);
        } else if (roll < 0.97) {
          if (pids.length > 0) {
            await store.applyStatusUpdates(
              Array.from({ length: 1 + int(3) }, () => ({ providerMessageId: rng() < 0.9 ? pick(pids) : 'nope', status: pick(['sent', 'delivered', 'read', 'failed'] as const), at: now })),
              now,
            );
          }
        } else {
          const c = (await store.getCampaign(campaignId))!;
          await store.advanceBatch({ campaignId, expectedBatch: c.currentBatch, nextBatch: c.currentBatch + 1, nextBatchAt: null, now });
        }
        if (step % 20 === 19) await checkpoint();
      }
      await checkpoint();
      // Drain: recover everything, hand every lease back, and work each campaign to the end.
      now += 10 * LEASE_MS;
      await store.settleInDoubt((await store.listInDoubt(now, LIMIT_ALL)).map((r) => ({ recipientId: r.id, status: 'unknown' as const })), now);
      for (const campaignId of campaigns) {
        for (const { batch } of await raw.batches(campaignId)) {
          const claimed = await claim('drain', { campaignId, batch, limit: LIMIT_ALL, now });
          if (claimed.length > 0) await record('drain', claimed.map((r) => out(r, 'failed', { at: now, error: 'drained' })), now);
        }
        const rows = await rawRows(campaignId);
        expect(rows.filter((r) => r.status === 'pending' || r.status === 'sending'), `campaign ${campaignId} drained`).toEqual([]);
      }
      await checkpoint();
    };

    // ---- concurrency -------------------------------------------------------------

    const concurrent = options.concurrency !== false && options.share !== undefined;
    (concurrent ? describe : describe.skip)('concurrency (several connections)', () => {
      const share = async (n: number) => {
        const list: StateStore[] = [];
        for (let i = 0; i < n; i++) list.push(await options.share!(store));
        peers.push(...list);
        return list;
      };

      it('peers claiming the same campaign at once never get the same row, and together get every row', async () => {
        await seed({ n: 60, batchSize: 60 });
        const workers = await share(4);
        const got = await Promise.all(
          workers.map(async (peer, i) => {
            const mine: Recipient[] = [];
            for (;;) {
              const claimed = await peer.claimRecipients({ campaignId: 'c1', batch: 1, owner: `w${i}`, limit: 3, now: T0, leaseMs: LEASE_MS });
              if (claimed.length === 0) return mine;
              mine.push(...claimed);
            }
          }),
        );
        const ids = got.flat().map((r) => r.id);
        expect(new Set(ids).size, 'no row given twice').toBe(ids.length);
        expect(ids.length, 'every row claimed').toBe(60);
        const rows = await rawRows();
        got.forEach((mine, i) => {
          for (const r of mine) expect(rows.find((x) => x.id === r.id)!.leaseOwner).toBe(`w${i}`);
        });
        await consistent();
      });

      it('peers racing for one paced account get exactly one slot each time', async () => {
        const rows = await seed({ n: 5 });
        const workers = await share(5);
        for (const [i, r] of rows.entries()) {
          // Each worker leases one recipient of its own.
          expect(seqs(await workers[i]!.claimRecipients({ campaignId: 'c1', batch: 1, owner: `w${i}`, limit: 1, now: T0, leaseMs: LEASE_MS }))).toEqual([r.seq]);
        }
        let waiting = rows.map((r, i) => ({ r, i }));
        let now = T0;
        for (let round = 0; waiting.length > 0; round++) {
          const results = await Promise.all(
            waiting.map(({ r, i }) =>
              workers[i]!.advance({ owner: `w${i}`, now, leaseMs: LEASE_MS, begin: { recipientId: r.id, campaignId: 'c1', text: 'x', attempt: 1, slot: { accountId: 'a1', gapMs: 10_000, leadMs: 0 } } }),
            ),
          );
          const granted = results.filter((res) => res.begin?.granted);
          expect(granted.length, `round ${round}: one slot`).toBe(1);
          for (const res of results) if (!res.begin!.granted) expect(res.begin).toEqual({ granted: false, reason: 'pacing', retryAt: now + 10_000 });
          waiting = waiting.filter((_, k) => !results[k]!.begin!.granted);
          expect((await raw.account('a1'))!.nextSendAt).toBe(now + 10_000);
          now += 10_000;
        }
        const { campaign } = await consistent();
        expect(campaign.counters.sending).toBe(5);
      });

      it('two peers settling the same in-doubt row: exactly one applies', async () => {
        const rows = await seed({ n: 1 });
        await claim('dead');
        expect((await begin('dead', rows[0]!)).granted).toBe(true);
        const [a, b] = await share(2);
        const at = T0 + LEASE_MS + 1;
        const applied = await Promise.all([
          a!.settleInDoubt([{ recipientId: rows[0]!.id, status: 'unknown' }], at),
          b!.settleInDoubt([{ recipientId: rows[0]!.id, status: 'pending' }], at),
        ]);
        expect(applied[0]! + applied[1]!).toBe(1);
        const row = await rawRow(rows[0]!.id);
        expect(row.status).toBe(applied[0] === 1 ? 'unknown' : 'pending');
        await consistent();
      });

      it('peers importing overlapping audiences at once insert each phone once with gapless seq', async () => {
        await store.createCampaign(newCampaign('c1', { batchSize: 7 }));
        const workers = await share(4);
        // Half import in order, half in reverse, so the peers collide on every phone.
        const results = await Promise.all(workers.map((peer, i) => peer.addRecipients('c1', i % 2 === 0 ? people(30) : people(30).reverse(), T0)));
        expect(results.reduce((s, r) => s + r.inserted, 0)).toBe(30);
        expect(results.reduce((s, r) => s + r.duplicates, 0)).toBe(90);
        const { campaign } = await consistent();
        expect(campaign.counters.total).toBe(30);
      });

      it('peers racing the same transition or receipt: exactly one applies', async () => {
        const rows = await seed({ n: 1 });
        await sendAll(rows);
        const workers = await share(4);
        const moved = await Promise.all(workers.map((peer) => peer.transitionCampaign('c1', { from: ['draft'], to: 'running', now: T0 + 1 })));
        expect(moved.filter((c) => c !== null)).toHaveLength(1);
        const receipts = await Promise.all(workers.map((peer) => peer.applyStatusUpdates([{ providerMessageId: 'pid-1', status: 'delivered', at: T0 + 2 }], T0 + 2)));
        expect(receipts.reduce((s, r) => s + r.applied, 0)).toBe(1);
        expect(receipts.reduce((s, r) => s + r.ignored, 0)).toBe(3);
        const { campaign } = await consistent();
        expect(campaign.counters).toMatchObject({ delivered: 1, sent: 0 });
      });
    });
  });
}
