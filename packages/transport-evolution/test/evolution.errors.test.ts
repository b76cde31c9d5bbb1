import { createServer } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TransportError } from '@disparo/core/transport';
import { classifyEvolutionError, createEvolutionTransport } from '@disparo/transport-evolution';
import { envelope, FakeEvolution, type Reply } from './fake-evolution.js';
import { fixture, fixtureNames } from './fixtures.js';
import { message, transportError, transportFor } from './helpers.js';

let fake: FakeEvolution;
beforeEach(async () => {
  fake = await FakeEvolution.start();
});
afterEach(async () => {
  await fake.close();
});

/** Every evolution.error.* fixture and how a send must classify it (CONTRACTS.md 1.4 / 1.10). */
const ERROR_FIXTURES: Record<string, { kind: TransportError['kind']; accountReason?: string; providerCode: number; retryAfterMs?: number }> = {
  'evolution.error.number-not-exists.json': { kind: 'invalid_recipient', providerCode: 400 },
  'evolution.error.validation.json': { kind: 'permanent', providerCode: 400 },
  'evolution.error.text-required.json': { kind: 'permanent', providerCode: 400 },
  'evolution.error.rate-overlimit.json': { kind: 'rate_limited', providerCode: 400, retryAfterMs: 300_000 },
  'evolution.error.connection-closed.400.json': { kind: 'account', accountReason: 'disconnected', providerCode: 400 },
  'evolution.error.connection-closed.500.json': { kind: 'account', accountReason: 'disconnected', providerCode: 500 },
  'evolution.error.instance-not-loaded.500.json': { kind: 'account', accountReason: 'disconnected', providerCode: 500 },
  'evolution.error.unauthorized.json': { kind: 'account', accountReason: 'unauthorized', providerCode: 401 },
  'evolution.error.instance-not-found.json': { kind: 'account', accountReason: 'unauthorized', providerCode: 404 },
};

describe('error fixtures over HTTP', () => {
  it('covers every evolution.error.* fixture', () => {
    expect(Object.keys(ERROR_FIXTURES).sort()).toEqual(fixtureNames('evolution.error.'));
  });

  it.each(Object.entries(ERROR_FIXTURES))('%s -> %o', async (name, expected) => {
    fake.next('send', { fixture: name });
    const error = await transportError(transportFor(fake).send(message()));
    expect(error.kind).toBe(expected.kind);
    expect(error.providerCode).toBe(expected.providerCode);
    expect(error.accountReason).toBe(expected.accountReason);
    if (expected.retryAfterMs !== undefined) expect(error.retryAfterMs).toBe(expected.retryAfterMs);
    expect(error.message).toMatch(/^\[evolution\] campaign-01 POST \/message\/sendText\/campaign-01: /);
    expect(fake.stored).toHaveLength(0);
  });
});

describe('errors the fake server produces by itself', () => {
  it('number not on WhatsApp -> invalid_recipient', async () => {
    fake.notOnWhatsApp.add('5511999990002');
    const error = await transportError(transportFor(fake).send(message({ to: '5511999990002' })));
    expect(error.kind).toBe('invalid_recipient');
    expect(error.message).toContain('5511999990002 is not on WhatsApp');
  });

  it('instance disconnected -> account (disconnected), nothing sent', async () => {
    fake.state = 'close';
    const error = await transportError(transportFor(fake).send(message()));
    expect(error).toMatchObject({ kind: 'account', accountReason: 'disconnected', providerCode: 500 });
  });

  it('wrong API key -> account (unauthorized)', async () => {
    const error = await transportError(transportFor(fake, { apiKey: 'wrong' }).send(message()));
    expect(error).toMatchObject({ kind: 'account', accountReason: 'unauthorized', providerCode: 401 });
  });

  it('unknown instance -> account, checked before the key as Evolution does', async () => {
    const error = await transportError(transportFor(fake, { instance: 'campaign-99', apiKey: 'wrong' }).send(message()));
    expect(error).toMatchObject({ kind: 'account', providerCode: 404 });
  });

  it('a wrong base path -> account (misconfigured), never a send', async () => {
    const error = await transportError(transportFor(fake, { baseUrl: `${fake.url}/v2` }).send(message()));
    expect(error).toMatchObject({ kind: 'account', providerCode: 404 });
    expect(error.message).toContain('Cannot POST');
  });
});

describe('outcome unknown vs nothing sent', () => {
  it('a timeout after the request left is ambiguous (and the message did go out)', async () => {
    fake.next('send', { sendFirst: true, hold: true });
    const error = await transportError(transportFor(fake, { timeoutMs: 500 }).send(message()));
    expect(error).toMatchObject({ kind: 'ambiguous', providerCode: 'timeout' });
    expect(fake.stored).toHaveLength(1);
  });

  it('a connection destroyed after the request was read is ambiguous', async () => {
    fake.next('send', { sendFirst: true, destroy: true });
    const error = await transportError(transportFor(fake).send(message()));
    expect(error.kind).toBe('ambiguous');
    expect(fake.stored).toHaveLength(1);
  });

  it('connection refused (nothing left) is transient', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const t = createEvolutionTransport({ baseUrl: `http://127.0.0.1:${port}`, apiKey: 'k', instance: 'campaign-01', timeoutMs: 2_000 });
    const error = await transportError(t.send(message()));
    expect(error).toMatchObject({ kind: 'transient', providerCode: 'ECONNREFUSED' });
  });

  it.each<[string, Reply, TransportError['kind']]>([
    ['400 "Error: Timed Out" (inside the send)', { status: 400, body: envelope(400, ['Error: Timed Out']) }, 'ambiguous'],
    ['400 PrismaClientKnownRequestError (after the send)', { status: 400, body: envelope(400, ['PrismaClientKnownRequestError: Invalid `prisma.message.create()` invocation']) }, 'ambiguous'],
    ['400 "Error: Connection Terminated"', { status: 400, body: envelope(400, ['Error: Connection Terminated']) }, 'account'],
    ['500 "rate-overlimit" (number check)', { status: 500, body: envelope(500, 'rate-overlimit') }, 'rate_limited'],
    ['500 "Timed Out" (number check, before the send)', { status: 500, body: envelope(500, 'Timed Out') }, 'transient'],
    ['500 with an unknown message', { status: 500, body: envelope(500, 'something odd') }, 'ambiguous'],
    ['502 from a proxy (HTML)', { status: 502, raw: '<html>Bad Gateway</html>' }, 'ambiguous'],
    ['504 from a proxy (empty)', { status: 504 }, 'ambiguous'],
    ['400 of unknown shape', { status: 400, body: { weird: true } }, 'ambiguous'],
    ['400 service validation sentence', { status: 400, body: envelope(400, ['Owned media must be a url or base64']) }, 'permanent'],
    ['403', { status: 403, body: envelope(403, ['Forbidden']) }, 'account'],
    ['413 payload too large', { status: 413, raw: 'too large' }, 'permanent'],
    ['201 without a key', { status: 201, body: { ok: true } }, 'ambiguous'],
    ['201 with a body that is not JSON', { status: 201, raw: 'created' }, 'ambiguous'],
  ])('%s -> %s', async (_name, reply, kind) => {
    fake.next('send', reply);
    const error = await transportError(transportFor(fake).send(message()));
    expect(error.kind).toBe(kind);
  });

  it('429 from a proxy honours Retry-After', async () => {
    fake.next('send', { status: 429, raw: 'slow down', headers: { 'retry-after': '42' } });
    const error = await transportError(transportFor(fake).send(message()));
    expect(error).toMatchObject({ kind: 'rate_limited', retryAfterMs: 42_000, providerCode: 429 });
  });

  it('rate-overlimit backs off by the configured default', async () => {
    fake.next('send', { fixture: 'evolution.error.rate-overlimit.json' });
    const error = await transportError(transportFor(fake, { rateLimitBackoffMs: 90_000 }).send(message()));
    expect(error.retryAfterMs).toBe(90_000);
  });

  it("rethrows the caller's TransportError reason when it aborts mid-flight", async () => {
    fake.next('send', { sendFirst: true, hold: true });
    const controller = new AbortController();
    const reason = new TransportError('ambiguous', 'send timed out after 50 ms');
    setTimeout(() => controller.abort(reason), 50);
    const error = await transportError(transportFor(fake).send(message(), { signal: controller.signal }));
    expect(error).toBe(reason);
  });

  it("a caller abort with any other reason rejects with that reason, before the call (nothing sent) or mid-flight", async () => {
    const stop = new Error('stop');
    expect(await transportFor(fake).send(message(), { signal: AbortSignal.abort(stop) }).catch((e: unknown) => e)).toBe(stop);
    expect(fake.requests).toHaveLength(0);

    fake.next('send', { hold: true });
    const controller = new AbortController();
    setTimeout(() => controller.abort(stop), 50);
    expect(await transportFor(fake).send(message(), { signal: controller.signal }).catch((e: unknown) => e)).toBe(stop);
  });

  it('queries never report ambiguous: a timeout on a read is transient', async () => {
    fake.next('connectionState', { delayMs: 1_000 });
    const error = await transportError(transportFor(fake, { timeoutMs: 100 }).connectionState());
    expect(error).toMatchObject({ kind: 'transient', providerCode: 'timeout' });
    fake.next('whatsappNumbers', { status: 500, raw: 'oops' });
    expect((await transportError(transportFor(fake).checkNumbers(['5511999990001']))).kind).toBe('transient');
  });
});

describe('classifyEvolutionError', () => {
  const classify = (status: number, body: unknown, operation: 'send' | 'read' = 'send') =>
    classifyEvolutionError({ status, body, operation, instance: 'campaign-01', rateLimitBackoffMs: 300_000 });

  it('classifies every error fixture by its own status field', () => {
    for (const [name, expected] of Object.entries(ERROR_FIXTURES)) {
      const body = fixture(name);
      const error = classify(body.status, body);
      expect({ name, kind: error.kind, accountReason: error.accountReason }).toEqual({ name, kind: expected.kind, accountReason: expected.accountReason });
    }
  });

  it('treats the raw Boom objects of whatsappNumbers by status and data', () => {
    expect(classify(400, { isBoom: true, data: null, output: { statusCode: 428, payload: { message: 'Connection Closed' } } }, 'read').kind).toBe('account');
    expect(classify(400, { isBoom: true, data: 429, output: { statusCode: 500, payload: { message: 'An internal server error occurred' } } }, 'read').kind).toBe('rate_limited');
    expect(classify(400, { isBoom: true, data: null, output: { statusCode: 408, payload: { message: 'Timed Out' } } }, 'read').kind).toBe('transient');
  });
});
