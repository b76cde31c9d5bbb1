import { TransportError } from '@disparo/core/transport';
import type { Operation } from './classify.js';

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface GraphClient {
  /** e.g. `https://graph.facebook.com/v23.0` */
  root: string;
  accessToken: string;
  phoneNumberId: string;
  fetch: FetchLike;
}

export interface GraphCall {
  method: 'GET' | 'POST';
  /** Path under the version root, e.g. `/123/messages`. */
  path: string;
  query?: Record<string, string>;
  body?: unknown;
  operation: Operation;
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

export interface GraphResult {
  status: number;
  headers: Headers;
  /** Parsed JSON, or undefined when the body is empty or not JSON. */
  json: unknown;
  text: string;
  /** For messages: `POST /v23.0/123/messages`. */
  route: string;
}

/**
 * Errors of a request that never reached the server: nothing was sent, so retrying is safe.
 * Anything else (a reset after the request was written, an unknown code) may have reached Meta,
 * so for a send it is ambiguous.
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
 * One Graph API call: the platform fetch with a Bearer token, a timeout and the caller's signal.
 * Resolves with any HTTP answer (the caller classifies it); rejects with a `TransportError` when
 * there is no answer, or with the caller's abort reason when its signal aborts.
 *
 * The timeout is a real timer on purpose: it bounds network I/O, which virtual time cannot move.
 */
export async function graphRequest(client: GraphClient, call: GraphCall): Promise<GraphResult> {
  const version = client.root.slice(client.root.lastIndexOf('/'));
  const route = `${call.method} ${version}${call.path}`;
  const where = `[cloud-api] ${client.phoneNumberId} ${route}`;
  const unknownOutcome = call.operation === 'send' ? 'ambiguous' : 'transient';
  const caller = call.signal;
  // An abort is the caller's decision: it gets its own reason back (the engine's send timeout aborts
  // with an `ambiguous` TransportError, which must come back unchanged), as fetch itself does.
  if (caller?.aborted) throw caller.reason;

  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new Error(`timed out after ${call.timeoutMs} ms`));
  }, call.timeoutMs);
  const onAbort = () => controller.abort(caller?.reason);
  caller?.addEventListener('abort', onAbort, { once: true });

  const query = call.query ? `?${new URLSearchParams(call.query).toString()}` : '';
  const url = `${client.root}${call.path}${query}`;
  const headers: Record<string, string> = { authorization: `Bearer ${client.accessToken}`, accept: 'application/json' };
  if (call.body !== undefined) headers['content-type'] = 'application/json';

  try {
    const response = await client.fetch(url, {
      method: call.method,
      headers,
      body: call.body === undefined ? undefined : JSON.stringify(call.body),
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
    return { status: response.status, headers: response.headers, json, text, route };
  } catch (error) {
    if (timedOut) {
      throw new TransportError(unknownOutcome, `${where}: no answer within ${call.timeoutMs} ms${call.operation === 'send' ? '; the message may have been sent (its status webhook will tell)' : ''}`, {
        providerCode: 'timeout',
        cause: error,
      });
    }
    if (caller?.aborted) throw caller.reason;
    const code = errorCode(error);
    const kind = code && BEFORE_REQUEST_LEFT.has(code) ? 'transient' : unknownOutcome;
    throw new TransportError(kind, `${where}: network error${code ? ` ${code}` : ''} (${describe(error)})`, { providerCode: code, cause: error });
  } finally {
    clearTimeout(timer);
    caller?.removeEventListener('abort', onAbort);
  }
}
