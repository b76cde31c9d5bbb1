import { validate } from '../errors.js';
import { z } from 'zod';
import type { EngineContext } from '../context.js';
import { capWindows, isDailyCapped } from '../domain/calendar.js';
import type { BatchRecord, Campaign, CampaignStatus, PauseReason, RecipientCounters } from '../domain/types.js';
import { getCampaign } from './campaigns.js';
import type { ImportResult } from './import.js';

export interface Progress {
  campaignId: string;
  name: string;
  status: CampaignStatus;
  pauseReason: PauseReason | null;
  counters: RecipientCounters;
  /** Sent, including those delivered or read since. */
  sent: number;
  processed: number;
  remaining: number;
  percent: number;
  /** Recipients processed per minute over the last minute. */
  ratePerMinute: number;
  etaMs: number | null;
  currentBatch: number;
  totalBatches: number;
  batches: BatchRecord[];
  imported: ImportResult | null;
}

export interface AccountReport {
  accountId: string;
  state: string;
  connection: string;
  disabledReason: string | null;
  sends: number;
  gapMs: { min: number | null; median: number | null; p95: number | null };
  configuredIntervalMs: { min: number; max: number };
  sentThisHour: number;
  hourlyCap: number | null;
  sentToday: number;
  dailyCap: number | null;
  dailyCapReached: boolean;
}

/** Counts per status, rate over the last minute, ETA, and the batch records. */
export async function progress(ctx: EngineContext, campaignId: string): Promise<Progress> {
  const c = await getCampaign(ctx, campaignId);
  const now = ctx.clock.now();
  const windowMs = 60_000;
  const [batches, recent] = await Promise.all([ctx.store.listBatches(campaignId), ctx.store.countProcessedSince(campaignId, now - windowMs)]);
  // Rows imported after their batch finished join the current one, so the records are the truth.
  const totalBatches = Math.max(Math.ceil(c.counters.total / c.settings.batchSize), ...batches.map((b) => b.batch));
  const elapsed = c.startedAt === null ? windowMs : Math.max(1_000, Math.min(windowMs, now - c.startedAt));
  const remaining = c.counters.pending + c.counters.sending;
  const processed = c.counters.total - remaining;
  const ratePerMinute = c.status === 'running' ? (recent / elapsed) * 60_000 : 0;
  return {
    campaignId: c.id,
    name: c.name,
    status: c.status,
    pauseReason: c.pauseReason,
    counters: c.counters,
    sent: c.counters.sent + c.counters.delivered + c.counters.read,
    processed,
    remaining,
    percent: c.counters.total === 0 ? 0 : Math.round((processed / c.counters.total) * 1000) / 10,
    ratePerMinute: Math.round(ratePerMinute * 10) / 10,
    etaMs: ratePerMinute > 0 && remaining > 0 ? Math.round((remaining / ratePerMinute) * 60_000) : remaining === 0 ? 0 : null,
    // Finishing the last batch moves the campaign one past it; report the batch it ended in.
    currentBatch: Math.min(c.currentBatch, totalBatches),
    totalBatches,
    batches,
    imported: (c.metadata.import as ImportResult | undefined) ?? null,
  };
}

/** Running campaigns with work left that processed nothing for `idleMs` (default 10 min): a dead worker pool, a stuck account. */
export async function listStuckCampaigns(ctx: EngineContext, options: { idleMs?: number } = {}): Promise<Array<{ campaign: Campaign; idleMs: number; remaining: number }>> {
  const idleMs = validate(z.number().int().positive().default(10 * 60_000), options.idleMs, 'idleMs', 'idleMs');
  const now = ctx.clock.now();
  const stuck = [];
  for (const c of await ctx.store.listCampaigns({ status: ['running'] })) {
    const remaining = c.counters.pending + c.counters.sending;
    if (remaining === 0 || (c.startedAt ?? 0) > now - idleMs) continue;
    if ((await ctx.store.countProcessedSince(c.id, now - idleMs)) === 0) stuck.push({ campaign: c, idleMs, remaining });
  }
  return stuck;
}

/** Per account: realised gaps between sends (min, median, p95) over a window, caps, state. */
export async function pacingReport(ctx: EngineContext, options: { sinceMs?: number } = {}): Promise<AccountReport[]> {
  const sinceMs = validate(z.number().int().positive().default(24 * 3_600_000), options.sinceMs, 'sinceMs', 'sinceMs');
  const { store, clock } = ctx;
  const now = clock.now();
  const reports: AccountReport[] = [];
  for (const a of await store.listAccounts()) {
    const times = store.accountSendTimes ? await store.accountSendTimes(a.id, now - sinceMs, 100_000) : [];
    const gaps = times
      .slice(1)
      .map((t, i) => t - times[i]!)
      .sort((x, y) => x - y);
    const q = (p: number) => (gaps.length ? gaps[Math.min(gaps.length - 1, Math.floor(p * gaps.length))]! : null);
    const caps = capWindows(a.pacing, now, ctx.options.capTimeZone);
    reports.push({
      accountId: a.id,
      state: a.state,
      connection: a.connection,
      disabledReason: a.disabledReason,
      sends: times.length,
      gapMs: { min: gaps[0] ?? null, median: q(0.5), p95: q(0.95) },
      configuredIntervalMs: a.pacing.intervalMs,
      sentThisHour: caps.hourly && a.hourKey === caps.hourly.key ? a.sentThisHour : 0,
      hourlyCap: a.pacing.hourlyCap,
      sentToday: caps.daily && a.dayKey === caps.daily.key ? a.sentToday : 0,
      dailyCap: caps.daily?.limit ?? null,
      dailyCapReached: isDailyCapped(a, now, ctx.options.capTimeZone),
    });
  }
  return reports;
}
