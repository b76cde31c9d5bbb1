/**
 * A local HTTP server that speaks Evolution API v2's wire format (routes, guards, success and error
 * bodies) built from ../shared/fixtures, so the transport is tested over real HTTP with its own fetch.
 * Scriptable: queue the next reply of a route, delay it, destroy the socket after reading the request.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { fixture } from './fixtures.js';

export type Route = 'sendText' | 'sendMedia' | 'connectionState' | 'whatsappNumbers' | 'findMessages' | 'sendPresence' | 'webhookSet';
/** `send` scripts whichever of sendText/sendMedia comes next. */
export type ScriptTarget = Route | 'send';

const ROUTES: Record<string, Route> = {
  'POST /message/sendText': 'sendText',
  'POST /message/sendMedia': 'sendMedia',
  'GET /instance/connectionState': 'connectionState',
  'POST /chat/whatsappNumbers': 'whatsappNumbers',
  'POST /chat/findMessages': 'findMessages',
  'POST /chat/sendPresence': 'sendPresence',
  'POST /webhook/set': 'webhookSet',
};

export interface Reply {
  status?: number;
  /** JSON body. */
  body?: unknown;
  /** Raw body text (not JSON). */
  raw?: string;
  headers?: Record<string, string>;
  /** Body from this fixture file; the status from its `status` field unless `status` is given. */
  fixture?: string;
  /** Wait this long before answering. */
  delayMs?: number;
  /** Close the connection instead of answering (after reading the request). */
  destroy?: boolean;
  /** Send routes: the message goes out (is stored) before the scripted outcome. */
  sendFirst?: boolean;
  /** Never answer (the connection stays open until the client gives up or the server closes). */
  hold?: boolean;
}

export interface RecordedRequest {
  method: string;
  path: string;
  route: Route | undefined;
  headers: IncomingHttpHeaders;
  body: unknown;
  /** When the request arrived (epoch ms, this process's clock): pacing is measured here, where the provider sees it. */
  at: number;
}

export interface StoredMessage {
  id: string;
  dbId: string;
  remoteJid: string;
  fromMe: boolean;
  number: string;
  text: string | null;
  messageType: string;
  message: Record<string, unknown>;
  /** Epoch seconds, as Evolution stores it. */
  messageTimestamp: number;
}

export interface Answer {
  status: number;
  body?: unknown;
  raw?: string;
  headers?: Record<string, string>;
}

const INSTANCE_ID = '7f0c8a2e-1b3d-4c5e-9f70-123456789abc';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const messageId = () => `3EB0${randomBytes(9).toString('hex').toUpperCase()}`;
const isRecord = (v: unknown): v is Record<string, any> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The error envelope of Evolution's global handler. */
export function envelope(status: number, message: unknown): { status: number; error: string; response: { message: unknown } } {
  const error = status === 400 ? 'Bad Request' : status === 401 ? 'Unauthorized' : status === 404 ? 'Not Found' : 'Internal Server Error';
  return { status, error, response: { message } };
}

/** A Baileys Boom error as JSON (what the whatsappNumbers route answers with on failure). */
export function boom(statusCode: number, message: string, data: unknown = null) {
  const error = statusCode === 428 ? 'Precondition Required' : 'Internal Server Error';
  return { data, isBoom: true, isServer: statusCode >= 500, output: { statusCode, payload: { statusCode, error, message: statusCode >= 500 ? 'An internal server error occurred' : message }, headers: {} } };
}

export class FakeEvolution {
  url = '';
  state: 'open' | 'connecting' | 'close' = 'open';
  readonly notOnWhatsApp = new Set<string>();
  /** number -> the JID Evolution resolves it to (e.g. a Brazilian number without the 9th digit). */
  readonly jidOverrides = new Map<string, string>();
  readonly requests: RecordedRequest[] = [];
  /** Messages "WhatsApp" accepted (and Evolution stored), oldest first. */
  readonly stored: StoredMessage[] = [];
  /**
   * Whether the instance keeps what it sends in its database (`DATABASE_SAVE_DATA_NEW_MESSAGE`).
   * When false, `findMessages` finds no sent message, as on an instance that stores nothing.
   */
  savesSentMessages = true;
  readonly presences: Array<{ number: string; presence: string; delay: number }> = [];
  /** Webhooks this fake delivered: what it posted and what the receiver answered. */
  readonly deliveries: Array<{ event: string; status: number }> = [];
  webhook: { enabled: boolean; url: string; headers: Record<string, string>; events: string[] } | null = null;
  /** Evolution's own clock (epoch ms). */
  clock: () => number = Date.now;
  private readonly queues = new Map<ScriptTarget, Reply[]>();
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;

  private constructor(
    readonly instance: string,
    readonly apiKey: string,
  ) {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error) => {
        if (!res.headersSent && !res.destroyed) this.write(res, { status: 500, body: envelope(500, String(error)) });
      });
    });
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  static async start(options: { instance?: string; apiKey?: string } = {}): Promise<FakeEvolution> {
    const fake = new FakeEvolution(options.instance ?? 'campaign-01', options.apiKey ?? 'test-api-key');
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    const { port } = fake.server.address() as AddressInfo;
    fake.url = `http://127.0.0.1:${port}`;
    // Warm up the client (the first fetch in a process loads undici), so short timeouts in tests measure the server.
    await (await fetch(`${fake.url}/warm-up`)).text();
    fake.requests.length = 0;
    return fake;
  }

  /** Queue the next reply of a route (FIFO). */
  next(target: ScriptTarget, reply: Reply): this {
    const queue = this.queues.get(target) ?? [];
    queue.push(reply);
    this.queues.set(target, queue);
    return this;
  }

  /** Requests to one route. */
  calls(route: Route): RecordedRequest[] {
    return this.requests.filter((r) => r.route === route);
  }

  /** Put a message in Evolution's store directly (another chat, an older copy, an inbound one). */
  store(message: Partial<StoredMessage> & { remoteJid: string; text: string }): StoredMessage {
    const record: StoredMessage = {
      id: message.id ?? messageId(),
      dbId: message.dbId ?? `cm${randomBytes(11).toString('hex')}`,
      remoteJid: message.remoteJid,
      fromMe: message.fromMe ?? true,
      number: message.number ?? message.remoteJid.split('@')[0]!,
      text: message.text,
      messageType: message.messageType ?? 'conversation',
      message: message.message ?? { conversation: message.text },
      messageTimestamp: message.messageTimestamp ?? Math.floor(this.clock() / 1000),
    };
    this.stored.push(record);
    return record;
  }

  /** Send a webhook to the registered URL the way Evolution does (envelope, custom headers, jwt_key -> Bearer JWT). */
  async emitWebhook(event: string, data: unknown): Promise<number | null> {
    const hook = this.webhook;
    const enumName = event.replace(/\./g, '_').toUpperCase();
    if (!hook?.enabled || (hook.events.length > 0 && !hook.events.includes(enumName))) return null;
    const headers: Record<string, string> = { 'content-type': 'application/json', ...hook.headers };
    if ('jwt_key' in headers) {
      headers.authorization = `Bearer ${this.signJwt(headers.jwt_key!)}`;
      delete headers.jwt_key;
    }
    const body = {
      event,
      instance: this.instance,
      data,
      destination: hook.url,
      date_time: new Date(this.clock()).toISOString(),
      sender: '5511988880000@s.whatsapp.net',
      server_url: this.url,
      apikey: null,
    };
    const res = await fetch(hook.url, { method: 'POST', headers, body: JSON.stringify(body) });
    await res.text();
    this.deliveries.push({ event, status: res.status });
    return res.status;
  }

  /** `messages.update` for a stored message, as Evolution emits it. */
  async ack(id: string, status: 'SERVER_ACK' | 'DELIVERY_ACK' | 'READ' | 'PLAYED' | 'ERROR'): Promise<number | null> {
    const m = this.stored.find((s) => s.id === id);
    if (!m) throw new Error(`no stored message ${id}`);
    return this.emitWebhook('messages.update', { keyId: m.id, remoteJid: m.remoteJid, fromMe: true, status, instanceId: INSTANCE_ID, messageId: m.dbId });
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** HS256 JWT like Evolution's generateJwtToken (written here independently of the package). */
  signJwt(key: string): string {
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const iat = Math.floor(this.clock() / 1000);
    const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ iat, exp: iat + 600, app: 'evolution', action: 'webhook' })}`;
    return `${head}.${createHmac('sha256', key).update(head).digest('base64url')}`;
  }

  // ---- internals -----------------------------------------------------------

  private take(route: Route): Reply | undefined {
    for (const target of [route, route === 'sendText' || route === 'sendMedia' ? 'send' : null] as const) {
      if (!target) continue;
      const queue = this.queues.get(target);
      if (queue && queue.length > 0) return queue.shift();
    }
    return undefined;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let json: unknown;
    let invalidJson = false;
    if (text.length > 0) {
      try {
        json = JSON.parse(text);
      } catch {
        invalidJson = true;
      }
    }
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://fake');
    const m = /^\/(message|chat|instance|webhook)\/([A-Za-z]+)\/([^/]+)$/.exec(url.pathname);
    const route = m ? ROUTES[`${method} /${m[1]}/${m[2]}`] : undefined;
    this.requests.push({ method, path: url.pathname, route, headers: req.headers, body: json, at: Date.now() });

    if (!route || !m) return this.write(res, { status: 404, body: envelope(404, [`Cannot ${method} ${req.url}`]) });
    const scripted = this.take(route);
    if (scripted) return this.scripted(route, scripted, json, req, res);

    // Evolution's guard order: instance exists, then the API key (CONTRACTS.md 1.1).
    const instance = decodeURIComponent(m[3]!);
    if (instance !== this.instance) {
      const body = fixture('evolution.error.instance-not-found.json');
      body.response.message = [`The "${instance}" instance does not exist`];
      return this.write(res, { status: 404, body });
    }
    if (req.headers.apikey !== this.apiKey) return this.write(res, { status: 401, body: fixture('evolution.error.unauthorized.json') });
    if (invalidJson) return this.write(res, { status: 400, body: envelope(400, ['Unexpected token in JSON']) });
    return this.write(res, await this.normal(route, json));
  }

  private async scripted(route: Route, reply: Reply, json: unknown, req: IncomingMessage, res: ServerResponse): Promise<void> {
    let result: Answer | undefined;
    if (reply.sendFirst) result = await this.normal(route, json);
    if (reply.hold) return;
    if (reply.delayMs) await sleep(reply.delayMs);
    if (reply.destroy) {
      req.socket.destroy();
      return;
    }
    if (reply.fixture !== undefined || reply.body !== undefined || reply.raw !== undefined || reply.status !== undefined) {
      const body = reply.fixture !== undefined ? fixture(reply.fixture) : reply.body;
      const status = reply.status ?? (isRecord(body) && typeof body.status === 'number' ? body.status : 200);
      return this.write(res, { status, body, ...(reply.raw !== undefined ? { raw: reply.raw } : {}), ...(reply.headers ? { headers: reply.headers } : {}) });
    }
    return this.write(res, result ?? (await this.normal(route, json)));
  }

  private write(res: ServerResponse, answer: Answer): void {
    if (res.destroyed || res.headersSent) return;
    const payload = answer.raw ?? (answer.body === undefined ? '' : JSON.stringify(answer.body));
    res.writeHead(answer.status, { 'content-type': answer.raw !== undefined ? 'text/html' : 'application/json; charset=utf-8', ...(answer.headers ?? {}) });
    res.end(payload);
  }

  private jidFor(number: string): string {
    if (number.includes('@')) return number;
    const digits = number.replace(/[^\d]/g, '');
    return this.jidOverrides.get(digits) ?? `${digits}@s.whatsapp.net`;
  }

  /** dataValidate's answer: a nested array of JSON-schema messages. */
  private schemaError(property: string): Answer {
    const body = fixture('evolution.error.validation.json');
    body.response.message = [[`instance requires property "${property}"`]];
    return { status: 400, body };
  }

  /** The checks sendMessageWithTyping does before sending: connection, then the number. */
  private preSend(number: string): Answer | null {
    if (this.state !== 'open') return { status: 500, body: fixture('evolution.error.connection-closed.500.json') };
    const digits = number.replace(/[^\d]/g, '');
    if (this.notOnWhatsApp.has(digits)) {
      const body = fixture('evolution.error.number-not-exists.json');
      body.response.message = [{ jid: `${digits}@s.whatsapp.net`, exists: false, number }];
      return { status: 400, body };
    }
    return null;
  }

  private async normal(route: Route, json: unknown): Promise<Answer> {
    const b = isRecord(json) ? json : {};
    switch (route) {
      case 'sendText': {
        if (typeof b.number !== 'string') return this.schemaError('number');
        if (typeof b.text !== 'string') return this.schemaError('text');
        if (b.text.trim().length === 0) return { status: 400, body: fixture('evolution.error.text-required.json') };
        const blocked = this.preSend(b.number);
        if (blocked) return blocked;
        if (typeof b.delay === 'number' && b.delay > 0) await sleep(b.delay);
        const body = fixture('evolution.sendText.response.json');
        const record = this.store({ remoteJid: this.jidFor(b.number), number: b.number, text: b.text });
        body.key = { remoteJid: record.remoteJid, fromMe: true, id: record.id };
        body.message = { conversation: b.text };
        body.messageTimestamp = record.messageTimestamp;
        void this.emitWebhook('send.message', body).catch(() => undefined);
        return { status: 201, body };
      }
      case 'sendMedia': {
        if (typeof b.number !== 'string') return this.schemaError('number');
        if (typeof b.mediatype !== 'string' || !['image', 'document', 'video', 'audio', 'ptv'].includes(b.mediatype)) return this.schemaError('mediatype');
        if (typeof b.media !== 'string') return this.schemaError('media');
        if (!/^https?:\/\//.test(b.media) && !/^[A-Za-z0-9+/=]+$/.test(b.media)) return { status: 400, body: envelope(400, ['Owned media must be a url or base64']) };
        const blocked = this.preSend(b.number);
        if (blocked) return blocked;
        if (typeof b.delay === 'number' && b.delay > 0) await sleep(b.delay);
        const body = fixture('evolution.sendMedia.response.json');
        const type = `${b.mediatype}Message`;
        const inner = { ...body.message.imageMessage, mimetype: b.mimetype ?? 'application/octet-stream', ...(typeof b.caption === 'string' ? { caption: b.caption } : { caption: undefined }) };
        if (b.fileName) inner.fileName = b.fileName;
        const text = typeof b.caption === 'string' ? b.caption : null;
        const record = this.store({ remoteJid: this.jidFor(b.number), number: b.number, text: text ?? '', messageType: type, message: { [type]: inner } });
        record.text = text;
        body.key = { remoteJid: record.remoteJid, fromMe: true, id: record.id };
        body.message = { [type]: inner };
        body.messageType = type;
        body.messageTimestamp = record.messageTimestamp;
        void this.emitWebhook('send.message', body).catch(() => undefined);
        return { status: 201, body };
      }
      case 'connectionState': {
        const body = fixture(`evolution.connectionState.${this.state}.json`);
        body.instance.instanceName = this.instance;
        return { status: 200, body };
      }
      case 'whatsappNumbers': {
        const numbers = b.numbers;
        if (!Array.isArray(numbers) || numbers.length === 0 || new Set(numbers).size !== numbers.length) return this.schemaError('numbers');
        // The route answers failures with the raw thrown object (CONTRACTS.md 1.4, last row).
        if (this.state !== 'open') return { status: 400, body: boom(428, 'Connection Closed') };
        const template = fixture<Array<Record<string, unknown>>>('evolution.whatsappNumbers.response.json');
        const body = numbers.map((number: string) => {
          const digits = String(number).replace(/[^\d]/g, '');
          const exists = !this.notOnWhatsApp.has(digits);
          const base = { ...(exists ? template[0] : template[1]) };
          delete base.name;
          return { ...base, jid: exists ? this.jidFor(digits) : `${digits}@s.whatsapp.net`, exists, number };
        });
        return { status: 200, body };
      }
      case 'findMessages': {
        // fetchMessages in Evolution's channel.service.ts: key filters, both time bounds via new Date(x), newest first.
        const where = isRecord(b.where) ? b.where : {};
        const key = isRecord(where.key) ? where.key : {};
        let rows = this.stored.filter((s) => (this.savesSentMessages || !s.fromMe) && (!key.id || s.id === key.id) && (!key.fromMe || s.fromMe === key.fromMe) && (!key.remoteJid || s.remoteJid === key.remoteJid));
        const ts = isRecord(where.messageTimestamp) ? where.messageTimestamp : null;
        if (ts?.gte && ts?.lte) {
          const gte = Math.floor(new Date(ts.gte).getTime() / 1000);
          const lte = Math.floor(new Date(ts.lte).getTime() / 1000);
          rows = rows.filter((s) => s.messageTimestamp >= gte && s.messageTimestamp <= lte);
        }
        rows = [...rows].sort((x, y) => y.messageTimestamp - x.messageTimestamp);
        const offset = typeof b.offset === 'number' && b.offset > 0 ? b.offset : 50;
        const page = typeof b.page === 'number' && b.page > 0 ? b.page : 1;
        const slice = rows.slice(offset * (page === 1 ? 0 : page - 1), offset * page);
        const template = fixture('evolution.findMessages.response.json').messages.records[0];
        const records = slice.map((s) => ({
          ...template,
          id: s.dbId,
          key: { remoteJid: s.remoteJid, fromMe: s.fromMe, id: s.id },
          messageType: s.messageType,
          message: s.message,
          messageTimestamp: s.messageTimestamp,
          MessageUpdate: [],
        }));
        return { status: 200, body: { messages: { total: rows.length, pages: Math.ceil(rows.length / offset), currentPage: page, records } } };
      }
      case 'sendPresence': {
        if (typeof b.number !== 'string') return this.schemaError('number');
        if (typeof b.presence !== 'string') return this.schemaError('presence');
        if (typeof b.delay !== 'number') return this.schemaError('delay');
        const blocked = this.preSend(b.number);
        if (blocked) return blocked;
        this.presences.push({ number: b.number, presence: b.presence, delay: b.delay });
        await sleep(Math.min(b.delay, 2_000));
        return { status: 201, body: { presence: b.presence } };
      }
      case 'webhookSet': {
        const w = isRecord(b.webhook) ? b.webhook : null;
        if (!w) return this.schemaError('webhook');
        if (typeof w.url !== 'string' || w.url.length === 0) return this.schemaError('url');
        if (typeof w.enabled !== 'boolean') return this.schemaError('enabled');
        const headers = isRecord(w.headers) ? (w.headers as Record<string, string>) : {};
        const events = Array.isArray(w.events) ? (w.events as string[]) : [];
        this.webhook = { enabled: w.enabled, url: w.url, headers, events };
        const at = new Date(this.clock()).toISOString();
        return {
          status: 201,
          body: { id: `cm${randomBytes(11).toString('hex')}`, url: w.url, headers, enabled: w.enabled, events, webhookByEvents: Boolean(w.byEvents), webhookBase64: Boolean(w.base64), createdAt: at, updatedAt: at, instanceId: INSTANCE_ID },
        };
      }
    }
  }
}
