import { httpRequest, type FetchLike } from '@disparo/core/transport';
import type { Operation } from './classify.js';

export type { FetchLike };

export interface HttpClient {
  baseUrl: string;
  apiKey: string;
  instance: string;
  fetch: FetchLike;
}

export interface HttpCall {
  method: 'GET' | 'POST';
  /** e.g. `/message/sendText`; the instance name is appended. */
  route: string;
  body?: unknown;
  operation: Operation;
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

export interface HttpResult {
  status: number;
  headers: Headers;
  /** Parsed JSON, or undefined when the body is empty or not JSON. */
  json: unknown;
  text: string;
  route: string;
}

/**
 * One call to Evolution (see `httpRequest`): the instance's route, its API key, a timeout and the
 * caller's signal. Resolves with any HTTP answer (the caller classifies statuses).
 */
export async function request(client: HttpClient, call: HttpCall): Promise<HttpResult> {
  const route = `${call.method} ${call.route}/${client.instance}`;
  const answer = await httpRequest({
    url: `${client.baseUrl}${call.route}/${encodeURIComponent(client.instance)}`,
    method: call.method,
    headers: { apikey: client.apiKey },
    body: call.body,
    timeoutMs: call.timeoutMs,
    signal: call.signal,
    sends: call.operation === 'send',
    where: `[evolution] ${client.instance} ${route}`,
    fetch: client.fetch,
  });
  return { ...answer, route };
}
