import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { WebhookError, type TransportEvent } from '@disparo/core/transport';
import { VirtualClock } from '@disparo/core/testing';
import {
  cloudApiSignature,
  cloudApiWebhookTargets,
  createCloudApiTransport,
  escapeNonAscii,
  verifyCloudApiSubscription,
  type CloudApiTransportOptions,
  type PacingRecommendation,
  type QualityUpdate,
} from '@disparo/transport-cloud-api';
import { fixture, fixtureNames } from './fixtures.js';

const NOW = 1_748_769_500_000;
const SECRET = 'test-app-secret';
const PHONE_ID = '100000000000001';
const WAMID = 'wamid.HBgNNTUxMTk5OTk5MDAwMRUCABEYEjNFQjBBMUIyQzNENEU1RjZBNwA=';
const KEY = 'cmp_42:rcpt_1001:att_1';

function transport(extra: Partial<CloudApiTransportOptions> = {}) {
  return createCloudApiTransport({ phoneNumberId: PHONE_ID, accessToken: 't', appSecret: SECRET, verifyToken: 'my-verify-token', clock: new VirtualClock(NOW), ...extra });
}

/** Meta's form of a payload (non-ASCII as \uXXXX), signed here by hand, not with the package's signer. */
function metaRaw(value: unknown): string {
  return JSON.stringify(value).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
const sign = (raw: string | Buffer, secret = SECRET) => ({ 'x-hub-signature-256': `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}` });
const signed = (value: unknown) => {
  const raw = metaRaw(value);
  return { raw, headers: sign(raw) };
};

function webhookError(fn: () => unknown): WebhookError {
  try {
    fn();
  } catch (error) {
    if (WebhookError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected a WebhookError');
}

const failed = (code: number, error: string): TransportEvent => ({ type: 'status', providerMessageId: WAMID, status: 'failed', at: 1_748_769_305_000, code, error });

/** Every cloudapi.webhook.* fixture and the events it must give (the verification query is a GET, tested below). */
const EXPECTED: Record<string, TransportEvent[] | 'get'> = {
  'cloudapi.webhook.status.sent.json': [{ type: 'status', providerMessageId: WAMID, status: 'sent', at: 1_748_769_303_000, idempotencyKey: KEY }],
  'cloudapi.webhook.status.delivered.json': [{ type: 'status', providerMessageId: WAMID, status: 'delivered', at: 1_748_769_304_000, idempotencyKey: KEY }],
  'cloudapi.webhook.status.read.json': [{ type: 'status', providerMessageId: WAMID, status: 'read', at: 1_748_769_390_000, idempotencyKey: KEY }],
  'cloudapi.webhook.status.failed.131026.json': [failed(131026, '(#131026) Message undeliverable: Message Undeliverable. [invalid_recipient, recipient]')],
  'cloudapi.webhook.status.failed.131047.json': [
    failed(131047, '(#131047) Re-engagement message: Message failed to send because more than 24 hours have passed since the customer last replied to this number. [permanent, recipient]'),
  ],
  'cloudapi.webhook.status.failed.131049.json': [
    failed(131049, '(#131049) This message was not delivered to maintain healthy ecosystem engagement.: In order to maintain a healthy ecosystem engagement, the message failed to be delivered. [invalid_recipient, recipient]'),
  ],
  'cloudapi.webhook.errors.130429.json': [
    {
      type: 'account_hold',
      until: NOW + 1_000,
      reason: `[cloud-api] ${PHONE_ID}: (#130429) Rate limit hit: Message failed to send because there were too many messages sent from this phone number in a short period of time [rate_limited]`,
    },
  ],
  // A throughput upgrade changes no engine state by default (the policy decides; see the quality tests).
  'cloudapi.webhook.phone_number_quality_update.json': [],
  'cloudapi.webhook.verification.query.json': 'get',
};

describe('parseWebhook: fixtures', () => {
  it('covers every cloudapi.webhook.* fixture', () => {
    expect(Object.keys(EXPECTED).sort()).toEqual(fixtureNames('cloudapi.webhook.'));
  });

  it.each(Object.entries(EXPECTED).filter(([, e]) => e !== 'get'))('%s', (name, expected) => {
    const { raw, headers } = signed(fixture(name));
    expect(transport().parseWebhook(raw, headers)).toEqual(expected);
    // The same bytes as a Buffer (express.raw) and under a Headers object.
    expect(transport().parseWebhook(Buffer.from(raw), new Headers(headers))).toEqual(expected);
  });

  it('a failed status with 131050 is marked as an opt-out, with the code for the engine', () => {
    const body = fixture('cloudapi.webhook.status.failed.131026.json');
    Object.assign(body.entry[0].changes[0].value.statuses[0].errors[0], { code: 131050, title: 'User has stopped marketing messages', message: 'User has stopped marketing messages' });
    const { raw, headers } = signed(body);
    const [event] = transport().parseWebhook(raw, headers);
    expect(event).toMatchObject({ type: 'status', status: 'failed', code: 131050, optOut: true });
    expect((event as { error: string }).error).toMatch(/\[invalid_recipient, recipient, opt-out\]$/);
    // Other failures say nothing of the contact's wishes.
    const other = transport().parseWebhook(...(Object.values(signed(fixture('cloudapi.webhook.status.failed.131026.json'))) as [string, Record<string, string>]))[0];
    expect(other).not.toHaveProperty('optOut');
  });

  it('a failed status with an account-level code also stops the account (same table as sync errors)', () => {
    const body = fixture('cloudapi.webhook.status.failed.131026.json');
    Object.assign(body.entry[0].changes[0].value.statuses[0].errors[0], { code: 131048, title: 'Spam rate limit hit', message: 'Spam rate limit hit' });
    const { raw, headers } = signed(body);
    const events = transport().parseWebhook(raw, headers);
    expect(events.map((e) => e.type)).toEqual(['status', 'connection']);
    expect(events[1]).toMatchObject({ type: 'connection', state: 'close', stopReason: 'restricted' });
  });

  it('the top-level errors array: an account-level code stops the number, a 131057 holds it a minute', () => {
    const body = fixture('cloudapi.webhook.errors.130429.json');
    body.entry[0].changes[0].value.errors = [
      { ...body.entry[0].changes[0].value.errors[0], code: 190, title: 'Access token has expired' },
      { ...body.entry[0].changes[0].value.errors[0], code: 131057, title: 'Account in maintenance mode' },
    ];
    const { raw, headers } = signed(body);
    const events = transport().parseWebhook(raw, headers);
    expect(events[0]).toMatchObject({ type: 'connection', state: 'close', stopReason: 'unauthorized' });
    expect((events[0] as { detail: string }).detail).toContain('refresh the access token');
    expect(events[1]).toMatchObject({ type: 'account_hold', until: NOW + 60_000 });
  });
});

describe('parseWebhook: batches, inbound messages, other numbers', () => {
  const statusesBody = (phoneNumberId = PHONE_ID) => {
    const body = fixture('cloudapi.webhook.status.sent.json');
    const value = body.entry[0].changes[0].value;
    value.metadata.phone_number_id = phoneNumberId;
    const one = value.statuses[0];
    value.statuses = [
      { ...one, id: 'wamid.A', biz_opaque_callback_data: 'c:1' },
      { ...one, id: 'wamid.B', status: 'delivered', biz_opaque_callback_data: 'c:2' },
      { ...one, id: 'wamid.C', status: 'played', biz_opaque_callback_data: undefined },
      { ...one, id: 'wamid.D', status: 'deleted' },
    ];
    return body;
  };

  it('a batch of statuses in one POST comes back as one list, in order (played counts as read, deleted as nothing)', () => {
    const { raw, headers } = signed(statusesBody());
    expect(transport().parseWebhook(raw, headers).map((e) => [e.type, (e as any).providerMessageId, (e as any).status, (e as any).idempotencyKey])).toEqual([
      ['status', 'wamid.A', 'sent', 'c:1'],
      ['status', 'wamid.B', 'delivered', 'c:2'],
      ['status', 'wamid.C', 'read', undefined],
    ]);
  });

  it("skips another number's changes (one callback URL serves the whole app) and names the numbers for routing", () => {
    const body = statusesBody('100000000000009');
    body.entry[0].changes.push(fixture('cloudapi.webhook.status.read.json').entry[0].changes[0]);
    const { raw, headers } = signed(body);
    expect(transport().parseWebhook(raw, headers).map((e) => (e as any).providerMessageId)).toEqual([WAMID]);
    expect(cloudApiWebhookTargets(raw).phoneNumberIds.sort()).toEqual(['100000000000001', '100000000000009']);
    expect(cloudApiWebhookTargets(signed(fixture('cloudapi.webhook.phone_number_quality_update.json')).raw).displayPhoneNumbers).toEqual(['5511988880000']);
    expect(cloudApiWebhookTargets('not json')).toEqual({ phoneNumberIds: [], displayPhoneNumbers: [] });
  });

  it('inbound text, template quick-reply buttons and interactive replies become inbound events (opt-out keywords work); reactions do not', () => {
    const body = fixture('cloudapi.webhook.status.sent.json');
    const value = body.entry[0].changes[0].value;
    delete value.statuses;
    value.contacts = [{ profile: { name: 'Maria' }, wa_id: '5511999990001' }];
    value.messages = [
      { from: '5511999990001', id: 'wamid.IN1', timestamp: '1748769400', type: 'text', text: { body: 'PARAR' } },
      { from: '5511999990002', id: 'wamid.IN2', timestamp: '1748769401', type: 'button', button: { text: 'Parar promoções', payload: 'STOP_PROMOS' }, context: { from: '5511988880000', id: WAMID } },
      { from: '5511999990003', id: 'wamid.IN3', timestamp: '1748769402', type: 'interactive', interactive: { type: 'button_reply', button_reply: { id: 'b1', title: 'Sim' } } },
      { from: '5511999990004', id: 'wamid.IN4', timestamp: '1748769403', type: 'reaction', reaction: { message_id: WAMID, emoji: '👍' } },
      { from: '5511999990005', id: 'wamid.IN5', timestamp: '1748769404', type: 'image', image: { id: 'm1', mime_type: 'image/jpeg', caption: 'foto' } },
    ];
    const { raw, headers } = signed(body);
    expect(transport().parseWebhook(raw, headers)).toEqual([
      { type: 'inbound', from: '5511999990001', text: 'PARAR', at: 1_748_769_400_000, providerMessageId: 'wamid.IN1' },
      { type: 'inbound', from: '5511999990002', text: 'Parar promoções', at: 1_748_769_401_000, providerMessageId: 'wamid.IN2' },
      { type: 'inbound', from: '5511999990003', text: 'Sim', at: 1_748_769_402_000, providerMessageId: 'wamid.IN3' },
      { type: 'inbound', from: '5511999990005', text: 'foto', at: 1_748_769_404_000, providerMessageId: 'wamid.IN5' },
    ]);
  });

  it('rejects malformed bodies with WebhookError (malformed), after the signature', () => {
    for (const value of ['not json {', '[]', '42', '{"unexpected":true}', JSON.stringify({ object: 'whatsapp_business_account', entry: [{ changes: [{ field: 'messages', value: { statuses: [{ status: 'sent' }] } }] }] })]) {
      const error = webhookError(() => transport().parseWebhook(value, sign(value)));
      expect(error.reason, value).toBe('malformed');
    }
  });

  it('a body for another product gives no events', () => {
    const raw = JSON.stringify({ object: 'page', entry: [] });
    expect(transport().parseWebhook(raw, sign(raw))).toEqual([]);
  });
});

describe('X-Hub-Signature-256', () => {
  const body = () => {
    const b = fixture('cloudapi.webhook.status.sent.json');
    const value = b.entry[0].changes[0].value;
    delete value.statuses;
    value.messages = [{ from: '5511999990001', id: 'wamid.IN1', timestamp: '1748769400', type: 'text', text: { body: 'Olá! Não quero mais, obrigado 🙏 — PARAR' } }];
    return b;
  };

  it('accepts the raw body exactly as Meta sends it (non-ASCII escaped as \\uXXXX)', () => {
    const { raw, headers } = signed(body());
    expect(raw).toContain('\\u00e1');
    expect(raw).toContain('\\ud83d\\ude4f');
    const [event] = transport().parseWebhook(raw, headers);
    expect(event).toMatchObject({ type: 'inbound', text: 'Olá! Não quero mais, obrigado 🙏 — PARAR' });
  });

  it('accepts a body a host decoded before handing it over (re-escaped before hashing), as a string or bytes', () => {
    const { headers } = signed(body());
    const decoded = JSON.stringify(body());
    expect(decoded).toContain('🙏');
    expect(transport().parseWebhook(decoded, headers)).toHaveLength(1);
    expect(transport().parseWebhook(Buffer.from(decoded, 'utf8'), headers)).toHaveLength(1);
    expect(escapeNonAscii(decoded)).toBe(metaRaw(body()));
  });

  it('accepts raw UTF-8 bytes signed as they are', () => {
    const raw = JSON.stringify(body());
    expect(transport().parseWebhook(Buffer.from(raw), sign(raw))).toHaveLength(1);
  });

  it('rejects a bad signature: another secret, a changed body, a malformed header', () => {
    const { raw, headers } = signed(body());
    expect(webhookError(() => transport().parseWebhook(raw, sign(raw, 'other-secret'))).reason).toBe('bad_signature');
    expect(webhookError(() => transport().parseWebhook(raw.replace('PARAR', 'PARAB'), headers)).reason).toBe('bad_signature');
    expect(webhookError(() => transport().parseWebhook(raw.replace('\\u00e1', 'a'), headers)).reason).toBe('bad_signature');
    expect(webhookError(() => transport().parseWebhook(raw, { 'x-hub-signature-256': 'sha1=abc' })).reason).toBe('bad_signature');
    expect(webhookError(() => transport().parseWebhook(raw, { 'x-hub-signature-256': headers['x-hub-signature-256'].slice(0, -2) })).reason).toBe('bad_signature');
  });

  it('rejects a missing signature, a transport without appSecret, and a parsed object (its bytes are gone)', () => {
    const { raw, headers } = signed(body());
    expect(webhookError(() => transport().parseWebhook(raw, {})).reason).toBe('unsigned');
    expect(webhookError(() => transport({ appSecret: undefined }).parseWebhook(raw, headers))).toMatchObject({ reason: 'unsigned', message: expect.stringContaining('appSecret') });
    const error = webhookError(() => transport().parseWebhook(JSON.parse(raw), headers));
    expect(error.reason).toBe('unsigned');
    expect(error.message).toContain('raw request body');
  });

  it('cloudApiSignature matches an independent HMAC of the bytes', () => {
    const raw = metaRaw(body());
    expect(cloudApiSignature(raw, SECRET)).toBe(sign(raw)['x-hub-signature-256']);
  });
});

describe('GET verification handshake', () => {
  const query = fixture('cloudapi.webhook.verification.query.json');

  it('answers 200 with the challenge as the body when mode and token match (every query shape)', () => {
    const ok = { status: 200, body: '1158201444', contentType: 'text/plain' };
    expect(verifyCloudApiSubscription(query, 'my-verify-token')).toEqual(ok);
    expect(verifyCloudApiSubscription(new URLSearchParams(query), 'my-verify-token')).toEqual(ok);
    expect(verifyCloudApiSubscription(`?${new URLSearchParams(query).toString()}`, 'my-verify-token')).toEqual(ok);
    expect(verifyCloudApiSubscription({ hub: { mode: 'subscribe', verify_token: 'my-verify-token', challenge: '1158201444' } }, 'my-verify-token')).toEqual(ok);
    expect(transport().verifySubscription(query)).toEqual(ok);
  });

  it.each([
    ['a wrong token', { ...query, 'hub.verify_token': 'guess' }],
    ['no token', { 'hub.mode': 'subscribe', 'hub.challenge': '1' }],
    ['another mode', { ...query, 'hub.mode': 'unsubscribe' }],
    ['a challenge that is not a plain token', { ...query, 'hub.challenge': '<script>alert(1)</script>' }],
    ['nothing', {}],
  ])('answers 403 for %s', (_name, q) => {
    expect(verifyCloudApiSubscription(q, 'my-verify-token').status).toBe(403);
  });

  it('a transport without verifyToken refuses every handshake', () => {
    expect(transport({ verifyToken: undefined }).verifySubscription(query).status).toBe(403);
  });
});

describe('phone_number_quality_update', () => {
  const qualityBody = (event: string, display = '5511988880000') => {
    const body = fixture('cloudapi.webhook.phone_number_quality_update.json');
    Object.assign(body.entry[0].changes[0].value, { event, display_phone_number: display });
    return body;
  };

  it('reports every update with its recommendation to onQualityUpdate, and holds nothing by default', () => {
    const seen: Array<[QualityUpdate, PacingRecommendation]> = [];
    const t = transport({ onQualityUpdate: (u, r) => void seen.push([u, r]), pacing: { allowThroughputUpgrade: true } });
    const { raw, headers } = signed(fixture('cloudapi.webhook.phone_number_quality_update.json'));
    expect(t.parseWebhook(raw, headers)).toEqual([]);
    expect(seen).toHaveLength(1);
    expect(seen[0]![0]).toEqual({ displayPhoneNumber: '5511988880000', event: 'THROUGHPUT_UPGRADE', currentLimit: 'TIER_UNLIMITED', messagingLimit: { tier: 'TIER_UNLIMITED', uniqueRecipientsPerDay: null }, at: 1_748_769_400_000 });
    expect(seen[0]![1]).toMatchObject({ action: 'normal', ratePerSecond: 1_000, raised: true });
  });

  it('FLAGGED with red: "pause" holds the number for pauseMs (the lever the engine has today)', () => {
    const { raw, headers } = signed(qualityBody('FLAGGED'));
    expect(transport().parseWebhook(raw, headers)).toEqual([]);
    const events = transport({ pacing: { red: 'pause', pauseMs: 3_600_000 } }).parseWebhook(raw, headers);
    expect(events).toEqual([{ type: 'account_hold', until: NOW + 3_600_000, reason: expect.stringContaining('quality FLAGGED') }]);
  });

  it("skips another number's quality update once this number's display form is known (option or learned)", () => {
    const other = signed(qualityBody('FLAGGED', '5511977770000'));
    const pause = { red: 'pause' as const };
    expect(transport({ pacing: pause, displayPhoneNumber: '+55 11 98888-0000' }).parseWebhook(other.raw, other.headers)).toEqual([]);
    // Learned from a messages webhook's metadata.
    const t = transport({ pacing: pause });
    const status = signed(fixture('cloudapi.webhook.status.sent.json'));
    t.parseWebhook(status.raw, status.headers);
    expect(t.parseWebhook(other.raw, other.headers)).toEqual([]);
    const mine = signed(qualityBody('FLAGGED'));
    expect(t.parseWebhook(mine.raw, mine.headers)).toHaveLength(1);
  });

  it('a throwing onQualityUpdate loses nothing', () => {
    const t = transport({
      onQualityUpdate: () => {
        throw new Error('listener bug');
      },
      pacing: { red: 'pause' },
    });
    const { raw, headers } = signed(qualityBody('DOWNGRADE'));
    expect(t.parseWebhook(raw, headers)).toHaveLength(1);
  });
});
