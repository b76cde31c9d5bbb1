import type { TransportErrorKind } from './errors.js';
import type { BatchRecord, Campaign, ConnectionState, PauseReason, RecipientStatus, SkipReason } from './domain/types.js';

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

/**
 * Where the engine writes what it does. pino, console and most loggers fit as they are: the engine
 * calls `warn('message')`, or `warn({ ...fields }, 'message')` when it has fields (pino's order;
 * console prints the fields, then the message).
 */
export interface Logger {
  debug(...args: any[]): void;
  info(...args: any[]): void;
  warn(...args: any[]): void;
  error(...args: any[]): void;
}

/** The engine's own view of a logger: a message, then optional fields. */
export interface Log {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Adapt any `Logger` to the engine's calls, in the (fields, message) order pino expects. */
export function toLog(logger: Logger): Log {
  const at =
    (level: keyof Logger) =>
    (message: string, fields?: Record<string, unknown>): void => {
      if (fields && Object.keys(fields).length > 0) logger[level](fields, message);
      else logger[level](message);
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

const noop = () => {};
const print =
  (write: (line: string) => void) =>
  (...args: unknown[]): void => {
    const [first, second] = args;
    if (typeof first === 'string') return write(`[disparo] ${first}`);
    const fields = first as Record<string, unknown>;
    const detail = Object.entries(fields)
      .map(([k, v]) => `${k}=${v instanceof Error ? v.message : typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
      .join(' ');
    write(`[disparo] ${String(second ?? '')}${detail ? ` (${detail})` : ''}`);
  };
/** Quiet by default: warnings and errors to the console, nothing else. */
export const defaultLogger: Logger = {
  debug: noop,
  info: noop,
  warn: print((line) => console.warn(line)),
  error: print((line) => console.error(line)),
};
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };
