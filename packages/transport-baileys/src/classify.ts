import { TransportError, type AccountStopReason, type TransportErrorKind } from '@disparo/core/transport';

/**
 * Baileys `DisconnectReason` values, re-declared so that nothing of `baileys` loads at run time
 * (BL: src/Types/index.ts), plus 402 and 406, which Evolution API also refuses to reconnect from.
 */
export const DISCONNECT_REASON = {
  connectionClosed: 428,
  connectionLost: 408,
  timedOut: 408,
  connectionReplaced: 440,
  loggedOut: 401,
  badSession: 500,
  restartRequired: 515,
  multideviceMismatch: 411,
  forbidden: 403,
  unavailableService: 503,
} as const;

/**
 * Close codes after which the account cannot come back without a human (CONTRACTS.md 2.4), and why:
 * 401 logged out (device unlinked), 403 forbidden (banned), 440 replaced by another client,
 * 411 multi-device mismatch (pair again), 402 and 406 (Evolution treats them as final too).
 */
export const STOP_CODES: Readonly<Record<number, AccountStopReason>> = {
  401: 'logged_out',
  403: 'banned',
  402: 'banned',
  406: 'logged_out',
  411: 'logged_out',
  440: 'replaced',
};

/** Close codes after which the host's reconnect loop brings the account back by itself. */
export const TRANSIENT_CLOSE_CODES: readonly number[] = [428, 408, 500, 503, 515];

/** The stop reason for a close code, or undefined when a reconnect may bring the account back. */
export function stopReasonForCode(code: number | undefined): AccountStopReason | undefined {
  return code === undefined ? undefined : STOP_CODES[code];
}

type Rec = Record<string, unknown>;
const isRecord = (v: unknown): v is Rec => typeof v === 'object' && v !== null;

/** What a Boom (or plain) error says: its message, `output.statusCode`, `data` and `isServer`. */
export interface BoomInfo {
  message: string;
  statusCode: number | undefined;
  data: unknown;
  isBoom: boolean;
  isServer: boolean;
}

export function boomInfo(error: unknown): BoomInfo {
  if (!isRecord(error)) return { message: String(error), statusCode: undefined, data: undefined, isBoom: false, isServer: false };
  const output = isRecord(error.output) ? error.output : {};
  const payload = isRecord(output.payload) ? output.payload : {};
  const statusCode = typeof output.statusCode === 'number' ? output.statusCode : typeof error.statusCode === 'number' ? error.statusCode : undefined;
  // `message` of a Boom is the text it was created with; the payload's is a generic one for 5xx.
  const message = typeof error.message === 'string' && error.message ? error.message : typeof payload.message === 'string' ? payload.message : String(error);
  return { message, statusCode, data: error.data, isBoom: error.isBoom === true, isServer: error.isServer === true };
}

/** The close code of a `connection.update`'s `lastDisconnect.error` (`output.statusCode`, else `data.reason`). */
export function disconnectCode(error: unknown): number | undefined {
  const info = boomInfo(error);
  if (info.statusCode !== undefined) return info.statusCode;
  if (isRecord(info.data) && typeof info.data.reason === 'string' && /^\d+$/.test(info.data.reason)) return Number(info.data.reason);
  return undefined;
}

const RATE_OVERLIMIT = /\brate-overlimit\b/i;
const TIMED_OUT = /\bTimed Out\b/i;
/** Errors Baileys throws when the socket is not usable (BL: src/Socket/socket.ts, src/Utils/generics.ts). */
const NOT_CONNECTED =
  /^(Connection (Closed|Terminated|Failure|was lost)|Stream Errored|WebSocket Error|Multi-device beta not joined|Intentional Logout|Not authenticated|Query Cancelled)\b/i;

/**
 * `send`: the call may have made WhatsApp send a message, so an unknown outcome is `ambiguous`.
 * `read`: a query that sends nothing (number check), so the same failure is only `transient`.
 */
export type Operation = 'send' | 'read';

export interface ClassifyOptions {
  operation: Operation;
  /** Back-off for `rate-overlimit` (WhatsApp gives no retry-after). */
  rateLimitBackoffMs: number;
  /** A stop reason the transport already knows (a logout seen on `connection.update`). */
  knownStopReason?: AccountStopReason | undefined;
  /** Prefix of the message, e.g. `[baileys] 5511…`. */
  where?: string;
}

/**
 * Turn whatever a Baileys socket call threw into a `TransportError` (CONTRACTS.md 2.2, 2.4, 2.6):
 *
 * - `rate-overlimit` (`Boom(data: 429)`): `rate_limited`, retry after `rateLimitBackoffMs`;
 * - `Timed Out` (408 from `promiseTimeout`): `ambiguous` for a send (it may have left), `transient` for a query;
 * - `Connection Closed|Terminated|Failure|was lost`, stream errors, `Not authenticated`, or a
 *   disconnect status code: `account`; the reason is `disconnected` unless the code (401, 403, 440,
 *   411, 402, 406) or a logout already seen says the account needs a human;
 * - a Boom 400 that is not from the server (Baileys' own content checks: `Invalid media type`,
 *   `no content in message`): `permanent`;
 * - anything else (IQ errors from device or group lookups, encryption failures): `transient`.
 *
 * `providerCode` is the Boom status code (or the IQ error code in `data`, e.g. 429).
 */
export function classifyBaileysError(error: unknown, options: ClassifyOptions): TransportError {
  if (TransportError.isInstance(error)) return error;
  const info = boomInfo(error);
  const where = options.where ? `${options.where}: ` : '[baileys] ';
  const iqCode = typeof info.data === 'number' ? info.data : undefined;
  const make = (kind: TransportErrorKind, what: string, extra: { retryAfterMs?: number; accountReason?: AccountStopReason; providerCode?: string | number } = {}) =>
    new TransportError(kind, `${where}${what}`, { providerCode: iqCode ?? info.statusCode, ...extra, cause: error });

  if (RATE_OVERLIMIT.test(info.message) || iqCode === 429) {
    return make('rate_limited', `WhatsApp rate limit (${info.message}); backing the account off`, { retryAfterMs: options.rateLimitBackoffMs, providerCode: 429 });
  }
  if (TIMED_OUT.test(info.message)) {
    return options.operation === 'send'
      ? make('ambiguous', `WhatsApp timed out (${info.message}); the message may have been sent`)
      : make('transient', `WhatsApp query timed out (${info.message})`);
  }
  const code = info.statusCode;
  const codeStop = stopReasonForCode(code);
  if (NOT_CONNECTED.test(info.message) || codeStop !== undefined || (code !== undefined && [428, 515].includes(code))) {
    const accountReason = codeStop ?? (/^(Intentional Logout|Not authenticated)/i.test(info.message) ? 'logged_out' : options.knownStopReason) ?? 'disconnected';
    const hint = accountReason === 'disconnected' ? 'wait for the socket to reconnect' : `the account needs a human (${accountReason})`;
    return make('account', `the socket is not connected to WhatsApp (${info.message}${code !== undefined ? `, ${code}` : ''}); ${hint}`, { accountReason });
  }
  if (code === 400 && !info.isServer) return make('permanent', `Baileys rejected the message content (${info.message})`);
  return make('transient', `WhatsApp call failed (${info.message}${code !== undefined ? `, ${code}` : ''})`);
}
