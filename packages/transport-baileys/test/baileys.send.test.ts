import { describe, expect, it } from 'vitest';
import { TransportError, ValidationError, type OutboundMessage } from '@disparo/core/transport';
import { VirtualClock } from '@disparo/core/testing';
import { classifyBaileysError, createBaileysTransport, messageIdFor, type BaileysTransportOptions } from '../src/index.js';
import { FakeWhatsApp } from './fake-whatsapp.js';
import { boom, boomFixture, fixture } from './fixtures.js';

function setup(extra: Partial<BaileysTransportOptions> = {}) {
  const clock = new VirtualClock();
  const fake = new FakeWhatsApp(() => clock.now());
  const transport = createBaileysTransport({ socket: fake.socket(), clock, ...extra });
  fake.current.connect();
  return { clock, fake, transport };
}

let n = 0;
const message = (overrides: Partial<OutboundMessage> = {}): OutboundMessage => ({ to: '5511999990001', text: 'Hi Maria, your order #1234 has shipped.', idempotencyKey: `camp-1:${++n}`, ...overrides });

async function rejection(promise: Promise<unknown>): Promise<TransportError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  if (!TransportError.isInstance(error)) throw new Error(`expected a TransportError, got ${String(error)}`);
  return error;
}

describe('messageIdFor', () => {
  it('is the WA-Web format, deterministic per key and different across keys', () => {
    const id = messageIdFor('campaign-1:5511999990001');
    expect(id).toMatch(/^3EB0[0-9A-F]{18}$/);
    expect(id).toHaveLength(22);
    expect(messageIdFor('campaign-1:5511999990001')).toBe(id);
    expect(messageIdFor('campaign-1:5511999990002')).not.toBe(id);
    // sha256("abc") = ba7816bf8f01cfea414140de5dae2223…
    expect(messageIdFor('abc')).toBe('3EB0BA7816BF8F01CFEA41');
    expect(() => messageIdFor('')).toThrow(TypeError);
  });
});

describe('send', () => {
  it('sends text with the deterministic id as messageId and returns it, as the fixtures describe', async () => {
    const { fake, transport, clock } = setup();
    const m = message({ text: fixture('baileys.sendMessage.result.json').message.extendedTextMessage.text });
    const result = await transport.send(m);
    expect(result).toEqual({ providerMessageId: messageIdFor(m.idempotencyKey), acceptedAt: clock.now(), remoteJid: '5511999990001@s.whatsapp.net' });
    expect(fake.accepted).toHaveLength(1);
    expect(fake.accepted[0]).toMatchObject({ jid: '5511999990001@s.whatsapp.net', content: { text: m.text }, id: result.providerMessageId });
    // The options object is exactly the fixture's shape: { messageId }.
    expect(Object.keys(fixture('baileys.sendMessage.options.json'))).toEqual(['messageId']);
    // The same key on a retry gives the same id (receipts of either attempt land on one recipient).
    expect((await transport.send({ ...m })).providerMessageId).toBe(result.providerMessageId);
  });

  it('checks the number once with onWhatsApp and sends to the canonical jid (Brazilian 9th digit)', async () => {
    const { fake, transport } = setup();
    fake.canonical.set('5511987654321', '551187654321');
    const r1 = await transport.send(message({ to: '5511987654321' }));
    const r2 = await transport.send(message({ to: '5511987654321' }));
    expect(r1.remoteJid).toBe('551187654321@s.whatsapp.net');
    expect(r2.remoteJid).toBe('551187654321@s.whatsapp.net');
    expect(fake.accepted.map((a) => a.jid)).toEqual(['551187654321@s.whatsapp.net', '551187654321@s.whatsapp.net']);
    expect(fake.onWhatsAppCalls).toEqual([['5511987654321']]);
  });

  it('refuses a number not on WhatsApp as invalid_recipient and sends nothing', async () => {
    const { fake, transport } = setup();
    fake.notOnWhatsApp.add('5511999990009');
    const error = await rejection(transport.send(message({ to: '5511999990009' })));
    expect(error.kind).toBe('invalid_recipient');
    expect(fake.accepted).toHaveLength(0);
  });

  it('checkBeforeSend: false sends straight to <digits>@s.whatsapp.net', async () => {
    const { fake, transport } = setup({ checkBeforeSend: false });
    await transport.send(message({ to: '5511999990009' }));
    expect(fake.onWhatsAppCalls).toEqual([]);
    expect(fake.accepted[0]!.jid).toBe('5511999990009@s.whatsapp.net');
  });

  it('media: image with caption, document with file name and mime type; audio with text is refused', async () => {
    const { fake, transport } = setup();
    await transport.send(message({ text: 'veja', media: { url: 'https://x.test/a.jpg', type: 'image' } }));
    await transport.send(message({ text: '', media: { url: 'https://x.test/b.pdf', type: 'document', fileName: 'b.pdf', mimeType: 'application/pdf' } }));
    expect(fake.accepted.map((a) => a.content)).toEqual([
      { image: { url: 'https://x.test/a.jpg' }, caption: 'veja' },
      { document: { url: 'https://x.test/b.pdf' }, mimetype: 'application/pdf', fileName: 'b.pdf' },
    ]);
    const error = await rejection(transport.send(message({ text: 'oi', media: { url: 'https://x.test/c.ogg', type: 'audio' } })));
    expect(error.kind).toBe('permanent');
    expect((await rejection(transport.send(message({ text: '  ' })))).kind).toBe('permanent');
    expect((await rejection(transport.send(message({ to: '+55 11 9999' })))).kind).toBe('permanent');
  });

  it('typingBeforeSend shows composing for a time proportional to the text (bounded), then paused, then sends', async () => {
    const { fake, transport, clock } = setup({ typingBeforeSend: { msPerChar: 100, minMs: 500, maxMs: 3_000 } });
    const stop = clock.autoAdvance();
    try {
      const t0 = clock.now();
      await transport.send(message({ text: 'Oi Ana!' })); // 7 chars -> 700 ms
      expect(fake.presences.map((p) => [p.type, p.at - t0])).toEqual([
        ['composing', 0],
        ['paused', 700],
      ]);
      expect(fake.accepted[0]!.at - t0).toBe(700);
      const t1 = clock.now();
      await transport.send(message({ text: 'x'.repeat(500) })); // capped at maxMs
      expect(fake.accepted[1]!.at - t1).toBe(3_000);
      const t2 = clock.now();
      await transport.send(message({ text: 'ok' })); // raised to minMs
      expect(fake.accepted[2]!.at - t2).toBe(500);
    } finally {
      stop();
    }
  });

  it('an abort during the typing pause rejects with the reason, sends nothing and stops typing', async () => {
    const { fake, transport, clock } = setup({ typingBeforeSend: true });
    const controller = new AbortController();
    const reason = new TransportError('ambiguous', 'send timed out');
    const pending = transport.send(message(), { signal: controller.signal }).catch((e: unknown) => e);
    await clock.advance(100);
    controller.abort(reason);
    expect(await pending).toBe(reason);
    expect(fake.accepted).toHaveLength(0);
    expect(fake.presences.map((p) => p.type)).toEqual(['composing', 'paused']);
  });

  it('typing() shows composing, waits on the clock, then paused; it never throws', async () => {
    const { fake, transport, clock } = setup();
    const pending = transport.typing('5511999990001', 2_000);
    await clock.advance(1_999);
    expect(fake.presences.map((p) => p.type)).toEqual(['composing']);
    await clock.advance(1);
    await pending;
    expect(fake.presences.map((p) => [p.type, p.jid])).toEqual([
      ['composing', '5511999990001@s.whatsapp.net'],
      ['paused', '5511999990001@s.whatsapp.net'],
    ]);
    fake.current.open = false;
    const closed = transport.typing('5511999990001', 10);
    await clock.advance(10);
    await expect(closed).resolves.toBeUndefined();
  });
});

describe('errors', () => {
  it('classifies the error fixtures and the Boom errors Baileys throws', async () => {
    const { fake, transport } = setup({ rateLimitBackoffMs: 90_000 });
    const cases: Array<[Error, Partial<TransportError>, { sendFirst?: boolean }?]> = [
      [boomFixture('baileys.error.rate-overlimit.json'), { kind: 'rate_limited', retryAfterMs: 90_000, providerCode: 429 }],
      [boomFixture('baileys.error.connection-closed.json'), { kind: 'account', accountReason: 'disconnected', providerCode: 428 }],
      [boom('Timed Out', { statusCode: 408 }), { kind: 'ambiguous', providerCode: 408 }, { sendFirst: true }],
      [boom('Connection was lost', { statusCode: 408 }), { kind: 'account', accountReason: 'disconnected' }],
      [boom('Connection Failure', { statusCode: 401, data: { reason: '401' } }), { kind: 'account', accountReason: 'logged_out', providerCode: 401 }],
      [boom('Stream Errored (conflict)', { statusCode: 440 }), { kind: 'account', accountReason: 'replaced' }],
      [boom('Invalid media type', { statusCode: 400 }), { kind: 'permanent' }],
      [boom('item-not-found', { data: 404 }), { kind: 'transient', providerCode: 404 }],
      [new Error('socket hang up'), { kind: 'transient' }],
    ];
    for (const [error, expected, options] of cases) {
      fake.failNextSend(error, options);
      const got = await rejection(transport.send(message()));
      expect(got, error.message).toMatchObject(expected);
      expect(got.cause).toBe(error);
    }
    // An ambiguous send that did leave is found by lookup (the own-message echo and the server ack).
    expect(fake.accepted).toHaveLength(1);
  });

  it('a failed number check is classified as a query: timeouts are transient, rate limits back off', async () => {
    const { fake, transport } = setup();
    fake.failNextCheck(boom('Timed Out', { statusCode: 408 }));
    expect((await rejection(transport.send(message({ to: '5511999990002' })))).kind).toBe('transient');
    fake.failNextCheck(boomFixture('baileys.error.rate-overlimit.json'));
    expect((await rejection(transport.checkNumbers(['5511999990002']))).kind).toBe('rate_limited');
    expect(fake.accepted).toHaveLength(0);
  });

  it('classifyBaileysError keeps a TransportError as it is', () => {
    const original = new TransportError('permanent', 'x');
    expect(classifyBaileysError(original, { operation: 'send', rateLimitBackoffMs: 1 })).toBe(original);
  });
});

describe('checkNumbers', () => {
  it('absent from onWhatsApp = not on WhatsApp; canonical jid when it differs; input order and duplicates kept', async () => {
    const { fake, transport } = setup({ numberCheckChunk: 2 });
    fake.canonical.set('5511987654321', '551187654321');
    fake.notOnWhatsApp.add('5511999990002');
    const checks = await transport.checkNumbers(['5511999990001', '5511999990002', '5511987654321', '5511999990001']);
    expect(checks).toEqual([
      { phone: '5511999990001', exists: true },
      { phone: '5511999990002', exists: false },
      { phone: '5511987654321', exists: true, jid: '551187654321@s.whatsapp.net' },
      { phone: '5511999990001', exists: true },
    ]);
    expect(fake.onWhatsAppCalls).toEqual([['5511999990001', '5511999990002'], ['5511987654321']]);
    // The canonical jid is reused for sending, without another check.
    await transport.send(message({ to: '5511987654321' }));
    expect(fake.onWhatsAppCalls).toHaveLength(2);
    expect(fake.accepted[0]!.jid).toBe('551187654321@s.whatsapp.net');
  });

  it('rejects phones that are not E.164 digits', async () => {
    const { transport } = setup();
    await expect(transport.checkNumbers(['+55 11 99999-0001'])).rejects.toBeInstanceOf(ValidationError);
    await expect(transport.checkNumbers([])).resolves.toEqual([]);
  });
});

describe('lookup', () => {
  it('finds a message by its deterministic id once the socket saw it leave, even when sendMessage timed out', async () => {
    const { fake, transport, clock } = setup();
    const m = message();
    fake.failNextSend(boom('Timed Out', { statusCode: 408 }), { sendFirst: true });
    expect((await rejection(transport.send(m))).kind).toBe('ambiguous');
    await new Promise((r) => setImmediate(r));
    expect(await transport.lookup({ message: m, since: clock.now() - 1_000 })).toEqual({
      status: 'found',
      sent: { providerMessageId: messageIdFor(m.idempotencyKey), acceptedAt: clock.now(), remoteJid: '5511999990001@s.whatsapp.net' },
    });
    // Not seen by this socket proves nothing: an earlier process may have sent it.
    expect(await transport.lookup({ message: message(), since: 0 })).toMatchObject({ status: 'unknown' });
  });

  it('asks the host store (getMessage) for messages an earlier process sent', async () => {
    const stored = new Map<string, { conversation: string }>();
    const asked: string[] = [];
    const { transport } = setup({
      getMessage: async (key) => {
        asked.push(`${key.remoteJid}/${key.id}/${key.fromMe}`);
        return stored.get(`${key.remoteJid}/${key.id}`);
      },
    });
    const m = message({ to: '5511987654321' });
    const id = messageIdFor(m.idempotencyKey);
    // Sent earlier to the canonical (8-digit) jid by a process that crashed.
    stored.set(`551187654321@s.whatsapp.net/${id}`, { conversation: m.text });
    expect(await transport.lookup({ message: m, since: 1_000 })).toEqual({ status: 'found', sent: { providerMessageId: id, acceptedAt: 1_000, remoteJid: '551187654321@s.whatsapp.net' } });
    expect(asked).toEqual([`5511987654321@s.whatsapp.net/${id}/true`, `551187654321@s.whatsapp.net/${id}/true`]);
    expect(await transport.lookup({ message: message(), since: 1_000 })).toMatchObject({ status: 'unknown' });
  });
});

describe('options', () => {
  it('validates with a ValidationError that names the field', () => {
    const fake = new FakeWhatsApp();
    const attempt = (o: unknown) => {
      try {
        createBaileysTransport(o as BaileysTransportOptions);
      } catch (e) {
        return e;
      }
      return null;
    };
    expect(attempt({})).toMatchObject({ code: 'VALIDATION', field: 'socket' });
    expect(attempt({ socket: { sendMessage() {} } })).toMatchObject({ field: 'socket' });
    expect(attempt({ socket: fake.socket(), rateLimitBackoffMs: -1 })).toMatchObject({ field: 'rateLimitBackoffMs' });
    expect(attempt({ socket: fake.socket(), typingBeforeSend: { minMs: 10, maxMs: 5 } })).toMatchObject({ field: 'typingBeforeSend.maxMs' });
    expect(attempt({ socket: fake.socket(), unknown: 1 })).toMatchObject({ code: 'VALIDATION' });
  });

  it('a socket wrapped after it opened reads as open; before any event, unknown', async () => {
    const fake = new FakeWhatsApp();
    const opened = Object.assign(fake.socket(), { ws: { isOpen: true } });
    expect(await createBaileysTransport({ socket: opened }).connectionState()).toBe('open');
    expect(await createBaileysTransport({ socket: fake.socket() }).connectionState()).toBe('unknown');
  });

  it.each([
    ['Mexico, with the 1 after 52', '5215512345678', '525512345678@s.whatsapp.net'],
    ['Argentina, with the 9 after 54', '5491123456789', '541123456789@s.whatsapp.net'],
    ['Brazil, with the ninth digit', '5511987654321', '551187654321@s.whatsapp.net'],
  ])('finds a message stored under the other form of a mobile number (%s)', async (_, to, storedJid) => {
    const stored = new Map<string, { conversation: string }>();
    const { transport } = setup({ getMessage: async (key) => stored.get(`${key.remoteJid}/${key.id}`) });
    const m = message({ to });
    const id = messageIdFor(m.idempotencyKey);
    stored.set(`${storedJid}/${id}`, { conversation: m.text });
    expect(await transport.lookup({ message: m, since: 1_000 })).toEqual({ status: 'found', sent: { providerMessageId: id, acceptedAt: 1_000, remoteJid: storedJid } });
  });
});
