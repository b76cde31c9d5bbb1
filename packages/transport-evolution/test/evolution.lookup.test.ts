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

describe('lookup (in-doubt recovery)', () => {
  it('finds a message that went out although the send timed out', async () => {
    const t = transportFor(fake, { timeoutMs: 1_000 });
    const m = message();
    const since = Date.now();
    fake.next('send', { sendFirst: true, hold: true }); // stored, never answered
    expect((await transportError(t.send(m))).kind).toBe('ambiguous');

    const found = await t.lookup({ message: m, since });
    const stored = fake.stored[0]!;
    expect(found).toEqual({ status: 'found', sent: { providerMessageId: stored.id, acceptedAt: stored.messageTimestamp * 1000, remoteJid: '5511999990001@s.whatsapp.net' } });

    const [call] = fake.calls('findMessages');
    const body = call!.body as { where: { key: Record<string, unknown>; messageTimestamp: { gte: string; lte: string } } };
    expect(call!.path).toBe('/chat/findMessages/campaign-01');
    expect(body.where.key).toEqual({ remoteJid: '5511999990001@s.whatsapp.net', fromMe: true });
    expect(new Date(body.where.messageTimestamp.gte).getTime()).toBeLessThanOrEqual(since);
    expect(new Date(body.where.messageTimestamp.lte).getTime()).toBeGreaterThanOrEqual(since);
  });

  it('proves a message never left only when the instance stores what it sends (storesMessages)', async () => {
    const t = transportFor(fake, { storesMessages: true });
    const m = message();
    fake.next('send', { destroy: true }); // dropped before Evolution did anything
    expect((await transportError(t.send(m))).kind).toBe('ambiguous');
    expect(await t.lookup({ message: m, since: Date.now() - 1_000 })).toEqual({ status: 'absent' });
    // By default the transport cannot know whether the instance stores messages: finding nothing proves nothing.
    expect(await transportFor(fake).lookup({ message: m, since: Date.now() - 1_000 })).toMatchObject({ status: 'unknown' });
  });

  it('on an instance that stores nothing, a message that did go out is not found, and the answer is unknown, never absent', async () => {
    fake.savesSentMessages = false;
    const t = transportFor(fake);
    const m = message();
    const since = Date.now();
    fake.next('send', { sendFirst: true, hold: true }); // it went out; the answer never came
    const timeout = transportFor(fake, { timeoutMs: 500 });
    expect((await transportError(timeout.send(m))).kind).toBe('ambiguous');
    expect(fake.stored).toHaveLength(1);
    const answer = await t.lookup({ message: m, since });
    expect(answer.status).toBe('unknown');
    expect(answer.status === 'unknown' && answer.reason).toMatch(/DATABASE_SAVE_DATA_NEW_MESSAGE/);
  });

  it('ignores another text to the same chat, and an older copy outside the window', async () => {
    const t = transportFor(fake, { lookupSkewMs: 1_000 });
    const m = message();
    const now = Date.now();
    fake.store({ remoteJid: '5511999990001@s.whatsapp.net', text: 'something else' });
    fake.store({ remoteJid: '5511999990001@s.whatsapp.net', text: m.text, messageTimestamp: Math.floor((now - 3_600_000) / 1000) });
    fake.store({ remoteJid: '5511999990001@s.whatsapp.net', text: m.text, fromMe: false });
    expect(await t.lookup({ message: m, since: now })).toMatchObject({ status: 'unknown' });
  });

  it('matches the recorded findMessages fixture (text message, remoteJid, timestamp)', async () => {
    const response = fixture('evolution.findMessages.response.json');
    const record = response.messages.records[0];
    fake.next('findMessages', { status: 200, body: response });
    const t = transportFor(fake);
    const since = record.messageTimestamp * 1000 - 1_000;
    const found = await t.lookup({ message: message({ to: '5511999990001', text: record.message.conversation }), since });
    expect(found).toEqual({ status: 'found', sent: { providerMessageId: record.key.id, acceptedAt: record.messageTimestamp * 1000, remoteJid: record.key.remoteJid } });
  });

  it("finds a Brazilian number stored under Evolution's other 9th-digit form", async () => {
    fake.jidOverrides.set('5511987654321', '551187654321@s.whatsapp.net');
    const writer = transportFor(fake);
    const m = message({ to: '5511987654321' });
    const since = Date.now();
    await writer.send(m);
    // A fresh transport (another process after a crash) has no memory of the JID.
    const found = await transportFor(fake).lookup({ message: m, since });
    expect(found).toMatchObject({ status: 'found', sent: { remoteJid: '551187654321@s.whatsapp.net', providerMessageId: fake.stored[0]!.id } });
  });

  it('matches media by type and caption', async () => {
    const t = transportFor(fake);
    const since = Date.now();
    const media = { url: 'https://cdn.example.com/catalogue.jpg', type: 'image' as const, mimeType: 'image/jpeg' };
    const sent = await t.send(message({ text: 'Our new catalogue', media }));
    expect(await transportFor(fake).lookup({ message: message({ text: 'Our new catalogue', media }), since })).toMatchObject({ status: 'found', sent: { providerMessageId: sent.providerMessageId } });
    expect(await transportFor(fake, { storesMessages: true }).lookup({ message: message({ text: 'Our new catalogue', media: { ...media, type: 'video' } }), since })).toEqual({ status: 'absent' });
  });

  it('reads further pages of a busy chat', async () => {
    const t = transportFor(fake);
    const m = message();
    const now = Date.now();
    fake.store({ remoteJid: '5511999990001@s.whatsapp.net', text: m.text, messageTimestamp: Math.floor(now / 1000) - 5 });
    for (let i = 0; i < 60; i++) fake.store({ remoteJid: '5511999990001@s.whatsapp.net', text: `other ${i}` });
    const found = await t.lookup({ message: m, since: now - 10_000 });
    expect(found).toMatchObject({ status: 'found', sent: { providerMessageId: fake.stored[0]!.id } });
    expect(fake.calls('findMessages').map((c) => (c.body as { page: number }).page)).toEqual([1, 2]);
  });

  it('uses the send.message webhook it already received before asking Evolution', async () => {
    const t = transportFor(fake, { webhook: { allowUnsigned: true } });
    const hook = fixture('evolution.webhook.send.message.json');
    hook.data.messageTimestamp = Math.floor(Date.now() / 1000);
    expect(t.parseWebhook(hook, {})).toEqual([]);
    fake.next('findMessages', { status: 500, raw: 'database down' });
    const found = await t.lookup({ message: message({ to: '5511999990001', text: hook.data.message.conversation }), since: Date.now() - 5_000 });
    expect(found).toMatchObject({ status: 'found', sent: { providerMessageId: hook.data.key.id } });
    expect(fake.calls('findMessages')).toHaveLength(0);
  });

  it('throws a transient error when Evolution cannot answer (the engine then applies its policy)', async () => {
    fake.next('findMessages', { status: 500, raw: 'database down' });
    const error = await transportError(transportFor(fake).lookup({ message: message(), since: Date.now() }));
    expect(error.kind).toBe('transient');
  });
});
