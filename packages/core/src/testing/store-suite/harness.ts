import { afterEach, beforeEach, expect } from 'vitest';
import type { CapWindow } from '../../domain/calendar.js';
import type { AccountRecord, BatchRecord, Campaign, CampaignSettings, Pacing, Recipient, RecipientCounters, RecipientStatus } from '../../domain/types.js';
import type { Grant } from '../../rules/slots.js';
import type { NewCampaign, Outcome, OutcomeResult, StateStore } from '../../store/contract.js';

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
  /** The adapter's raw reader of what a store persisted (the database directly). */
  inspect: (store: StateStore) => StoreInspector;
  /** Another StateStore instance on the same database as `store` (another worker's connection). Enables the concurrency cases. */
  share?: (store: StateStore) => Promise<StateStore>;
  /** Skip the cases that need several real connections (PGlite has one session). */
  concurrency?: boolean;
  /** Called after each case with the store, to close it. */
  teardown?: (store: StateStore) => Promise<void>;
}

export const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);
export const LEASE_MS = 30_000;
export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;
export const LIMIT_ALL = 100_000;

const SENT_LIKE: readonly RecipientStatus[] = ['sent', 'delivered', 'read'];
export const TERMINAL: readonly RecipientStatus[] = ['sent', 'delivered', 'read', 'failed', 'skipped', 'unknown'];
export const RANK: Partial<Record<RecipientStatus, number>> = { sent: 1, delivered: 2, read: 3 };

export const settings = (o: Partial<CampaignSettings> = {}): CampaignSettings => ({
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

export const pacing = (o: Partial<Pacing> = {}): Pacing => ({
  intervalMs: { min: 0, max: 0 },
  hourlyCap: null,
  dailyCap: null,
  warmup: null,
  typingMsPerChar: 0,
  typingMaxMs: 0,
  maxInFlight: 1,
  ratePerSecond: null,
  ...o,
});

export const newCampaign = (id: string, o: Partial<Omit<NewCampaign, 'settings'>> & { batchSize?: number } = {}): NewCampaign => {
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

export const phone = (i: number) => `55119${String(70_000_000 + i).padStart(8, '0')}`;
export const people = (n: number, from = 0) => Array.from({ length: n }, (_, i) => ({ phone: phone(from + i), vars: { name: `n${from + i}` } }));
export const zero = (): RecipientCounters => ({ total: 0, pending: 0, sending: 0, sent: 0, delivered: 0, read: 0, failed: 0, skipped: 0, unknown: 0 });
export const bySeq = (a: Recipient, b: Recipient) => a.seq - b.seq;
export const seqs = (rows: Recipient[]) => rows.map((r) => r.seq);


/** What each group of cases gets: the current case's store and raw reader, and helpers bound to them. */
export interface Suite {
  readonly name: string;
  readonly options: StoreSuiteOptions;
  /** The current case's store (fresh for each case). */
  readonly store: StateStore;
  /** Its raw reader. */
  readonly raw: StoreInspector;
  /** Other stores on the same database opened by the case (closed after it). */
  readonly peers: StateStore[];
  rowsOf(campaignId?: string): Promise<Recipient[]>;
  rawRows(campaignId?: string): Promise<Recipient[]>;
  rawRow(id: string, campaignId?: string): Promise<Recipient>;
  seed(o?: { id?: string; n?: number; from?: number; batchSize?: number }): Promise<Recipient[]>;
  claim(owner: string, o?: { campaignId?: string; batch?: number; limit?: number; now?: number }): Promise<Recipient[]>;
  begin(
    owner: string,
    r: Recipient,
    o?: { now?: number; gapMs?: number; leadMs?: number; accountId?: string; pid?: string; text?: string; attempt?: number; hourly?: CapWindow; daily?: CapWindow; maxInFlight?: number },
  ): Promise<Grant>;
  out(r: Recipient, status: Outcome['status'], o?: Partial<Outcome>): Outcome;
  record(owner: string, outcomes: Outcome[], now?: number): Promise<OutcomeResult[]>;
  sendAll(rows: Recipient[], owner?: string, o?: { prefix?: string; at?: number; campaignId?: string }): Promise<void>;
  consistent(campaignId?: string): Promise<{ campaign: Campaign; rows: Recipient[] }>;
}

/** Build the suite's harness: a fresh store before each case (closed after it), helpers that always use the current one. */
export function createSuite(name: string, factory: StoreFactory, options: StoreSuiteOptions): Suite {
  const state = { store: null as unknown as StateStore, raw: null as unknown as StoreInspector, peers: [] as StateStore[] };
  beforeEach(async () => {
    state.store = await factory();
    state.raw = options.inspect(state.store);
    state.peers = [];
  });
  afterEach(async () => {
    if (!options.teardown) return;
    const all = new Set<StateStore>([...state.peers, state.store]);
    all.delete(state.store);
    for (const peer of all) await options.teardown(peer);
    await options.teardown(state.store);
  });
  const s = {
    name,
    options,
    get store() {
      return state.store;
    },
    get raw() {
      return state.raw;
    },
    get peers() {
      return state.peers;
    },
  } as Suite;

  const rowsOf = async (campaignId = 'c1') => (await s.store.listRecipients(campaignId, { limit: LIMIT_ALL })).sort(bySeq);
  const rawRows = async (campaignId = 'c1') => (await s.raw.recipients(campaignId)).slice().sort(bySeq);
  const rawRow = async (id: string, campaignId = 'c1') => {
    const row = (await s.raw.recipients(campaignId)).find((r) => r.id === id);
    if (!row) throw new Error(`row ${id} is not persisted`);
    return row;
  };

  /** A campaign with `n` recipients and account `a1` (no pacing). Returns its rows by seq. */
  const seed = async (o: { id?: string; n?: number; from?: number; batchSize?: number } = {}) => {
    const id = o.id ?? 'c1';
    await s.store.createCampaign(newCampaign(id, { batchSize: o.batchSize ?? 10 }));
    if ((o.n ?? 0) > 0) await s.store.addRecipients(id, people(o.n!, o.from ?? 0), T0);
    if (!(await s.store.getAccount('a1'))) await s.store.upsertAccount('a1', pacing(), T0);
    return rowsOf(id);
  };

  const claim = (owner: string, o: { campaignId?: string; batch?: number; limit?: number; now?: number } = {}) =>
    s.store.claimRecipients({ campaignId: o.campaignId ?? 'c1', batch: o.batch ?? 1, owner, limit: o.limit ?? 100, now: o.now ?? T0, leaseMs: LEASE_MS });

  /** Write one recipient ahead through an account (a checkpoint with a one-item write-ahead). The window is wide unless given. */
  const begin = async (
    owner: string,
    r: Recipient,
    o: { now?: number; gapMs?: number; leadMs?: number; accountId?: string; pid?: string; text?: string; attempt?: number; hourly?: CapWindow; daily?: CapWindow; maxInFlight?: number } = {},
  ): Promise<Grant> => {
    const result = await s.store.checkpoint({
      owner,
      now: o.now ?? T0,
      leaseMs: LEASE_MS,
      writeAhead: {
        accountId: o.accountId ?? 'a1',
        maxInFlight: o.maxInFlight ?? 1_000,
        ...(o.hourly ? { hourly: o.hourly } : {}),
        ...(o.daily ? { daily: o.daily } : {}),
        items: [{ recipientId: r.id, campaignId: r.campaignId, text: o.text ?? `Oi ${r.phone}`, attempt: o.attempt ?? 1, providerMessageId: o.pid ?? null, gapMs: o.gapMs ?? 0, leadMs: o.leadMs ?? 0 }],
      },
    });
    expect(result.grants).toHaveLength(1);
    return result.grants[0]!;
  };

  const out = (r: Recipient, status: Outcome['status'], o: Partial<Outcome> = {}): Outcome => ({ recipientId: r.id, campaignId: r.campaignId, status, attempts: 1, at: T0, ...o });

  const record = async (owner: string, outcomes: Outcome[], now = T0): Promise<OutcomeResult[]> => (await s.store.checkpoint({ owner, now, leaseMs: LEASE_MS, outcomes })).outcomes;

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
    const c = await s.raw.campaign(campaignId);
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
    const records = (await s.raw.batches(campaignId))
      .filter((b) => b.size + b.sent + b.failed + b.skipped + b.unknown > 0)
      .map((b) => ({ batch: b.batch, size: b.size, sent: b.sent, failed: b.failed, skipped: b.skipped, unknown: b.unknown }))
      .sort((a, b) => a.batch - b.batch);
    expect(records, `batch records of ${campaignId} equal its rows`).toEqual([...perBatch.values()].sort((a, b) => a.batch - b.batch));
    return { campaign: c!, rows };
  };

  // ---- campaigns ------------------------------------------------------------
  return Object.assign(s, { rowsOf, rawRows, rawRow, seed, claim, begin, out, record, sendAll, consistent });
}
