import { TransportError, type OutboundMessage } from '@disparo/core/transport';
import { createCloudApiTransport, type CloudApiTransportOptions } from '@disparo/transport-cloud-api';
import type { FakeGraph } from './fake-graph.js';

export const VERIFY_TOKEN = 'my-verify-token';

export function transportFor(fake: FakeGraph, extra: Partial<CloudApiTransportOptions> = {}) {
  return createCloudApiTransport({
    phoneNumberId: fake.phoneNumberId,
    accessToken: fake.accessToken,
    appSecret: fake.appSecret,
    verifyToken: VERIFY_TOKEN,
    apiVersion: fake.version,
    baseUrl: fake.url,
    timeoutMs: 2_000,
    ...extra,
  });
}

let counter = 0;
export function message(overrides: Partial<OutboundMessage> & { template?: unknown } = {}): OutboundMessage {
  counter++;
  return { to: '5511999990001', text: `Hi Maria, your order #${1000 + counter} has shipped.`, idempotencyKey: `cmp_42:rcpt_${1000 + counter}`, ...overrides } as OutboundMessage;
}

/** The TransportError a promise rejects with (fails the test otherwise). */
export async function transportError(promise: Promise<unknown>): Promise<TransportError> {
  try {
    await promise;
  } catch (error) {
    if (TransportError.isInstance(error)) return error;
    throw new Error(`expected a TransportError, got ${String(error)}`, { cause: error });
  }
  throw new Error('expected the call to fail');
}
