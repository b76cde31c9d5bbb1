import type { Clock } from './clock.js';
import type { EngineEvents, Logger } from './events.js';
import type { Mutex } from './mutex.js';
import type { StateStore } from './store.js';
import type { Transport } from './transport.js';
import type { Pacing } from './types.js';

export interface AccountRuntime {
  id: string;
  transport: Transport;
  pacing: Pacing;
  mutex: Mutex;
  unsubscribe: (() => void) | null;
  /** The account's transport events, handled one at a time in arrival order. */
  events: Promise<void>;
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
  optOutKeywords: string[];
  hourKeyTimeZone: string;
}

/** What the engine's parts share. Internal. */
export interface EngineContext {
  store: StateStore;
  clock: Clock;
  logger: Logger;
  random: () => number;
  options: ResolvedEngineOptions;
  accounts: Map<string, AccountRuntime>;
  emit<K extends keyof EngineEvents>(event: K, payload: EngineEvents[K]): void;
  listening(event: keyof EngineEvents): boolean;
  /** Report a background failure to the `error` event and the logger. */
  fail(context: string, error: unknown): void;
}
