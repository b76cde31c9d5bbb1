import { TransportError, type OutboundMessage } from '@disparo/core/transport';
import { createEvolutionTransport, type EvolutionTransportOptions } from '@disparo/transport-evolution';
import type { FakeEvolution } from './fake-evolution.js';

export function transportFor(fake: FakeEvolution, extra: Partial<EvolutionTransportOptions> = {}) {
  return createEvolutionTransport({ baseUrl: fake.url, apiKey: fake.apiKey, instance: fake.instance, timeoutMs: 2_000, ...extra });
}

let counter = 0;
export function message(overrides: Partial<OutboundMessage> = {}): OutboundMessage {
  counter++;
  return { to: '5511999990001', text: `Hi Maria, your order #${1000 + counter} has shipped.`, idempotencyKey: `c1:r${counter}`, ...overrides };
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
