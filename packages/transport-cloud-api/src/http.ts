import { httpRequest, type FetchLike } from '@disparo/core/transport';
import type { Operation } from './classify.js';

export type { FetchLike };

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
 * One Graph API call (see `httpRequest`): a Bearer token, a timeout and the caller's signal.
 * Resolves with any HTTP answer (the caller classifies it).
 */
export async function graphRequest(client: GraphClient, call: GraphCall): Promise<GraphResult> {
  const version = client.root.slice(client.root.lastIndexOf('/'));
  const route = `${call.method} ${version}${call.path}`;
  const query = call.query ? `?${new URLSearchParams(call.query).toString()}` : '';
  const answer = await httpRequest({
    url: `${client.root}${call.path}${query}`,
    method: call.method,
    headers: { authorization: `Bearer ${client.accessToken}` },
    body: call.body,
    timeoutMs: call.timeoutMs,
    signal: call.signal,
    sends: call.operation === 'send',
    where: `[cloud-api] ${client.phoneNumberId} ${route}`,
    unknownOutcomeHint: 'its status webhook will tell',
    fetch: client.fetch,
  });
  return { ...answer, route };
}
