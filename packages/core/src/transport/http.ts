import { TransportError } from '../errors.js';

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface HttpRequest {
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  /** Sent as JSON. */
  body?: unknown;
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  /** The request may deliver a message: an answer that never came is then `ambiguous`, not `transient`. */
  sends: boolean;
  /** How errors name the call, e.g. `[evolution] campaign-01 POST /message/sendText/campaign-01`. */
  where: string;
  /** Added to the timeout's message for a send, e.g. "its status webhook will tell". */
  unknownOutcomeHint?: string;
  fetch: FetchLike;
}

export interface HttpAnswer {
  status: number;
  headers: Headers;
  /** Parsed JSON, or undefined when the body is empty or not JSON. */
  json: unknown;
  text: string;
}

/**
 * Errors of a request that never reached the server: nothing was sent, so retrying is safe.
 * Anything else (a reset or close after the request was written, an unknown code) may have
 * reached the provider, so for a send it is ambiguous.
 */
const BEFORE_REQUEST_LEFT = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_NONAME',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
  'ERR_INVALID_URL',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
]);

/** The first `code` along an error's `cause` chain (fetch wraps socket errors as `TypeError: fetch failed`). */
function errorCode(error: unknown, depth = 0): string | undefined {
  if (typeof error !== 'object' || error === null || depth > 5) return undefined;
  const e = error as { code?: unknown; cause?: unknown; errors?: unknown };
  if (typeof e.code === 'string') return e.code;
  if (Array.isArray(e.errors)) {
    for (const inner of e.errors) {
      const code = errorCode(inner, depth + 1);
      if (code) return code;
    }
  }
  return errorCode(e.cause, depth + 1);
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
    return `${error.message}${cause}`;
  }
  return String(error);
}

/**
 * One HTTP call to a provider's API: the platform fetch with a timeout and the caller's signal
 * combined. Resolves with any HTTP answer (the transport classifies statuses); rejects with a
 * `TransportError` when there is no answer (`transient` when the request surely never left,
 * otherwise `ambiguous` for a send), or with the caller's abort reason when its signal aborts (the
 * engine's send timeout aborts with an `ambiguous` TransportError, which must come back unchanged).
 * The timeout is a real timer on purpose: it bounds network I/O, which virtual time cannot move.
 */
export async function httpRequest(req: HttpRequest): Promise<HttpAnswer> {
  const unknownOutcome = req.sends ? 'ambiguous' : 'transient';
  const caller = req.signal;
  if (caller?.aborted) throw caller.reason;
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new Error(`timed out after ${req.timeoutMs} ms`));
  }, req.timeoutMs);
  const onAbort = () => controller.abort(caller?.reason);
  caller?.addEventListener('abort', onAbort, { once: true });
  const headers = { accept: 'application/json', ...req.headers, ...(req.body !== undefined ? { 'content-type': 'application/json' } : {}) };
  try {
    const response = await req.fetch(req.url, {
      method: req.method,
      headers,
      body: req.body === undefined ? undefined : JSON.stringify(req.body),
      signal: controller.signal,
    });
    // Reading the body is part of the call: a reset here still leaves the outcome unknown.
    const text = await response.text();
    let json: unknown;
    if (text.length > 0) {
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
    }
    return { status: response.status, headers: response.headers, json, text };
  } catch (error) {
    if (timedOut) {
      const hint = req.sends ? `; the message may have been sent${req.unknownOutcomeHint ? ` (${req.unknownOutcomeHint})` : ''}` : '';
      throw new TransportError(unknownOutcome, `${req.where}: no answer within ${req.timeoutMs} ms${hint}`, { providerCode: 'timeout', cause: error });
    }
    if (caller?.aborted) throw caller.reason;
    const code = errorCode(error);
    const kind = code && BEFORE_REQUEST_LEFT.has(code) ? 'transient' : unknownOutcome;
    throw new TransportError(kind, `${req.where}: network error${code ? ` ${code}` : ''} (${describe(error)})`, { providerCode: code, cause: error });
  } finally {
    clearTimeout(timer);
    caller?.removeEventListener('abort', onAbort);
  }
}

/** An HTTP `Retry-After` header (seconds, or an HTTP date) in ms from `now`; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null | undefined, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const trimmed = header.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
