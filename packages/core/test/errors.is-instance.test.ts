import { describe, expect, it } from 'vitest';
import { ConflictError, DisparoError, InvalidTransitionError, NotFoundError, ShutdownError, StoreError, TransportError, ValidationError, WebhookError } from '@disparo/core';

const samples = [
  new ValidationError('bad'),
  new InvalidTransitionError('c1', 'draft', 'completed'),
  new NotFoundError('campaign', 'c1'),
  new StoreError('down'),
  new ConflictError('taken'),
  new TransportError('transient', 'boom'),
  new WebhookError('unsigned', 'unsigned'),
  new ShutdownError(),
];
const classes = [ValidationError, InvalidTransitionError, NotFoundError, StoreError, ConflictError, TransportError, WebhookError, ShutdownError];

describe('error classes', () => {
  it('isInstance is true for its own class only, across every pair', () => {
    for (const [i, cls] of classes.entries()) {
      for (const [j, error] of samples.entries()) expect(cls.isInstance(error), `${cls.name}.isInstance(${error.name})`).toBe(i === j);
      expect(cls.isInstance(new Error('plain'))).toBe(false);
      expect(cls.isInstance({ code: samples[i]!.code })).toBe(false);
    }
    for (const error of samples) expect(DisparoError.isInstance(error)).toBe(true);
  });

  it('carries a stable code and its class name, also for a copy of the class from another bundle', () => {
    expect(samples.map((e) => [e.name, e.code])).toEqual([
      ['ValidationError', 'VALIDATION'],
      ['InvalidTransitionError', 'INVALID_TRANSITION'],
      ['NotFoundError', 'NOT_FOUND'],
      ['StoreError', 'STORE'],
      ['ConflictError', 'CONFLICT'],
      ['TransportError', 'TRANSPORT'],
      ['WebhookError', 'WEBHOOK'],
      ['ShutdownError', 'SHUTDOWN'],
    ]);
    // An error made by another copy of the package (ESM and CJS loaded together) is still recognised.
    const foreign = Object.assign(new Error('x'), { [Symbol.for('disparo.error')]: true, code: 'NOT_FOUND' });
    expect(NotFoundError.isInstance(foreign)).toBe(true);
    expect(ConflictError.isInstance(foreign)).toBe(false);
  });
});
