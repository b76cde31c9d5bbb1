import type { Clock } from './clock.js';
import type { Throttle } from './pacing/throttle.js';
import type { Pacing } from './domain/types.js';
import type { EngineEvents, Log } from './events.js';
import type { StateStore } from './store/contract.js';
import type { Transport } from './transport/contract.js';

/** A sender account as this engine holds it: its transport, pacing and in-process state. */
export interface AccountRuntime {
  id: string;
  transport: Transport;
  pacing: Pacing;
  /**
   * Serialises this process's sends of the account (one sender at a time); the store's in-flight
   * window is what holds across processes.
   */
  turn: Turn;
  /** A rate-paced account's share of its rate and window after "too fast" answers (AIMD). */
  throttle: Throttle;
  /** When a send last said the account cannot send (logged out, banned...): slots granted before it are not used. */
  lostAt: number;
  unsubscribe: (() => void) | null;
  /** The account's transport events, handled one at a time in arrival order. */
  events: Promise<void>;
}

/** One holder at a time, first come first served. */
export interface Turn {
  run<T>(fn: () => Promise<T>): Promise<T>;
  /** Someone holds the turn. */
  readonly busy: boolean;
  /** Someone is waiting for the turn. */
  readonly contended: boolean;
}

export interface ResolvedEngineOptions {
  workerId: string;
  leaseMs: number;
  pollIntervalMs: number;
  maxConcurrentCampaigns: number;
  claimSize: number;
  sendTimeoutMs: number;
  checkpoints: { groupSize: number; maxDelayMs: number };
  failureThreshold: number;
  cooldownMs: number;
  /** Folded (upper case, no accents). */
  optOutKeywords: string[];
  defaultCountry: string;
  /** Time zone in which hourly and daily caps reset. */
  capTimeZone: string;
}

/**
 * What the engine's rooms share, and all they share: the store, the clock, logging and events, the
 * options, and the accounts registered here. Rooms hand data to each other as arguments and return
 * decisions as values; nothing else is common state.
 */
export interface EngineContext {
  store: StateStore;
  clock: Clock;
  log: Log;
  random: () => number;
  options: ResolvedEngineOptions;
  accounts: Map<string, AccountRuntime>;
  emit<K extends keyof EngineEvents>(event: K, payload: EngineEvents[K]): void;
  /** Report a background failure to the `error` event and the logger. */
  fail(context: string, error: unknown): void;
}
