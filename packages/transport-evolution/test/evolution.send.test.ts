import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeEvolution } from './fake-evolution.js';
import { fixture } from './fixtures.js';
import { message, transportError, transportFor } from './helpers.js';

let fake: FakeEvolution;
beforeEach(async () => {
  fake = await FakeEvolution.start();
});
afterEach(async () => {
  await fake.close();
});

describe('send', () => {
  it('posts sendText with the apikey header and returns key.id, remoteJid and acceptedAt', async () => {
    const request = fixture('evolution.sendText.request.json');
    const t = transportFor(fake, { delayMs: request.delay, linkPreview: request.linkPreview });
    const before = Date.now();
    const result = await t.send(message({ to: request.number, text: request.text }));

    const [call] = fake.calls('sendText');
    expect(call!.path).toBe('/message/sendText/campaign-01');
    expect(call!.headers.apikey).toBe(fake.apiKey);
    expect(call!.headers['content-type']).toBe('application/json');
    expect(call!.body).toEqual(request);

    const stored = fake.stored[0]!;
    expect(result.providerMessageId).toBe(stored.id);
    expect(result.providerMessageId).toMatch(/^3EB0[0-9A-F]{18}$/);
    expect(result.remoteJid).toBe('5511999990001@s.whatsapp.net');
    expect(result.acceptedAt).toBe(stored.messageTimestamp * 1000);
    expect(result.acceptedAt).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
  });

  it('sends no delay or linkPreview unless configured', async () => {
    const t = transportFor(fake);
    const m = message();
    await t.send(m);
    expect(fake.calls('sendText')[0]!.body).toEqual({ number: m.to, text: m.text });
  });

  it('takes the delay per message from a function, and waits for it beyond timeoutMs', async () => {
    // Evolution holds the call for `delay` (800 ms), twice timeoutMs alone: without timeoutMs + delay this send would time out.
    const t = transportFor(fake, { timeoutMs: 400, delayMs: (m) => m.text.length * 10 });
    const m = message({ text: 'x'.repeat(80) });
    const result = await t.send(m);
    expect(fake.calls('sendText')[0]!.body).toMatchObject({ delay: 800 });
    expect(result.providerMessageId).toBe(fake.stored[0]!.id);
  });

  it('returns the JID Evolution normalised the number to', async () => {
    fake.jidOverrides.set('5511987654321', '551187654321@s.whatsapp.net');
    const result = await transportFor(fake).send(message({ to: '5511987654321' }));
    expect(result.remoteJid).toBe('551187654321@s.whatsapp.net');
  });

  it('posts sendMedia with the caption and media fields of the fixture', async () => {
    const request = fixture('evolution.sendMedia.request.json');
    const t = transportFor(fake, { delayMs: request.delay });
    const result = await t.send(
      message({ to: request.number, text: request.caption, media: { url: request.media, type: 'image', mimeType: request.mimetype, fileName: request.fileName } }),
    );
    const [call] = fake.calls('sendMedia');
    expect(call!.path).toBe('/message/sendMedia/campaign-01');
    expect(call!.body).toEqual(request);
    expect(result.providerMessageId).toBe(fake.stored[0]!.id);
    expect(fake.stored[0]!.messageType).toBe('imageMessage');
  });

  it('sends media without a caption when the text is empty, and names documents from their URL', async () => {
    await transportFor(fake).send(message({ text: '', media: { url: 'https://cdn.example.com/files/price%20list.pdf', type: 'document' } }));
    expect(fake.calls('sendMedia')[0]!.body).toEqual({
      number: '5511999990001',
      mediatype: 'document',
      media: 'https://cdn.example.com/files/price%20list.pdf',
      fileName: 'price list.pdf',
    });
  });

  it('refuses a malformed message as permanent without calling Evolution', async () => {
    const t = transportFor(fake);
    expect((await transportError(t.send(message({ text: '   ' })))).kind).toBe('permanent');
    expect((await transportError(t.send(message({ to: '+55 11 9999' })))).kind).toBe('permanent');
    expect(fake.requests).toHaveLength(0);
  });
});

describe('connectionState', () => {
  it.each(['open', 'connecting', 'close'] as const)('maps the %s fixture', async (state) => {
    fake.state = state;
    const t = transportFor(fake);
    expect(await t.connectionState()).toBe(state);
    expect(fake.calls('connectionState')[0]!.path).toBe('/instance/connectionState/campaign-01');
    expect(fake.calls('connectionState')[0]!.method).toBe('GET');
  });

  it('maps states core does not know', async () => {
    fake.next('connectionState', { status: 200, body: { instance: { instanceName: 'campaign-01', state: 'refused' } } });
    fake.next('connectionState', { status: 200, body: { instance: { instanceName: 'campaign-01', state: 'syncing' } } });
    const t = transportFor(fake);
    expect(await t.connectionState()).toBe('close');
    expect(await t.connectionState()).toBe('unknown');
  });

  it('throws an account error for an unknown instance', async () => {
    const t = transportFor(fake, { instance: 'campaign-99' });
    const error = await transportError(t.connectionState());
    expect(error.kind).toBe('account');
    expect(error.providerCode).toBe(404);
    expect(error.message).toContain('The "campaign-99" instance does not exist');
  });
});

describe('checkNumbers', () => {
  it('posts the fixture request and maps the fixture response', async () => {
    const request = fixture('evolution.whatsappNumbers.request.json');
    fake.notOnWhatsApp.add('5511999990002');
    const checks = await transportFor(fake).checkNumbers(request.numbers);
    expect(fake.calls('whatsappNumbers')[0]!.body).toEqual(request);
    expect(checks).toEqual([
      { phone: '5511999990001', exists: true },
      { phone: '5511999990002', exists: false },
    ]);
  });

  it('maps the recorded fixture response as Evolution returned it', async () => {
    fake.next('whatsappNumbers', { status: 200, fixture: 'evolution.whatsappNumbers.response.json' });
    const checks = await transportFor(fake).checkNumbers(['5511999990001', '5511999990002']);
    expect(checks.map((c) => c.exists)).toEqual([true, false]);
  });

  it('reports the canonical JID when Evolution resolved the number to another one', async () => {
    fake.jidOverrides.set('5511987654321', '551187654321@s.whatsapp.net');
    const [check] = await transportFor(fake).checkNumbers(['5511987654321']);
    expect(check).toEqual({ phone: '5511987654321', exists: true, jid: '551187654321@s.whatsapp.net' });
  });

  it('deduplicates, keeps the input order and splits large lists', async () => {
    const phones = Array.from({ length: 150 }, (_, i) => `55119999${String(i).padStart(5, '0')}`);
    fake.notOnWhatsApp.add(phones[120]!);
    const checks = await transportFor(fake).checkNumbers([...phones, phones[0]!]);
    expect(fake.calls('whatsappNumbers').map((c) => (c.body as { numbers: string[] }).numbers.length)).toEqual([100, 50]);
    expect(checks).toHaveLength(151);
    expect(checks[151 - 1]!.phone).toBe(phones[0]);
    expect(checks.filter((c) => !c.exists).map((c) => c.phone)).toEqual([phones[120]]);
  });

  it('returns [] for no phones without calling Evolution', async () => {
    expect(await transportFor(fake).checkNumbers([])).toEqual([]);
    expect(fake.requests).toHaveLength(0);
  });

  it('turns a Boom 428 (socket closed) into an account error', async () => {
    fake.state = 'close';
    const error = await transportError(transportFor(fake).checkNumbers(['5511999990001']));
    expect(error.kind).toBe('account');
    expect(error.accountReason).toBe('disconnected');
  });
});

describe('typing', () => {
  it('shows "composing" through sendPresence and ignores failures', async () => {
    const t = transportFor(fake);
    await t.typing('5511999990001', 50);
    expect(fake.presences).toEqual([{ number: '5511999990001', presence: 'composing', delay: 50 }]);
    fake.state = 'close';
    await expect(t.typing('5511999990001', 50)).resolves.toBeUndefined();
  });
});
