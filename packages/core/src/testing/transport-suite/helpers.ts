import { expect } from 'vitest';
import { TransportError } from '../../errors.js';
import type { SendResult, TransportEvent } from '../../transport/contract.js';

const EVENT_TYPES = ['status', 'connection', 'account_hold', 'inbound'];

/** Runs a promise and returns what it rejected with; fails the case when it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to reject, but it resolved');
}

export async function transportError(promise: Promise<unknown>): Promise<TransportError> {
  const error = await rejection(promise);
  if (!TransportError.isInstance(error)) throw new Error(`expected a TransportError, got ${describeValue(error)}`, { cause: error });
  return error;
}

export function describeValue(value: unknown): string {
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  return String(value);
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Wait (real time) until `check` holds. */
export async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not seen within ${ms} ms`);
    await new Promise<void>((r) => setTimeout(r, 5));
  }
}

export function expectSendResult(result: SendResult): void {
  expect(typeof result.providerMessageId).toBe('string');
  expect(result.providerMessageId.length).toBeGreaterThan(0);
  expect(typeof result.acceptedAt).toBe('number');
  expect(Number.isFinite(result.acceptedAt)).toBe(true);
  expect(result.acceptedAt).toBeGreaterThan(0);
  if (result.remoteJid !== undefined) expect(typeof result.remoteJid).toBe('string');
}

export function expectEvent(event: TransportEvent): void {
  expect(EVENT_TYPES).toContain(event.type);
}

export const digits = (to: string) => to.split('@')[0]!.replace(/\D/g, '');

