import type { CountryCode } from 'libphonenumber-js';
import { EventEmitter } from 'eventemitter3';
import { z } from 'zod';
import { systemClock, type Clock } from '../clock.js';
import type { EngineContext } from '../context.js';
import { ConflictError, NotFoundError, ShutdownError, ValidationError, validate } from '../errors.js';
import { defaultLogger, toLog, type EngineEventArgs, type EngineEvents } from '../events.js';
import type { Campaign, CampaignStatus } from '../domain/types.js';
import type { StateStore, StatusUpdate, StatusUpdateResult } from '../store/contract.js';
import type { TransportEvent } from '../transport/contract.js';
import { accountHealth, registerAccount, subscribe, syncConnection } from './accounts.js';
import { createCampaign, getCampaign, scheduleCampaign, startCampaign, stopCampaign } from './campaigns.js';
import { resumeAutoPaused } from './housekeeping.js';
import { applyStatusUpdates, applyTransportEvents, optOut, parseWebhook } from './inbound.js';
import { importRecipients, type ImportResult } from './import.js';
import { parseEngineOptions, type AccountConfig, type EngineOptions } from './options.js';
import { testSend, type TestSendResult } from './preview.js';
import { recover } from './recovery.js';
import { listStuckCampaigns, pacingReport, progress, type AccountReport, type Progress } from './reports.js';
import { Runner } from './runner.js';
import { type CreateCampaignInput, type RecipientInput, type StepOptions } from './schemas.js';
import { step, type StepResult } from './step.js';

/**
 * The campaign engine: a facade over its rooms (campaigns, import, inbound, reports, recovery, the run
 * loop and step mode), which share only the `EngineContext`. Admin calls (create, import, start,
 * pause...) work from any process; `run()` works campaigns until `stop()`, `step()` does a bounded
 * slice for hosts without long-lived processes. Many engines may share one store.
 */
export class Engine extends EventEmitter<EngineEventArgs> {
  readonly store: StateStore;
  readonly clock: Clock;
  private readonly ctx: EngineContext;
  private readonly runner: Runner;
  private readyPromise: Promise<void> | null = null;

  constructor(options: EngineOptions) {
    super();
    const o = parseEngineOptions(options);
    this.store = o.store;
    this.clock = o.clock ?? systemClock;
    const log = toLog(o.logger ?? defaultLogger);
    this.ctx = {
      store: this.store,
      clock: this.clock,
      log,
      random: o.random ?? Math.random,
      options: o.resolved,
      accounts: new Map(),
      emit: (event, payload) => this.safeEmit(event, payload),
      fail: (context, error) => {
        log.error(`${context} failed: ${error instanceof Error ? error.message : String(error)}`, { error });
        this.safeEmit('error', { error, context });
      },
    };
    for (const [i, account] of (options.accounts ?? []).entries()) registerAccount(this.ctx, account, `accounts.${i}`);
    this.runner = new Runner(this.ctx, () => this.ready());
  }

  get workerId(): string {
    return this.ctx.options.workerId;
  }

  /** Add a sender account to this engine (its pacing is stored, so every worker shares it). */
  async addAccount(account: AccountConfig): Promise<void> {
    const runtime = registerAccount(this.ctx, account, 'account');
    const record = await this.store.upsertAccount(runtime.id, runtime.pacing, this.clock.now());
    subscribe(this.ctx, runtime, this.handleEvents);
    await syncConnection(this.ctx, runtime, record, this.handleEvents);
  }

  /** Store the accounts' pacing, subscribe to their transports and check their connections. Called by run()/step(); safe to call twice. */
  ready(): Promise<void> {
    this.readyPromise ??= (async () => {
      const now = this.clock.now();
      const checks: Array<Promise<void>> = [];
      for (const runtime of this.ctx.accounts.values()) {
        const record = await this.store.upsertAccount(runtime.id, runtime.pacing, now);
        subscribe(this.ctx, runtime, this.handleEvents);
        checks.push(syncConnection(this.ctx, runtime, record, this.handleEvents));
      }
      // In parallel: a provider that does not answer costs one deadline, not one per account.
      await Promise.all(checks);
    })();
    return this.readyPromise;
  }

  // ---- campaigns ----------------------------------------------------------

  createCampaign(input: CreateCampaignInput): Promise<Campaign> {
    return createCampaign(this.ctx, input);
  }

  getCampaign(id: string): Promise<Campaign> {
    return getCampaign(this.ctx, id);
  }

  listCampaigns(filter?: { status?: CampaignStatus[]; limit?: number }): Promise<Campaign[]> {
    return this.store.listCampaigns(filter);
  }

  /** Add recipients (array, iterable or async iterable, streamed in chunks); see `ImportResult`. */
  addRecipients(campaignId: string, source: Iterable<RecipientInput> | AsyncIterable<RecipientInput>, options?: { chunkSize?: number; defaultCountry?: CountryCode }): Promise<ImportResult> {
    return importRecipients(this.ctx, campaignId, source, options);
  }

  /** Start now (from draft, scheduled or paused). Throws when every recipient would be skipped, unless `allowAllSkipped`. */
  async start(campaignId: string, options?: { allowAllSkipped?: boolean }): Promise<Campaign> {
    const { campaign, resumed } = await startCampaign(this.ctx, campaignId, options);
    this.safeEmit(resumed ? 'campaign:resumed' : 'campaign:started', { campaign });
    this.announce();
    return campaign;
  }

  /** Start automatically at `at` (a worker's run() or step() picks it up). */
  async schedule(campaignId: string, at: Date | number | string): Promise<Campaign> {
    const campaign = await scheduleCampaign(this.ctx, campaignId, at);
    this.safeEmit('campaign:scheduled', { campaign });
    this.announce();
    return campaign;
  }

  /** Pause by hand; only `resume()` (or `start()`) continues it. The message on the wire finishes. */
  async pause(campaignId: string): Promise<Campaign> {
    const campaign = await stopCampaign(this.ctx, campaignId, 'paused');
    this.runner.abort(campaignId);
    this.safeEmit('campaign:paused', { campaign, reason: 'manual' });
    return campaign;
  }

  async resume(campaignId: string, options?: { allowAllSkipped?: boolean }): Promise<Campaign> {
    const campaign = await this.getCampaign(campaignId);
    if (campaign.status !== 'paused') throw new ConflictError(`Campaign ${campaignId} is ${campaign.status}, not paused: nothing to resume.`);
    return this.start(campaignId, options);
  }

  async cancel(campaignId: string): Promise<Campaign> {
    const campaign = await stopCampaign(this.ctx, campaignId, 'cancelled');
    this.runner.abort(campaignId);
    this.safeEmit('campaign:cancelled', { campaign });
    return campaign;
  }

  progress(campaignId: string): Promise<Progress> {
    return progress(this.ctx, campaignId);
  }

  // ---- delivery, inbound, accounts ------------------------------------------

  /** Apply provider receipts (bulk, idempotent, monotonic). */
  applyStatusUpdates(updates: StatusUpdate[]): Promise<StatusUpdateResult> {
    return applyStatusUpdates(this.ctx, updates);
  }

  /** Feed events from a transport (its webhook or socket): receipts, connection changes, holds, inbound replies. */
  async handleTransportEvents(accountId: string, events: TransportEvent[]): Promise<void> {
    await this.applyEvents([{ accountId, events }]);
  }

  private readonly handleEvents = (accountId: string, events: TransportEvent[]) => this.handleTransportEvents(accountId, events);

  /** Every account's events in order, then the receipts of all of them in one store call. */
  private async applyEvents(parsed: Array<{ accountId: string; events: TransportEvent[] }>): Promise<void> {
    await applyTransportEvents(this.ctx, parsed, async () => {
      // Work waiting for an account that came back can go on: settle its sends in doubt, resume what paused for it.
      await recover(this.ctx);
      await resumeAutoPaused(this.ctx, this.clock.now());
      this.runner.wake();
    });
  }

  /**
   * Parse a provider webhook with the account's transport and apply its events. Several accounts (one
   * callback URL for many numbers, as Meta's): every transport parses the body and checks its signature
   * before anything is applied, and the receipts of all of them go to the store in one call.
   */
  async handleWebhook(accountIds: string | string[], body: unknown, headers: Record<string, string | string[] | undefined> = {}): Promise<TransportEvent[]> {
    const ids = typeof accountIds === 'string' ? [accountIds] : accountIds;
    const parsed = await Promise.all(ids.map(async (accountId) => ({ accountId, events: await parseWebhook(this.ctx, accountId, body, headers) })));
    await this.applyEvents(parsed);
    return parsed.flatMap((p) => p.events);
  }

  /** Opt contacts out: they are never sent to again, and their pending sends in every campaign are skipped. */
  optOut(phones: Array<string | number>, options?: { reason?: string; source?: 'api' | 'inbound' }): Promise<{ added: number; cancelled: number }> {
    return optOut(this.ctx, phones, options);
  }

  // ---- previews, reports ---------------------------------------------------

  /** Send the campaign's message to a few numbers (a preview), outside its audience and counters. */
  async testSend(campaignId: string, to: Array<{ phone: string | number; vars?: Record<string, string | number | boolean | null> }>): Promise<TestSendResult[]> {
    await this.ready();
    return testSend(this.ctx, campaignId, to);
  }

  listStuckCampaigns(options?: { idleMs?: number }): Promise<Array<{ campaign: Campaign; idleMs: number; remaining: number }>> {
    return listStuckCampaigns(this.ctx, options);
  }

  pacingReport(options?: { sinceMs?: number }): Promise<AccountReport[]> {
    return pacingReport(this.ctx, options);
  }

  /** Each local account's provider connection, as its transport reports it. Informational: never pauses anything. */
  health(): Promise<Array<{ accountId: string; connection: string; error?: string }>> {
    return accountHealth(this.ctx);
  }

  // ---- working ------------------------------------------------------------

  /** Work campaigns until `stop()`. Calling it again while running returns the same promise. */
  run(): Promise<void> {
    return this.runner.run();
  }

  /** Stop gracefully: no new claims, the message on the wire finishes and is recorded, leases are released. Idempotent. */
  async stop(): Promise<void> {
    await this.runner.stop(() => {
      for (const account of this.ctx.accounts.values()) {
        account.unsubscribe?.();
        account.unsubscribe = null;
      }
    });
    // A step() under way heard the same stop: wait until it has recorded what it sent and released the
    // rest. (Returning earlier, a host that then closed its pool left an accepted send `sending`.)
    await Promise.allSettled([...this.steps]);
  }

  /** Wake an idle run() loop now (new work arrived). */
  wake(): void {
    this.runner.wake();
  }

  /** A bounded slice of work (see `StepResult`): overlapping calls never double-send, a lost call loses nothing. */
  async step(options?: StepOptions): Promise<StepResult> {
    if (this.runner.stopping) throw new ShutdownError();
    const running = step(this.ctx, this.runner.stopSignal, () => this.ready(), options);
    this.steps.add(running);
    try {
      return await running;
    } finally {
      this.steps.delete(running);
    }
  }

  /** The step() calls under way (stop() waits for them). */
  private readonly steps = new Set<Promise<StepResult>>();

  /** Settle sends left in doubt by a dead worker (lookup, else the campaign's `inDoubt` policy). */
  recover(campaignId?: string): Promise<number> {
    return recover(this.ctx, campaignId);
  }

  /** Delete finished campaigns (and their recipients) older than `olderThan`. */
  async cleanup(options: { olderThan: Date | number }): Promise<{ campaigns: number; recipients: number }> {
    const o = validate(z.object({ olderThan: z.union([z.date(), z.number().int().nonnegative()]) }), options, 'cleanup options');
    return this.store.cleanup(o.olderThan instanceof Date ? o.olderThan.getTime() : o.olderThan);
  }

  // ---- events ---------------------------------------------------------------

  /** New work: wake this engine's loop and, through the store, idle workers elsewhere. */
  private announce(): void {
    this.runner.wake();
    this.store.notifyWake?.().catch((error) => this.ctx.fail('notifying other workers', error));
  }

  /** `once` listeners remove themselves first, since safeEmit calls listeners directly. */
  override once<T extends EventEmitter.EventNames<EngineEventArgs>>(event: T, fn: EventEmitter.EventListener<EngineEventArgs, T>, context?: unknown): this {
    const wrapper = ((...args: unknown[]) => {
      this.off(event, wrapper);
      (fn as (...a: unknown[]) => void).apply(context, args);
    }) as EventEmitter.EventListener<EngineEventArgs, T>;
    return this.on(event, wrapper);
  }

  /** Every emit goes through here: a throwing listener is reported, never breaks the loop. */
  private safeEmit<K extends keyof EngineEvents>(event: K, payload: EngineEvents[K]): void {
    if (this.listenerCount(event) === 0) return;
    for (const listener of this.listeners(event) as Array<(p: EngineEvents[K]) => void>) {
      try {
        listener(payload);
      } catch (error) {
        if (event === 'error') this.ctx.log.error(`an 'error' listener threw: ${String(error)}`);
        else this.ctx.fail(`listener of ${event}`, error);
      }
    }
  }
}

/** Create an engine (same as `new Engine(options)`). */
export function createEngine(options: EngineOptions): Engine {
  return new Engine(options);
}
