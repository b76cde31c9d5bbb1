import type { TransportErrorKind } from './errors.js';
import type { BatchRecord, Campaign, ConnectionState, PauseReason, RecipientStatus, SkipReason } from './types.js';

interface MessageRef {
  campaignId: string;
  recipientId: string;
  phone: string;
}

/** Every event the engine emits, with its one payload object. Listener errors never break the loop. */
export interface EngineEvents {
  'campaign:created': { campaign: Campaign };
  'campaign:scheduled': { campaign: Campaign };
  'campaign:started': { campaign: Campaign };
  'campaign:paused': { campaign: Campaign; reason: PauseReason };
  'campaign:resumed': { campaign: Campaign };
  'campaign:completed': { campaign: Campaign };
  'campaign:cancelled': { campaign: Campaign };
  'batch:started': { campaignId: string; batch: number };
  'batch:completed': { campaignId: string; batch: BatchRecord | null; next: number | null };
  /** Long imports report after every chunk. */
  'recipients:imported': { campaignId: string; processed: number; inserted: number; duplicates: number; invalid: number; optedOut: number; done: boolean };
  'message:sent': MessageRef & { accountId: string; providerMessageId: string; attempt: number };
  'message:failed': MessageRef & { accountId: string | null; error: string; kind: TransportErrorKind | 'max_attempts' };
  'message:skipped': MessageRef & { reason: SkipReason; detail?: string };
  'message:retrying': MessageRef & { accountId: string; attempt: number; error: string; kind: TransportErrorKind };
  /** In doubt after a crash, settled by the at-most-once policy: never resent. */
  'message:unknown': MessageRef & { accountId: string | null };
  /**
   * In-doubt sends of a dead worker (or of this one before a restart) were settled: `sent` found by the
   * transport's lookup, `pending` to be sent again (not found, or at-least-once), `unknown` left alone
   * (at-most-once without a lookup). With grouped checkpoints this can be up to a group per account.
   */
  'recovery:settled': { settled: number; sent: number; pending: number; unknown: number };
  'message:status': { campaignId: string; recipientId: string; from: RecipientStatus; to: RecipientStatus };
  'account:disabled': { accountId: string; reason: string; until: number | null };
  'account:stopped': { accountId: string; reason: string };
  'account:enabled': { accountId: string };
  'account:connection': { accountId: string; state: ConnectionState; detail?: string };
  'contact:opted_out': { phone: string; source: 'api' | 'inbound'; cancelled: number };
  'inbound:message': { accountId: string; from: string; text: string; at: number };
  /** Background failures (store errors in the loop, listener errors). Also sent to the logger. */
  error: { error: unknown; context: string };
}

export type EngineEventArgs = { [K in keyof EngineEvents]: [EngineEvents[K]] };

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

const noop = () => {};
/** Quiet by default: warnings and errors to the console, nothing else. */
export const defaultLogger: Logger = {
  debug: noop,
  info: noop,
  warn: (m, f) => console.warn(`[disparo] ${m}`, f ?? ''),
  error: (m, f) => console.error(`[disparo] ${m}`, f ?? ''),
};
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };
