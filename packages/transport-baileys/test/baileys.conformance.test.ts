import { TransportError, type TransportErrorKind } from '@disparo/core';
import { describeTransport } from '@disparo/core/testing';
import { createBaileysTransport } from '../src/index.js';
import { FakeSocket, boom } from './fake-socket.js';

describeTransport('baileys', () => {
  const socket = new FakeSocket();
  const transport = createBaileysTransport({ socket, rateLimitBackoffMs: 120_000 });
  const failures: Partial<Record<TransportErrorKind, () => unknown>> = {
    rate_limited: () => boom('baileys.error.rate-overlimit.json'),
    account: () => boom('baileys.error.connection-closed.json'),
    ambiguous: () => Object.assign(new Error('Timed Out'), { isBoom: true, output: { statusCode: 408 } }),
    transient: () => Object.assign(new Error('item-not-found'), { isBoom: true, data: 404, output: { statusCode: 500 } }),
  };
  return {
    transport,
    script: {
      failKinds: Object.keys(failures) as TransportErrorKind[],
      failNext: (kind) => {
        socket.failNext(failures[kind]!());
        return kind === 'rate_limited' ? { retryAfterMs: 120_000 } : undefined;
      },
      markNotOnWhatsApp: (phone) => void socket.absent.add(phone),
      disconnect: () => {
        socket.open = false;
        socket.emit('connection.update', { connection: 'close', lastDisconnect: { error: boom('baileys.error.connection-closed.json'), date: new Date() } });
      },
      reconnect: () => {
        socket.open = true;
        socket.emit('connection.update', { connection: 'open' });
      },
      received: () => socket.sent.map((s) => ({ to: s.jid.split('@')[0]!, text: (s.content as { text: string }).text })),
      holdNext: () => socket.holdNext(),
      emitInbound: (from, text) =>
        socket.emit('messages.upsert', { type: 'notify', messages: [{ key: { remoteJid: `${from}@s.whatsapp.net`, fromMe: false, id: `IN${Date.now()}` }, message: { conversation: text }, messageTimestamp: Math.floor(Date.now() / 1000) }] }),
    },
    close: () => transport.close(),
  };
});

// Keep the import used when the suite skips everything.
void TransportError;
