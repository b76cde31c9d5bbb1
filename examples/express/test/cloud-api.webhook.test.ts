import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FakeGraph, metaSerialize, metaSign, type AcceptedMessage } from '../../../packages/transport-cloud-api/test/fake-graph.js';
import { loadConfig } from '../src/config.js';
import { startServer, type Running } from '../src/server.js';

/**
 * Meta's callback URL on the real Express server: two Cloud API accounts send a campaign through the
 * fake Graph server (the wire format from the fixtures), then signed webhooks come back to
 * `POST /webhooks/cloud-api` as Meta posts them.
 */
const A = '100000000000001';
const B = '100000000000002';
const key = 'test-key-0123456789';
const VERIFY_TOKEN = 'verify-token-for-tests';
let fake: FakeGraph;
let server: Running;
let dataDir = '';
let campaignId = '';
let hook = '';

const api = async (path: string, init: RequestInit & { json?: unknown } = {}) => {
  const res = await fetch(server.url + path, {
    ...init,
    headers: { authorization: `Bearer ${key}`, ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: init.json !== undefined ? JSON.stringify(init.json) : init.body,
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
};
const counters = async () => (await api(`/api/campaigns/${campaignId}`)).body.counters as Record<string, number>;

/** A Meta `messages` webhook body with one entry per number (statuses and/or inbound messages). */
function body(changes: Array<{ phoneNumberId: string; value: Record<string, unknown> }>) {
  return {
    object: 'whatsapp_business_account',
    entry: changes.map(({ phoneNumberId, value }) => ({
      id: fake.wabaId,
      changes: [{ field: 'messages', value: { messaging_product: 'whatsapp', metadata: { display_phone_number: fake.numbers.get(phoneNumberId)!.displayPhoneNumber, phone_number_id: phoneNumberId }, ...value } }],
    })),
  };
}
const statuses = (list: AcceptedMessage[], status: 'delivered' | 'read') => [A, B].map((id) => ({ phoneNumberId: id, value: { statuses: list.filter((m) => m.phoneNumberId === id).map((m) => fake.statusOf(m, status)) } }));

const post = async (raw: string | Buffer, headers: Record<string, string> = {}) => {
  const res = await fetch(hook, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof raw === 'string' ? raw : Uint8Array.from(raw) });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
};

beforeAll(async () => {
  fake = await FakeGraph.start({ numbers: [{ phoneNumberId: A }, { phoneNumberId: B, displayPhoneNumber: '5511988880002' }] });
  dataDir = mkdtempSync(join(tmpdir(), 'disparo-express-cloud-'));
  const account = (id: string, phoneNumberId: string) => ({ id, transport: 'cloud-api', phoneNumberId, baseUrl: fake.url, apiVersion: fake.version, ratePerSecond: 20, maxInFlight: 4 });
  server = await startServer(
    loadConfig({
      PORT: '0',
      API_KEY: key,
      DATA_DIR: dataDir,
      ACCOUNTS: JSON.stringify([account('loja-a', A), account('loja-b', B)]),
      CLOUD_API_ACCESS_TOKEN: fake.accessToken,
      CLOUD_API_APP_SECRET: fake.appSecret,
      CLOUD_API_VERIFY_TOKEN: VERIFY_TOKEN,
    }),
    { pollIntervalMs: 50 },
  );
  hook = `${server.url}/webhooks/cloud-api`;
  // Receipts are posted by the tests themselves.
  fake.webhook = { url: hook, statuses: [], stepMs: 0, flushMs: 0 };

  const created = await api('/api/campaigns', { method: 'POST', json: { name: 'cloud', template: 'Olá {{name|cliente}}, seu pedido saiu.', accountIds: ['loja-a', 'loja-b'], batchPauseMs: { min: 0, max: 0 } } });
  expect(created.status).toBe(201);
  campaignId = created.body.id;
  const phones = ['5511999990011', '5511999990012', '5511999990013', '5511999990014', '5511999990015', '5511999990016'];
  expect((await api(`/api/campaigns/${campaignId}/recipients`, { method: 'POST', json: phones.map((phone) => ({ phone, vars: { name: 'Zé' } })) })).body).toMatchObject({ inserted: 6 });
  expect((await api(`/api/campaigns/${campaignId}/start`, { method: 'POST' })).status).toBe(200);
  for (let i = 0; i < 200 && (await api(`/api/campaigns/${campaignId}`)).body.status !== 'completed'; i++) await new Promise((r) => setTimeout(r, 25));
  expect(await counters()).toMatchObject({ sent: 6, delivered: 0 });
  // Both numbers sent: the POSTs below carry statuses of two accounts.
  expect(fake.messages(A).length).toBeGreaterThan(0);
  expect(fake.messages(B).length).toBeGreaterThan(0);
}, 60_000);

afterAll(async () => {
  await server?.close();
  await fake?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('GET /webhooks/cloud-api: the verification handshake', () => {
  it('answers the challenge, as plain text, when hub.mode is subscribe and the verify token matches', async () => {
    expect(await fake.verifyCallback(hook, VERIFY_TOKEN)).toMatchObject({ status: 200, echoed: true });
    const res = await fetch(`${hook}?hub.mode=subscribe&hub.verify_token=${VERIFY_TOKEN}&hub.challenge=1158201444`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await res.text()).toBe('1158201444');
  });

  it('refuses a wrong token, another mode, or no query with 403', async () => {
    expect(await fake.verifyCallback(hook, 'not-the-token')).toMatchObject({ status: 403, echoed: false });
    expect((await fetch(`${hook}?hub.mode=unsubscribe&hub.verify_token=${VERIFY_TOKEN}&hub.challenge=1`)).status).toBe(403);
    expect((await fetch(hook)).status).toBe(403);
  });
});

describe('POST /webhooks/cloud-api: signed webhooks', () => {
  it('a correctly signed POST with statuses of both numbers is applied, in one store call', async () => {
    const applied = vi.spyOn(server.store, 'applyStatusUpdates');
    try {
      const raw = metaSerialize(body(statuses(fake.messages(), 'delivered')));
      const res = await post(raw, { 'x-hub-signature-256': metaSign(raw, fake.appSecret) });
      expect(res).toEqual({ status: 200, body: { ok: true, events: 6 } });
      // (The engine's housekeeping also calls it, with no updates, at every poll: those are not the webhook's.)
      const calls = applied.mock.calls.filter(([updates]) => updates.length > 0);
      expect(calls).toHaveLength(1);
      expect(calls[0]![0]).toHaveLength(6);
      expect(await counters()).toMatchObject({ delivered: 6 });
    } finally {
      applied.mockRestore();
    }
  });

  it('refuses a bad or missing signature with 401 and changes nothing', async () => {
    const raw = metaSerialize(body(statuses(fake.messages(), 'read')));
    const before = await counters();
    const cases: Array<Record<string, string>> = [
      {}, // missing
      { 'x-hub-signature-256': metaSign(raw, 'another-apps-secret') },
      { 'x-hub-signature-256': metaSign(raw.replace('"read"', '"sent"'), fake.appSecret) }, // signed for another body
      { 'x-hub-signature-256': 'sha256=not-hex' },
    ];
    for (const headers of cases) {
      const res = await post(raw, headers);
      expect(res.status).toBe(401);
      expect(res.body).toMatchObject({ error: 'WEBHOOK', message: expect.stringMatching(/X-Hub-Signature-256/i) });
    }
    expect(await counters()).toEqual(before);
    // The same body, signed: now it counts.
    expect((await post(raw, { 'x-hub-signature-256': metaSign(raw, fake.appSecret) })).status).toBe(200);
    expect(await counters()).toMatchObject({ read: 6 });
  });

  it('a body with non-ASCII characters verifies over its raw bytes, as Meta escapes them or as UTF-8', async () => {
    const [first, second] = fake.messages();
    const reply = (m: AcceptedMessage, text: string) => ({
      phoneNumberId: m.phoneNumberId,
      value: { contacts: [{ profile: { name: 'João Açaí 🎉' }, wa_id: m.waId }], messages: [{ from: m.waId, id: `wamid.in-${m.waId}`, timestamp: String(Math.floor(Date.now() / 1000)), type: 'text', text: { body: text } }] },
    });
    // Opt-out keywords with accents (folded to PARAR and SAIR): the engine opts the sender out.
    const optedOut: string[] = [];
    server.engine.on('contact:opted_out', (e) => void optedOut.push(e.phone));

    // As Meta sends it: every non-ASCII character as a \uXXXX escape, signed over those bytes.
    const escaped = metaSerialize(body([reply(first!, 'Párar')]));
    expect(escaped).toContain('\\u00e3');
    expect((await post(escaped, { 'x-hub-signature-256': metaSign(escaped, fake.appSecret) })).status).toBe(200);

    // UTF-8 bytes on the wire, signed over exactly those bytes.
    const utf8 = Buffer.from(JSON.stringify(body([reply(second!, 'SAÍR')])), 'utf8');
    expect(utf8.length).toBeGreaterThan(utf8.toString('utf8').length);
    expect((await post(utf8, { 'x-hub-signature-256': metaSign(utf8, fake.appSecret) })).status).toBe(200);
    expect(optedOut.sort()).toEqual([first!.to, second!.to].sort());

    // One changed non-ASCII character breaks the signature.
    const tampered = utf8.toString('utf8').replace('Açaí', 'Açai');
    expect(tampered).not.toBe(utf8.toString('utf8'));
    expect((await post(tampered, { 'x-hub-signature-256': metaSign(utf8, fake.appSecret) })).status).toBe(401);
  });

  it('a malformed body is refused with 400', async () => {
    const raw = '{"object":"whatsapp_business_account","entry":';
    const res = await post(raw, { 'x-hub-signature-256': metaSign(raw, fake.appSecret) });
    expect(res).toMatchObject({ status: 400, body: { error: 'WEBHOOK' } });
  });
});

describe('Cloud API accounts from the environment', () => {
  const entry = (extra: Record<string, unknown> = {}) => ({ id: 'loja', transport: 'cloud-api', phoneNumberId: '106540352242922', ...extra });
  const load = (accounts: unknown[], env: Record<string, string> = {}) => loadConfig({ API_KEY: key, ACCOUNTS: JSON.stringify(accounts), ...env });

  it('takes the token, App Secret and verify token from CLOUD_API_* unless the account sets its own', () => {
    const env = { CLOUD_API_ACCESS_TOKEN: 'EAAG-shared', CLOUD_API_APP_SECRET: 'shared-secret', CLOUD_API_VERIFY_TOKEN: 'shared-verify' };
    const [shared, own] = load([entry(), entry({ id: 'outra', phoneNumberId: '106540352242923', accessToken: 'EAAG-own', appSecret: 'own-secret' })], env).ACCOUNTS;
    expect(shared).toMatchObject({ accessToken: 'EAAG-shared', appSecret: 'shared-secret', verifyToken: 'shared-verify', ratePerSecond: 80, maxInFlight: 32 });
    expect(own).toMatchObject({ accessToken: 'EAAG-own', appSecret: 'own-secret', verifyToken: 'shared-verify' });
  });

  it('names what is missing or wrong', () => {
    expect(() => load([entry()])).toThrow(/ACCOUNTS\.0\.accessToken: .*CLOUD_API_ACCESS_TOKEN[\s\S]*ACCOUNTS\.0\.appSecret: .*CLOUD_API_APP_SECRET/);
    expect(() => load([entry({ phoneNumberId: '+55 11 98888-0000' })], { CLOUD_API_ACCESS_TOKEN: 't', CLOUD_API_APP_SECRET: 's' })).toThrow(/ACCOUNTS\.0\.phoneNumberId: the Phone number ID is digits only/);
    expect(() => load([entry(), entry({ id: 'outra' })], { CLOUD_API_ACCESS_TOKEN: 't', CLOUD_API_APP_SECRET: 's' })).toThrow(/ACCOUNTS\.1\.phoneNumberId: .*already used/);
  });
});
