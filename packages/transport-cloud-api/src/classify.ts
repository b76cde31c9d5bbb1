import { retryAfterMs, TransportError, type AccountStopReason, type TransportErrorKind } from '@disparo/core/transport';

/**
 * `send`: the call may have made WhatsApp send a message, so a failure whose outcome is unknown is
 * `ambiguous`. `read`: a query (health) that sends nothing, so the same failure is only `transient`.
 */
export type Operation = 'send' | 'read';

/** How one Graph error `code` is handled. The table below is the one source for sync answers and webhooks. */
export interface CodeClass {
  kind: TransportErrorKind;
  /** Short name of the code (Meta's title). */
  title: string;
  /** `recipient`: concerns this contact only; `campaign`: every recipient of the campaign would hit it. */
  scope?: 'recipient' | 'campaign';
  /** The contact asked not to receive (marketing) messages: opt them out. */
  optOut?: boolean;
  accountReason?: AccountStopReason;
  /** Which back-off option gives `retryAfterMs` (`rate_limited` only). */
  backoff?: 'throughput' | 'maintenance' | 'pairRate';
  /** What to do, appended to the error message. */
  hint?: string;
  /**
   * `transient` codes that do not say whether the message left ("unknown error"): with an HTTP 5xx
   * answer a send is `ambiguous` instead (settled by its status webhook, never blindly resent).
   */
  ambiguousOn5xx?: boolean;
}

const TEMPLATE_HINT = 'fix the template or its parameters in WhatsApp Manager / the campaign; every recipient would fail the same way';
const PERMISSION_HINT = 'check the access token has whatsapp_business_messaging for this number (Access Token Debugger)';

/**
 * Graph error `code` -> handling, per CONTRACTS.md 3.5 (Meta's error-code page, read through mirrors).
 * Key on the code, never on the HTTP status: Meta answers the same code with different statuses.
 * Codes 200-299 (API permission) are a range, see `classifyCloudApiCode`. Unknown codes: see there.
 */
export const CLOUD_API_ERROR_TABLE: Readonly<Record<number, CodeClass>> = Object.freeze({
  // Throughput and pair rate: slow down, no attempt consumed.
  130429: { kind: 'rate_limited', title: 'Rate limit hit (throughput)', backoff: 'throughput', hint: "lower this number's send rate or window" },
  131057: { kind: 'rate_limited', title: 'Account in maintenance (throughput upgrade)', backoff: 'maintenance', hint: 'retry in about a minute' },
  131056: { kind: 'rate_limited', title: '(Business, Consumer) pair rate limit hit', scope: 'recipient', backoff: 'pairRate', hint: 'back off this recipient only (about 1 message per 6 s per user) and keep sending to others' },
  // Temporary on Meta's side: retry with backoff.
  1: { kind: 'transient', title: 'API unknown error', ambiguousOn5xx: true },
  2: { kind: 'transient', title: 'API service temporarily unavailable' },
  131000: { kind: 'transient', title: 'Something went wrong', ambiguousOn5xx: true },
  131016: { kind: 'transient', title: 'Service unavailable' },
  133004: { kind: 'transient', title: 'Server temporarily unavailable' },
  // The app's or the WABA's call limits: slow down like a throughput limit (no attempt consumed, and
  // not a failure of this number: as `transient`, five in a row disabled it).
  4: { kind: 'rate_limited', title: 'Too many API calls (app rate limit)', backoff: 'throughput', hint: 'pace all Graph API calls of this app' },
  80007: { kind: 'rate_limited', title: 'Rate limit issues (WABA API call limit)', backoff: 'throughput', hint: 'pace all Graph API calls of this WhatsApp Business Account' },
  // The recipient: never retry, skip.
  131026: { kind: 'invalid_recipient', title: 'Message undeliverable', scope: 'recipient', hint: 'not on WhatsApp, has not accepted the terms, runs an old app, or blocked this number' },
  131049: { kind: 'invalid_recipient', title: 'Not delivered to maintain healthy ecosystem engagement', scope: 'recipient', hint: "Meta's per-user marketing limit: do not retry this contact soon" },
  131050: { kind: 'invalid_recipient', title: 'User stopped marketing messages', scope: 'recipient', optOut: true, hint: 'the contact opted out of marketing messages' },
  131021: { kind: 'invalid_recipient', title: 'Recipient cannot be the sender', scope: 'recipient' },
  131030: { kind: 'invalid_recipient', title: 'Recipient phone number not in allowed list', scope: 'recipient', hint: 'a test number only sends to the numbers added in WhatsApp Manager' },
  130472: { kind: 'permanent', title: "User's number is part of an experiment", scope: 'recipient', hint: 'Meta withheld this marketing message; do not resend' },
  // This message to this contact (the contact is not invalid, and the number is not to blame).
  131047: {
    kind: 'permanent',
    title: 'Re-engagement message (24 h customer window closed)',
    scope: 'recipient',
    hint: 'free-form messages only reach contacts who wrote in the last 24 h; send an approved template instead (the contact is not invalid)',
  },
  // The content: every recipient would fail the same way.
  100: { kind: 'permanent', title: 'Invalid parameter', scope: 'campaign', hint: TEMPLATE_HINT },
  131008: { kind: 'permanent', title: 'Required parameter is missing', scope: 'campaign', hint: TEMPLATE_HINT },
  131009: { kind: 'permanent', title: 'Parameter value is not valid', scope: 'campaign', hint: TEMPLATE_HINT },
  131051: { kind: 'permanent', title: 'Unsupported message type', scope: 'campaign' },
  131052: { kind: 'permanent', title: 'Media download error', scope: 'campaign', hint: 'the media URL must be public and reachable by Meta' },
  131053: { kind: 'permanent', title: 'Media upload error', scope: 'campaign', hint: 'check the media type and size' },
  132000: { kind: 'permanent', title: 'Template parameter count mismatch', scope: 'campaign', hint: TEMPLATE_HINT },
  132001: { kind: 'permanent', title: 'Template does not exist (name or language)', scope: 'campaign', hint: TEMPLATE_HINT },
  132005: { kind: 'permanent', title: 'Template hydrated text too long', scope: 'campaign', hint: TEMPLATE_HINT },
  132007: { kind: 'permanent', title: 'Template format character policy violated', scope: 'campaign', hint: TEMPLATE_HINT },
  132012: { kind: 'permanent', title: 'Template parameter format mismatch', scope: 'campaign', hint: TEMPLATE_HINT },
  132015: { kind: 'permanent', title: 'Template is paused', scope: 'campaign', hint: 'the template was paused for low quality; edit it or use another' },
  132016: { kind: 'permanent', title: 'Template is disabled', scope: 'campaign', hint: 'the template was disabled; use another' },
  // The number, the WABA or the token: pause the account.
  131048: { kind: 'account', title: 'Spam rate limit hit', accountReason: 'restricted', hint: 'too many messages were blocked or reported; pause this number for hours and check its quality rating' },
  368: { kind: 'account', title: 'Temporarily blocked for policy violations', accountReason: 'restricted', hint: 'see Policy Enforcement in WhatsApp Manager' },
  131031: { kind: 'account', title: 'Account locked', accountReason: 'restricted', hint: 'the WhatsApp Business Account was locked; see WhatsApp Manager' },
  130497: { kind: 'account', title: 'Business account restricted from messaging users in this country', accountReason: 'restricted' },
  131042: { kind: 'account', title: 'Business eligibility / payment issue', accountReason: 'restricted', hint: 'fix the payment method in WhatsApp Manager' },
  131037: { kind: 'account', title: 'Display name approval needed', accountReason: 'restricted' },
  131045: { kind: 'account', title: 'Incorrect certificate (number not registered)', accountReason: 'unauthorized', hint: 'register the phone number with the Cloud API' },
  133010: { kind: 'account', title: 'Phone number not registered', accountReason: 'unauthorized', hint: 'register the phone number with the Cloud API' },
  33: { kind: 'account', title: 'Phone number ID not valid (deleted)', accountReason: 'unauthorized', hint: 'check phoneNumberId' },
  190: { kind: 'account', title: 'Access token expired or invalid', accountReason: 'unauthorized', hint: 'refresh the access token (a System User token does not expire) and update accessToken; every number using this token is stopped' },
  0: { kind: 'account', title: 'AuthException', accountReason: 'unauthorized', hint: 'get a new access token' },
  3: { kind: 'account', title: 'Capability or permissions issue', accountReason: 'unauthorized', hint: PERMISSION_HINT },
  10: { kind: 'account', title: 'Permission denied', accountReason: 'unauthorized', hint: PERMISSION_HINT },
  131005: { kind: 'account', title: 'Access denied', accountReason: 'unauthorized', hint: PERMISSION_HINT },
});

const PERMISSION_RANGE: CodeClass = { kind: 'account', title: 'API permission', accountReason: 'unauthorized', hint: PERMISSION_HINT };

/**
 * How a Graph error `code` is handled (sync answers and webhook `errors` alike), or `null` when the
 * code is unknown. Codes 200-299 are API permission errors (account, unauthorized).
 */
export function classifyCloudApiCode(code: number): CodeClass | null {
  const known = CLOUD_API_ERROR_TABLE[code];
  if (known) return known;
  if (code >= 200 && code <= 299) return PERMISSION_RANGE;
  return null;
}

/** Back-off for each `rate_limited` code when the answer carries no `Retry-After`. */
export interface Backoffs {
  throughputBackoffMs: number;
  maintenanceBackoffMs: number;
  /** Already escalated for this recipient (see the transport's pair-rate memory). */
  pairRateBackoffMs: number;
}

export interface ClassifyInput {
  status: number;
  /** Parsed JSON body, or undefined when the body was not JSON. */
  body: unknown;
  operation: Operation;
  phoneNumberId: string;
  backoffs: Backoffs;
  /** The `Retry-After` header, if any (Graph sends none; a proxy in front of it may). */
  retryAfter?: string | null;
  /** For the message: e.g. `POST /v23.0/123/messages`. */
  route?: string;
  /** The recipient, for messages that name them. */
  to?: string;
}

export interface GraphError {
  code: number;
  message: string;
  details?: string;
  subcode?: number;
  type?: string;
  fbtraceId?: string;
}

type Rec = Record<string, unknown>;
const isRecord = (v: unknown): v is Rec => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The Graph error envelope `{ error: { message, type, code, error_data: { details }, error_subcode?, fbtrace_id } }`, or null. */
export function graphError(body: unknown): GraphError | null {
  if (!isRecord(body) || !isRecord(body.error)) return null;
  const e = body.error;
  const code = typeof e.code === 'number' ? e.code : typeof e.code === 'string' && /^\d+$/.test(e.code) ? Number(e.code) : null;
  if (code === null) return null;
  const data = isRecord(e.error_data) ? e.error_data : {};
  return {
    code,
    message: typeof e.message === 'string' ? e.message : '',
    ...(typeof data.details === 'string' ? { details: data.details } : {}),
    ...(typeof e.error_subcode === 'number' ? { subcode: e.error_subcode } : {}),
    ...(typeof e.type === 'string' ? { type: e.type } : {}),
    ...(typeof e.fbtrace_id === 'string' ? { fbtraceId: e.fbtrace_id } : {}),
  };
}

/** Token sub-codes Meta documents for 190. */
const TOKEN_SUBCODES: Record<number, string> = {
  458: 'the app is not installed for this user',
  459: 'the user is checkpointed',
  460: 'the password changed',
  463: 'the token expired',
  464: 'the user is unconfirmed',
  467: 'the token is invalid',
};

/** The options of a `TransportError` for a classified code. */
export function errorOptions(cls: CodeClass, code: number, backoffs: Backoffs, retryAfter?: number): ConstructorParameters<typeof TransportError>[2] {
  const options: NonNullable<ConstructorParameters<typeof TransportError>[2]> = { providerCode: code };
  if (cls.kind === 'rate_limited') {
    const fallback = cls.backoff === 'maintenance' ? backoffs.maintenanceBackoffMs : cls.backoff === 'pairRate' ? backoffs.pairRateBackoffMs : backoffs.throughputBackoffMs;
    options.retryAfterMs = retryAfter ?? fallback;
  }
  if (cls.scope) options.scope = cls.scope;
  if (cls.optOut) options.optOut = true;
  if (cls.accountReason) options.accountReason = cls.accountReason;
  return options;
}

/** One line for a Graph error: `(#131047) Re-engagement message: details`. */
export function describeGraphError(e: { code: number; message?: string; title?: string; details?: string }): string {
  const head = e.message || e.title || `error ${e.code}`;
  const withCode = head.includes(`#${e.code}`) ? head : `(#${e.code}) ${head}`;
  return e.details && !withCode.includes(e.details) ? `${withCode}: ${e.details}` : withCode;
}

/**
 * Turn a Graph API error answer into a `TransportError` (CONTRACTS.md 3.2/3.5), keyed on the
 * Graph error `code` through `CLOUD_API_ERROR_TABLE`. `providerCode` is the Graph code (the HTTP
 * status when the body carries none).
 *
 * Codes 1 and 131000 ("unknown error", "something went wrong") are `transient` with a 4xx answer
 * but `ambiguous` for a send answered with a 5xx: nothing says the message did not leave.
 *
 * Without a known code:
 * - a Graph envelope with an unknown code: HTTP 5xx -> `ambiguous` for a send (`transient` for a
 *   query), HTTP 429 -> `rate_limited`, otherwise `permanent` for this message only (no scope: a
 *   code that keeps coming back disables the account through the engine's failure count);
 * - no Graph envelope (a proxy or gateway answered): 5xx -> `ambiguous` (send) / `transient` (query),
 *   408 -> `transient`, 429 -> `rate_limited`, 401/403 -> `account` (`unauthorized`), other 4xx -> `permanent`.
 */
export function classifyCloudApiError(input: ClassifyInput): TransportError {
  const { status, body, operation, phoneNumberId, backoffs } = input;
  const where = `[cloud-api] ${phoneNumberId}${input.route ? ` ${input.route}` : ''}`;
  const unknownOutcome: TransportErrorKind = operation === 'send' ? 'ambiguous' : 'transient';
  const hinted = retryAfterMs(input.retryAfter);
  const error = graphError(body);

  if (error) {
    // Graph's generic "object does not exist / cannot be loaded" (code 100, subcode 33): the phone
    // number ID is wrong or the token cannot reach it. A configuration problem, not the content.
    if (error.code === 100 && error.subcode === 33) {
      return new TransportError('account', `${where}: ${describeGraphError(error)} (HTTP ${status}); check phoneNumberId and that the token's app can reach it`, {
        providerCode: 100,
        accountReason: 'unauthorized',
      });
    }
    const cls = classifyCloudApiCode(error.code);
    const text = describeGraphError(error);
    if (cls?.ambiguousOn5xx && status >= 500 && operation === 'send') {
      return new TransportError('ambiguous', `${where}: ${text} (HTTP ${status}); the message may have been sent (its status webhook will tell)`, { providerCode: error.code });
    }
    if (cls) {
      let hint = cls.hint ? `; ${cls.hint}` : '';
      if (error.code === 190 && error.subcode !== undefined && TOKEN_SUBCODES[error.subcode]) hint = ` (${TOKEN_SUBCODES[error.subcode]})${hint}`;
      const who = cls.scope === 'recipient' && input.to ? ` [to ${input.to}]` : '';
      return new TransportError(cls.kind, `${where}: ${text}${who} (HTTP ${status})${hint}`, errorOptions(cls, error.code, backoffs, hinted));
    }
    if (status >= 500) return new TransportError(unknownOutcome, `${where}: ${text} (HTTP ${status}, unknown code)${operation === 'send' ? '; the message may have been sent' : ''}`, { providerCode: error.code });
    if (status === 429) return new TransportError('rate_limited', `${where}: ${text} (HTTP 429, unknown code)`, { providerCode: error.code, retryAfterMs: hinted ?? backoffs.throughputBackoffMs });
    return new TransportError('permanent', `${where}: ${text} (HTTP ${status}, unknown code: failed this message only)`, { providerCode: error.code });
  }

  const snippet = body === undefined ? '' : `: ${JSON.stringify(body).slice(0, 200)}`;
  if (status >= 500) return new TransportError(unknownOutcome, `${where}: HTTP ${status} without a Graph error${snippet}${operation === 'send' ? '; the message may have been sent' : ''}`, { providerCode: status });
  if (status === 408) return new TransportError('transient', `${where}: HTTP 408, the request did not complete`, { providerCode: status });
  if (status === 429) return new TransportError('rate_limited', `${where}: HTTP 429${snippet}`, { providerCode: status, retryAfterMs: hinted ?? backoffs.throughputBackoffMs });
  if (status === 401 || status === 403) {
    return new TransportError('account', `${where}: HTTP ${status}${snippet}; check accessToken and baseUrl`, { providerCode: status, accountReason: 'unauthorized' });
  }
  return new TransportError('permanent', `${where}: HTTP ${status}${snippet}`, { providerCode: status });
}
