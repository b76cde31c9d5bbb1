import { createServer } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TransportError } from '@disparo/core/transport';
import { VirtualClock } from '@disparo/core/testing';
import { classifyCloudApiCode, classifyCloudApiError, CLOUD_API_ERROR_TABLE, createCloudApiTransport } from '@disparo/transport-cloud-api';
import { FakeGraph, graphErrorBody, type Reply } from './fake-graph.js';
import { fixture, fixtureNames } from './fixtures.js';
import { message, transportError, transportFor } from './helpers.js';

let fake: FakeGraph;
beforeEach(async () => {
  fake = await FakeGraph.start();
  fake.pairRate = null;
});
afterEach(async () => {
  await fake.close();
});

type Expected = Pick<TransportError, 'kind'> & Partial<Pick<TransportError, 'scope' | 'optOut' | 'accountReason' | 'retryAfterMs'>>;

/** What the brief and CONTRACTS.md 3.5 say each code must become (backoffs at their defaults). */
const EXPECTED: Record<number, Expected> = {
  130429: { kind: 'rate_limited', retryAfterMs: 1_000 },
  131057: { kind: 'rate_limited', retryAfterMs: 60_000 },
  131056: { kind: 'rate_limited', scope: 'recipient', retryAfterMs: 6_000 },
  131026: { kind: 'invalid_recipient', scope: 'recipient' },
  131049: { kind: 'invalid_recipient', scope: 'recipient' },
  131050: { kind: 'invalid_recipient', scope: 'recipient', optOut: true },
  131047: { kind: 'permanent', scope: 'recipient' },
  100: { kind: 'permanent', scope: 'campaign' },
  131008: { kind: 'permanent', scope: 'campaign' },
  131009: { kind: 'permanent', scope: 'campaign' },
  132000: { kind: 'permanent', scope: 'campaign' },
  132001: { kind: 'permanent', scope: 'campaign' },
  132005: { kind: 'permanent', scope: 'campaign' },
  132007: { kind: 'permanent', scope: 'campaign' },
  132012: { kind: 'permanent', scope: 'campaign' },
  132015: { kind: 'permanent', scope: 'campaign' },
  132016: { kind: 'permanent', scope: 'campaign' },
  131048: { kind: 'account', accountReason: 'restricted' },
  368: { kind: 'account', accountReason: 'restricted' },
  131031: { kind: 'account', accountReason: 'restricted' },
  130497: { kind: 'account', accountReason: 'restricted' },
  131042: { kind: 'account', accountReason: 'restricted' },
  190: { kind: 'account', accountReason: 'unauthorized' },
  0: { kind: 'account', accountReason: 'unauthorized' },
  10: { kind: 'account', accountReason: 'unauthorized' },
  200: { kind: 'account', accountReason: 'unauthorized' },
  250: { kind: 'account', accountReason: 'unauthorized' },
  299: { kind: 'account', accountReason: 'unauthorized' },
  1: { kind: 'transient' },
  2: { kind: 'transient' },
  131000: { kind: 'transient' },
  131016: { kind: 'transient' },
  4: { kind: 'rate_limited', retryAfterMs: 1_000 },
  80007: { kind: 'rate_limited', retryAfterMs: 1_000 },
};

const defaults = (e: Expected) => ({ scope: undefined, optOut: false, accountReason: undefined, retryAfterMs: undefined, ...e });

describe('every code of the brief, sent by the fake server over HTTP', () => {
  it('the error fixtures are all covered', () => {
    for (const name of fixtureNames('cloudapi.error.')) expect(EXPECTED, name).toHaveProperty(/\.(\d+)\.json$/.exec(name)![1]!);
  });

  // All at HTTP 400: the code decides, not the status (statuses that matter are tested below).
  it.each(Object.entries(EXPECTED))('code %s -> %o', async (code, expected) => {
    fake.next({ code: Number(code), status: 400 });
    const error = await transportError(transportFor(fake).send(message()));
    expect({ kind: error.kind, scope: error.scope, optOut: error.optOut, accountReason: error.accountReason, retryAfterMs: error.retryAfterMs }).toEqual(defaults(expected));
    expect(error.providerCode).toBe(Number(code));
    expect(error.message).toMatch(new RegExp(`^\\[cloud-api\\] ${fake.phoneNumberId} POST /v23.0/${fake.phoneNumberId}/messages: \\(#${code}\\)`));
    expect(fake.accepted).toHaveLength(0);
  });

  it('the exported table says what the transport does (one source)', () => {
    for (const [code, expected] of Object.entries(EXPECTED)) {
      const cls = classifyCloudApiCode(Number(code))!;
      expect(cls.kind, `code ${code}`).toBe(expected.kind);
      expect(cls.scope).toBe(expected.scope);
      expect(cls.optOut ?? false).toBe(expected.optOut ?? false);
      expect(cls.accountReason).toBe(expected.accountReason);
    }
    expect(Object.isFrozen(CLOUD_API_ERROR_TABLE)).toBe(true);
  });
});

describe('the same codes with the HTTP statuses Meta uses', () => {
  it.each<[number, number, Expected]>([
    [130429, 429, { kind: 'rate_limited', retryAfterMs: 1_000 }],
    [368, 403, { kind: 'account', accountReason: 'restricted' }],
    [190, 401, { kind: 'account', accountReason: 'unauthorized' }],
    [131016, 503, { kind: 'transient' }],
    [2, 503, { kind: 'transient' }],
    // "Unknown error" with a 5xx does not say the message stayed home: settle it by its webhook.
    [131000, 500, { kind: 'ambiguous' }],
    [1, 500, { kind: 'ambiguous' }],
  ])('code %s at HTTP %s -> %o', async (code, status, expected) => {
    fake.next({ code, status });
    const error = await transportError(transportFor(fake).send(message()));
    expect({ kind: error.kind, scope: error.scope, optOut: error.optOut, accountReason: error.accountReason, retryAfterMs: error.retryAfterMs }).toEqual(defaults(expected));
    expect(error.providerCode).toBe(code);
  });
});

describe('messages that tell the user what to do', () => {
  it('131047 says to use a template and does not blame the recipient', async () => {
    fake.next({ code: 131047 });
    const error = await transportError(transportFor(fake).send(message()));
    expect(error.kind).toBe('permanent');
    expect(error.message).toContain('send an approved template instead');
    expect(error.message).toContain('the contact is not invalid');
  });

  it('190 says to refresh the token, with the sub-code reason', async () => {
    fake.next({ code: 190 });
    const error = await transportError(transportFor(fake).send(message()));
    expect(error.message).toContain('refresh the access token');
    expect(error.message).toContain('the token expired');
    expect(error.message).toContain('HTTP 401');
  });

  it('a wrong access token gets the 190 the server answers', async () => {
    const error = await transportError(transportFor(fake, { accessToken: 'wrong' }).send(message()));
    expect(error).toMatchObject({ kind: 'account', accountReason: 'unauthorized', providerCode: 190 });
  });

  it('a phone number ID the token cannot reach (100, subcode 33) is a configuration error, not a template one', async () => {
    const error = await transportError(transportFor(fake, { phoneNumberId: '999999999999999' }).send(message()));
    expect(error).toMatchObject({ kind: 'account', accountReason: 'unauthorized', providerCode: 100, scope: undefined });
    expect(error.message).toContain('check phoneNumberId');
  });

  it('131056 names the recipient and escalates 4x per repeat to that recipient only, resetting after a success', async () => {
    const t = transportFor(fake, { pairRateBackoffMs: 1_000 });
    const backoffFor = async (to: string) => {
      fake.next({ code: 131056 });
      return (await transportError(t.send(message({ to })))).retryAfterMs;
    };
    expect(await backoffFor('5511999990001')).toBe(1_000);
    expect(await backoffFor('5511999990001')).toBe(4_000);
    expect(await backoffFor('5511999990001')).toBe(16_000);
    expect(await backoffFor('5511999990002')).toBe(1_000);
    await t.send(message({ to: '5511999990001' }));
    const error = (fake.next({ code: 131056 }), await transportError(t.send(message({ to: '5511999990001' }))));
    expect(error.retryAfterMs).toBe(1_000);
    expect(error.message).toContain('[to 5511999990001]');
  });

  it('the pair-rate back-off is capped and forgotten after the cap (transport clock)', async () => {
    const clock = new VirtualClock();
    const t = transportFor(fake, { pairRateBackoffMs: 60_000, pairRateMaxBackoffMs: 300_000, clock });
    const next = async () => (fake.next({ code: 131056 }), (await transportError(t.send(message()))).retryAfterMs);
    expect([await next(), await next(), await next()]).toEqual([60_000, 240_000, 300_000]);
    await clock.advance(300_001);
    expect(await next()).toBe(60_000);
  });

  it('a Retry-After header (a proxy) wins over the configured back-off', async () => {
    fake.next({ code: 130429, headers: { 'retry-after': '7' } });
    expect((await transportError(transportFor(fake).send(message()))).retryAfterMs).toBe(7_000);
  });
});

describe('unknown codes and answers without a Graph error', () => {
  it.each<[string, Reply, Expected]>([
    ['an unknown code at HTTP 400: this message only', { status: 400, body: graphErrorBody(139999) }, { kind: 'permanent' }],
    ['an unknown code at HTTP 500: may have been sent', { status: 500, body: graphErrorBody(139999) }, { kind: 'ambiguous' }],
    ['an unknown code at HTTP 429', { status: 429, body: graphErrorBody(139999) }, { kind: 'rate_limited', retryAfterMs: 1_000 }],
    ['a transient code that says nothing left (131016) at HTTP 500 stays transient', { status: 500, body: graphErrorBody(131016) }, { kind: 'transient' }],
    ['502 from a gateway (HTML)', { status: 502, raw: '<html>Bad Gateway</html>' }, { kind: 'ambiguous' }],
    ['504 empty', { status: 504 }, { kind: 'ambiguous' }],
    ['408', { status: 408 }, { kind: 'transient' }],
    ['429 without a body', { status: 429 }, { kind: 'rate_limited', retryAfterMs: 1_000 }],
    ['403 without a body', { status: 403 }, { kind: 'account', accountReason: 'unauthorized' }],
    ['413', { status: 413, raw: 'too large' }, { kind: 'permanent' }],
    ['200 without messages[0].id', { status: 200, body: { messaging_product: 'whatsapp', contacts: [] } }, { kind: 'ambiguous' }],
    ['200 that is not JSON', { status: 200, raw: 'ok' }, { kind: 'ambiguous' }],
  ])('%s', async (_name, reply, expected) => {
    fake.next(reply);
    const error = await transportError(transportFor(fake).send(message()));
    expect({ kind: error.kind, scope: error.scope, optOut: error.optOut, accountReason: error.accountReason, retryAfterMs: error.retryAfterMs }).toEqual(defaults(expected));
  });

  it('classifyCloudApiError on a read (health) never says ambiguous', () => {
    const backoffs = { throughputBackoffMs: 1, maintenanceBackoffMs: 1, pairRateBackoffMs: 1 };
    expect(classifyCloudApiError({ status: 500, body: graphErrorBody(139999), operation: 'read', phoneNumberId: '1', backoffs }).kind).toBe('transient');
    expect(classifyCloudApiError({ status: 502, body: undefined, operation: 'read', phoneNumberId: '1', backoffs }).kind).toBe('transient');
    expect(classifyCloudApiError({ status: 500, body: graphErrorBody(131000), operation: 'read', phoneNumberId: '1', backoffs }).kind).toBe('transient');
    expect(classifyCloudApiError({ status: 400, body: fixture('cloudapi.error.368.json'), operation: 'read', phoneNumberId: '1', backoffs }).kind).toBe('account');
  });
});

describe('outcome unknown vs nothing sent', () => {
  it('a timeout after the request left is ambiguous, and the message did go out', async () => {
    fake.next({ sendFirst: true, hold: true });
    const error = await transportError(transportFor(fake, { timeoutMs: 300 }).send(message()));
    expect(error).toMatchObject({ kind: 'ambiguous', providerCode: 'timeout' });
    expect(error.message).toContain('status webhook');
    expect(fake.accepted).toHaveLength(1);
  });

  it('a connection destroyed after the request was read is ambiguous', async () => {
    fake.next({ sendFirst: true, destroy: true });
    expect((await transportError(transportFor(fake).send(message()))).kind).toBe('ambiguous');
    expect(fake.accepted).toHaveLength(1);
  });

  it('connection refused (nothing left) is transient', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const t = createCloudApiTransport({ phoneNumberId: '100000000000001', accessToken: 't', baseUrl: `http://127.0.0.1:${port}` });
    expect(await transportError(t.send(message()))).toMatchObject({ kind: 'transient', providerCode: 'ECONNREFUSED' });
  });

  it("rethrows the caller's abort reason, before the call (nothing sent) or in flight", async () => {
    const stop = new TransportError('ambiguous', 'send timed out after 50 ms');
    expect(await transportFor(fake).send(message(), { signal: AbortSignal.abort(stop) }).catch((e: unknown) => e)).toBe(stop);
    expect(fake.requests).toHaveLength(0);
    fake.next({ hold: true });
    const controller = new AbortController();
    setTimeout(() => controller.abort(stop), 50);
    expect(await transportFor(fake).send(message(), { signal: controller.signal }).catch((e: unknown) => e)).toBe(stop);
  });
});

describe('the fake server limits like Meta (what the throughput tests will measure)', () => {
  it('throughput: past the per-second limit it answers 130429, and never accepts more than the limit in any second', async () => {
    fake.numbers.get(fake.phoneNumberId)!.throughputPerSecond = 20;
    const t = transportFor(fake);
    const outcomes = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        t.send(message({ to: `55119999${String(10_000 + i)}` })).then(
          () => 'ok',
          (e: TransportError) => `${e.kind}:${e.providerCode}`,
        ),
      ),
    );
    expect(outcomes.filter((o) => o === 'ok').length).toBe(20);
    expect(outcomes.filter((o) => o === 'rate_limited:130429').length).toBe(40);
    expect(fake.maxInWindow()).toBe(20);
    expect(fake.perSecond().every((n) => n <= 20)).toBe(true);
  });

  it('pair rate: a burst to one recipient, then 131056 for that recipient only', async () => {
    fake.pairRate = { burst: 2, intervalMs: 6_000 };
    const t = transportFor(fake);
    await t.send(message({ to: '5511999990001' }));
    await t.send(message({ to: '5511999990001' }));
    expect(await transportError(t.send(message({ to: '5511999990001' })))).toMatchObject({ kind: 'rate_limited', scope: 'recipient', providerCode: 131056 });
    await t.send(message({ to: '5511999990002' }));
    expect(fake.accepted.map((m) => m.to)).toEqual(['5511999990001', '5511999990001', '5511999990002']);
  });

  it('standing injections by code, recipient and count', async () => {
    fake.inject({ code: 131026, to: '5511999990009', times: 1 });
    const t = transportFor(fake);
    expect((await transportError(t.send(message({ to: '5511999990009' })))).kind).toBe('invalid_recipient');
    await t.send(message({ to: '5511999990009' }));
    expect(fake.accepted).toHaveLength(1);
  });
});
