import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import type { AnyMessageContent, BaileysEventMap, MiscMessageGenerationOptions, WAMessage } from 'baileys';
import type { BaileysSocket } from '../src/index.js';

/** A fixture from fixtures/ at the repository root, parsed. */
export const fixture = <T = any>(name: string): T => JSON.parse(readFileSync(new URL(`../../../fixtures/${name}`, import.meta.url), 'utf8')) as T;

/** A Boom-shaped error as Baileys throws it (from a fixture: message is non-enumerable there, so it is set here). */
export function boom(name: string): Error {
  const f = fixture<{ message: string }>(name);
  return Object.assign(new Error(f.message), f);
}

interface Sent {
  jid: string;
  content: AnyMessageContent;
  options: MiscMessageGenerationOptions | undefined;
}

/**
 * The subset of a Baileys WASocket the transport uses, type-checked against the real `baileys` types
 * (`BaileysSocket` is a Pick of `WASocket`). It answers like Baileys 7: sendMessage resolves with a
 * WAMessage once "written", numbers not on WhatsApp are left out of onWhatsApp's answer.
 */
export class FakeSocket implements BaileysSocket {
  readonly emitter = new EventEmitter();
  readonly ev = {
    on: <E extends keyof BaileysEventMap>(event: E, listener: (arg: BaileysEventMap[E]) => void) => void this.emitter.on(event, listener),
    off: <E extends keyof BaileysEventMap>(event: E, listener: (arg: BaileysEventMap[E]) => void) => void this.emitter.off(event, listener),
  } as BaileysSocket['ev'];
  readonly sent: Sent[] = [];
  readonly presence: Array<{ type: string; jid: string | undefined }> = [];
  readonly absent = new Set<string>();
  open = true;
  private failures: unknown[] = [];
  private hold = false;

  failNext(error: unknown): void {
    this.failures.push(error);
  }

  holdNext(): void {
    this.hold = true;
  }

  emit<E extends keyof BaileysEventMap>(event: E, payload: BaileysEventMap[E]): void {
    this.emitter.emit(event, payload);
  }

  sendMessage = async (jid: string, content: AnyMessageContent, options?: MiscMessageGenerationOptions): Promise<WAMessage | undefined> => {
    if (!this.open) throw boom('baileys.error.connection-closed.json');
    const failure = this.failures.shift();
    if (failure) throw failure;
    this.sent.push({ jid, content, options });
    if (this.hold) {
      this.hold = false;
      return new Promise<never>(() => undefined);
    }
    const id = options?.messageId ?? '3EB0000000000000000000';
    // The server ack arrives after sendMessage resolves, as a messages.update with status 2.
    setImmediate(() => this.emit('messages.update', [{ key: { remoteJid: jid, fromMe: true, id }, update: { status: 2 } }]));
    const text = 'text' in content ? (content as { text: string }).text : undefined;
    return { key: { remoteJid: jid, fromMe: true, id }, message: text ? { extendedTextMessage: { text } } : {}, messageTimestamp: Math.floor(Date.now() / 1000), status: 1 } as WAMessage;
  };

  onWhatsApp = async (...phones: string[]): Promise<{ jid: string; exists: boolean }[] | undefined> =>
    phones.filter((p) => !this.absent.has(p.replace(/\D/g, ''))).map((p) => ({ jid: `${p.replace(/\D/g, '')}@s.whatsapp.net`, exists: true }));

  sendPresenceUpdate = async (type: Parameters<BaileysSocket['sendPresenceUpdate']>[0], jid?: string): Promise<void> => {
    this.presence.push({ type, jid });
  };
}
