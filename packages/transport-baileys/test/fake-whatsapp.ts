import { EventEmitter } from 'node:events';
import type { AnyMessageContent, BaileysEventMap, MiscMessageGenerationOptions, WAMessage, WAPresence, WASocket } from 'baileys';
import { boomFixture, boomFrom, fixture } from './fixtures.js';

/** What the transport touches on a Baileys socket, checked against the real `baileys` types. */
export type SocketSubset = Pick<WASocket, 'ev' | 'sendMessage' | 'onWhatsApp' | 'sendPresenceUpdate' | 'user'>;

/** A message the fake WhatsApp server accepted. */
export interface Accepted {
  jid: string;
  content: AnyMessageContent;
  id: string;
  text: string | null;
  at: number;
  socket: number;
}

type SendScript = { error: unknown; sendFirst?: boolean } | { hold: true };

/**
 * WhatsApp as one account's sockets see it: who is on WhatsApp (and under which canonical number),
 * what was accepted, and the events it pushes. Each `socket()` is a new `makeWASocket` connection
 * (Baileys needs a new socket after every close), all talking to this one server.
 */
export class FakeWhatsApp {
  readonly accepted: Accepted[] = [];
  readonly presences: Array<{ type: WAPresence; jid: string | undefined; at: number }> = [];
  /** Numbers (digits) that are not on WhatsApp. */
  readonly notOnWhatsApp = new Set<string>();
  /** Dialled number -> the number WhatsApp knows (Brazil's 9th digit). */
  readonly canonical = new Map<string, string>();
  readonly sockets: FakeSocket[] = [];
  readonly onWhatsAppCalls: string[][] = [];
  /** Emit a server ack (`messages.update` status 2) after each accepted send. */
  autoAck = true;
  private readonly sendScripts: SendScript[] = [];
  private readonly checkScripts: Array<{ error: unknown } | { notFound: true }> = [];
  private inboundCounter = 0;

  constructor(readonly now: () => number = Date.now) {}

  /** A new connection (as `makeWASocket` returns), open unless `open: false`. */
  socket(options: { open?: boolean } = {}): FakeSocket {
    const s = new FakeSocket(this, this.sockets.length, options.open ?? true);
    this.sockets.push(s);
    return s;
  }

  get current(): FakeSocket {
    const s = this.sockets[this.sockets.length - 1];
    if (!s) throw new Error('no socket yet');
    return s;
  }

  /** The next `sendMessage` throws `error` (after accepting the message when `sendFirst`). */
  failNextSend(error: unknown, options: { sendFirst?: boolean } = {}): void {
    this.sendScripts.push({ error, ...options });
  }

  /** The next `sendMessage` is accepted but never resolves. */
  holdNextSend(): void {
    this.sendScripts.push({ hold: true });
  }

  /** The next `onWhatsApp` throws `error`, or finds nobody. */
  failNextCheck(error: unknown): void {
    this.checkScripts.push({ error });
  }
  notFoundNextCheck(): void {
    this.checkScripts.push({ notFound: true });
  }

  /** A contact writes to the account. */
  inbound(from: string, text: string, type: 'notify' | 'append' = 'notify'): void {
    this.current.emit('messages.upsert', {
      type,
      messages: [
        {
          key: { remoteJid: `${from}@s.whatsapp.net`, fromMe: false, id: `3A${String(++this.inboundCounter).padStart(18, '0')}` },
          message: { conversation: text },
          messageTimestamp: Math.floor(this.now() / 1000),
        },
      ],
    });
  }

  /** Replay a `baileys.event.messages.update.*.json` fixture for message `id`. */
  receipt(fixtureName: string, id: string): void {
    const updates = fixture<BaileysEventMap['messages.update']>(fixtureName).map((u) => ({ ...u, key: { ...u.key, id } }));
    this.current.emit('messages.update', updates);
  }

  /** The connection drops with a `baileys.event.connection.update.close.*.json` fixture. */
  drop(fixtureName = 'baileys.event.connection.update.close.connectionClosed.json'): void {
    const s = this.current;
    s.open = false;
    const f = fixture(fixtureName);
    s.emit('connection.update', { ...f, lastDisconnect: { error: boomFrom(f.lastDisconnect.error), date: new Date(f.lastDisconnect.date) } });
  }

  // ---- what a socket asks the server ----------------------------------------

  /** @internal */
  async handleSend(socket: FakeSocket, jid: string, content: AnyMessageContent, options: MiscMessageGenerationOptions | undefined): Promise<WAMessage | undefined> {
    // Baileys: `sendRawMessage` on a closed websocket throws Boom('Connection Closed', 428).
    if (!socket.open) throw boomFixture('baileys.error.connection-closed.json');
    const script = this.sendScripts.shift();
    if (script && 'error' in script && !script.sendFirst) throw script.error;
    const id = options?.messageId ?? `3EB0${Math.random().toString(16).slice(2, 20).toUpperCase().padEnd(18, '0')}`;
    const text = 'text' in content && typeof content.text === 'string' ? content.text : 'caption' in content && typeof content.caption === 'string' ? content.caption : null;
    const at = this.now();
    this.accepted.push({ jid, content, id, text, at, socket: socket.index });
    // The shape of baileys.sendMessage.result.json, for this message.
    const result = fixture<WAMessage>('baileys.sendMessage.result.json');
    result.key = { remoteJid: jid, fromMe: true, id };
    result.message = text !== null && 'text' in content ? { extendedTextMessage: { text } } : { imageMessage: { caption: text } };
    result.messageTimestamp = Math.floor(at / 1000);
    // emitOwnEvents (Baileys' default): the sent message comes back as an `append` upsert.
    queueMicrotask(() => socket.emit('messages.upsert', { type: 'append', messages: [result] }));
    if (this.autoAck) setImmediate(() => socket.open && this.receipt('baileys.event.messages.update.server-ack.json', id));
    if (script && 'error' in script) throw script.error;
    if (script && 'hold' in script) return new Promise<never>(() => undefined);
    return result;
  }

  /** @internal */
  async handleCheck(socket: FakeSocket, numbers: string[]): Promise<{ jid: string; exists: boolean }[] | undefined> {
    this.onWhatsAppCalls.push(numbers);
    if (!socket.open) throw boomFixture('baileys.error.connection-closed.json');
    const script = this.checkScripts.shift();
    if (script && 'error' in script) throw script.error;
    if (script) return fixture('baileys.onWhatsApp.result.not-found.json');
    // Baileys: `+<digits>` USync query; numbers not on WhatsApp are left out of the answer.
    const out: { jid: string; exists: boolean }[] = [];
    for (const n of numbers) {
      const digits = n.replace('+', '').split('@')[0]!.split(':')[0]!;
      const known = this.canonical.get(digits) ?? digits;
      if (this.notOnWhatsApp.has(digits) || this.notOnWhatsApp.has(known)) continue;
      const [row] = fixture<Array<{ jid: string; exists: boolean }>>('baileys.onWhatsApp.result.json');
      out.push({ ...row!, jid: `${known}@s.whatsapp.net` });
    }
    return out;
  }
}

/** One fake `makeWASocket` connection: the part of `WASocket` the transport uses, with the real types. */
export class FakeSocket implements SocketSubset {
  readonly emitter = new EventEmitter();
  readonly ev: WASocket['ev'];
  user: WASocket['user'] = { id: '5511999990000:7@s.whatsapp.net', name: 'Loja' };
  /** Calls to ev.off, to check that the transport lets go of an old socket. */
  offCalls = 0;

  constructor(
    readonly server: FakeWhatsApp,
    readonly index: number,
    public open: boolean,
  ) {
    const emitter = this.emitter;
    const processors = new Set<(events: Partial<BaileysEventMap>) => void | Promise<void>>();
    const ev: WASocket['ev'] = {
      on: (event, listener) => void emitter.on(event, listener),
      off: (event, listener) => {
        this.offCalls++;
        emitter.off(event, listener);
      },
      removeAllListeners: (event) => void emitter.removeAllListeners(event),
      emit: (event, arg) => {
        for (const p of processors) void p({ [event]: arg });
        return emitter.emit(event, arg);
      },
      process: (handler) => {
        processors.add(handler);
        return () => void processors.delete(handler);
      },
      buffer: () => undefined,
      createBufferedFunction: (work) => work,
      flush: () => false,
      isBuffering: () => false,
      destroy: () => {
        emitter.removeAllListeners();
        processors.clear();
      },
    };
    this.ev = ev;
  }

  emit<E extends keyof BaileysEventMap>(event: E, payload: BaileysEventMap[E]): void {
    this.ev.emit(event, payload);
  }

  /** Listeners the transport keeps on this socket. */
  listenerCount(): number {
    return this.emitter.eventNames().reduce((n, e) => n + this.emitter.listenerCount(e), 0);
  }

  sendMessage: WASocket['sendMessage'] = (jid, content, options) => this.server.handleSend(this, jid, content, options);

  onWhatsApp: WASocket['onWhatsApp'] = (...numbers) => this.server.handleCheck(this, numbers);

  sendPresenceUpdate: WASocket['sendPresenceUpdate'] = async (type, toJid) => {
    if (!this.open) throw boomFixture('baileys.error.connection-closed.json');
    this.server.presences.push({ type, jid: toJid, at: this.server.now() });
  };

  /** Baileys emits `connection.update` `{ connection: 'open' }` once the login completes. */
  connect(): void {
    this.open = true;
    this.emit('connection.update', fixture('baileys.event.connection.update.open.json'));
  }
}

// The fake must stay assignable to the real socket's subset (a compile-time check, no runtime cost).
export const _typecheck = (s: FakeSocket): SocketSubset => s satisfies SocketSubset;
