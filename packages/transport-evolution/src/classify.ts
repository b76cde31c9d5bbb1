import { retryAfterMs, TransportError, type TransportErrorKind } from '@disparo/core/transport';

/**
 * `send`: the call may have made WhatsApp send a message, so a failure whose outcome is unknown is
 * `ambiguous`. `read`: a query (connection state, number check, lookup, webhook set) that sends
 * nothing, so the same failure is only `transient`.
 */
export type Operation = 'send' | 'read';

export interface ClassifyInput {
  status: number;
  /** Parsed JSON body, or undefined when the body was not JSON. */
  body: unknown;
  operation: Operation;
  instance: string;
  /** The `Retry-After` header, if any (Evolution sends none; a proxy in front of it may). */
  retryAfter?: string | null;
  /** Back-off for `rate-overlimit` when there is no `Retry-After` hint. */
  rateLimitBackoffMs: number;
  /** For the message: e.g. `POST /message/sendText/campaign-01`. */
  route?: string;
}

type Rec = Record<string, unknown>;
const isRecord = (v: unknown): v is Rec => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Wrapped Baileys errors Evolution returns as text: `Error: Connection Closed`, or plain `Connection Closed` from outside the send's try. */
const CONNECTION_CLOSED = /\bConnection (Closed|Terminated)\b/i;
const RATE_OVERLIMIT = /\brate-overlimit\b/i;
const TIMED_OUT = /\bTimed Out\b/i;
/** The controller read a method of an instance that exists in the database but is not loaded in memory. */
const NOT_LOADED = /Cannot read propert(y|ies) of undefined/i;
/** `error.toString()` of a thrown error: `Error: …`, `PrismaClientKnownRequestError: …`, `TypeError: …`. */
const THROWN = /^[A-Za-z_$][\w$]*(Error|Exception)\b[^:]{0,80}:/;

/** Evolution's error envelope: `{ status, error, response: { message } }` (its global handler in src/main.ts). */
function envelopeMessage(body: unknown): { message: unknown } | null {
  if (!isRecord(body) || !isRecord(body.response) || !('message' in body.response)) return null;
  return { message: body.response.message };
}

function text(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(text).join('; ');
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * Turn an Evolution API error response into a `TransportError`, following CONTRACTS.md 1.4/1.10:
 *
 * - 401/403: account (key wrong or missing), 404: account (instance does not exist, or a wrong base URL);
 * - 400 whose `response.message[0]` is `{ exists: false }`: invalid recipient;
 * - 400 whose `message[0]` is an array (schema) or a plain sentence (`Text is required`): permanent;
 * - `rate-overlimit` (400 or 500): rate limited;
 * - `Connection Closed|Terminated` (400 or 500), 500 `Cannot read properties of undefined`: account, disconnected;
 * - 400 `Error: Timed Out` and any other wrapped error (`PrismaClient…Error: …`): ambiguous, because
 *   Evolution's send wraps everything in one try, including work after WhatsApp took the message;
 * - 500 `Timed Out` as a plain string: transient. Evolution answers 500 with a plain string only
 *   for errors thrown outside that try, i.e. in the number check before anything was sent;
 * - other 5xx, and 400s of unknown shape: ambiguous for a send (transient for a query).
 *
 * `providerCode` is the HTTP status.
 */
export function classifyEvolutionError(input: ClassifyInput): TransportError {
  const { status, body, operation, instance } = input;
  const where = `[evolution] ${instance}${input.route ? ` ${input.route}` : ''}`;
  const unknownOutcome: TransportErrorKind = operation === 'send' ? 'ambiguous' : 'transient';
  const make = (kind: TransportErrorKind, what: string, extra: { retryAfterMs?: number; accountReason?: 'disconnected' | 'unauthorized' } = {}) =>
    new TransportError(kind, `${where}: ${what} (HTTP ${status})`, { ...extra, providerCode: status });
  const rateLimited = (what: string) => make('rate_limited', what, { retryAfterMs: retryAfterMs(input.retryAfter) ?? input.rateLimitBackoffMs });

  const envelope = envelopeMessage(body);
  const message = envelope?.message;
  const first: unknown = Array.isArray(message) ? message[0] : message;
  const firstText = typeof first === 'string' ? first : '';

  if (status === 401 || status === 403) {
    return make('account', `the API key was refused (${text(message ?? 'Unauthorized')}); check apiKey for this instance`, { accountReason: 'unauthorized' });
  }
  if (status === 404) {
    const detail = firstText || `the route was not found; check baseUrl`;
    return make('account', `${detail}; check the instance name and baseUrl`, { accountReason: 'unauthorized' });
  }
  if (status === 429) return rateLimited('rate limited by the server or a proxy in front of it');

  if (isRecord(first) && first.exists === false) {
    const number = typeof first.number === 'string' ? first.number : typeof first.jid === 'string' ? first.jid : 'the number';
    return make('invalid_recipient', `${number} is not on WhatsApp`);
  }
  if (Array.isArray(first)) return make('permanent', `the request was rejected by validation: ${text(first)}`);

  if (firstText) {
    if (RATE_OVERLIMIT.test(firstText)) return rateLimited(`WhatsApp rate limit (${firstText})`);
    if (CONNECTION_CLOSED.test(firstText)) return make('account', `the instance is not connected to WhatsApp (${firstText})`, { accountReason: 'disconnected' });
    if (status >= 500 && NOT_LOADED.test(firstText)) {
      return make('account', `the instance exists but is not loaded in Evolution (${firstText}); restart or reconnect it`, { accountReason: 'disconnected' });
    }
    if (TIMED_OUT.test(firstText)) {
      // 500 + plain text: thrown by the number check before the send's try, so nothing left.
      if (status >= 500 && !THROWN.test(firstText)) return make('transient', `WhatsApp query timed out before sending (${firstText})`);
      return make(unknownOutcome, `WhatsApp timed out; the message may have been sent (${firstText})`);
    }
    if (status === 400) {
      if (THROWN.test(firstText)) return make(unknownOutcome, `failed inside the send, possibly after WhatsApp took the message (${firstText})`);
      return make('permanent', `the request was rejected: ${firstText}`);
    }
  }

  // The number-check route answers 400 with the raw thrown object (no envelope): a Boom error.
  if (!envelope && isRecord(body) && body.isBoom === true) {
    const output = isRecord(body.output) ? body.output : {};
    const boomStatus = typeof output.statusCode === 'number' ? output.statusCode : undefined;
    const payload = isRecord(output.payload) ? output.payload : {};
    const boomText = typeof payload.message === 'string' ? payload.message : 'Boom error';
    if (boomStatus === 428 || CONNECTION_CLOSED.test(boomText)) return make('account', `the instance is not connected to WhatsApp (${boomText}, ${boomStatus})`, { accountReason: 'disconnected' });
    if (body.data === 429 || RATE_OVERLIMIT.test(boomText)) return rateLimited(`WhatsApp rate limit (${boomText})`);
    return make(unknownOutcome, `WhatsApp query failed (${boomText}, ${boomStatus ?? 'no status'})`);
  }

  if (status === 408) return make('transient', 'the server timed out waiting for the request');
  if (status >= 500 || status === 400) {
    return make(unknownOutcome, `unexpected answer${message !== undefined ? `: ${text(message)}` : ''}${operation === 'send' ? '; the message may have been sent' : ''}`);
  }
  return make('permanent', `the request was rejected${message !== undefined ? `: ${text(message)}` : ''}`);
}
