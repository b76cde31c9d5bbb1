import { setMaxListeners } from 'node:events';
import type { EngineContext } from '../context.js';
import { ShutdownError } from '../errors.js';
import { Dispatcher } from '../dispatch/dispatcher.js';
import { housekeeping } from './housekeeping.js';
import { recover } from './recovery.js';

/** Run `fn`, reporting a failure instead of throwing it (background work never stops the loop). */
export async function safely(ctx: EngineContext, context: string, fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (error) {
    ctx.fail(context, error);
  }
}

/** Extend `owner`'s leases every third of a lease until `signal` aborts. */
export async function heartbeat(ctx: EngineContext, owner: string, signal: AbortSignal): Promise<void> {
  const every = Math.max(250, Math.floor(ctx.options.leaseMs / 3));
  while (!signal.aborted) {
    try {
      await ctx.clock.sleep(every, signal);
    } catch {
      return;
    }
    await safely(ctx, 'heartbeat', () => ctx.store.heartbeat(owner, ctx.clock.now(), ctx.options.leaseMs));
  }
}

/**
 * The long-lived loop of `engine.run()`: poll for work (housekeeping, then a runner per running
 * campaign, up to `maxConcurrentCampaigns`), idle until the next poll or a wake-up, and on `stop()`
 * let every runner finish its message on the wire, record, and release its leases.
 */
export class Runner {
  readonly dispatcher: Dispatcher;
  private loopPromise: Promise<void> | null = null;
  private stopPromise: Promise<void> | null = null;
  private readonly stopController = new AbortController();
  private wakeController = new AbortController();
  private readonly runners = new Map<string, { controller: AbortController; done: Promise<void> }>();

  constructor(
    private readonly ctx: EngineContext,
    private readonly ready: () => Promise<void>,
  ) {
    this.dispatcher = new Dispatcher(ctx, ctx.options.workerId);
  }

  get stopSignal(): AbortSignal {
    return this.stopController.signal;
  }

  get stopping(): boolean {
    return this.stopPromise !== null;
  }

  run(): Promise<void> {
    if (this.stopPromise) return Promise.reject(new ShutdownError());
    this.loopPromise ??= this.loop();
    return this.loopPromise;
  }

  stop(onStopped: () => void): Promise<void> {
    this.stopPromise ??= (async () => {
      this.stopController.abort(new ShutdownError());
      this.wakeController.abort();
      await this.loopPromise?.catch(() => undefined);
      await Promise.all([...this.runners.values()].map((r) => r.done));
      onStopped();
    })();
    return this.stopPromise;
  }

  /** Wake an idle loop now (new work arrived). */
  wake(): void {
    this.wakeController.abort();
  }

  /** Stop working a campaign (paused, cancelled): its message on the wire finishes. */
  abort(campaignId: string): void {
    this.runners.get(campaignId)?.controller.abort();
  }

  private async loop(): Promise<void> {
    const { ctx } = this;
    await this.ready();
    let unsubscribe: (() => Promise<void>) | null = null;
    if (ctx.store.subscribeWake) {
      await safely(ctx, 'listening for wake-ups', async () => {
        unsubscribe = await ctx.store.subscribeWake!(() => this.wake());
      });
    }
    try {
      const beating = heartbeat(ctx, ctx.options.workerId, this.stopController.signal);
      await safely(ctx, 'recovery at start', () => recover(ctx));
      while (!this.stopController.signal.aborted) {
        await safely(ctx, 'poll', () => this.poll());
        await this.idle(ctx.options.pollIntervalMs);
      }
      await Promise.all([...this.runners.values()].map((r) => r.done));
      // Before leases are given up: a last try at recording outcomes kept while the store was down.
      await recordKept(ctx, this.dispatcher);
      await beating;
      await safely(ctx, 'releasing leases', () => ctx.store.release(ctx.options.workerId));
    } finally {
      await safely(ctx, 'closing the wake-up listener', async () => (unsubscribe as (() => Promise<void>) | null)?.());
    }
  }

  private async poll(): Promise<void> {
    const { paused } = await housekeeping(this.ctx, this.ctx.clock.now());
    for (const id of paused) this.abort(id);
    for (const campaign of await this.ctx.store.listCampaigns({ status: ['running'] })) {
      if (this.runners.size >= this.ctx.options.maxConcurrentCampaigns) break;
      if (!this.runners.has(campaign.id)) this.spawn(campaign.id);
    }
  }

  private spawn(campaignId: string): void {
    const { ctx } = this;
    const controller = new AbortController();
    const signal = AbortSignal.any([controller.signal, this.stopController.signal]);
    // A rate-paced account waits for up to its window of slots at once, each listening to this signal.
    setMaxListeners(0, signal);
    const done = (async () => {
      try {
        while (!signal.aborted) {
          const r = await this.dispatcher.tick(campaignId, { deadline: null, signal });
          if (r.kind === 'finished') break;
          if (r.kind === 'wait') await ctx.clock.sleep(Math.max(0, r.until - ctx.clock.now()), signal).catch(() => undefined);
        }
      } catch (error) {
        ctx.fail(`working campaign ${campaignId}`, error);
        await ctx.clock.sleep(ctx.options.pollIntervalMs, signal).catch(() => undefined);
      } finally {
        this.runners.delete(campaignId);
      }
    })();
    this.runners.set(campaignId, { controller, done });
  }

  private async idle(ms: number): Promise<void> {
    const stop = this.stopController.signal;
    if (!this.wakeController.signal.aborted) {
      try {
        await this.ctx.clock.sleep(ms, AbortSignal.any([this.wakeController.signal, stop]));
      } catch {
        // woken
      }
    }
    if (this.wakeController.signal.aborted && !stop.aborted) this.wakeController = new AbortController();
  }
}

/**
 * Record the outcomes a dispatcher kept while the store was down. If that still fails, their rows
 * become in-doubt sends once released, settled by lookup or the campaign's `inDoubt` policy.
 */
export async function recordKept(ctx: EngineContext, dispatcher: Dispatcher): Promise<void> {
  const n = dispatcher.recorder.keptCount;
  if (n === 0) return;
  await dispatcher.recorder.recordKept().catch((error) => ctx.fail(`recording ${n} outcome(s) kept while the store was down (their sends will be settled as in doubt)`, error));
}
