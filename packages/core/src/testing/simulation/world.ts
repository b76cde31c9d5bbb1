import type { Clock } from '../../clock.js';
import type { CampaignStatus } from '../../domain/types.js';
import { createEngine, type Engine } from '../../engine/engine.js';
import type { PacingInput } from '../../engine/schemas.js';
import { TransportError } from '../../errors.js';
import { silentLogger } from '../../events.js';
import { RATE_HEADROOM } from '../../pacing/plan.js';
import { between, seededRandom } from '../../random.js';
import type { StateStore } from '../../store/contract.js';
import type { Transport } from '../../transport/contract.js';
import { createSimulatorTransport, type SimulatorTransport } from '../../transport/simulator/simulator.js';
import { VirtualClock } from '../virtual-clock.js';

/** One engine's life: it dies at its next await point once armed (store call, sleep or send). */
export interface Life {
  id: number;
  crashed: boolean;
  armed: boolean;
}

/** A sender account of the simulated world: its provider, its pacing, and what reached the provider. */
export interface SimAccount {
  id: string;
  sim: SimulatorTransport;
  pacing: PacingInput & { maxInFlight: number };
  /** Interval accounts: the minimum gap. Rate accounts: null. */
  minGap: number | null;
  /** Every send as the provider saw it: when the request arrived and when the answer left. */
  wire: Array<{ start: number; end: number; key: string }>;
  /** How long after a logout a send granted just before it may still reach the provider. */
  graceMs: number;
}

export interface Logout {
  id: string;
  from: number;
  to: number | null;
  /**
   * Per engine: when the provider first refused it after the grace period, and how many sends it
   * started later still (it should have learnt from the refusal).
   */
  attempts: Map<number, { first: number; after: number }>;
}

const never = <T>() => new Promise<T>(() => {});

/**
 * The simulated world shared by every engine of one seed: a virtual clock, one store, the accounts
 * (one simulated provider each, outside every engine), and the wrappers that make an engine mortal.
 * It records what the checks need: transitions, settlements, ambiguous sends, logouts, crashes.
 */
export class World {
  readonly rng: () => number;
  readonly clock = new VirtualClock(Date.UTC(2026, 2, 2, 12, 0, 0));
  readonly accounts: SimAccount[] = [];
  readonly latency: { min: number; max: number };
  readonly leaseMs: number;
  readonly pollIntervalMs: number;
  readonly lives: Life[] = [];
  readonly engines: Array<{ engine: Engine; life: Life }> = [];
  readonly transitions: Array<{ from: CampaignStatus[]; to: CampaignStatus; applied: boolean }> = [];
  readonly settledPending = new Set<string>();
  readonly ambiguousKeys = new Set<string>();
  readonly logouts: Logout[] = [];
  /** Per crash: the sends each account had written ahead under the dead engine's leases, and its window. */
  readonly crashedInFlight: Array<{ engine: number; account: string; sending: number; window: number }> = [];
  crashes = 0;

  constructor(
    readonly seed: number,
    readonly store: StateStore,
  ) {
    this.rng = seededRandom(seed);
    const minGap = between(this.rng, 0, 3) * 500;
    const maxGap = minGap + between(this.rng, 0, 4) * 500;
    this.latency = { min: between(this.rng, 0, 2) * 50, max: 0 };
    this.latency.max = this.latency.min + between(this.rng, 0, 10) * 50;
    this.leaseMs = this.pick([2_000, 5_000, 10_000]);
    this.pollIntervalMs = this.pick([200, 500, 1_000]);
    for (let i = 0, n = between(this.rng, 1, 3); i < n; i++) {
      const id = `acct${i}`;
      // Most accounts are human-paced (a window of one); some are rate-paced like an official API.
      const rated = this.rng() < 0.3;
      const rate = this.pick([5, 10, 20]);
      const window = this.pick([2, 4, 8]);
      const pacing = rated ? { ratePerSecond: rate, maxInFlight: window } : { intervalMs: { min: minGap, max: maxGap }, maxInFlight: 1 };
      const sim = createSimulatorTransport({
        seed: seed * 101 + i,
        clock: this.clock,
        latencyMs: this.latency,
        failureRates: {
          transient: this.pick([0, 0.02, 0.1]),
          rate_limited: this.pick([0, 0.01]),
          invalid_recipient: this.pick([0, 0.02]),
          permanent: this.pick([0, 0.01]),
          ambiguous: this.pick([0, 0.01]),
        },
        rateLimitRetryAfterMs: 1_000,
        receipts: { deliveredAfterMs: 500, readAfterMs: 2_000, readRate: 0.5 },
        // What the provider's lookup can prove: everything, only what it finds, nothing, or no lookup at all.
        lookup: this.pick(['full', 'found-only', 'blind', 'none'] as const),
      });
      const graceMs = (rated ? Math.ceil((window * 1_000) / (rate * RATE_HEADROOM)) : maxGap) + this.latency.max;
      this.accounts.push({ id, sim, pacing, minGap: rated ? null : minGap, wire: [], graceMs });
    }
  }

  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.rng() * xs.length)]!;
  }

  loggedOut(id: string): boolean {
    return this.logouts.some((l) => l.id === id && l.to === null);
  }

  /** A new engine on the shared store, as a new process would be (`run` starts its loop). */
  spawn(mode: 'run' | 'step'): { engine: Engine; life: Life } {
    const life: Life = { id: this.lives.length, crashed: false, armed: false };
    this.lives.push(life);
    const engine = createEngine({
      store: this.mortalStore(life),
      clock: this.mortalClock(life),
      logger: silentLogger,
      random: seededRandom(this.seed * 7 + life.id),
      workerId: `e${life.id}`,
      leaseMs: this.leaseMs,
      pollIntervalMs: this.pollIntervalMs,
      claimSize: this.pick([5, 20, 100]),
      failureThreshold: 1_000,
      accounts: this.accounts.map((a) => ({ id: a.id, transport: this.mortalTransport(a, life), pacing: a.pacing })),
    });
    this.engines.push({ engine, life });
    if (mode === 'run') void engine.run().catch(() => undefined);
    return { engine, life };
  }

  /** The engine dies now: from here on, nothing it started answers again. */
  private die(life: Life): void {
    life.crashed = true;
    this.crashes++;
    // What it left on the wire and in doubt, per account (its run loop and its step calls).
    const owner = `e${life.id}`;
    void (async () => {
      for (const account of this.accounts) {
        let sending = 0;
        for (const c of await this.store.listCampaigns()) {
          for (const r of await this.store.listRecipients(c.id, { status: ['sending'] })) {
            if (r.accountId === account.id && (r.leaseOwner === owner || r.leaseOwner?.startsWith(`${owner}:`))) sending++;
          }
        }
        this.crashedInFlight.push({ engine: life.id, account: account.id, sending, window: account.pacing.maxInFlight });
      }
    })();
  }

  private mortalStore(life: Life): StateStore {
    const world = this;
    return new Proxy(this.store, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (typeof value !== 'function') return value;
        return async (...args: unknown[]) => {
          if (life.crashed) return never();
          const call = () => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          if (life.armed) {
            const applied = world.rng() < 0.5;
            if (applied) await call(); // applied, but the engine never hears back
            world.die(life);
            return never();
          }
          const result = await call();
          if (prop === 'transitionCampaign') {
            const change = args[1] as { from: CampaignStatus[]; to: CampaignStatus };
            world.transitions.push({ from: change.from, to: change.to, applied: result !== null });
          }
          if (prop === 'settleInDoubt') {
            for (const s of args[0] as Array<{ recipientId: string; status: string }>) if (s.status === 'pending') world.settledPending.add(s.recipientId);
          }
          return life.crashed ? never() : result;
        };
      },
    });
  }

  private mortalClock(life: Life): Clock {
    return {
      now: () => this.clock.now(),
      sleep: async (ms, signal) => {
        if (life.crashed) return never();
        if (life.armed) {
          this.die(life);
          return never();
        }
        await this.clock.sleep(ms, signal);
        if (life.crashed) return never();
      },
    };
  }

  private mortalTransport(account: SimAccount, life: Life): Transport {
    const { sim } = account;
    return {
      name: sim.name,
      send: async (message, opts) => {
        if (life.crashed) return never();
        const logout = this.logouts.find((l) => l.id === account.id && l.to === null);
        if (logout) {
          // The provider refuses a logged-out number; an engine that missed the event learns it here.
          const now = this.clock.now();
          if (now > logout.from + account.graceMs) {
            const seen = logout.attempts.get(life.id);
            if (!seen) logout.attempts.set(life.id, { first: now, after: 0 });
            else if (now > seen.first) seen.after++;
          }
          throw new TransportError('account', 'logged out', { accountReason: 'logged_out', providerCode: 401 });
        }
        const onWire = { start: this.clock.now(), end: Number.POSITIVE_INFINITY, key: message.idempotencyKey };
        account.wire.push(onWire);
        let result;
        try {
          result = await sim.send(message, opts); // the provider has it even if we die now
        } catch (error) {
          if (TransportError.isInstance(error) && error.kind === 'ambiguous') this.ambiguousKeys.add(message.idempotencyKey);
          throw error;
        } finally {
          onWire.end = this.clock.now();
        }
        return life.crashed ? never() : result;
      },
      ...(sim.lookup ? { lookup: (q) => sim.lookup!(q) } : {}),
      subscribe: (listener) => sim.subscribe((event) => (life.crashed ? undefined : listener(event))),
    };
  }
}

