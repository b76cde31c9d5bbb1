import { describe, expect, it } from 'vitest';
import { ValidationError } from '@disparo/core/transport';
import { createEvolutionTransport, webhookSetRequest } from '@disparo/transport-evolution';

const valid = { baseUrl: 'https://evolution.example.com/', apiKey: 'k', instance: 'campaign-01' };

function validationError(fn: () => unknown): ValidationError {
  try {
    fn();
  } catch (error) {
    if (ValidationError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected a ValidationError');
}

describe('createEvolutionTransport options', () => {
  it('accepts the minimal options and names the transport', () => {
    const t = createEvolutionTransport(valid);
    expect(t.name).toBe('evolution');
    expect(t.instance).toBe('campaign-01');
  });

  it.each([
    [{ ...valid, baseUrl: 'not a url' }, 'baseUrl'],
    [{ ...valid, baseUrl: 'ftp://evolution.example.com' }, 'baseUrl'],
    [{ ...valid, apiKey: '' }, 'apiKey'],
    [{ ...valid, instance: '' }, 'instance'],
    [{ ...valid, timeoutMs: 0 }, 'timeoutMs'],
    [{ ...valid, timeoutMs: 1.5 }, 'timeoutMs'],
    [{ ...valid, fetch: 'nope' }, 'fetch'],
    [{ ...valid, delayMs: -1 }, 'delayMs'],
    [{ ...valid, webhook: { jwtKey: '' } }, 'webhook.jwtKey'],
    [{ ...valid, webhook: { secrett: 'x' } }, 'webhook.secrett'],
    [{ ...valid, unknownOption: true }, 'unknownOption'],
  ])('rejects %o naming %s', (options, field) => {
    const error = validationError(() => createEvolutionTransport(options as never));
    expect(error.field).toBe(field);
    expect(error.message).toContain('Evolution transport options');
  });

  it('rejects a missing option by name', () => {
    const { apiKey: _drop, ...rest } = valid;
    expect(validationError(() => createEvolutionTransport(rest as never)).field).toBe('apiKey');
  });
});

describe('webhookSetRequest', () => {
  it('validates its input with the field named', () => {
    expect(validationError(() => webhookSetRequest({ url: 'nope' })).field).toBe('url');
    expect(validationError(() => webhookSetRequest({ url: 'https://x.example', events: ['NOT_AN_EVENT' as never] })).field).toBe('events.0');
    expect(validationError(() => webhookSetRequest({ url: 'https://x.example', events: [] })).field).toBe('events');
    expect(validationError(() => webhookSetRequest({ url: 'https://x.example', secret: 's', headerName: 'authorization' })).field).toBe('headerName');
  });
});
