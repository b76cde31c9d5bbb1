import { afterEach, beforeEach } from 'vitest';
import {
  createEngine,
  createMemoryStore,
  createSimulatorTransport,
  silentLogger,
  type Engine,
  type EngineEvents,
  type EngineOptions,
  type MemoryStore,
  type SimulatorOptions,
  type SimulatorTransport,
  type StateStore,
  type RecipientCounters,
} from '@disparo/core';
import { VirtualClock, seededRandom } from '@disparo/core/testing';

export const phones = (n: number, offset = 0): string[] =>
  Array.from({ length: n }, (_, i) => `55119${String(70_000_000 + offset + i).padStart(8, '0')}`);

export interface Rig {
  clock: VirtualClock;
  store: MemoryStore;
  sims: Record<string, SimulatorTransport>;
  engine: Engine;
}

/** An engine on a virtual clock with simulator accounts, ready to run. */
export function rig(
  options: {
    accounts?: string[];
    sim?: SimulatorOptions;
    simFor?: Record<string, SimulatorOptions>;
    pacing?: { intervalMs: { min: number; max: number } };
    engine?: Partial<EngineOptions>;
    store?: StateStore;
    clock?: VirtualClock;
    seed?: number;
  } = {},
): Rig {
  const clock = options.clock ?? new VirtualClock();
  const store = (options.store ?? createMemoryStore()) as MemoryStore;
  const sims: Record<string, SimulatorTransport> = {};
  const ids = options.accounts ?? ['a1'];
  const engine = createEngine({
    store,
    clock,
    logger: silentLogger,
    random: seededRandom(options.seed ?? 7),
    pollIntervalMs: 1_000,
    accounts: ids.map((id, i) => {
      sims[id] = createSimulatorTransport({ seed: (options.seed ?? 7) * 31 + i, clock, ...options.sim, ...options.simFor?.[id] });
      return { id, transport: sims[id]!, pacing: options.pacing ?? { intervalMs: { min: 0, max: 0 } } };
    }),
    ...options.engine,
  });
  return { clock, store, sims, engine };
}

/** Run the engine on auto-advancing virtual time until `event` fires (or virtual `limitMs` passes). */
export async function runUntil<K extends keyof EngineEvents>(
  r: { engine: Engine; clock: VirtualClock },
  event: K,
  predicate: (payload: EngineEvents[K]) => boolean = () => true,
  limitMs = 24 * 3_600_000,
): Promise<void> {
  const stopClock = r.clock.autoAdvance();
  const start = r.clock.now();
  try {
    await new Promise<void>((resolve, reject) => {
      const listener = (payload: EngineEvents[K]) => {
        if (predicate(payload)) {
          r.engine.off(event, listener as never);
          resolve();
        }
      };
      r.engine.on(event, listener as never);
      void r.engine.run().catch(reject);
      const guard = async () => {
        while (r.clock.now() - start < limitMs) await new Promise((res) => setTimeout(res, 5));
        reject(new Error(`"${String(event)}" did not happen within ${limitMs} ms of virtual time`));
      };
      void guard();
    });
  } finally {
    await r.engine.stop();
    stopClock();
  }
}

export async function campaignWith(engine: Engine, n: number, extra: Record<string, unknown> = {}, accountIds = ['a1']) {
  const c = await engine.createCampaign({ name: 'test', template: 'Oi {{name|amigo}}', accountIds, batchSize: 10, batchPauseMs: { min: 0, max: 0 }, retryBackoffMs: { min: 10, max: 10 }, ...extra });
  await engine.addRecipients(c.id, phones(n).map((phone, i) => ({ phone, vars: { name: `n${i}` } })));
  return c;
}

/** Every recipient's phone sent at most once across the given simulators. */
export function duplicateSends(sims: SimulatorTransport[]): string[] {
  const seen = new Map<string, number>();
  for (const sim of sims) for (const s of sim.sends) seen.set(s.idempotencyKey, (seen.get(s.idempotencyKey) ?? 0) + 1);
  return [...seen].filter(([, n]) => n > 1).map(([k]) => k);
}

/** Counters equal the recipient rows (I2). */
export async function expectCountersMatchRows(store: StateStore, campaignId: string) {
  const c = (await store.getCampaign(campaignId))!;
  const rows = await store.listRecipients(campaignId, { limit: 1_000_000 });
  const counted: RecipientCounters = { total: rows.length, pending: 0, sending: 0, sent: 0, delivered: 0, read: 0, failed: 0, skipped: 0, unknown: 0 };
  for (const r of rows) counted[r.status]++;
  return { counters: c.counters, counted };
}

/** A memory store with some of its methods replaced (each override may call `memory`, the real one). */
export function wrapStore(memory: MemoryStore, overrides: Partial<MemoryStore>): MemoryStore {
  return Object.assign(Object.create(memory) as MemoryStore, overrides);
}

export const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Run the engine on auto-advancing virtual time until the campaign completes (or `stopWhen` says so),
 * `budgetMs` of virtual time passes, or (a hang that lets no time pass) 20 s of real time. Whether it completed.
 */
export async function runCampaign(engine: Engine, clock: VirtualClock, budgetMs: number, stopWhen: () => boolean = () => false): Promise<boolean> {
  let completed = false;
  const onCompleted = () => (completed = true);
  engine.on('campaign:completed', onCompleted);
  const stopClock = clock.autoAdvance();
  const start = clock.now();
  const realDeadline = Date.now() + 20_000;
  try {
    void engine.run().catch(() => undefined);
    while (!completed && !stopWhen() && clock.now() - start < budgetMs && Date.now() < realDeadline) await realSleep(5);
  } finally {
    engine.off('campaign:completed', onCompleted);
    // A stuck send task must not hang the test either.
    await Promise.race([engine.stop().catch(() => undefined), realSleep(3_000)]);
    stopClock();
  }
  return completed;
}

/** Unhandled rejections seen while each test of the file runs (registers its own hooks). */
export function unhandledRejections(): { seen: unknown[] } {
  const state = { seen: [] as unknown[] };
  const onRejection = (reason: unknown) => void state.seen.push(reason);
  beforeEach(() => {
    state.seen = [];
    process.on('unhandledRejection', onRejection);
  });
  afterEach(() => {
    process.off('unhandledRejection', onRejection);
  });
  return state;
}
