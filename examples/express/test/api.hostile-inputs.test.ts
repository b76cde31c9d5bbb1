/**
 * What real users send, through the real HTTP API (issue 14): names from Object.prototype as template
 * variables and CSV headers, NUL bytes everywhere, Excel's Windows-1252 CSV, a phone column named twice,
 * empty phones, a 3 MB webhook, an empty id in a path. Each gets a typed 4xx JSON answer or a correct
 * result, never a 500 or Express's HTML page.
 *
 * Core's fix for issue 14 makes these pass: variables are own properties only (an own `__proto__`
 * included), and a NUL byte is a ValidationError naming the field.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { startServer, type Running } from '../src/server.js';

const key = 'test-key-0123456789';
const webhookSecret = 'segredo-do-webhook-123';
const prototypeNames = Object.getOwnPropertyNames(Object.prototype);

let server: Running;
let evolution: Server;
let dataDir = '';

interface Answer {
  status: number;
  json: boolean;
  body: Record<string, unknown> & unknown[];
  text: string;
}

async function call(path: string, init: { method?: string; json?: unknown; body?: string | Buffer; headers?: Record<string, string> } = {}, auth: string | null = key): Promise<Answer> {
  const headers: Record<string, string> = { ...(auth ? { authorization: `Bearer ${auth}` } : {}), ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}), ...init.headers };
  const res = await fetch(server.url + path, { method: init.method ?? (init.json !== undefined || init.body !== undefined ? 'POST' : 'GET'), headers, body: init.json !== undefined ? JSON.stringify(init.json) : typeof init.body === 'string' ? init.body : init.body && new Uint8Array(init.body) });
  const text = await res.text();
  const json = (res.headers.get('content-type') ?? '').startsWith('application/json');
  return { status: res.status, json, body: json ? JSON.parse(text) : {}, text };
}

/** A typed refusal: the status, JSON, the code, and a message. */
function expectRefusal(answer: Answer, status: number, code: string): Answer['body'] {
  expect(answer.json, `expected JSON, got: ${answer.text.slice(0, 200)}`).toBe(true);
  expect({ status: answer.status, error: answer.body.error }).toEqual({ status, error: code });
  expect(String(answer.body.message).length).toBeGreaterThan(10);
  return answer.body;
}

const csv = (id: string, body: string | Buffer, contentType = 'text/csv') => call(`/api/campaigns/${id}/recipients`, { body, headers: { 'content-type': contentType } });

async function campaign(template: string, extra: Record<string, unknown> = {}): Promise<string> {
  const created = await call('/api/campaigns', { json: { name: 'hostile', template, accountIds: ['sim-1'], batchSize: 50, batchPauseMs: { min: 0, max: 0 }, ...extra } });
  expect(created.status, created.text).toBe(201);
  return created.body.id as string;
}

async function waitFor<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(value).slice(0, 300)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const progressOf = async (id: string) => (await call(`/api/campaigns/${id}`)).body as unknown as { status: string; counters: { total: number; sent: number; skipped: number } };
const runToEnd = async (id: string) => {
  expect((await call(`/api/campaigns/${id}/start`, { method: 'POST' })).status).toBe(200);
  return waitFor(`campaign ${id} to complete`, () => progressOf(id), (p) => p.status === 'completed');
};
const stored = (id: string) => server.store.listRecipients(id);
const cp1252 = (text: string) => Buffer.from(text.replace('€', '\x80'), 'latin1');

beforeAll(async () => {
  // Evolution faked at the wire: the transport asks for the instance's connection state, nothing else here.
  evolution = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.method === 'GET' && req.url === '/instance/connectionState/loja-centro') res.end(JSON.stringify({ instance: { instanceName: 'loja-centro', state: 'open' } }));
    else res.writeHead(404).end(JSON.stringify({ status: 404, error: 'Not Found', response: { message: ['Cannot ' + req.method] } }));
  });
  await new Promise<void>((resolve) => evolution.listen(0, '127.0.0.1', resolve));
  const evolutionUrl = `http://127.0.0.1:${(evolution.address() as AddressInfo).port}`;
  dataDir = mkdtempSync(join(tmpdir(), 'disparo-express-hostile-'));
  const accounts = [
    { id: 'sim-1', transport: 'simulator', latencyMs: { min: 0, max: 5 }, intervalMs: { min: 0, max: 5 } },
    { id: 'loja', transport: 'evolution', baseUrl: evolutionUrl, apiKey: 'evolution-key', instance: 'loja-centro', webhookSecret },
  ];
  server = await startServer(loadConfig({ PORT: '0', API_KEY: key, DATA_DIR: dataDir, ACCOUNTS: JSON.stringify(accounts) }), { pollIntervalMs: 50 });
});

afterAll(async () => {
  await server?.close();
  await new Promise((resolve) => evolution?.close(resolve));
  rmSync(dataDir, { recursive: true, force: true });
});

describe('HTTP errors are JSON and typed', () => {
  it('a 3 MB webhook gets 413 with a JSON body, not a 500', async () => {
    const huge = JSON.stringify({ event: 'messages.update', instance: 'loja-centro', data: { padding: 'x'.repeat(3 << 20) } });
    for (const account of ['loja', 'sim-1']) {
      const res = await call(`/webhooks/evolution/${account}`, { body: huge, headers: { 'content-type': 'application/json', 'x-disparo-secret': webhookSecret } }, null);
      expect(String(expectRefusal(res, 413, 'PAYLOAD_TOO_LARGE').message)).toContain('2 MB');
    }
  });

  it('unknown routes under /api and /webhooks answer JSON 404; "/campaigns//start" says the id is empty', async () => {
    const empty = expectRefusal(await call('/api/campaigns//start', { method: 'POST' }), 404, 'NOT_FOUND');
    expect(String(empty.message)).toContain('POST /api/campaigns//start');
    expect(String(empty.message)).toContain('empty');
    expectRefusal(await call('/api/campaigns//recipients', { body: 'telefone\n11987650000\n', headers: { 'content-type': 'text/csv' } }), 404, 'NOT_FOUND');
    expectRefusal(await call('/api/nope'), 404, 'NOT_FOUND');
    expectRefusal(await call('/api/campaigns/x', { method: 'DELETE' }), 404, 'NOT_FOUND');
    expectRefusal(await call('/webhooks/evolution/', { json: {} }, null), 404, 'NOT_FOUND');
    expectRefusal(await call('/webhooks/other/loja', { json: {} }, null), 404, 'NOT_FOUND');
    // The API key is checked before the route: an unknown route does not reveal itself without it.
    expectRefusal(await call('/api/nope', {}, null), 401, 'UNAUTHORIZED');
  });

  it('webhooks: unsigned or wrongly signed 401, malformed 400, unknown account 404', async () => {
    const body = { event: 'messages.update', instance: 'loja-centro', data: { keyId: 'X', remoteJid: '5511999990001@s.whatsapp.net', fromMe: true, status: 'READ' } };
    expectRefusal(await call('/webhooks/evolution/loja', { json: body }, null), 401, 'WEBHOOK');
    expectRefusal(await call('/webhooks/evolution/loja', { json: body, headers: { 'x-disparo-secret': 'wrong-secret-000000' } }, null), 401, 'WEBHOOK');
    expectRefusal(await call('/webhooks/evolution/loja', { body: '{"event":', headers: { 'content-type': 'application/json', 'x-disparo-secret': webhookSecret } }, null), 400, 'VALIDATION');
    expectRefusal(await call('/webhooks/evolution/loja', { json: [1, 2], headers: { 'x-disparo-secret': webhookSecret } }, null), 400, 'WEBHOOK');
    expectRefusal(await call('/webhooks/evolution/nope', { json: body, headers: { 'x-disparo-secret': webhookSecret } }, null), 404, 'NOT_FOUND');
    const ok = await call('/webhooks/evolution/loja', { json: body, headers: { 'x-disparo-secret': webhookSecret } }, null);
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ ok: true });
  });

  it('every Disparo error keeps its code: 400, 404, 409 conflict and transition; a body we cannot read is 415', async () => {
    const malformed = expectRefusal(await call('/api/campaigns', { body: '{"name":', headers: { 'content-type': 'application/json' } }), 400, 'VALIDATION');
    expect(String(malformed.message)).toContain('Malformed JSON');
    expectRefusal(await call('/api/campaigns/nope/start', { method: 'POST' }), 404, 'NOT_FOUND');
    const id = await campaign('Oi');
    expectRefusal(await call(`/api/campaigns/${id}/pause`, { method: 'POST' }), 409, 'INVALID_TRANSITION');
    expect((await call(`/api/campaigns/${id}/cancel`, { method: 'POST' })).status).toBe(200);
    expectRefusal(await call(`/api/campaigns/${id}/recipients`, { json: [{ phone: '11987650000' }] }), 409, 'CONFLICT');
    expectRefusal(await csv(id, 'telefone\n11987650000\n'), 409, 'CONFLICT');
    const open = await campaign('Oi');
    expectRefusal(await csv(open, '<recipients/>', 'application/xml'), 415, 'UNSUPPORTED_MEDIA_TYPE');
    expect(String(expectRefusal(await csv(open, 'telefone\n11987650000\n', 'text/csv; charset=shift_jis'), 415, 'UNSUPPORTED_MEDIA_TYPE').message)).toContain('shift_jis');
  });
});

describe('CSV uploads', () => {
  it('a Windows-1252 file from Excel keeps "João" (detected), and so does a declared charset=iso-8859-1', async () => {
    const id = await campaign('Oi {{nome}}');
    const detected = await csv(id, cp1252('nome;telefone;obs\nJoão;11987650101;custa €5\nConceição;11987650102;ok\n'));
    expect(detected.status, detected.text).toBe(200);
    expect(detected.body).toMatchObject({ processed: 2, inserted: 2, invalid: 0, csv: { encoding: 'windows-1252', delimiter: ';', phoneColumn: 'telefone', rows: 2 } });
    const declared = await csv(id, cp1252('nome;telefone\nAção;11987650103\n'), 'text/csv; charset=ISO-8859-1');
    expect(declared.body).toMatchObject({ inserted: 1, csv: { encoding: 'windows-1252' } });
    const utf8 = await csv(id, Buffer.from('\uFEFFtelefone,nome\n11987650104,Sebastião\n'), 'text/csv; charset=utf-8');
    expect(utf8.body).toMatchObject({ inserted: 1, csv: { encoding: 'utf-8', phoneColumn: 'telefone' } });
    const rows = await stored(id);
    expect(Object.fromEntries(rows.map((r) => [r.phone, r.vars]))).toEqual({
      '5511987650101': { nome: 'João', obs: 'custa €5' },
      '5511987650102': { nome: 'Conceição', obs: 'ok' },
      '5511987650103': { nome: 'Ação' },
      '5511987650104': { nome: 'Sebastião' },
    });
  });

  it('a declared charset=utf-8 that the bytes contradict is a 400 naming the line, and nothing garbled is stored', async () => {
    const id = await campaign('Oi {{nome}}');
    const res = await csv(id, cp1252('nome;telefone\nJoão;11987650105\n'), 'text/csv; charset=utf-8');
    const body = expectRefusal(res, 400, 'VALIDATION');
    expect(String(body.message)).toContain('line 2');
    expect(await stored(id)).toEqual([]);
  });

  it('a header naming the phone column twice is a 400 naming the columns, not a silent variable', async () => {
    const id = await campaign('Oi {{nome}}');
    const same = expectRefusal(await csv(id, 'telefone;nome;telefone\n11987650106;Ana;11987650107\n'), 400, 'VALIDATION');
    expect(String(same.message)).toContain('"telefone" twice');
    const two = expectRefusal(await csv(id, 'celular,nome,whatsapp\n11987650106,Ana,11987650107\n'), 400, 'VALIDATION');
    expect(String(two.message)).toContain('"celular" (column 1) and "whatsapp" (column 3)');
    expect(await stored(id)).toEqual([]);
  });

  it('rows with an empty phone are counted as invalid and reported by line, not dropped', async () => {
    const id = await campaign('Oi {{nome}}');
    const res = await csv(id, 'nome;telefone\nAna;11987650108\nBia;\n;\nCris;   \n');
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ processed: 3, inserted: 1, invalid: 2, csv: { rows: 3, emptyPhone: 2, emptyPhoneLines: [3, 5] } });
  });

  it('NUL bytes in CSV cells and headers are removed and counted; the campaign sends the clean text', async () => {
    const id = await campaign('Oi {{nome}} de {{cidade}}');
    const res = await csv(id, 'no\0me;telefone;cidade\nAn\0a;11987650109;S\0P\n');
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ inserted: 1, csv: { nulRemoved: 3, nulLines: [1, 2] } });
    await runToEnd(id);
    const [row] = await stored(id);
    expect(row).toMatchObject({ status: 'sent', text: 'Oi Ana de SP', vars: { nome: 'Ana', cidade: 'SP' } });
  });

  it('a CSV is streamed: its first rows are stored while the upload is still going on', async () => {
    const id = await campaign('Oi {{nome}}');
    const row = (i: number) => `1198${String(1_000_000 + i).padStart(7, '0')};Nome ${i}\n`;
    const first = 'telefone;nome\n' + Array.from({ length: 6_000 }, (_, i) => row(i)).join('');
    const rest = Array.from({ length: 1_000 }, (_, i) => row(6_000 + i)).join('');
    const url = new URL(`${server.url}/api/campaigns/${id}/recipients`);
    const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(url, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'text/csv' } }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.write(first);
      // The upload stays open until the first chunk of rows is in the store (a whole-body reader never gets there).
      waitFor('the first rows to be stored mid-upload', () => progressOf(id), (p) => p.counters.total >= 5_000, 10_000).then(
        () => req.end(rest),
        (error: unknown) => {
          req.destroy();
          reject(error);
        },
      );
    });
    const { status, body } = await answer;
    expect(status, body).toBe(200);
    expect(JSON.parse(body)).toMatchObject({ processed: 7_000, inserted: 7_000, csv: { rows: 7_000 } });
  });
});

describe('names from Object.prototype, and NUL bytes, through the API (issue 14)', () => {
  // Variables are own properties only: {{constructor}} once rendered "function Object() { [native code] }".
  const ownValue = (name: string) => async () => {
    const id = await campaign(`Oi {{${name}}}`);
    const withDefault = await campaign(`Oi {{${name}|cliente}}`);
    // JSON with a computed key carries `__proto__` as an ordinary own property, as JSON.parse reads it.
    const to = [{ phone: '11987650201', vars: {} }, { phone: '11987650202', vars: { [name]: 'Ana' } }];
    const plain = await call(`/api/campaigns/${id}/test-send`, { json: { to } });
    expect(plain.status, plain.text).toBe(200);
    expect(plain.body[0]).toMatchObject({ text: '', error: expect.stringContaining(`"${name}" has no value`) });
    expect(plain.body[1]).toMatchObject({ text: 'Oi Ana' });
    const defaulted = await call(`/api/campaigns/${withDefault}/test-send`, { json: { to } });
    expect(defaulted.body.map((r) => (r as { text: string }).text)).toEqual(['Oi cliente', 'Oi Ana']);
  };
  it.each(prototypeNames)("{{%s}}: missing without a variable, the default with one, the recipient's own value when given", (name) => ownValue(name)());

  // {{__proto__}} once sent "[object Object]" to every recipient; recipients without the variable must
  // be skipped as template_error, one with it (own property) gets its value.
  it('a campaign with {{__proto__}} sends the variable when the recipient has it and skips the one without', async () => {
    const id = await campaign('Oi {{__proto__}}');
    const res = await call(`/api/campaigns/${id}/recipients`, { body: '[{"phone":"11987650203","vars":{"__proto__":"Ana"}},{"phone":"11987650204"}]', headers: { 'content-type': 'application/json' } });
    expect(res.body).toMatchObject({ inserted: 2 });
    await runToEnd(id);
    const rows = Object.fromEntries((await stored(id)).map((r) => [r.phone, r]));
    expect(rows['5511987650203']).toMatchObject({ status: 'sent', text: 'Oi Ana' });
    expect(rows['5511987650204']).toMatchObject({ status: 'skipped', skipReason: 'template_error' });
  });

  // The CSV reader gives every column as an own property, `__proto__` included.
  it('a CSV header naming every Object.prototype property stores each as the recipient\'s own variable', async () => {
    const id = await campaign('Oi');
    const res = await csv(id, `telefone;${prototypeNames.join(';')}\n11987650205;${prototypeNames.map((n) => `v-${n}`).join(';')}\n`);
    expect(res.status, res.text).toBe(200);
    const [row] = await stored(id);
    for (const name of prototypeNames) expect(Object.getOwnPropertyDescriptor(row!.vars, name)?.value, name).toBe(`v-${name}`);
  });

  // A NUL byte would reach PostgreSQL, which refuses it with an untyped error (HTTP 500); core raises
  // a ValidationError naming the field (HTTP 400).
  it.each([
    ['template', { template: 'Oi\0 {{nome|cliente}}' }],
    ['name', { name: 'Promo\0junho' }],
    ['metadata', { metadata: { origem: 'crm\0' } }],
  ])('a NUL byte in the campaign %s is a 400 naming the field', async (field, input) => {
    const res = await call('/api/campaigns', { json: { name: 'nul', template: 'Oi', accountIds: ['sim-1'], ...input } });
    const body = expectRefusal(res, 400, 'VALIDATION');
    expect((body.issues as Array<{ path: string }>).map((i) => i.path).join(' ')).toContain(field);
  });

  // As above, for a recipient's variables sent as JSON.
  it('a NUL byte in a recipient variable sent as JSON is a 400 naming the field', async () => {
    const id = await campaign('Oi {{nome}}');
    const body = expectRefusal(await call(`/api/campaigns/${id}/recipients`, { json: [{ phone: '11987650206', vars: { nome: 'An\0a' } }] }), 400, 'VALIDATION');
    expect((body.issues as Array<{ path: string }>).map((i) => i.path).join(' ')).toContain('vars');
  });
});
