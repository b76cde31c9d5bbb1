import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'eventemitter3';
import type { CountryCode } from 'libphonenumber-js';
import { z } from 'zod';
import { startTimer, systemClock, type Clock } from './clock.js';
import type { AccountRuntime, EngineContext, ResolvedEngineOptions } from './context.js';
import { ConflictError, DisparoError, NotFoundError, ShutdownError, ValidationError } from './errors.js';
import { defaultLogger, type EngineEventArgs, type EngineEvents, type Logger } from './events.js';
import { Mutex } from './mutex.js';
import { normalizePhone } from './phone.js';
import {
  createCampaignSchema,
  idSchema,
  pacingSchema,
  parse,
  recipientInputSchema,
  stepOptionsSchema,
  toSettings,
  type CreateCampaignInput,
  type PacingInput,
  type RecipientInput,
  type StepOptions,
} from './schemas.js';
import { assertTransition, isFinished, sourcesOf } from './state-machine.js';
import type { InDoubtSettlement, NewRecipient, StateStore, StatusUpdate, StatusUpdateResult } from './store.js';
import type { Transport, TransportEvent } from './transport.js';
import type { AccountRecord, BatchRecord, Campaign, CampaignStatus, ConnectionState, PauseReason, RecipientCounters } from './types.js';
import { capWindows, isDailyCapped, sendWindowState } from './windows.js';
import { compileTemplate, pickTemplate, renderTemplate } from './template.js';
import { CampaignWorker, isUsable } from './worker.js';

export interface AccountConfig {
  /** Your name for this sender (one WhatsApp number / provider instance). */
  id: string;
  transport: Transport;
  pacing?: PacingInput;
}

export interface EngineOptions {
  store: StateStore;
  accounts?: AccountConfig[];
  clock?: Clock;
  logger?: Logger;
  /** Random source for pacing gaps and batch pauses (seed it for reproducible runs). */
  random?: () => number;
  /** Identifies this worker's leases; unique per process. */
  workerId?: string;
  /** How long a claim holds a recipient without a heartbeat. Default 30 s. */
  leaseMs?: number;
  /** How often an idle worker looks for work. Default 1 s. */
  pollIntervalMs?: number;
  maxConcurrentCampaigns?: number;
  /** Most recipients claimed at once per campaign. Default 200. */
  claimSize?: number;
  /** A send with no answer after this long is in doubt. Default 30 s. */
  sendTimeoutMs?: number;
  /**
   * Grouped checkpoints. By default every send is its own checkpoint: one store commit writes it ahead
   * (and records the previous outcome), so a crash leaves at most one send per account in doubt. With
   * `groupSize` N > 1, an account's next N sends are written ahead in one commit and their outcomes
   * recorded together with the next group (or after `maxDelayMs`, default 1 s): far fewer commits for
   * high-volume senders, but a crash may leave up to N sends per account in doubt, settled by the
   * transport's lookup or the campaign's `inDoubt` policy. A group spans at most `maxDelayMs` of the
   * account's pacing. Needs a store with `advanceGroup` (memory, Postgres); others send one by one.
   */
  checkpoints?: { groupSize?: number; maxDelayMs?: number };
  /** Real send failures in a row that disable an account for `cooldownMs`. Default 5. */
  failureThreshold?: number;
  cooldownMs?: number;
  /** Inbound replies that opt a contact out (case and accents ignored). */
  optOutKeywords?: string[];
  /** Country for numbers written without a country code. Default BR. */
  defaultCountry?: CountryCode;
  /** Time zone in which hourly/daily caps reset. Default UTC. */
  capTimeZone?: string;
}

export interface ImportResult {
  /** Items read from the source. */
  processed: number;
  inserted: number;
  duplicates: number;
  invalid: number;
  optedOut: number;
}

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

export interface StepResult {
  /** True when there is nothing left to do: the campaign finished (or no campaign is running). */
  done: boolean;
  status: CampaignStatus | null;
  processed: number;
  remaining: number;
  /** When to call `step()` again (epoch ms); null when done or waiting on a human (manual pause). */
  continueAt: number | null;
}

export const DEFAULT_OPT_OUT_KEYWORDS = ['SAIR', 'PARAR', 'STOP', 'CANCELAR', 'DESCADASTRAR', 'UNSUBSCRIBE'];

const optionsSchema = z
  .object({
    store: z.custom<StateStore>((v) => typeof v === 'object' && v !== null && typeof (v as StateStore).claimRecipients === 'function', 'must be a StateStore (createMemoryStore(), createPostgresStore(...))'),
    accounts: z.array(z.object({ id: idSchema, transport: z.custom<Transport>((v) => typeof v === 'object' && v !== null && typeof (v as Transport).send === 'function', 'must be a Transport with a send() method'), pacing: z.unknown().optional() })).default([]),
    clock: z.custom<Clock>((v) => typeof v === 'object' && v !== null && typeof (v as Clock).now === 'function' && typeof (v as Clock).sleep === 'function', 'must be a Clock').optional(),
    logger: z.custom<Logger>((v) => typeof v === 'object' && v !== null && typeof (v as Logger).error === 'function', 'must have debug/info/warn/error').optional(),
    random: z.custom<() => number>((v) => typeof v === 'function', 'must be a function returning [0, 1)').optional(),
    workerId: idSchema.optional(),
    leaseMs: z.number().int().min(1_000).max(3_600_000).default(30_000),
    pollIntervalMs: z.number().int().min(10).max(600_000).default(1_000),
    maxConcurrentCampaigns: z.number().int().min(1).max(1_000).default(20),
    claimSize: z.number().int().min(1).max(5_000).default(200),
    sendTimeoutMs: z.number().int().min(100).max(600_000).default(30_000),
    checkpoints: z
      .object({ groupSize: z.number().int().min(1).max(1_000).default(1), maxDelayMs: z.number().int().min(0).max(60_000).default(1_000) })
      .strict()
      .default({ groupSize: 1, maxDelayMs: 1_000 }),
    failureThreshold: z.number().int().min(1).max(1_000).default(5),
    cooldownMs: z.number().int().min(0).default(10 * 60_000),
    optOutKeywords: z.array(z.string().min(1)).default(DEFAULT_OPT_OUT_KEYWORDS),
    defaultCountry: z.string().length(2).default('BR'),
    capTimeZone: z.string().default('UTC'),
  })
  .strict();

/**
 * The campaign engine. Admin calls (create, import, start, pause...) work from any process;
 * `run()` works campaigns until `stop()`, `step()` does a bounded slice for hosts without
 * long-lived processes. Many engines may share one store.
 */
export class Engine extends EventEmitter<EngineEventArgs> {
  readonly store: StateStore;
  readonly clock: Clock;
  private readonly logger: Logger;
  private readonly opts: ResolvedEngineOptions;
  private readonly defaultCountry: CountryCode;
  private readonly accounts = new Map<string, AccountRuntime>();
  private readonly ctx: EngineContext;
  private readyPromise: Promise<void> | null = null;
  private loopPromise: Promise<void> | null = null;
  private stopPromise: Promise<void> | null = null;
  private stopController = new AbortController();
  private wakeController = new AbortController();
  private readonly runners = new Map<string, { controller: AbortController; done: Promise<void> }>();
  private readonly worker: CampaignWorker;

  constructor(options: EngineOptions) {
    super();
    const o = parse(optionsSchema, options, 'engine options');
    this.store = o.store;
    this.clock = o.clock ?? systemClock;
    this.logger = o.logger ?? defaultLogger;
    this.defaultCountry = o.defaultCountry as CountryCode;
    this.opts = {
      workerId: o.workerId ?? `w-${randomUUID().slice(0, 8)}`,
      leaseMs: o.leaseMs,
      pollIntervalMs: o.pollIntervalMs,
      maxConcurrentCampaigns: o.maxConcurrentCampaigns,
      claimSize: o.claimSize,
      sendTimeoutMs: o.sendTimeoutMs,
      checkpoints: o.checkpoints,
      failureThreshold: o.failureThreshold,
      cooldownMs: o.cooldownMs,
      optOutKeywords: o.optOutKeywords.map(foldKeyword),
      hourKeyTimeZone: o.capTimeZone,
    };
    this.ctx = {
      store: this.store,
      clock: this.clock,
      logger: this.logger,
      random: o.random ?? Math.random,
      options: this.opts,
      accounts: this.accounts,
      emit: (event, payload) => this.safeEmit(event, payload),
      listening: (event) => this.listenerCount(event) > 0,
      fail: (context, error) => this.fail(context, error),
    };
    for (const [i, account] of (options.accounts ?? []).entries()) this.registerAccount(account, `accounts.${i}`);
    this.worker = new CampaignWorker(this.ctx, this.opts.workerId);
  }

  get workerId(): string {
    return this.opts.workerId;
  }

  /** Add a sender account to this engine (its pacing is stored, so every worker shares it). */
  async addAccount(account: AccountConfig): Promise<void> {
    const runtime = this.registerAccount(account, 'account');
    const record = await this.store.upsertAccount(runtime.id, runtime.pacing, this.clock.now());
    this.subscribe(runtime);
    await this.syncConnection(runtime, record);
  }

  private registerAccount(account: AccountConfig, path: string): AccountRuntime {
    const id = parse(idSchema, account?.id, 'account id', `${path}.id`);
    if (!account.transport || typeof account.transport.send !== 'function') {
      throw new ValidationError(`Invalid ${path}.transport: must be a Transport with a send() method`, [{ path: `${path}.transport`, message: 'must be a Transport' }]);
    }
    if (this.accounts.has(id)) throw new ValidationError(`Account "${id}" is already registered on this engine`, [{ path: `${path}.id`, message: 'duplicate account id' }]);
    const pacing = parse(pacingSchema, account.pacing, `pacing of account "${id}"`, `${path}.pacing`);
    const runtime: AccountRuntime = { id, transport: account.transport, pacing, mutex: new Mutex(), unsubscribe: null, events: Promise.resolve() };
    this.accounts.set(id, runtime);
    return runtime;
  }

  private subscribe(runtime: AccountRuntime): void {
    if (runtime.unsubscribe || !runtime.transport.subscribe) return;
    runtime.unsubscribe = runtime.transport.subscribe((event) => {
      // One at a time per account: an `open` quickly followed by `close` must be stored in that order.
      runtime.events = runtime.events.then(() =>
        this.handleTransportEvents(runtime.id, [event]).catch((error) => this.fail(`transport event from ${runtime.id}`, error)),
      );
    });
  }

  /** Store the accounts' pacing and subscribe to their transports. Called by run()/step(); safe to call twice. */
  ready(): Promise<void> {
    this.readyPromise ??= (async () => {
      const now = this.clock.now();
      const checks: Array<Promise<void>> = [];
      for (const runtime of this.accounts.values()) {
        const record = await this.store.upsertAccount(runtime.id, runtime.pacing, now);
        this.subscribe(runtime);
        checks.push(this.syncConnection(runtime, record));
      }
      // In parallel: a provider that does not answer costs one deadline, not one per account.
      await Promise.all(checks);
    })();
    return this.readyPromise;
  }

  /**
   * The store keeps each account's last known connection, which may be stale when this engine starts
   * (the phone reconnected while no worker ran, or the session dropped). Ask the transport once and
   * record a change as if the transport had reported it: `open` over a stored `close` recovers in-doubt
   * sends and resumes campaigns paused for lack of accounts; `close` over `open` moves work elsewhere.
   * Runs in the account's event queue, so an event the transport emits meanwhile is stored after it.
   */
  private async syncConnection(runtime: AccountRuntime, record: AccountRecord): Promise<void> {
    const transport = runtime.transport;
    if (!transport.connectionState) return;
    const check = async () => {
      let state: ConnectionState;
      try {
        state = await withDeadline(this.clock, CONNECTION_CHECK_MS, transport.connectionState!());
      } catch (error) {
        this.logger.warn(`account ${runtime.id}: could not ask its transport for the connection state at start (${error instanceof Error ? error.message : String(error)}); keeping the stored "${record.connection}"`);
        return;
      }
      const stale = (state === 'open' && record.connection === 'close') || (state === 'close' && record.connection !== 'close' && record.state !== 'stopped');
      if (!stale) return;
      await this.handleTransportEvents(runtime.id, [{ type: 'connection', state, detail: `reported ${state} by the transport at start` }]);
    };
    const done = runtime.events.then(check).catch((error) => this.fail(`checking the connection of ${runtime.id}`, error));
    runtime.events = done;
    await done;
  }

  // ---- campaigns ----------------------------------------------------------

  async createCampaign(input: CreateCampaignInput): Promise<Campaign> {
    const v = parse(createCampaignSchema, input, 'campaign');
    const now = this.clock.now();
    if (v.scheduledAt != null && !Number.isFinite(v.scheduledAt)) {
      throw new ValidationError('Invalid campaign: scheduledAt: not a valid date', [{ path: 'scheduledAt', message: 'not a valid date' }]);
    }
    const id = v.id ?? randomUUID();
    if (v.id && (await this.store.getCampaign(v.id))) throw new ConflictError(`A campaign with id "${v.id}" already exists. Pick another id or omit it.`);
    const campaign = await this.store.createCampaign({
      id,
      name: v.name,
      templates: v.templates ?? [v.template!],
      media: v.media ?? null,
      accountIds: v.accountIds,
      settings: toSettings(v),
      status: 'draft',
      scheduledAt: v.scheduledAt ?? null,
      metadata: v.metadata,
      now,
    });
    this.safeEmit('campaign:created', { campaign });
    return campaign;
  }

  async getCampaign(id: string): Promise<Campaign> {
    parse(idSchema, id, 'campaign id', 'campaignId');
    const campaign = await this.store.getCampaign(id);
    if (!campaign) throw new NotFoundError('campaign', id);
    return campaign;
  }

  listCampaigns(filter?: { status?: CampaignStatus[]; limit?: number }): Promise<Campaign[]> {
    return this.store.listCampaigns(filter);
  }

  /**
   * Add recipients from an array, an iterable or an async iterable of any size (streamed in chunks).
   * Phones are normalised (E.164 digits, default country BR); invalid, duplicate and opted-out numbers
   * are counted and skipped. An array is validated whole first, so a malformed item stores nothing;
   * a stream stops at its first malformed item (earlier chunks stay stored).
   */
  async addRecipients(
    campaignId: string,
    source: Iterable<RecipientInput> | AsyncIterable<RecipientInput>,
    options: { chunkSize?: number; defaultCountry?: CountryCode } = {},
  ): Promise<ImportResult> {
    const campaign = await this.getCampaign(campaignId);
    if (isFinished(campaign.status)) throw new ConflictError(`Campaign ${campaignId} is ${campaign.status}; create a new campaign to send to more people.`);
    if (source === null || typeof source !== 'object' || (!(Symbol.iterator in source) && !(Symbol.asyncIterator in source))) {
      throw new ValidationError('Invalid recipients: pass an array, an iterable or an async iterable of { phone, vars }', [{ path: 'recipients', message: 'not iterable' }]);
    }
    const chunkSize = options.chunkSize ?? 5_000;
    const country = options.defaultCountry ?? this.defaultCountry;
    const parsed = Array.isArray(source) ? source.map((item, i) => parse(recipientInputSchema, item, 'recipient', `recipients.${i}`)) : null;
    const result: ImportResult = { processed: 0, inserted: 0, duplicates: 0, invalid: 0, optedOut: 0 };
    let chunk: NewRecipient[] = [];
    // One chunk is written while the next is read and normalised (at most two in memory), in order.
    let writing: Promise<void> = Promise.resolve();
    const flush = async (done: boolean) => {
      await writing;
      if (chunk.length > 0) {
        const rows = chunk;
        chunk = [];
        writing = this.store.addRecipients(campaignId, rows, this.clock.now()).then((r) => {
          result.inserted += r.inserted;
          result.duplicates += r.duplicates;
          result.optedOut += r.optedOut;
          this.safeEmit('recipients:imported', { campaignId, ...result, done });
        });
        if (done) await writing;
        else writing.catch(() => undefined); // surfaced by the next flush's await
        return;
      }
      this.safeEmit('recipients:imported', { campaignId, ...result, done });
    };
    let index = 0;
    const take = async (item: { phone: string | number; vars: Record<string, string> }) => {
      result.processed++;
      const phone = normalizePhone(item.phone, country);
      if (phone === null) result.invalid++;
      else chunk.push({ phone, vars: item.vars });
      if (chunk.length >= chunkSize) await flush(false);
    };
    try {
      if (parsed) {
        for (const item of parsed) await take(item);
      } else {
        for await (const raw of source as AsyncIterable<RecipientInput>) {
          await take(parse(recipientInputSchema, raw, 'recipient', `recipients.${index}`));
          index++;
        }
      }
    } catch (error) {
      // A bad item or a failing source: the chunk already on its way still lands before we report.
      await writing.catch(() => undefined);
      throw error;
    }
    await flush(true);
    const fresh = await this.getCampaign(campaignId);
    const previous = (fresh.metadata.import as ImportResult | undefined) ?? { processed: 0, inserted: 0, duplicates: 0, invalid: 0, optedOut: 0 };
    await this.store.updateCampaign(
      campaignId,
      {
        metadata: {
          ...fresh.metadata,
          import: {
            processed: previous.processed + result.processed,
            inserted: previous.inserted + result.inserted,
            duplicates: previous.duplicates + result.duplicates,
            invalid: previous.invalid + result.invalid,
            optedOut: previous.optedOut + result.optedOut,
          },
        },
      },
      this.clock.now(),
    );
    return result;
  }

  /** Start now (from draft, scheduled or paused). */
  async start(campaignId: string): Promise<Campaign> {
    const campaign = await this.getCampaign(campaignId);
    assertTransition(campaignId, campaign.status, 'running');
    if (campaign.counters.total === 0) {
      throw new ValidationError(`Campaign ${campaignId} has no recipients: add recipients before starting it.`, [{ path: 'recipients', message: 'empty audience' }]);
    }
    const started = await this.transition(campaign, 'running');
    this.safeEmit(campaign.status === 'paused' ? 'campaign:resumed' : 'campaign:started', { campaign: started });
    this.announce();
    return started;
  }

  /** Start automatically at `at` (a worker's run() or step() picks it up). */
  async schedule(campaignId: string, at: Date | number | string): Promise<Campaign> {
    const when = parse(z.union([z.date(), z.number().int().nonnegative(), z.iso.datetime({ offset: true })]), at, 'schedule time', 'at');
    const ms = when instanceof Date ? when.getTime() : typeof when === 'string' ? Date.parse(when) : when;
    const campaign = await this.getCampaign(campaignId);
    assertTransition(campaignId, campaign.status, 'scheduled');
    const scheduled = await this.transition(campaign, 'scheduled', { scheduledAt: ms });
    this.safeEmit('campaign:scheduled', { campaign: scheduled });
    this.announce();
    return scheduled;
  }

  /** Pause by hand; only `resume()` (or `start()`) continues it. The message on the wire finishes. */
  async pause(campaignId: string): Promise<Campaign> {
    const campaign = await this.getCampaign(campaignId);
    assertTransition(campaignId, campaign.status, 'paused');
    const paused = await this.transition(campaign, 'paused', { pauseReason: 'manual' });
    this.runners.get(campaignId)?.controller.abort();
    this.safeEmit('campaign:paused', { campaign: paused, reason: 'manual' });
    return paused;
  }

  async resume(campaignId: string): Promise<Campaign> {
    const campaign = await this.getCampaign(campaignId);
    if (campaign.status !== 'paused') throw new ConflictError(`Campaign ${campaignId} is ${campaign.status}, not paused: nothing to resume.`);
    return this.start(campaignId);
  }

  async cancel(campaignId: string): Promise<Campaign> {
    const campaign = await this.getCampaign(campaignId);
    assertTransition(campaignId, campaign.status, 'cancelled');
    const cancelled = await this.transition(campaign, 'cancelled');
    this.runners.get(campaignId)?.controller.abort();
    this.safeEmit('campaign:cancelled', { campaign: cancelled });
    return cancelled;
  }

  private async transition(campaign: Campaign, to: CampaignStatus, patch: { pauseReason?: PauseReason; scheduledAt?: number } = {}): Promise<Campaign> {
    const updated = await this.store.transitionCampaign(campaign.id, {
      from: [campaign.status],
      to,
      now: this.clock.now(),
      pauseReason: patch.pauseReason ?? null,
      ...(patch.scheduledAt !== undefined ? { scheduledAt: patch.scheduledAt } : {}),
    });
    if (!updated) {
      const fresh = await this.getCampaign(campaign.id);
      assertTransition(campaign.id, fresh.status, to);
      throw new ConflictError(`Campaign ${campaign.id} changed status concurrently (now ${fresh.status}); try again.`);
    }
    return updated;
  }

  // ---- progress -----------------------------------------------------------

  async progress(campaignId: string): Promise<Progress> {
    const c = await this.getCampaign(campaignId);
    const now = this.clock.now();
    const windowMs = 60_000;
    const since = now - windowMs;
    const [batches, recent] = await Promise.all([this.store.listBatches(campaignId), this.store.countProcessedSince(campaignId, since)]);
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

  // ---- delivery, inbound, accounts -----------------------------------------

  /** Apply provider receipts (bulk, idempotent, monotonic). */
  async applyStatusUpdates(updates: StatusUpdate[]): Promise<StatusUpdateResult> {
    const list = parse(
      z.array(
        z.object({
          providerMessageId: z.string().min(1),
          status: z.enum(['sent', 'delivered', 'read', 'failed']),
          at: z.number().int().nonnegative(),
          error: z.string().nullish(),
        }),
      ),
      updates,
      'status updates',
      'updates',
    );
    const result = await this.store.applyStatusUpdates(list, this.clock.now());
    for (const change of result.changed) this.safeEmit('message:status', change);
    return result;
  }

  /** Feed events from a transport (its webhook or socket): receipts, connection changes, inbound replies. */
  async handleTransportEvents(accountId: string, events: TransportEvent[]): Promise<void> {
    const now = this.clock.now();
    const statuses: StatusUpdate[] = [];
    for (const event of events) {
      switch (event.type) {
        case 'status':
          statuses.push({ providerMessageId: event.providerMessageId, status: event.status, at: event.at, error: event.error ?? null });
          break;
        case 'inbound': {
          this.safeEmit('inbound:message', { accountId, from: event.from, text: event.text, at: event.at });
          if (this.opts.optOutKeywords.includes(foldKeyword(event.text))) await this.optOut([event.from], { reason: `replied "${event.text.trim()}"`, source: 'inbound' });
          break;
        }
        case 'connection': {
          if (event.stopReason) {
            await this.store.updateAccount(accountId, { state: 'stopped', connection: 'close', disabledReason: `${event.stopReason}${event.detail ? `: ${event.detail}` : ''}` }, now);
            this.safeEmit('account:stopped', { accountId, reason: event.stopReason });
          } else {
            const before = await this.store.getAccount(accountId);
            const patch = event.state === 'open' && before?.state === 'stopped' ? { connection: event.state, state: 'active' as const, disabledReason: null } : { connection: event.state };
            await this.store.updateAccount(accountId, patch, now);
          }
          this.safeEmit('account:connection', { accountId, state: event.state, ...(event.detail ? { detail: event.detail } : {}) });
          if (event.state === 'open') {
            await this.recover();
            await this.resumeAutoPaused(now);
            this.wake();
          }
          break;
        }
        case 'account_hold':
          await this.store.updateAccount(accountId, { nextSendAtAtLeast: event.until }, now);
          this.logger.warn(`account ${accountId} held until ${new Date(event.until).toISOString()}: ${event.reason}`);
          break;
      }
    }
    if (statuses.length > 0) await this.applyStatusUpdates(statuses);
  }

  /** Parse a provider webhook with the account's transport and apply its events. */
  async handleWebhook(accountId: string, body: unknown, headers: Record<string, string | string[] | undefined> = {}): Promise<TransportEvent[]> {
    const account = this.accounts.get(accountId);
    if (!account) throw new NotFoundError('account', accountId);
    if (!account.transport.parseWebhook) throw new ValidationError(`The ${account.transport.name} transport of account ${accountId} takes no webhooks`, [{ path: 'accountId', message: 'transport has no parseWebhook' }]);
    const events = await account.transport.parseWebhook(body, headers);
    await this.handleTransportEvents(accountId, events);
    return events;
  }

  /** Opt contacts out: they are never sent to again, and their pending sends in every campaign are skipped. */
  async optOut(phones: Array<string | number>, options: { reason?: string; source?: 'api' | 'inbound' } = {}): Promise<{ added: number; cancelled: number }> {
    const list = parse(z.array(z.union([z.string(), z.number()])).min(1), phones, 'opt-out phones', 'phones');
    const now = this.clock.now();
    const normalised = list.map((p, i) => {
      const phone = normalizePhone(p, this.defaultCountry);
      if (phone === null) throw new ValidationError(`Invalid opt-out phones: phones.${i}: "${p}" is not a valid phone number`, [{ path: `phones.${i}`, message: 'not a valid phone number' }]);
      return phone;
    });
    const source = options.source ?? 'api';
    const result = await this.store.addOptOuts(
      normalised.map((phone) => ({ phone, reason: options.reason ?? 'opted out', source, at: now })),
      now,
    );
    for (const phone of normalised) this.safeEmit('contact:opted_out', { phone, source, cancelled: result.cancelled });
    return result;
  }

  // ---- previews, reports ---------------------------------------------------

  /**
   * Send the campaign's message to a few given numbers (a preview): rendered with the given vars,
   * through the first usable account, outside the campaign's audience and counters.
   */
  async testSend(campaignId: string, to: Array<{ phone: string | number; vars?: Record<string, string | number | boolean | null> }>): Promise<Array<{ phone: string; text: string; providerMessageId?: string; error?: string }>> {
    const campaign = await this.getCampaign(campaignId);
    const list = parse(z.array(recipientInputSchema).min(1).max(20), to, 'test recipients', 'to');
    await this.ready();
    const now = this.clock.now();
    const records = await this.store.listAccounts(campaign.accountIds);
    const account = records.filter((a) => isUsable(a, now)).map((a) => this.accounts.get(a.id)).find((a) => a !== undefined);
    if (!account) throw new ConflictError(`No usable account of campaign ${campaignId} is registered on this engine; add one with addAccount() or reconnect it.`);
    const results = [];
    for (const [i, item] of list.entries()) {
      const phone = normalizePhone(item.phone, this.defaultCountry);
      if (phone === null) throw new ValidationError(`Invalid test recipients: to.${i}.phone: "${item.phone}" is not a valid phone number`, [{ path: `to.${i}.phone`, message: 'not a valid phone number' }]);
      const key = `test:${campaignId}:${phone}:${now}`;
      let text: string;
      try {
        text = renderTemplate(compileTemplate(pickTemplate(campaign.templates, `${campaignId}:${phone}`)), item.vars, `${campaignId}:${phone}`);
      } catch (error) {
        results.push({ phone, text: '', error: error instanceof Error ? error.message : String(error) });
        continue;
      }
      try {
        const sent = await account.transport.send({ to: phone, text, media: campaign.media, idempotencyKey: key });
        results.push({ phone, text, providerMessageId: sent.providerMessageId });
      } catch (error) {
        results.push({ phone, text, error: error instanceof Error ? error.message : String(error) });
      }
    }
    return results;
  }

  /** Running campaigns with work left that processed nothing for `idleMs` (default 10 min): a dead worker pool, a stuck account. */
  async listStuckCampaigns(options: { idleMs?: number } = {}): Promise<Array<{ campaign: Campaign; idleMs: number; remaining: number }>> {
    const idleMs = parse(z.number().int().positive().default(10 * 60_000), options.idleMs, 'idleMs', 'idleMs');
    const now = this.clock.now();
    const running = await this.store.listCampaigns({ status: ['running'] });
    const stuck = [];
    for (const c of running) {
      const remaining = c.counters.pending + c.counters.sending;
      if (remaining === 0 || (c.startedAt ?? 0) > now - idleMs) continue;
      if ((await this.store.countProcessedSince(c.id, now - idleMs)) === 0) stuck.push({ campaign: c, idleMs, remaining });
    }
    return stuck;
  }

  /** Per account: realised gaps between sends (min, median, p95) over a window, caps, state. */
  async pacingReport(options: { sinceMs?: number } = {}): Promise<AccountReport[]> {
    const sinceMs = parse(z.number().int().positive().default(24 * 3_600_000), options.sinceMs, 'sinceMs', 'sinceMs');
    const now = this.clock.now();
    const records = await this.store.listAccounts();
    const reports: AccountReport[] = [];
    for (const a of records) {
      const times = this.store.accountSendTimes ? await this.store.accountSendTimes(a.id, now - sinceMs, 100_000) : [];
      const gaps = times.slice(1).map((t, i) => t - times[i]!).sort((x, y) => x - y);
      const q = (p: number) => (gaps.length ? gaps[Math.min(gaps.length - 1, Math.floor(p * gaps.length))]! : null);
      const caps = capWindows(a.pacing, now, this.opts.hourKeyTimeZone);
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
        dailyCapReached: isDailyCapped(a, now, this.opts.hourKeyTimeZone),
      });
    }
    return reports;
  }

  /** Each local account's provider connection, as its transport reports it. Informational: never pauses anything. */
  async health(): Promise<Array<{ accountId: string; connection: string; error?: string }>> {
    const out = [];
    for (const account of this.accounts.values()) {
      if (!account.transport.connectionState) {
        out.push({ accountId: account.id, connection: 'unknown' });
        continue;
      }
      try {
        out.push({ accountId: account.id, connection: await account.transport.connectionState() });
      } catch (error) {
        out.push({ accountId: account.id, connection: 'unknown', error: error instanceof Error ? error.message : String(error) });
      }
    }
    return out;
  }

  // ---- working ------------------------------------------------------------

  /**
   * Work campaigns until `stop()`: start scheduled ones when due, resume auto-paused ones when their
   * cause ends, recover in-doubt sends, and run up to `maxConcurrentCampaigns` at once. Calling it
   * again while running returns the same promise.
   */
  run(): Promise<void> {
    if (this.stopPromise) return Promise.reject(new ShutdownError());
    this.loopPromise ??= this.loop();
    return this.loopPromise;
  }

  /**
   * Stop gracefully: no new claims, the message on the wire finishes and is recorded, leases are
   * released. Idempotent: a second caller gets the same promise.
   */
  stop(): Promise<void> {
    this.stopPromise ??= (async () => {
      this.stopController.abort(new ShutdownError());
      this.wakeController.abort();
      await this.loopPromise?.catch(() => undefined);
      await Promise.all([...this.runners.values()].map((r) => r.done));
      for (const account of this.accounts.values()) {
        account.unsubscribe?.();
        account.unsubscribe = null;
      }
    })();
    return this.stopPromise;
  }

  /** Wake an idle run() loop now (new work arrived). */
  wake(): void {
    this.wakeController.abort();
  }

  /** New work: wake this engine's loop and, through the store, idle workers elsewhere. */
  private announce(): void {
    this.wake();
    this.store.notifyWake?.().catch((error) => this.fail('notifying other workers', error));
  }

  private async loop(): Promise<void> {
    await this.ready();
    let unsubscribe: (() => Promise<void>) | null = null;
    if (this.store.subscribeWake) {
      await this.safely('listening for wake-ups', async () => {
        unsubscribe = await this.store.subscribeWake!(() => this.wake());
      });
    }
    try {
      await this.work();
    } finally {
      await this.safely('closing the wake-up listener', async () => (unsubscribe as (() => Promise<void>) | null)?.());
    }
  }

  private async work(): Promise<void> {
    const heartbeat = this.heartbeatLoop(this.opts.workerId, this.stopController.signal);
    await this.safely('recovery at start', () => this.recover());
    while (!this.stopController.signal.aborted) {
      await this.safely('poll', () => this.poll());
      await this.idle(this.opts.pollIntervalMs);
    }
    await Promise.all([...this.runners.values()].map((r) => r.done));
    await this.recordKept(this.worker);
    await heartbeat;
    await this.safely('releasing leases', () => this.store.release(this.opts.workerId));
  }

  private async poll(): Promise<void> {
    const now = this.clock.now();
    await this.housekeeping(now);
    const running = await this.store.listCampaigns({ status: ['running'] });
    for (const campaign of running) {
      if (this.runners.size >= this.opts.maxConcurrentCampaigns) break;
      if (!this.runners.has(campaign.id)) this.spawn(campaign.id);
    }
  }

  /** Start due scheduled campaigns, pause/resume on send windows and accounts, recover in-doubt sends. */
  private async housekeeping(now: number): Promise<void> {
    const active = await this.store.listCampaigns({ status: ['scheduled', 'running'] });
    for (const c of active) {
      if (c.status === 'scheduled' && c.scheduledAt !== null && c.scheduledAt <= now) {
        if (c.counters.total === 0) continue;
        const started = await this.store.transitionCampaign(c.id, { from: ['scheduled'], to: 'running', now });
        if (started) this.safeEmit('campaign:started', { campaign: started });
      } else if (c.status === 'running' && c.settings.sendWindow && !sendWindowState(c.settings.sendWindow, now).open) {
        const paused = await this.store.transitionCampaign(c.id, { from: ['running'], to: 'paused', pauseReason: 'send_window', now });
        if (paused) {
          this.runners.get(c.id)?.controller.abort();
          this.safeEmit('campaign:paused', { campaign: paused, reason: 'send_window' });
        }
      }
    }
    await this.resumeAutoPaused(now);
    await this.recover();
  }

  /** Campaigns paused for a reason that has ended resume by themselves; `manual` never does. */
  private async resumeAutoPaused(now: number): Promise<void> {
    const paused = await this.store.listCampaigns({ status: ['paused'] });
    for (const c of paused) {
      let ready = false;
      if (c.pauseReason === 'no_accounts') {
        const accounts = await this.store.listAccounts(c.accountIds);
        ready = accounts.some((a) => isUsable(a, now));
      } else if (c.pauseReason === 'send_window') {
        ready = c.settings.sendWindow === null || sendWindowState(c.settings.sendWindow, now).open;
      } else if (c.pauseReason === 'daily_cap') {
        const accounts = await this.store.listAccounts(c.accountIds);
        ready = accounts.some((a) => isUsable(a, now) && !isDailyCapped(a, now, this.opts.hourKeyTimeZone));
      }
      if (!ready) continue;
      const resumed = await this.store.transitionCampaign(c.id, { from: ['paused'], to: 'running', now });
      if (resumed) this.safeEmit('campaign:resumed', { campaign: resumed });
    }
  }

  /**
   * Before leases are given up: a last try at recording outcomes kept while the store was down. If it
   * still fails, their rows become in-doubt sends once released, settled by lookup or the campaign's
   * `inDoubt` policy.
   */
  private async recordKept(worker: CampaignWorker): Promise<void> {
    const n = worker.unrecordedCount;
    if (n === 0) return;
    await worker.flushUnrecorded().catch((error) =>
      this.fail(`recording ${n} outcome(s) kept while the store was down (their sends will be settled as in doubt)`, error),
    );
  }

  private spawn(campaignId: string): void {
    const controller = new AbortController();
    const signal = AbortSignal.any([controller.signal, this.stopController.signal]);
    const done = (async () => {
      try {
        while (!signal.aborted) {
          const r = await this.worker.tick(campaignId, { deadline: null, signal });
          if (r.kind === 'finished') break;
          if (r.kind === 'wait') await this.clock.sleep(Math.max(0, r.until - this.clock.now()), signal).catch(() => undefined);
        }
      } catch (error) {
        this.fail(`working campaign ${campaignId}`, error);
        await this.clock.sleep(this.opts.pollIntervalMs, signal).catch(() => undefined);
      } finally {
        this.runners.delete(campaignId);
      }
    })();
    this.runners.set(campaignId, { controller, done });
  }

  /**
   * Do a bounded slice of work and return, for hosts without long-lived processes (an n8n webhook
   * calling itself, a cron-triggered edge function). Overlapping calls never double-send (leases);
   * a lost call loses nothing (the next one resumes).
   */
  async step(options?: StepOptions): Promise<StepResult> {
    const o = parse(stepOptionsSchema, options ?? {}, 'step options');
    if (this.stopPromise) throw new ShutdownError();
    await this.ready();
    const start = this.clock.now();
    const deadline = start + o.budgetMs;
    if (o.campaignId) await this.getCampaign(o.campaignId);
    await this.housekeeping(start);

    const owner = `${this.opts.workerId}:step:${randomUUID().slice(0, 8)}`;
    const worker = new CampaignWorker(this.ctx, owner);
    const controller = new AbortController();
    const signal = AbortSignal.any([controller.signal, this.stopController.signal]);
    const heartbeat = this.heartbeatLoop(owner, signal);
    let processed = 0;
    let batches = 0;
    let continueAt: number | null = null;
    try {
      const ids = o.campaignId ? [o.campaignId] : (await this.store.listCampaigns({ status: ['running'] })).map((c) => c.id);
      outer: for (const id of ids) {
        while (this.clock.now() < deadline && !signal.aborted) {
          const r = await worker.tick(id, { deadline, signal });
          if (r.kind === 'finished') break;
          if (r.kind === 'wait') {
            if (r.until > deadline) {
              continueAt = continueAt === null ? r.until : Math.min(continueAt, r.until);
              break;
            }
            await this.clock.sleep(Math.max(0, r.until - this.clock.now()), signal).catch(() => undefined);
            continue;
          }
          processed += r.processed;
          if (r.batchFinished && ++batches >= o.maxBatches) break outer;
        }
      }
    } finally {
      await this.recordKept(worker);
      controller.abort();
      await heartbeat;
      await this.store.release(owner).catch((error) => this.fail('releasing step leases', error));
    }

    const now = this.clock.now();
    if (o.campaignId) {
      const c = await this.getCampaign(o.campaignId);
      const remaining = c.counters.pending + c.counters.sending;
      const done = isFinished(c.status);
      const waiting = c.status === 'scheduled' ? c.scheduledAt : c.status === 'running' ? (continueAt ?? now) : c.status === 'paused' && c.pauseReason !== 'manual' ? now + this.opts.pollIntervalMs : null;
      return { done, status: c.status, processed, remaining, continueAt: done ? null : waiting };
    }
    const open = await this.store.listCampaigns({ status: ['running', 'scheduled'] });
    const remaining = open.reduce((s, c) => s + c.counters.pending + c.counters.sending, 0);
    const next = open.map((c) => (c.status === 'scheduled' ? (c.scheduledAt ?? now) : (continueAt ?? now)));
    return { done: open.length === 0, status: null, processed, remaining, continueAt: next.length ? Math.max(now, Math.min(...next)) : null };
  }

  /**
   * Settle sends left in doubt by a dead worker (lease expired while `sending`): ask the transport's
   * lookup when it has one, otherwise apply the campaign's policy (at-most-once: `unknown`, never
   * resent; at-least-once: back to pending). Runs at start, every poll, and on every reconnect.
   */
  async recover(campaignId?: string): Promise<number> {
    const now = this.clock.now();
    const rows = await this.store.listInDoubt(now, 500, campaignId);
    if (rows.length === 0) return 0;
    const campaigns = new Map<string, Campaign | null>();
    const settlements: InDoubtSettlement[] = [];
    const unknown: typeof rows = [];
    for (const r of rows) {
      if (!campaigns.has(r.campaignId)) campaigns.set(r.campaignId, await this.store.getCampaign(r.campaignId));
      const campaign = campaigns.get(r.campaignId);
      const transport = r.accountId ? this.accounts.get(r.accountId)?.transport : undefined;
      if (transport?.lookup && r.text !== null) {
        try {
          const found = await transport.lookup({ message: { to: r.phone, text: r.text, media: campaign?.media ?? null, idempotencyKey: `${r.campaignId}:${r.phone}` }, since: r.updatedAt - this.opts.leaseMs });
          settlements.push(found ? { recipientId: r.id, status: 'sent' as const, providerMessageId: found.providerMessageId, sentAt: found.acceptedAt } : { recipientId: r.id, status: 'pending' as const });
          continue;
        } catch (error) {
          this.fail(`lookup of in-doubt recipient ${r.id}`, error);
        }
      }
      if (campaign?.settings.inDoubt === 'at-least-once') settlements.push({ recipientId: r.id, status: 'pending' as const });
      else {
        settlements.push({ recipientId: r.id, status: 'unknown' as const });
        unknown.push(r);
      }
    }
    const applied = await this.store.settleInDoubt(settlements, now);
    for (const r of unknown) this.safeEmit('message:unknown', { campaignId: r.campaignId, recipientId: r.id, phone: r.phone, accountId: r.accountId });
    if (applied > 0) {
      const count = (status: string) => settlements.filter((x) => x.status === status).length;
      this.logger.info(`recovered ${applied} in-doubt send(s)`);
      this.safeEmit('recovery:settled', { settled: applied, sent: count('sent'), pending: count('pending'), unknown: count('unknown') });
    }
    return applied;
  }

  /** Delete finished campaigns (and their recipients) older than `olderThan`. */
  async cleanup(options: { olderThan: Date | number }): Promise<{ campaigns: number; recipients: number }> {
    const o = parse(z.object({ olderThan: z.union([z.date(), z.number().int().nonnegative()]) }), options, 'cleanup options');
    return this.store.cleanup(o.olderThan instanceof Date ? o.olderThan.getTime() : o.olderThan);
  }

  // ---- internals ------------------------------------------------------------

  private async heartbeatLoop(owner: string, signal: AbortSignal): Promise<void> {
    const every = Math.max(250, Math.floor(this.opts.leaseMs / 3));
    while (!signal.aborted) {
      try {
        await this.clock.sleep(every, signal);
      } catch {
        return;
      }
      await this.safely('heartbeat', () => this.store.heartbeat(owner, this.clock.now(), this.opts.leaseMs));
    }
  }

  private async idle(ms: number): Promise<void> {
    if (this.wakeController.signal.aborted && !this.stopController.signal.aborted) {
      this.wakeController = new AbortController();
      return;
    }
    try {
      await this.clock.sleep(ms, AbortSignal.any([this.wakeController.signal, this.stopController.signal]));
    } catch {
      // woken
    }
    if (this.wakeController.signal.aborted && !this.stopController.signal.aborted) this.wakeController = new AbortController();
  }

  private async safely(context: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
    } catch (error) {
      this.fail(context, error);
    }
  }

  private fail(context: string, error: unknown): void {
    this.logger.error(`${context} failed: ${error instanceof Error ? error.message : String(error)}`, { error });
    this.safeEmit('error', { error, context });
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
    const listeners = this.listeners(event) as Array<(p: EngineEvents[K]) => void>;
    for (const listener of listeners) {
      try {
        listener(payload);
      } catch (error) {
        if (event === 'error') this.logger.error(`an 'error' listener threw: ${String(error)}`);
        else this.fail(`listener of ${event}`, error);
      }
    }
  }
}

/** How long `ready()` waits for a transport's connection state before keeping the stored one. */
const CONNECTION_CHECK_MS = 5_000;

/** `promise`, or a rejection after `ms` on the engine's clock. */
function withDeadline<T>(clock: Clock, ms: number, promise: Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const cancel = startTimer(clock, ms, () => reject(new Error(`no answer within ${ms} ms`)));
    promise.then(
      (value) => {
        cancel();
        resolve(value);
      },
      (error) => {
        cancel();
        reject(error);
      },
    );
  });
}

/** Upper-case, trimmed, accents removed: "  Sáir " and "SAIR" are the same keyword. */
function foldKeyword(text: string): string {
  return text
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .trim()
    .toUpperCase();
}

/** Create an engine (same as `new Engine(options)`). */
export function createEngine(options: EngineOptions): Engine {
  return new Engine(options);
}

export { DisparoError };
