import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebhookError, type TransportEvent } from '@disparo/core/transport';
import {
  createEvolutionTransport,
  createEvolutionWebhookJwt,
  DEFAULT_WEBHOOK_EVENTS,
  evolutionWebhookInstance,
  registerEvolutionWebhook,
  webhookSetRequest,
  type EvolutionTransport,
} from '@disparo/transport-evolution';
import { FakeEvolution } from './fake-evolution.js';
import { fixture, fixtureNames } from './fixtures.js';

const NOW = 1_748_769_500_000;
const JWT_KEY = 'replace-with-shared-secret';
const ID = '3EB0A1B2C3D4E5F6A7B8C9';

function transport(webhook: Parameters<typeof createEvolutionTransport>[0]['webhook'] = { jwtKey: JWT_KEY }): EvolutionTransport {
  return createEvolutionTransport({ baseUrl: 'http://127.0.0.1:9', apiKey: 'k', instance: 'campaign-01', webhook, clock: { now: () => NOW } });
}
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const signed = () => bearer(createEvolutionWebhookJwt(JWT_KEY, { now: NOW }));

/** A JWT built here by hand, so the verifier is not only tested against its own signer. */
function jwt(header: object, payload: object, key = JWT_KEY): string {
  const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const head = `${b64(header)}.${b64(payload)}`;
  return `${head}.${createHmac('sha256', key).update(head).digest('base64url')}`;
}
const iat = Math.floor(NOW / 1000);

function webhookError(fn: () => unknown): WebhookError {
  try {
    fn();
  } catch (error) {
    if (WebhookError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected a WebhookError');
}

/** Expected events for every evolution.webhook.* fixture (the set request is a request body, not a webhook). */
const EXPECTED: Record<string, TransportEvent[] | 'request'> = {
  'evolution.webhook.connection.update.close.loggedOut.json': [{ type: 'connection', state: 'close', stopReason: 'logged_out', detail: 'connection closed (code 401)' }],
  'evolution.webhook.connection.update.connecting.json': [{ type: 'connection', state: 'connecting' }],
  'evolution.webhook.connection.update.open.json': [{ type: 'connection', state: 'open' }],
  'evolution.webhook.messages.update.server-ack.json': [{ type: 'status', providerMessageId: ID, status: 'sent', at: NOW }],
  'evolution.webhook.messages.update.delivery-ack.json': [{ type: 'status', providerMessageId: ID, status: 'delivered', at: NOW }],
  'evolution.webhook.messages.update.read.json': [{ type: 'status', providerMessageId: ID, status: 'read', at: NOW }],
  'evolution.webhook.messages.update.read.lid.json': [{ type: 'status', providerMessageId: ID, status: 'read', at: NOW }],
  'evolution.webhook.messages.update.error.json': [{ type: 'status', providerMessageId: ID, status: 'failed', at: NOW, error: 'provider_error' }],
  'evolution.webhook.messages.upsert.json': [{ type: 'inbound', from: '5511999990001', text: 'Thanks! STOP', at: 1_748_769_400_000, providerMessageId: 'A1B2C3D4E5F60718293A4B5C6D7E8F90' }],
  'evolution.webhook.send.message.json': [],
  'evolution.webhook.status.instance.closed.json': [{ type: 'connection', state: 'close', stopReason: 'logged_out', detail: 'instance closed (code 401)' }],
  'evolution.webhook.set.request.json': 'request',
};

describe('parseWebhook: fixtures', () => {
  it('covers every evolution.webhook.* fixture', () => {
    expect(Object.keys(EXPECTED).sort()).toEqual(fixtureNames('evolution.webhook.'));
  });

  it.each(Object.entries(EXPECTED).filter(([, e]) => e !== 'request'))('%s', (name, expected) => {
    expect(transport().parseWebhook(fixture(name), signed())).toEqual(expected);
  });

  it('webhookSetRequest builds the fixture request', () => {
    const expected = fixture('evolution.webhook.set.request.json');
    const built = webhookSetRequest({ url: expected.webhook.url, jwtKey: JWT_KEY, headers: { 'x-tenant': 'acme' }, events: expected.webhook.events });
    expect(built).toEqual(expected);
  });

  it('the default events are the campaign minimum plus STATUS_INSTANCE', () => {
    const built = webhookSetRequest({ url: 'https://hooks.example.com/evolution' });
    expect(built.webhook.events).toEqual([...DEFAULT_WEBHOOK_EVENTS]);
    expect(built.webhook.events).toEqual(expect.arrayContaining(['SEND_MESSAGE', 'MESSAGES_UPDATE', 'MESSAGES_UPSERT', 'CONNECTION_UPDATE', 'LOGOUT_INSTANCE', 'STATUS_INSTANCE']));
    expect(built.webhook).not.toHaveProperty('headers');
  });
});

describe('parseWebhook: other payloads', () => {
  const t = () => transport();
  const envelope = (event: string, data: unknown, instance = 'campaign-01') => ({ event, instance, data, date_time: '2025-05-31T09:15:02.123Z' });

  it('PLAYED is read; PENDING and DELETED change nothing; numeric statuses are understood', () => {
    const events = (status: unknown) => t().parseWebhook(envelope('messages.update', { keyId: ID, remoteJid: 'x@s.whatsapp.net', fromMe: true, status }), signed());
    expect(events('PLAYED')).toEqual([{ type: 'status', providerMessageId: ID, status: 'read', at: NOW }]);
    expect(events('PENDING')).toEqual([]);
    expect(events('DELETED')).toEqual([]);
    expect(events(3)).toEqual([{ type: 'status', providerMessageId: ID, status: 'delivered', at: NOW }]);
  });

  it('ignores receipts for messages we received', () => {
    expect(t().parseWebhook(envelope('messages.update', { keyId: ID, fromMe: false, status: 'READ' }), signed())).toEqual([]);
  });

  it('logout.instance (data null) and a refused QR stop the account', () => {
    expect(t().parseWebhook(envelope('logout.instance', null), signed())).toEqual([{ type: 'connection', state: 'close', stopReason: 'logged_out', detail: 'instance logged out' }]);
    expect(t().parseWebhook(envelope('connection.update', { instance: 'campaign-01', state: 'refused', statusReason: 428 }), signed())).toEqual([
      { type: 'connection', state: 'close', stopReason: 'logged_out', detail: 'QR code limit reached; scan a new QR code' },
    ]);
  });

  it('maps close codes to stop reasons', () => {
    const reason = (code: number) => (t().parseWebhook(envelope('connection.update', { state: 'close', statusReason: code }), signed())[0] as { stopReason?: string }).stopReason;
    expect([401, 403, 402, 406, 440].map(reason)).toEqual(['logged_out', 'banned', 'banned', 'logged_out', 'replaced']);
  });

  it('inbound from a LID uses remoteJidAlt; groups, LIDs without a phone, own messages and reactions are not replies', () => {
    const upsert = (key: object, extra: object = {}) =>
      t().parseWebhook(envelope('messages.upsert', { key: { id: 'IN1', fromMe: false, ...key }, message: { conversation: 'SAIR' }, messageType: 'conversation', messageTimestamp: 1_748_769_400, ...extra }), signed());
    expect(upsert({ remoteJid: '123456789012345@lid', remoteJidAlt: '5511999990003@s.whatsapp.net' })).toEqual([
      { type: 'inbound', from: '5511999990003', text: 'SAIR', at: 1_748_769_400_000, providerMessageId: 'IN1' },
    ]);
    expect(upsert({ remoteJid: '123456789012345@lid' })).toEqual([]);
    expect(upsert({ remoteJid: '120363025246125888@g.us', participant: '5511999990003@s.whatsapp.net' })).toEqual([]);
    expect(upsert({ remoteJid: '5511999990003@s.whatsapp.net', fromMe: true })).toEqual([]);
    expect(upsert({ remoteJid: '5511999990003@s.whatsapp.net' }, { messageType: 'reactionMessage', message: { reactionMessage: { text: '👍' } } })).toEqual([]);
  });

  it('reads replies in extended text and captions', () => {
    const upsert = (message: object, messageType: string) =>
      (t().parseWebhook(envelope('messages.upsert', { key: { id: 'IN2', remoteJid: '5511999990003@s.whatsapp.net', fromMe: false }, message, messageType }), signed())[0] as { text: string }).text;
    expect(upsert({ extendedTextMessage: { text: 'PARAR por favor' } }, 'extendedTextMessage')).toBe('PARAR por favor');
    expect(upsert({ imageMessage: { caption: 'stop' } }, 'imageMessage')).toBe('stop');
    expect(upsert({ audioMessage: {} }, 'audioMessage')).toBe('');
  });

  it("returns [] for events it does not use and for another instance's webhooks", () => {
    expect(t().parseWebhook(envelope('presence.update', { id: 'x' }), signed())).toEqual([]);
    expect(t().parseWebhook(envelope('qrcode.updated', { qrcode: {} }), signed())).toEqual([]);
    const other = fixture('evolution.webhook.connection.update.close.loggedOut.json');
    other.instance = 'campaign-02';
    expect(t().parseWebhook(other, signed())).toEqual([]);
  });

  it('accepts the raw body as a string or bytes, and upper-case event names', () => {
    const raw = JSON.stringify(fixture('evolution.webhook.messages.update.read.json'));
    expect(t().parseWebhook(raw, signed())).toHaveLength(1);
    expect(t().parseWebhook(Buffer.from(raw), signed())).toHaveLength(1);
    expect(t().parseWebhook(envelope('MESSAGES_UPDATE', { keyId: ID, fromMe: true, status: 'READ' }), signed())).toHaveLength(1);
  });

  it('evolutionWebhookInstance routes a shared URL', () => {
    expect(evolutionWebhookInstance(fixture('evolution.webhook.send.message.json'))).toBe('campaign-01');
    expect(evolutionWebhookInstance('not json')).toBeNull();
  });

  it.each([
    ['a body that is not JSON', '{"event":'],
    ['an array', []],
    ['no event', { instance: 'campaign-01', data: {} }],
    ['messages.update without keyId', { event: 'messages.update', instance: 'campaign-01', data: { status: 'READ' } }],
    ['messages.update without status', { event: 'messages.update', instance: 'campaign-01', data: { keyId: ID } }],
    ['messages.upsert without key', { event: 'messages.upsert', instance: 'campaign-01', data: { message: {} } }],
    ['connection.update without state', { event: 'connection.update', instance: 'campaign-01', data: {} }],
    ['status.instance without status', { event: 'status.instance', instance: 'campaign-01', data: null }],
  ])('rejects %s as malformed', (_name, body) => {
    expect(webhookError(() => t().parseWebhook(body, signed())).reason).toBe('malformed');
  });
});

describe('parseWebhook: authentication', () => {
  const body = () => fixture('evolution.webhook.messages.update.read.json');

  it('accepts a valid HS256 JWT, case-insensitive header names and array values', () => {
    const token = jwt({ alg: 'HS256', typ: 'JWT' }, { iat, exp: iat + 600, app: 'evolution', action: 'webhook' });
    expect(transport().parseWebhook(body(), { Authorization: `Bearer ${token}` })).toHaveLength(1);
    expect(transport().parseWebhook(body(), { authorization: [`bearer ${token}`] })).toHaveLength(1);
    expect(transport().parseWebhook(body(), new Headers({ authorization: `Bearer ${token}` }))).toHaveLength(1);
    // no exp: nothing to check
    expect(transport().parseWebhook(body(), bearer(jwt({ alg: 'HS256' }, { iat })))).toHaveLength(1);
  });

  it.each([
    ['no credential', {}, 'unsigned'],
    ['another key', bearer(jwt({ alg: 'HS256' }, { iat, exp: iat + 600 }, 'other-key')), 'bad_signature'],
    ['an expired token', bearer(jwt({ alg: 'HS256' }, { iat: iat - 1200, exp: iat - 600 })), 'bad_signature'],
    ['alg none', bearer(`${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(`{"iat":${iat}}`).toString('base64url')}.`), 'bad_signature'],
    ['a token issued in the future', bearer(jwt({ alg: 'HS256' }, { iat: iat + 3600, exp: iat + 4200 })), 'bad_signature'],
    ['a tampered payload', bearer(jwt({ alg: 'HS256' }, { iat, exp: iat + 600 }).replace(/\.[^.]+\./, `.${Buffer.from(`{"iat":${iat},"exp":${iat + 99999}}`).toString('base64url')}.`)), 'bad_signature'],
    ['not a bearer token', { authorization: 'Basic dXNlcjpwYXNz' }, 'bad_signature'],
    ['garbage', bearer('not.a.jwt'), 'bad_signature'],
  ])('rejects %s', (_name, headers, reason) => {
    expect(webhookError(() => transport().parseWebhook(body(), headers as Record<string, string>)).reason).toBe(reason);
  });

  it('tolerates small clock skew on exp', () => {
    expect(transport().parseWebhook(body(), bearer(jwt({ alg: 'HS256' }, { iat: iat - 630, exp: iat - 30 })))).toHaveLength(1);
  });

  it('checks a static secret header (default and custom names)', () => {
    const bySecret = transport({ secret: 's3cret' });
    expect(bySecret.parseWebhook(body(), { 'X-Disparo-Secret': 's3cret' })).toHaveLength(1);
    expect(webhookError(() => bySecret.parseWebhook(body(), { 'x-disparo-secret': 's3cret!' })).reason).toBe('bad_signature');
    expect(webhookError(() => bySecret.parseWebhook(body(), {})).reason).toBe('unsigned');
    const custom = transport({ secret: 's3cret', headerName: 'x-tenant-token' });
    expect(custom.parseWebhook(body(), { 'x-tenant-token': 's3cret' })).toHaveLength(1);
    expect(webhookError(() => custom.parseWebhook(body(), { 'x-disparo-secret': 's3cret' })).reason).toBe('unsigned');
  });

  it('with both configured, either credential passes but a wrong one never does', () => {
    const both = transport({ secret: 's3cret', jwtKey: JWT_KEY });
    expect(both.parseWebhook(body(), { 'x-disparo-secret': 's3cret' })).toHaveLength(1);
    expect(both.parseWebhook(body(), signed())).toHaveLength(1);
    expect(webhookError(() => both.parseWebhook(body(), { ...signed(), 'x-disparo-secret': 'wrong' })).reason).toBe('bad_signature');
  });

  it('refuses everything when no credential is configured, unless allowUnsigned', () => {
    expect(webhookError(() => transport({}).parseWebhook(body(), signed())).reason).toBe('unsigned');
    expect(transport({ allowUnsigned: true }).parseWebhook(body(), {})).toHaveLength(1);
  });

  it('authenticates before parsing: an unsigned malformed body is "unsigned" and changes nothing', () => {
    const t = transport();
    expect(webhookError(() => t.parseWebhook('{"event":', {})).reason).toBe('unsigned');
    const send = fixture('evolution.webhook.send.message.json');
    expect(webhookError(() => t.parseWebhook(send, { authorization: 'Bearer x.y.z' })).reason).toBe('bad_signature');
  });
});

describe('webhook registration end to end', () => {
  let fake: FakeEvolution;
  let receiver: Server;
  let receiverUrl: string;
  const received: Array<{ events?: TransportEvent[]; error?: string }> = [];
  let handler: (body: string, headers: Record<string, string | string[] | undefined>) => TransportEvent[];

  beforeEach(async () => {
    fake = await FakeEvolution.start();
    received.length = 0;
    receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        try {
          received.push({ events: handler(Buffer.concat(chunks).toString('utf8'), req.headers) });
          res.writeHead(200).end();
        } catch (error) {
          received.push({ error: WebhookError.isInstance(error) ? error.reason : String(error) });
          res.writeHead(WebhookError.isInstance(error) && error.reason !== 'malformed' ? 401 : 400).end();
        }
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/evolution`;
  });
  afterEach(async () => {
    await fake.close();
    await new Promise<void>((r) => receiver.close(() => r()));
  });

  it('registerWebhook sets the JWT key, and Evolution-signed webhooks then parse into events', async () => {
    const t = createEvolutionTransport({ baseUrl: fake.url, apiKey: fake.apiKey, instance: fake.instance, webhook: { jwtKey: JWT_KEY } });
    handler = (body, headers) => t.parseWebhook(body, headers);
    const answer = await t.registerWebhook({ url: receiverUrl });
    expect(answer).toMatchObject({ url: receiverUrl, enabled: true });
    expect(fake.calls('webhookSet')[0]!.body).toEqual({
      webhook: { enabled: true, url: receiverUrl, headers: { jwt_key: JWT_KEY }, byEvents: false, base64: false, events: [...DEFAULT_WEBHOOK_EVENTS] },
    });

    const result = await t.send({ to: '5511999990001', text: 'Olá!', idempotencyKey: 'c:1' });
    await expect.poll(() => fake.deliveries.length).toBe(1); // send.message
    expect(await fake.ack(result.providerMessageId, 'DELIVERY_ACK')).toBe(200);
    expect(await fake.ack(result.providerMessageId, 'READ')).toBe(200);
    expect(received).toEqual([
      { events: [] },
      { events: [{ type: 'status', providerMessageId: result.providerMessageId, status: 'delivered', at: expect.any(Number) }] },
      { events: [{ type: 'status', providerMessageId: result.providerMessageId, status: 'read', at: expect.any(Number) }] },
    ]);
  });

  it('a webhook registered with another key is refused', async () => {
    const t = createEvolutionTransport({ baseUrl: fake.url, apiKey: fake.apiKey, instance: fake.instance, webhook: { jwtKey: JWT_KEY } });
    handler = (body, headers) => t.parseWebhook(body, headers);
    await registerEvolutionWebhook({ baseUrl: fake.url, apiKey: fake.apiKey, instance: fake.instance }, { url: receiverUrl, jwtKey: 'someone-else' });
    await t.send({ to: '5511999990001', text: 'Olá!', idempotencyKey: 'c:2' });
    await expect.poll(() => fake.deliveries.length).toBe(1);
    expect(fake.deliveries[0]!.status).toBe(401);
    expect(received).toEqual([{ error: 'bad_signature' }]);
  });

  it('registerEvolutionWebhook surfaces Evolution errors as TransportError', async () => {
    await expect(registerEvolutionWebhook({ baseUrl: fake.url, apiKey: 'wrong', instance: fake.instance }, { url: receiverUrl })).rejects.toMatchObject({ kind: 'account', providerCode: 401 });
  });
});
