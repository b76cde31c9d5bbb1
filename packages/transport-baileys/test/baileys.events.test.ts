import { describe, expect, it } from 'vitest';
import { createEngine, createMemoryStore, silentLogger, TransportError, type TransportEvent } from '@disparo/core';
import { createBaileysTransport, messageIdFor } from '../src/index.js';
import { FakeSocket, boom, fixture } from './fake-socket.js';

const setup = () => {
  const socket = new FakeSocket();
  const transport = createBaileysTransport({ socket, restrictedHoldMs: 3_600_000 });
  const events: TransportEvent[] = [];
  transport.subscribe((e) => events.push(e));
  return { socket, transport, events };
};

describe('baileys transport: events from the fixtures', () => {
  it('maps connection updates: open, connecting, a transient close, and a logout that stops the account', async () => {
    const { socket, transport, events } = setup();
    socket.emit('connection.update', fixture('baileys.event.connection.update.open.json'));
    expect(await transport.connectionState()).toBe('open');
    socket.emit('connection.update', fixture('baileys.event.connection.update.connecting.json'));
    socket.emit('connection.update', { connection: 'close', lastDisconnect: { error: boom('baileys.error.connection-closed.json'), date: new Date() } });
    const loggedOut = fixture('baileys.event.connection.update.close.loggedOut.json');
    socket.emit('connection.update', { ...loggedOut, lastDisconnect: { ...loggedOut.lastDisconnect, error: Object.assign(new Error('Connection Failure'), loggedOut.lastDisconnect.error) } });
    expect(events.map((e) => (e.type === 'connection' ? `${e.state}/${e.stopReason ?? ''}` : e.type))).toEqual(['open/', 'connecting/', 'close/', 'close/logged_out']);
    expect(await transport.connectionState()).toBe('close');
  });

  it('maps receipts 2/3/4 to sent/delivered/read on key.id, and a 463 nack to failed plus an account hold', () => {
    const { socket, events } = setup();
    for (const f of ['server-ack', 'delivery', 'read', 'error.463']) socket.emit('messages.update', fixture(`baileys.event.messages.update.${f}.json`));
    const statuses = events.filter((e) => e.type === 'status');
    expect(statuses.map((e) => e.type === 'status' && e.status)).toEqual(['sent', 'delivered', 'read', 'failed']);
    const failed = statuses[3]!;
    expect(failed).toMatchObject({ code: '463', providerMessageId: fixture('baileys.event.messages.update.error.463.json')[0].key.id });
    expect(events.some((e) => e.type === 'account_hold' && e.reason.includes('463'))).toBe(true);
  });

  it('holds the account until the reachout time lock and the capping cycle end', () => {
    const { socket, events } = setup();
    socket.emit('connection.update', fixture('baileys.event.connection.update.reachoutTimeLock.json'));
    socket.emit('message-capping.update', fixture('baileys.event.message-capping.update.json'));
    const holds = events.filter((e) => e.type === 'account_hold');
    expect(holds.map((e) => e.type === 'account_hold' && e.until)).toEqual([Date.parse('2025-06-02T09:00:00.000Z'), 1749340800 * 1000]);
  });

  it('classifies thrown Boom errors from the fixtures', async () => {
    const { socket, transport } = setup();
    const send = () => transport.send({ to: '5511999990001', text: 'oi', idempotencyKey: 'c:1' });
    socket.failNext(boom('baileys.error.rate-overlimit.json'));
    await expect(send()).rejects.toMatchObject({ kind: 'rate_limited', retryAfterMs: 300_000 });
    socket.failNext(boom('baileys.error.connection-closed.json'));
    await expect(send()).rejects.toMatchObject({ kind: 'account', accountReason: 'disconnected' });
    socket.failNext(Object.assign(new Error('Timed Out'), { output: { statusCode: 408 } }));
    const e = await send().catch((x: unknown) => x);
    expect(TransportError.isInstance(e) && e.kind).toBe('ambiguous');
  });

  it('sends with the deterministic WA-Web id, to the canonical jid, and refuses numbers not on WhatsApp', async () => {
    const { socket, transport } = setup();
    const id = messageIdFor('camp:5511999990001');
    expect(id).toMatch(/^3EB0[0-9A-F]{18}$/);
    expect(messageIdFor('camp:5511999990001')).toBe(id);
    const r = await transport.send({ to: '5511999990001', text: 'oi', idempotencyKey: 'camp:5511999990001' });
    expect(r.providerMessageId).toBe(id);
    expect(socket.sent[0]).toMatchObject({ jid: '5511999990001@s.whatsapp.net', options: { messageId: id } });
    const notFound = fixture<unknown[]>('baileys.onWhatsApp.result.not-found.json');
    expect(notFound).toEqual([]);
    socket.absent.add('5511999990002');
    await expect(transport.send({ to: '5511999990002', text: 'oi', idempotencyKey: 'camp:2' })).rejects.toMatchObject({ kind: 'invalid_recipient' });
  });
});

describe('baileys transport under the engine', () => {
  it('runs a campaign, receipts move statuses, and a logout stops the account and pauses the campaign', async () => {
    const { socket, transport } = setup();
    const store = createMemoryStore();
    const engine = createEngine({ store, logger: silentLogger, pollIntervalMs: 20, accounts: [{ id: 'wa1', transport, pacing: { intervalMs: { min: 0, max: 0 } } }] });
    const c = await engine.createCampaign({ name: 'b', templates: ['Oi {{name}}'], accountIds: ['wa1'], batchPauseMs: { min: 0, max: 0 } });
    await engine.addRecipients(c.id, ['5511999990001', '5511999990003', '5511999990004'].map((phone) => ({ phone, vars: { name: 'x' } })));
    const completed = new Promise<void>((r) => engine.on('campaign:completed', () => r()));
    await engine.start(c.id);
    const running = engine.run();
    await completed;
    const first = socket.sent[0]!.options!.messageId!;
    socket.emit('messages.update', [{ key: { remoteJid: socket.sent[0]!.jid, fromMe: true, id: first }, update: { status: 4 } }]);
    await new Promise((r) => setTimeout(r, 50));
    expect((await engine.progress(c.id)).counters).toMatchObject({ total: 3, read: 1 });

    const c2 = await engine.createCampaign({ name: 'after logout', templates: ['Oi'], accountIds: ['wa1'] });
    await engine.addRecipients(c2.id, [{ phone: '5511999990005' }]);
    const loggedOut = fixture('baileys.event.connection.update.close.loggedOut.json');
    socket.open = false;
    socket.emit('connection.update', { ...loggedOut, lastDisconnect: { ...loggedOut.lastDisconnect, error: Object.assign(new Error('Connection Failure'), loggedOut.lastDisconnect.error) } });
    await new Promise((r) => setTimeout(r, 50));
    expect(await store.getAccount('wa1')).toMatchObject({ state: 'stopped' });
    const paused = new Promise<void>((r) => engine.on('campaign:paused', () => r()));
    await engine.start(c2.id);
    await paused;
    expect((await store.getCampaign(c2.id))!).toMatchObject({ status: 'paused', pauseReason: 'no_accounts' });
    await engine.stop();
    await running;
  });
});
