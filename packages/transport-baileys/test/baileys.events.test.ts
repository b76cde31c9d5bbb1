import { describe, expect, it } from 'vitest';
import type { TransportEvent } from '@disparo/core/transport';
import type { NewChatMessageCappingStatusType } from 'baileys';
import { VirtualClock } from '@disparo/core/testing';
import { createBaileysTransport, messageIdFor } from '../src/index.js';
import { FakeWhatsApp } from './fake-whatsapp.js';
import { boomFrom, fixture, fixtureNames } from './fixtures.js';

function setup() {
  const clock = new VirtualClock(Date.UTC(2025, 5, 1, 12, 0, 0));
  const fake = new FakeWhatsApp(() => clock.now());
  const socket = fake.socket();
  const transport = createBaileysTransport({ socket, clock, restrictionHoldMs: 3_600_000 });
  const events: TransportEvent[] = [];
  transport.subscribe((e) => events.push(e));
  return { clock, fake, socket, transport, events };
}

/** A `connection.update` fixture with its rendered Boom turned back into an Error. */
function connectionFixture(name: string) {
  const f = fixture(name);
  return f.lastDisconnect ? { ...f, lastDisconnect: { error: boomFrom(f.lastDisconnect.error), date: new Date(f.lastDisconnect.date) } } : f;
}

describe('connection.update', () => {
  it('replays every connection fixture into the right events', () => {
    const { socket, events } = setup();
    const names = fixtureNames('baileys.event.connection.update.');
    expect(names).toHaveLength(6);
    const byName: Record<string, TransportEvent[]> = {};
    for (const name of names) {
      const before = events.length;
      socket.emit('connection.update', connectionFixture(name));
      byName[name] = events.slice(before);
    }
    expect(byName['baileys.event.connection.update.open.json']).toEqual([{ type: 'connection', state: 'open' }]);
    expect(byName['baileys.event.connection.update.connecting.json']).toEqual([{ type: 'connection', state: 'connecting' }]);
    // A QR code alone changes nothing: the account waits for the phone to scan it.
    expect(byName['baileys.event.connection.update.qr.json']).toEqual([]);
    expect(byName['baileys.event.connection.update.close.connectionClosed.json']).toEqual([
      { type: 'connection', state: 'close', detail: expect.stringContaining('Connection Terminated (428)') },
    ]);
    expect(byName['baileys.event.connection.update.close.loggedOut.json']).toEqual([
      { type: 'connection', state: 'close', stopReason: 'logged_out', detail: expect.stringContaining('(401)') },
    ]);
    expect(byName['baileys.event.connection.update.reachoutTimeLock.json']).toEqual([
      { type: 'account_hold', until: Date.parse('2025-06-02T09:00:00.000Z'), reason: expect.stringContaining('BIZ_QUALITY') },
    ]);
  });

  it.each([
    [401, 'logged_out'],
    [403, 'banned'],
    [440, 'replaced'],
    [411, 'logged_out'],
    [402, 'banned'],
    [406, 'logged_out'],
  ] as const)('close %i stops the account (%s)', async (code, reason) => {
    const { socket, transport, events } = setup();
    socket.emit('connection.update', { connection: 'close', lastDisconnect: { error: boomFrom({ message: 'Connection Failure', isBoom: true, output: { statusCode: code } }), date: new Date() } });
    expect(events).toEqual([expect.objectContaining({ type: 'connection', state: 'close', stopReason: reason })]);
    expect(await transport.connectionState()).toBe('close');
    // A send now fails at once with the same reason, without touching the socket.
    await expect(transport.send({ to: '5511999990001', text: 'oi', idempotencyKey: 'k' })).rejects.toMatchObject({ kind: 'account', accountReason: reason, providerCode: code });
  });

  it.each([428, 408, 500, 503, 515])('close %i is transient: no stopReason, sends fail as disconnected until it opens', async (code) => {
    const { fake, socket, transport, events } = setup();
    socket.emit('connection.update', { connection: 'close', lastDisconnect: { error: boomFrom({ message: 'Connection Closed', isBoom: true, output: { statusCode: code } }), date: new Date() } });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'connection', state: 'close' });
    expect(events[0]).not.toHaveProperty('stopReason');
    await expect(transport.send({ to: '5511999990001', text: 'oi', idempotencyKey: 'k' })).rejects.toMatchObject({ kind: 'account', accountReason: 'disconnected' });
    expect(fake.accepted).toHaveLength(0);
    socket.connect();
    expect(await transport.connectionState()).toBe('open');
    await expect(transport.send({ to: '5511999990001', text: 'oi', idempotencyKey: 'k' })).resolves.toMatchObject({ providerMessageId: messageIdFor('k') });
  });

  it('a logout is remembered until the account opens again', async () => {
    const { fake, transport, events } = setup();
    fake.drop('baileys.event.connection.update.close.loggedOut.json');
    await expect(transport.send({ to: '5511999990001', text: 'oi', idempotencyKey: 'k' })).rejects.toMatchObject({ kind: 'account', accountReason: 'logged_out' });
    // The host logs in again on a new socket (QR scan) and hands it over.
    const next = fake.socket({ open: false });
    transport.useSocket(next);
    next.emit('connection.update', fixture('baileys.event.connection.update.qr.json'));
    await expect(transport.send({ to: '5511999990001', text: 'oi', idempotencyKey: 'k' })).rejects.toMatchObject({ kind: 'account', accountReason: 'logged_out' });
    next.connect();
    expect(events.at(-1)).toEqual({ type: 'connection', state: 'open' });
    await expect(transport.send({ to: '5511999990001', text: 'oi', idempotencyKey: 'k' })).resolves.toMatchObject({ remoteJid: '5511999990001@s.whatsapp.net' });
  });
});

describe('messages.update', () => {
  it('maps the receipt fixtures (2, 3, 4) to sent, delivered and read with their times, correlated on key.id', () => {
    const { socket, events } = setup();
    for (const f of ['server-ack', 'delivery', 'read']) socket.emit('messages.update', fixture(`baileys.event.messages.update.${f}.json`));
    expect(events).toEqual([
      { type: 'status', providerMessageId: '3EB09F2C5A7D1E4B6C8A0F', status: 'sent', at: 1748769303_000 },
      { type: 'status', providerMessageId: '3EB09F2C5A7D1E4B6C8A0F', status: 'delivered', at: 1748769304_000 },
      // The read receipt comes from a @lid chat: key.id still correlates it.
      { type: 'status', providerMessageId: '3EB09F2C5A7D1E4B6C8A0F', status: 'read', at: 1748769390_000 },
    ]);
  });

  it('maps PLAYED (5) to read and ignores PENDING (1), receipts for received messages and updates without a status', () => {
    const { socket, events } = setup();
    const key = { remoteJid: '5511999990001@s.whatsapp.net', fromMe: true, id: '3EB0AAAAAAAAAAAAAAAAAA' };
    socket.emit('messages.update', [
      { key, update: { status: 5 } },
      { key, update: { status: 1 } },
      { key: { ...key, fromMe: false }, update: { status: 3 } },
      { key, update: { message: { conversation: 'edited' } } },
    ]);
    expect(events).toEqual([{ type: 'status', providerMessageId: key.id, status: 'read', at: expect.any(Number) }]);
  });

  it('a 463 nack fails the message with its code and holds the account (never retried)', async () => {
    const { clock, socket, transport, events } = setup();
    socket.emit('messages.update', fixture('baileys.event.messages.update.error.463.json'));
    expect(events).toEqual([
      { type: 'account_hold', until: clock.now() + 3_600_000, reason: expect.stringContaining('463') },
      { type: 'status', providerMessageId: '3EB09F2C5A7D1E4B6C8A0F', status: 'failed', at: clock.now(), code: '463', error: expect.stringContaining('Your account has been restricted') },
    ]);
    // While held, the transport refuses new sends as rate_limited (no attempt consumed) until the hold ends.
    await expect(transport.send({ to: '5511999990001', text: 'oi', idempotencyKey: 'k' })).rejects.toMatchObject({ kind: 'rate_limited', retryAfterMs: 3_600_000 });
    await clock.advance(3_600_000);
    await expect(transport.send({ to: '5511999990001', text: 'oi', idempotencyKey: 'k' })).resolves.toBeDefined();
  });

  it('other nack codes fail the message with their code only', () => {
    const { socket, events } = setup();
    socket.emit('messages.update', [{ key: { remoteJid: '5511999990001@s.whatsapp.net', fromMe: true, id: '3EB0BBBBBBBBBBBBBBBBBB' }, update: { status: 0, messageStubParameters: ['479'] } }]);
    expect(events).toEqual([{ type: 'status', providerMessageId: '3EB0BBBBBBBBBBBBBBBBBB', status: 'failed', at: expect.any(Number), code: '479', error: expect.stringContaining('stale device session') }]);
  });

  it('group receipts (message-receipt.update) produce nothing', () => {
    const { socket, events } = setup();
    socket.emit('message-receipt.update', fixture('baileys.event.message-receipt.update.json'));
    expect(events).toEqual([]);
  });
});

describe('holds', () => {
  it('message capping CAPPED holds until the cycle ends; NONE lifts it', async () => {
    const { socket, transport, events } = setup();
    socket.emit('message-capping.update', fixture('baileys.event.message-capping.update.json'));
    expect(events).toEqual([{ type: 'account_hold', until: 1749340800_000, reason: expect.stringContaining('250/250') }]);
    await expect(transport.send({ to: '5511999990001', text: 'oi', idempotencyKey: 'k' })).rejects.toMatchObject({ kind: 'rate_limited' });
    socket.emit('message-capping.update', { ...fixture('baileys.event.message-capping.update.json'), used_quota: 10, capping_status: 'NONE' as NewChatMessageCappingStatusType });
    await expect(transport.send({ to: '5511999990001', text: 'oi', idempotencyKey: 'k' })).resolves.toBeDefined();
  });

  it('warnings only inform; a lifted reachout lock lets sends through again', async () => {
    const { socket, transport, events } = setup();
    socket.emit('message-capping.update', { ...fixture('baileys.event.message-capping.update.json'), used_quota: 200, capping_status: 'FIRST_WARNING' as NewChatMessageCappingStatusType });
    expect(events).toEqual([]);
    socket.emit('connection.update', fixture('baileys.event.connection.update.reachoutTimeLock.json'));
    const hold = await transport.send({ to: '5511999990001', text: 'oi', idempotencyKey: 'k' }).catch((e: unknown) => e);
    expect(hold).toMatchObject({ kind: 'rate_limited', retryAfterMs: Date.parse('2025-06-02T09:00:00.000Z') - Date.UTC(2025, 5, 1, 12, 0, 0) });
    socket.emit('connection.update', { reachoutTimeLock: { isActive: false } });
    await expect(transport.send({ to: '5511999990001', text: 'oi', idempotencyKey: 'k' })).resolves.toBeDefined();
  });

  it('enforceHolds: false only reports holds', async () => {
    const clock = new VirtualClock();
    const fake = new FakeWhatsApp(() => clock.now());
    const transport = createBaileysTransport({ socket: fake.socket(), clock, enforceHolds: false });
    fake.current.emit('message-capping.update', fixture('baileys.event.message-capping.update.json'));
    await expect(transport.send({ to: '5511999990001', text: 'oi', idempotencyKey: 'k' })).resolves.toBeDefined();
  });
});

describe('messages.upsert', () => {
  it('turns a contact message into an inbound event (digits, text, time) and skips own, group, history and protocol messages', () => {
    const { fake, socket, events } = setup();
    fake.inbound('5511999990001', 'SAIR');
    const base = { messageTimestamp: 1748769400 };
    socket.emit('messages.upsert', {
      type: 'notify',
      messages: [
        { ...base, key: { remoteJid: '5511999990002@s.whatsapp.net', fromMe: true, id: 'A1' }, message: { conversation: 'mine' } },
        { ...base, key: { remoteJid: '120363000000000001@g.us', fromMe: false, id: 'A2', participant: '5511999990003@s.whatsapp.net' }, message: { conversation: 'group' } },
        { ...base, key: { remoteJid: '5511999990004@s.whatsapp.net', fromMe: false, id: 'A3' }, message: { reactionMessage: { text: '👍' } } },
        { ...base, key: { remoteJid: '123456789012345@lid', remoteJidAlt: '5511999990005@s.whatsapp.net', fromMe: false, id: 'A4' }, message: { extendedTextMessage: { text: 'Parar' } } },
        { ...base, key: { remoteJid: '123456789012346@lid', fromMe: false, id: 'A5' }, message: { conversation: 'no phone' } },
      ],
    });
    fake.inbound('5511999990006', 'old', 'append');
    expect(events).toEqual([
      { type: 'inbound', from: '5511999990001', text: 'SAIR', at: Date.UTC(2025, 5, 1, 12, 0, 0), providerMessageId: expect.any(String) },
      { type: 'inbound', from: '5511999990005', text: 'Parar', at: 1748769400_000, providerMessageId: 'A4' },
    ]);
  });
});

describe('subscription', () => {
  it('unsubscribe stops delivery; a throwing listener does not stop the others; close lets go of the socket', async () => {
    const { fake, socket, transport, events } = setup();
    const seen: TransportEvent[] = [];
    transport.subscribe(() => {
      throw new Error('boom');
    });
    const off = transport.subscribe((e) => seen.push(e));
    fake.inbound('5511999990001', 'oi');
    off();
    off();
    fake.inbound('5511999990001', 'again');
    expect(seen).toHaveLength(1);
    expect(events).toHaveLength(2);
    expect(socket.listenerCount()).toBe(4);
    await transport.close();
    expect(socket.listenerCount()).toBe(0);
  });

  it('useSocket moves the listeners to the new socket', () => {
    const { fake, socket, transport, events } = setup();
    const next = fake.socket();
    transport.useSocket(next);
    expect(socket.listenerCount()).toBe(0);
    expect(next.listenerCount()).toBe(4);
    socket.emit('messages.update', fixture('baileys.event.messages.update.delivery.json'));
    expect(events).toEqual([]);
    next.emit('messages.update', fixture('baileys.event.messages.update.delivery.json'));
    expect(events).toEqual([expect.objectContaining({ type: 'status', status: 'delivered' })]);
  });
});
