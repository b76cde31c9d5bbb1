/**
 * A local HTTP server that speaks the WhatsApp Cloud API's wire format (Graph routes, Bearer auth,
 * success and error envelopes, signed webhooks) built from the repository's cloudapi.* fixtures, so
 * the transport is tested over real HTTP with its own fetch.
 *
 * It behaves like Meta where it matters for pacing: a per-number throughput limit counted over any
 * 1 s window at the server (130429 past it), a pair rate per recipient (131056: a small burst, then
 * one message per `pairRate.intervalMs`), configurable latency, error injection by code, a log of
 * accepted messages with arrival times (to measure messages per second at the server), and status
 * webhooks (sent/delivered/read, or failed) posted back signed with the app secret, several
 * statuses per POST when they are due together.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { fixture, FIXTURES_DIR } from './fixtures.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const isRecord = (v: unknown): v is Record<string, any> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Codes that have an error fixture (`cloudapi.error.<code>.json`). */
const FIXTURE_CODES = new Set(
  readdirSync(FIXTURES_DIR)
    .map((n) => /^cloudapi\.error\.(\d+)\.json$/.exec(n)?.[1])
    .filter((c): c is string => c !== undefined)
    .map(Number),
);

/** HTTP statuses the fake answers each code with (Meta's vary; clients must key on the code). */
const STATUS_FOR: Record<number, number> = { 130429: 429, 190: 401, 0: 401, 368: 403, 10: 403, 1: 500, 2: 503, 131000: 500, 131016: 503, 4: 429, 80007: 429 };

/** The Graph error envelope for a code: the fixture when there is one, otherwise Meta's shape. */
export function graphErrorBody(code: number, title = 'Injected error', details?: string): { error: Record<string, unknown> } {
  if (FIXTURE_CODES.has(code)) return fixture(`cloudapi.error.${code}.json`);
  return {
    error: {
      message: `(#${code}) ${title}`,
      type: 'OAuthException',
      code,
      error_data: { messaging_product: 'whatsapp', details: details ?? title },
      fbtrace_id: `A${randomBytes(10).toString('base64url')}`,
    },
  };
}

/** Meta signs the payload with non-ASCII characters as lower-case \uXXXX escapes (written here independently of the package). */
export function metaSerialize(value: unknown): string {
  return JSON.stringify(value).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function metaSign(raw: string | Buffer, appSecret: string): string {
  return `sha256=${createHmac('sha256', appSecret).update(raw).digest('hex')}`;
}

export interface Reply {
  /** Answer with this Graph error code (the fixture's envelope when there is one). */
  code?: number;
  status?: number;
  body?: unknown;
  raw?: string;
  headers?: Record<string, string>;
  /** Wait this long before answering. */
  delayMs?: number;
  /** Close the connection instead of answering (after reading the request). */
  destroy?: boolean;
  /** The message is accepted (logged, webhooks sent) before the scripted outcome. */
  sendFirst?: boolean;
  /** Never answer. */
  hold?: boolean;
}

/** A standing error: every matching send fails with `code` (`times` sends, or forever). */
export interface Injection {
  code: number;
  phoneNumberId?: string;
  to?: string;
  times?: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  body: unknown;
  at: number;
}

export interface AcceptedMessage {
  id: string;
  phoneNumberId: string;
  to: string;
  waId: string;
  type: string;
  /** Text body, caption, or '' (templates: see `template`). */
  text: string;
  template?: { name: string; language: string; components: unknown[] };
  callbackData?: string;
  /** Arrival time at the server (epoch ms). */
  at: number;
  body: Record<string, any>;
}

export interface NumberState {
  phoneNumberId: string;
  displayPhoneNumber: string;
  verifiedName: string;
  qualityRating: string;
  throughputLevel: 'STANDARD' | 'HIGH';
  messagingLimit: string;
  /** Accepted messages per any 1 s window; past it: 130429. */
  throughputPerSecond: number;
  /** Arrival times in the last second, for the limit. */
  recent: number[];
}

export interface TemplateDef {
  language: string;
  /** Positional body parameters ({{1}}…) or named ones. */
  body: number | string[];
  status?: 'APPROVED' | 'PAUSED' | 'DISABLED';
}

export interface WebhookTarget {
  url: string;
  /** Statuses to send for each accepted message, in order. */
  statuses: Array<'sent' | 'delivered' | 'read'>;
  /** Delay from acceptance to the first status, and between statuses. */
  stepMs: number;
  /** Statuses due within this window go out in one POST. */
  flushMs: number;
}

interface Pending {
  phoneNumberId: string;
  status: Record<string, unknown>;
}

export class FakeGraph {
  url = '';
  readonly version = 'v23.0';
  readonly wabaId = '200000000000002';
  readonly numbers = new Map<string, NumberState>();
  readonly templates = new Map<string, TemplateDef>();
  readonly requests: RecordedRequest[] = [];
  /** Messages Meta accepted, in arrival order. */
  readonly accepted: AcceptedMessage[] = [];
  /** Sends answered with an error: when and which code. */
  readonly rejected: Array<{ at: number; code: number; to: string | undefined; phoneNumberId: string }> = [];
  /** Webhooks posted: how many statuses each carried and what the receiver answered. */
  readonly deliveries: Array<{ statuses: number; status: number | 'error'; body: string }> = [];
  /** Recipients whose messages fail asynchronously with 131026 (not on WhatsApp) instead of being delivered. */
  readonly undeliverable = new Set<string>();
  /** number -> the wa_id Meta reports for it (e.g. a Brazilian number without its 9th digit). */
  readonly waIds = new Map<string, string>();
  readonly injections: Injection[] = [];
  /** Latency added to every answer (ms, or a function per request). */
  latencyMs: number | (() => number) = 0;
  /** Per recipient: `burst` messages at once, then one per `intervalMs`. null: no pair limit. */
  pairRate: { burst: number; intervalMs: number } | null = { burst: 3, intervalMs: 6_000 };
  webhook: WebhookTarget | null = null;
  private readonly pairBuckets = new Map<string, { tokens: number; at: number }>();
  private readonly queues: Record<'send' | 'phoneNumber', Reply[]> = { send: [], phoneNumber: [] };
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;
  private pending: Pending[] = [];
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  private inFlight = 0;
  /** Send requests to each number being answered right now, and the most there ever were at once. */
  private readonly openSends = new Map<string, number>();
  private readonly peakOpenSends = new Map<string, number>();
  private timers = new Set<ReturnType<typeof setTimeout>>();

  private constructor(
    readonly accessToken: string,
    readonly appSecret: string,
  ) {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error) => {
        if (!res.headersSent && !res.destroyed) this.write(res, 500, graphErrorBody(1, String(error)));
      });
    });
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  static async start(options: { accessToken?: string; appSecret?: string; numbers?: Array<Partial<NumberState> & { phoneNumberId: string }> } = {}): Promise<FakeGraph> {
    const fake = new FakeGraph(options.accessToken ?? 'EAAG-test-token', options.appSecret ?? 'test-app-secret');
    const quality = fixture('cloudapi.phoneNumber.quality.response.json');
    for (const n of options.numbers ?? [{ phoneNumberId: quality.id }]) fake.addNumber(n);
    fake.templates.set('order_shipped', { language: 'pt_BR', body: 2 });
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    const { port } = fake.server.address() as AddressInfo;
    fake.url = `http://127.0.0.1:${port}`;
    // Warm up the client (the first fetch in a process loads undici), so short timeouts measure the server.
    await (await fetch(`${fake.url}/warm-up`)).text();
    fake.requests.length = 0;
    return fake;
  }

  addNumber(n: Partial<NumberState> & { phoneNumberId: string }): NumberState {
    const quality = fixture('cloudapi.phoneNumber.quality.response.json');
    const state: NumberState = {
      displayPhoneNumber: '5511988880000',
      verifiedName: quality.verified_name,
      qualityRating: quality.quality_rating,
      throughputLevel: quality.throughput.level,
      messagingLimit: 'TIER_2K',
      throughputPerSecond: 80,
      recent: [],
      ...n,
    };
    this.numbers.set(n.phoneNumberId, state);
    return state;
  }

  get phoneNumberId(): string {
    return this.numbers.keys().next().value!;
  }

  /** Queue the next reply of a route (FIFO): `send` (POST …/messages) or `phoneNumber` (GET, health). */
  next(reply: Reply, route: 'send' | 'phoneNumber' = 'send'): this {
    this.queues[route].push(reply);
    return this;
  }

  inject(injection: Injection): this {
    this.injections.push({ ...injection });
    return this;
  }

  /** Messages to one number, or all. */
  messages(phoneNumberId?: string): AcceptedMessage[] {
    return phoneNumberId ? this.accepted.filter((m) => m.phoneNumberId === phoneNumberId) : this.accepted;
  }

  /** Accepted messages per calendar second at the server (seconds without any are 0), first to last. */
  perSecond(phoneNumberId?: string): number[] {
    const times = this.messages(phoneNumberId).map((m) => m.at);
    if (times.length === 0) return [];
    const first = Math.floor(Math.min(...times) / 1000);
    const counts = new Array<number>(Math.floor(Math.max(...times) / 1000) - first + 1).fill(0);
    for (const t of times) counts[Math.floor(t / 1000) - first]!++;
    return counts;
  }

  /** Arrival times of every send request (accepted or refused) to one number, or all, in arrival order. */
  arrivals(phoneNumberId?: string): number[] {
    return this.requests.filter((r) => r.method === 'POST' && /\/messages$/.test(r.path) && (phoneNumberId === undefined || r.path.includes(`/${phoneNumberId}/`))).map((r) => r.at);
  }

  /**
   * The most messages accepted within any window of `windowMs` at the server; with `of: 'arrivals'`,
   * the most send requests that arrived (refused ones too: what the sender did, whatever Meta answered).
   */
  maxInWindow(phoneNumberId?: string, windowMs = 1_000, of: 'accepted' | 'arrivals' = 'accepted'): number {
    const times = (of === 'arrivals' ? this.arrivals(phoneNumberId) : this.messages(phoneNumberId).map((m) => m.at)).sort((a, b) => a - b);
    let best = 0;
    for (let lo = 0, hi = 0; hi < times.length; hi++) {
      while (times[hi]! - times[lo]! >= windowMs) lo++;
      best = Math.max(best, hi - lo + 1);
    }
    return best;
  }

  /** The most send requests to one number (or to the busiest number) open at the server at once: the sender's window as Meta sees it. */
  maxConcurrentSends(phoneNumberId?: string): number {
    if (phoneNumberId !== undefined) return this.peakOpenSends.get(phoneNumberId) ?? 0;
    return Math.max(0, ...this.peakOpenSends.values());
  }

  /** Messages per second between the first and the last accepted message. */
  sustainedRate(phoneNumberId?: string): number {
    const times = this.messages(phoneNumberId).map((m) => m.at);
    if (times.length < 2) return times.length;
    const span = (Math.max(...times) - Math.min(...times)) / 1000;
    return span > 0 ? (times.length - 1) / span : Number.POSITIVE_INFINITY;
  }

  /** Resolves once no webhook is scheduled or in flight. */
  async idle(timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.pending.length > 0 || this.inFlight > 0 || this.timers.size > 0 || this.flushTimer !== null) {
      if (Date.now() > deadline) throw new Error(`fake Graph: webhooks still pending after ${timeoutMs} ms`);
      await sleep(5);
    }
  }

  /** Post a `messages` webhook value for a number, signed as Meta does. Returns the receiver's status. */
  async postMessagesValue(phoneNumberId: string, value: Record<string, unknown>): Promise<number | 'error'> {
    const n = this.numbers.get(phoneNumberId)!;
    const body = {
      object: 'whatsapp_business_account',
      entry: [{ id: this.wabaId, changes: [{ value: { messaging_product: 'whatsapp', metadata: { display_phone_number: n.displayPhoneNumber, phone_number_id: phoneNumberId }, ...value }, field: 'messages' }] }],
    };
    return this.post(body, Array.isArray(value.statuses) ? value.statuses.length : 0);
  }

  /** A person writes to a number (an inbound text message). */
  emitInbound(phoneNumberId: string, from: string, text: string): Promise<number | 'error'> {
    return this.postMessagesValue(phoneNumberId, {
      contacts: [{ profile: { name: 'Cliente' }, wa_id: from }],
      messages: [{ from, id: `wamid.${randomBytes(18).toString('base64')}`, timestamp: String(Math.floor(Date.now() / 1000)), text: { body: text }, type: 'text' }],
    });
  }

  /** Meta reports an error that belongs to no message (`value.errors`). */
  emitErrors(phoneNumberId: string, code: number): Promise<number | 'error'> {
    const template = fixture('cloudapi.webhook.errors.130429.json').entry[0].changes[0].value.errors[0];
    const error = code === 130429 ? template : { ...template, code, title: `Error ${code}`, message: `Error ${code}` };
    return this.postMessagesValue(phoneNumberId, { errors: [error] });
  }

  /** A `phone_number_quality_update` for a number. */
  emitQualityUpdate(phoneNumberId: string, event: string, limit = 'TIER_2K'): Promise<number | 'error'> {
    const body = fixture('cloudapi.webhook.phone_number_quality_update.json');
    const value = body.entry[0].changes[0].value;
    value.display_phone_number = this.numbers.get(phoneNumberId)!.displayPhoneNumber;
    value.event = event;
    value.current_limit = limit;
    value.max_daily_conversations_per_business = limit;
    body.entry[0].time = Math.floor(Date.now() / 1000);
    return this.post(body, 0);
  }

  /** Meta's GET verification request to a callback URL: whether the answer echoed the challenge. */
  async verifyCallback(url: string, verifyToken: string): Promise<{ status: number; body: string; echoed: boolean }> {
    const query = fixture('cloudapi.webhook.verification.query.json');
    query['hub.verify_token'] = verifyToken;
    const res = await fetch(`${url}?${new URLSearchParams(query).toString()}`);
    const body = await res.text();
    return { status: res.status, body, echoed: res.status === 200 && body === query['hub.challenge'] };
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    this.pending = [];
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---- internals -----------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const arrival = Date.now();
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
    this.requests.push({ method, path: url.pathname, query: Object.fromEntries(url.searchParams), headers: req.headers, body: json, at: arrival });
    const latency = typeof this.latencyMs === 'function' ? this.latencyMs() : this.latencyMs;

    const m = /^\/(v\d+\.\d+)\/(\d+)(\/messages)?$/.exec(url.pathname);
    const numberId = m?.[2];
    const isSend = method === 'POST' && m?.[3] === '/messages';
    if (isSend) {
      const id = numberId!;
      const open = (this.openSends.get(id) ?? 0) + 1;
      this.openSends.set(id, open);
      this.peakOpenSends.set(id, Math.max(open, this.peakOpenSends.get(id) ?? 0));
      res.once('close', () => this.openSends.set(id, this.openSends.get(id)! - 1));
    }
    const scripted = isSend ? this.queues.send.shift() : method === 'GET' && m && !m[3] ? this.queues.phoneNumber.shift() : undefined;
    if (scripted) return this.scripted(scripted, numberId!, json, arrival, latency, req, res);

    if (latency > 0) await sleep(latency);
    if (req.headers.authorization !== `Bearer ${this.accessToken}`) return this.write(res, 401, fixture('cloudapi.error.190.json'));
    if (!m || !this.numbers.has(numberId!) || (method === 'GET' && m[3]) || (method === 'POST' && !m[3])) {
      const body = graphErrorBody(100, `Unsupported ${method.toLowerCase()} request. Object with ID '${numberId ?? url.pathname}' does not exist, cannot be loaded due to missing permissions, or does not support this operation`);
      (body.error as Record<string, unknown>).error_subcode = 33;
      delete (body.error as Record<string, unknown>).error_data;
      return this.write(res, 400, body);
    }
    if (method === 'GET') return this.write(res, ...this.phoneNumber(numberId!, url.searchParams.get('fields')));
    if (invalidJson) return this.write(res, 400, graphErrorBody(100, 'Invalid parameter', 'The request body is not JSON'));
    return this.write(res, ...this.send(numberId!, json, arrival));
  }

  private async scripted(reply: Reply, numberId: string, json: unknown, arrival: number, latency: number, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const isSend = req.method === 'POST';
    let result: [number, unknown] | undefined;
    if (reply.sendFirst && isSend) result = this.send(numberId, json, arrival);
    if (reply.hold) return;
    const wait = reply.delayMs ?? latency;
    if (wait > 0) await sleep(wait);
    if (reply.destroy) {
      req.socket.destroy();
      return;
    }
    if (reply.code !== undefined) {
      this.rejected.push({ at: arrival, code: reply.code, to: isRecord(json) ? json.to : undefined, phoneNumberId: numberId });
      return this.write(res, reply.status ?? STATUS_FOR[reply.code] ?? 400, graphErrorBody(reply.code), reply.headers);
    }
    if (reply.body !== undefined || reply.raw !== undefined || reply.status !== undefined) return this.write(res, reply.status ?? 200, reply.body, reply.headers, reply.raw);
    if (!isSend) return this.write(res, ...this.phoneNumber(numberId, new URL(req.url ?? '/', 'http://fake').searchParams.get('fields')));
    return this.write(res, ...(result ?? this.send(numberId, json, arrival)));
  }

  private write(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}, raw?: string): void {
    if (res.destroyed || res.headersSent) return;
    const payload = raw ?? (body === undefined ? '' : JSON.stringify(body));
    res.writeHead(status, { 'content-type': raw !== undefined ? 'text/html' : 'application/json; charset=UTF-8', ...headers });
    res.end(payload);
  }

  private phoneNumber(id: string, fields: string | null): [number, unknown] {
    const n = this.numbers.get(id)!;
    const all: Record<string, unknown> = {
      display_phone_number: n.displayPhoneNumber,
      verified_name: n.verifiedName,
      quality_rating: n.qualityRating,
      throughput: { level: n.throughputLevel },
      whatsapp_business_manager_messaging_limit: n.messagingLimit,
      messaging_limit_tier: 'TIER_1K',
    };
    const wanted = (fields ?? 'display_phone_number,verified_name,quality_rating').split(',').filter(Boolean);
    const out: Record<string, unknown> = {};
    for (const f of wanted) {
      if (!(f in all)) return [400, graphErrorBody(100, `Tried accessing nonexisting field (${f}) on node type (WhatsAppBusinessPhoneNumber)`)];
      out[f] = all[f];
    }
    out.id = id;
    return [200, out];
  }

  private reject(numberId: string, to: string | undefined, at: number, code: number, title?: string, details?: string): [number, unknown] {
    this.rejected.push({ at, code, to, phoneNumberId: numberId });
    return [STATUS_FOR[code] ?? 400, graphErrorBody(code, title, details)];
  }

  /** Meta's checks for one send, in the order that matters for tests: content, limits, then acceptance. */
  private send(numberId: string, json: unknown, at: number): [number, unknown] {
    const n = this.numbers.get(numberId)!;
    const b = isRecord(json) ? json : {};
    const to = typeof b.to === 'string' ? b.to : undefined;
    const invalid = (details: string) => this.reject(numberId, to, at, 100, 'Invalid parameter', details);
    if (b.messaging_product !== 'whatsapp') return invalid('messaging_product must be "whatsapp"');
    if (!to || !/^\+?\d{6,20}$/.test(to)) return invalid('to must be a phone number');
    if (b.biz_opaque_callback_data !== undefined && (typeof b.biz_opaque_callback_data !== 'string' || b.biz_opaque_callback_data.length > 512)) return invalid('biz_opaque_callback_data is at most 512 characters');
    const type = b.type ?? 'text';
    let text = '';
    let template: AcceptedMessage['template'];
    if (type === 'text') {
      if (!isRecord(b.text) || typeof b.text.body !== 'string' || b.text.body.length === 0) return this.reject(numberId, to, at, 131008, 'Required parameter is missing', 'text.body is required');
      if (b.text.body.length > 4096) return invalid('text.body is at most 4096 characters');
      text = b.text.body;
    } else if (type === 'image' || type === 'video' || type === 'document' || type === 'audio') {
      const media = b[type];
      if (!isRecord(media) || typeof media.link !== 'string' || !/^https?:\/\//.test(media.link)) return this.reject(numberId, to, at, 131008, 'Required parameter is missing', `${type}.link is required`);
      if (type === 'audio' && media.caption !== undefined) return invalid('audio has no caption');
      text = typeof media.caption === 'string' ? media.caption : '';
    } else if (type === 'template') {
      const t = b.template;
      if (!isRecord(t) || typeof t.name !== 'string' || !isRecord(t.language) || typeof t.language.code !== 'string') return this.reject(numberId, to, at, 131008, 'Required parameter is missing', 'template.name and template.language.code are required');
      const def = this.templates.get(t.name);
      if (!def || def.language !== t.language.code) return this.reject(numberId, to, at, 132001, 'Template name does not exist in the translation', `template name (${t.name}) does not exist in ${t.language.code}`);
      if (def.status === 'PAUSED') return this.reject(numberId, to, at, 132015, 'Template is Paused');
      if (def.status === 'DISABLED') return this.reject(numberId, to, at, 132016, 'Template has been disabled');
      const components = Array.isArray(t.components) ? t.components : [];
      const body = components.find((c: any) => isRecord(c) && c.type === 'body');
      const params: any[] = isRecord(body) && Array.isArray(body.parameters) ? body.parameters : [];
      const expected = typeof def.body === 'number' ? def.body : def.body.length;
      if (params.length !== expected) return this.reject(numberId, to, at, 132000, 'Number of parameters does not match the expected number of params', `body: number of localizable_params (${params.length}) does not match the expected number of params (${expected})`);
      if (Array.isArray(def.body) && !params.every((p) => def.body instanceof Array && def.body.includes(p.parameter_name))) return this.reject(numberId, to, at, 132012, 'Parameter format does not match format in the created template');
      if (params.some((p) => typeof p?.text !== 'string' || /[\n\t]| {5,}/.test(p.text))) return invalid('Param text cannot have new-line/tab characters or more than 4 consecutive spaces');
      text = params.map((p) => p.text).join('|');
      template = { name: t.name, language: t.language.code, components };
    } else return this.reject(numberId, to, at, 131051, 'Unsupported message type');

    const injection = this.injections.find((i) => (i.phoneNumberId === undefined || i.phoneNumberId === numberId) && (i.to === undefined || i.to === to) && (i.times === undefined || i.times > 0));
    if (injection) {
      if (injection.times !== undefined) injection.times--;
      return this.reject(numberId, to, at, injection.code);
    }
    // Throughput: accepted messages of this number in the last second at the server.
    n.recent = n.recent.filter((t) => at - t < 1_000);
    if (n.recent.length >= n.throughputPerSecond) return this.reject(numberId, to, at, 130429);
    // Pair rate: a token bucket per (number, recipient).
    if (this.pairRate) {
      const key = `${numberId}:${to}`;
      const bucket = this.pairBuckets.get(key) ?? { tokens: this.pairRate.burst, at };
      bucket.tokens = Math.min(this.pairRate.burst, bucket.tokens + (at - bucket.at) / this.pairRate.intervalMs);
      bucket.at = at;
      this.pairBuckets.set(key, bucket);
      if (bucket.tokens < 1) return this.reject(numberId, to, at, 131056);
      bucket.tokens -= 1;
    }
    n.recent.push(at);

    const response = fixture(type === 'template' ? 'cloudapi.sendTemplate.response.json' : 'cloudapi.sendText.response.json');
    const id = `wamid.${Buffer.from(`${to}:${randomBytes(12).toString('hex')}`).toString('base64')}`;
    const waId = this.waIds.get(to.replace(/^\+/, '')) ?? to.replace(/^\+/, '');
    response.contacts = [{ input: to, wa_id: waId }];
    response.messages[0].id = id;
    const record: AcceptedMessage = { id, phoneNumberId: numberId, to, waId, type, text, at, body: b, ...(template ? { template } : {}) };
    if (typeof b.biz_opaque_callback_data === 'string') record.callbackData = b.biz_opaque_callback_data;
    this.accepted.push(record);
    this.scheduleStatuses(record);
    return [200, response];
  }

  /** One entry of a `statuses` webhook for an accepted message, as Meta writes it (with the callback data it was sent with). */
  statusOf(m: AcceptedMessage, status: 'sent' | 'delivered' | 'read' | 'failed'): Record<string, unknown> {
    const s: Record<string, unknown> = { id: m.id, status, timestamp: String(Math.floor(Date.now() / 1000)), recipient_id: m.waId };
    if (m.callbackData !== undefined) s.biz_opaque_callback_data = m.callbackData;
    if (status === 'failed') s.errors = fixture('cloudapi.webhook.status.failed.131026.json').entry[0].changes[0].value.statuses[0].errors;
    else if (status !== 'read') s.pricing = fixture('cloudapi.webhook.status.sent.json').entry[0].changes[0].value.statuses[0].pricing;
    return s;
  }

  /** Post these statuses of an accepted message now, in one signed webhook. Returns the receiver's answer. */
  emitStatuses(m: AcceptedMessage, statuses: Array<'sent' | 'delivered' | 'read' | 'failed'>): Promise<number | 'error'> {
    return this.postMessagesValue(m.phoneNumberId, { statuses: statuses.map((status) => this.statusOf(m, status)) });
  }

  private scheduleStatuses(m: AcceptedMessage): void {
    const hook = this.webhook;
    if (!hook) return;
    const steps: Array<() => Record<string, unknown>> = this.undeliverable.has(m.to) ? [() => this.statusOf(m, 'failed')] : hook.statuses.map((status) => () => this.statusOf(m, status));
    steps.forEach((make, i) => {
      const timer = setTimeout(
        () => {
          this.timers.delete(timer);
          this.pending.push({ phoneNumberId: m.phoneNumberId, status: make() });
          this.scheduleFlush();
        },
        hook.stepMs * (i + 1),
      );
      this.timers.add(timer);
    });
  }

  private scheduleFlush(): void {
    if (this.flushTimer || !this.webhook) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      const due = this.pending;
      this.pending = [];
      // One POST per number, all its due statuses together (Meta batches them too).
      const byNumber = new Map<string, Record<string, unknown>[]>();
      for (const p of due) byNumber.set(p.phoneNumberId, [...(byNumber.get(p.phoneNumberId) ?? []), p.status]);
      for (const [id, statuses] of byNumber) void this.postMessagesValue(id, { statuses });
    }, this.webhook.flushMs);
  }

  private async post(body: unknown, statuses: number): Promise<number | 'error'> {
    const hook = this.webhook;
    if (!hook) throw new Error('fake Graph: no webhook target configured');
    const raw = metaSerialize(body);
    this.inFlight++;
    try {
      const res = await fetch(hook.url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-hub-signature-256': metaSign(raw, this.appSecret) }, body: raw });
      await res.text();
      this.deliveries.push({ statuses, status: res.status, body: raw });
      return res.status;
    } catch {
      this.deliveries.push({ statuses, status: 'error', body: raw });
      return 'error';
    } finally {
      this.inFlight--;
    }
  }
}
