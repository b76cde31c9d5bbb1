import { describe, expect, it } from 'vitest';
import { ValidationError } from '@disparo/core/transport';
import { createCloudApiTransport } from '@disparo/transport-cloud-api';

const valid = { phoneNumberId: '100000000000001', accessToken: 'EAAG-token' };

function validationError(fn: () => unknown): ValidationError {
  try {
    fn();
  } catch (error) {
    if (ValidationError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected a ValidationError');
}

describe('createCloudApiTransport options', () => {
  it('accepts the minimal options and names the transport', () => {
    const t = createCloudApiTransport(valid);
    expect(t.name).toBe('cloud-api');
    expect(t.phoneNumberId).toBe('100000000000001');
    // No lookup (Meta has none), no number check, no connection: the conformance suite skips those.
    expect('lookup' in t).toBe(false);
    expect('checkNumbers' in t).toBe(false);
    expect('connectionState' in t).toBe(false);
  });

  it.each([
    [{ ...valid, phoneNumberId: '+55 11 98888-0000' }, 'phoneNumberId'],
    [{ ...valid, accessToken: '' }, 'accessToken'],
    [{ ...valid, apiVersion: '23' }, 'apiVersion'],
    [{ ...valid, baseUrl: 'graph.facebook.com' }, 'baseUrl'],
    [{ ...valid, appSecret: '' }, 'appSecret'],
    [{ ...valid, verifyToken: '' }, 'verifyToken'],
    [{ ...valid, displayPhoneNumber: 'not a number' }, 'displayPhoneNumber'],
    [{ ...valid, timeoutMs: 0 }, 'timeoutMs'],
    [{ ...valid, throughputBackoffMs: -1 }, 'throughputBackoffMs'],
    [{ ...valid, pacing: { ratePerSecond: 5_000 } }, 'pacing.ratePerSecond'],
    [{ ...valid, pacing: { red: 'stop' } }, 'pacing.red'],
    [{ ...valid, pacing: { nope: 1 } }, 'pacing.nope'],
    [{ ...valid, clock: {} }, 'clock'],
    [{ ...valid, fetch: 'nope' }, 'fetch'],
    [{ ...valid, onQualityUpdate: 1 }, 'onQualityUpdate'],
    [{ ...valid, unknownOption: true }, 'unknownOption'],
  ])('rejects %o naming %s', (options, field) => {
    const error = validationError(() => createCloudApiTransport(options as never));
    expect(error.field).toBe(field);
    expect(error.message).toContain('Cloud API transport options');
  });

  it('rejects a missing option by name', () => {
    const { accessToken: _drop, ...rest } = valid;
    expect(validationError(() => createCloudApiTransport(rest as never)).field).toBe('accessToken');
  });
});
