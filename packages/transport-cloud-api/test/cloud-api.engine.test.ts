import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createEngine, createMemoryStore, silentLogger, type Engine } from '@disparo/core';
import { WebhookError, type TransportEvent } from '@disparo/core/transport';
import { cloudApiTemplateText, type CloudApiTransport } from '@disparo/transport-cloud-api';
import { FakeGraph } from './fake-graph.js';
import { transportFor, VERIFY_TOKEN } from './helpers.js';

/**
 * The real engine driving the real transport against the fake Graph server on the real clock; the
 * fake posts signed status webhooks to a small HTTP endpoint that hands the raw body to
 * `engine.handleWebhook`, as a host would.
 */
let fake: FakeGraph;
let engine: Engine;
let receiver: Server;
/** What each webhook POST turned into (per account), and what the endpoint answered. */
let received: Array<{ accountId: string; status: number; events: TransportEvent[] }>;
/** phone_number_id -> account id, for routing Meta's one callback URL. */
let routes: Map<string, string>;

async function startReceiver(): Promise<string> {
  received = [];
  receiver = createServer(async (req, res) => {
    if (req.method === 'GET') {
      // Meta's verification handshake, answered by the account's transport.
      const account = [...routes.values()][0]!;
      const answer = (engineTransports.get(account) as CloudApiTransport).verifySubscription(new URL(req.url ?? '/', 'http://x').searchParams);
      res.writeHead(answer.status, { 'content-type': answer.contentType }).end(answer.body);
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    const json = JSON.parse(raw.toString('utf8'));
    const ids = new Set<string>(json.entry.flatMap((e: any) => e.changes.map((c: any) => c.value?.metadata?.phone_number_id)).filter(Boolean));
    let status = 200;
    for (const id of ids) {
      const accountId = routes.get(id)!;
      try {
        received.push({ accountId, status: 200, events: await engine.handleWebhook(accountId, raw, req.headers) });
      } catch (error) {
        status = WebhookError.isInstance(error) ? (error.reason === 'malformed' ? 400 : 401) : 500;
        received.push({ accountId, status, events: [] });
      }
    }
    res.writeHead(status).end();
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/webhooks/cloud-api`;
}

const engineTransports = new Map<string, CloudApiTransport>();

beforeEach(async () => {
  fake = await FakeGraph.start({ numbers: [{ phoneNumberId: '100000000000001' }, { phoneNumberId: '100000000000002', displayPhoneNumber: '5511988880002' }] });
  fake.latencyMs = 5;
  const url = await startReceiver();
  fake.webhook = { url, statuses: ['sent', 'delivered', 'read'], stepMs: 20, flushMs: 150 };
  routes = new Map();
  engineTransports.clear();
});
afterEach(async () => {
  await fake.close();
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
});

function setup(accounts: Array<{ id: string; phoneNumberId: string }>) {
  for (const a of accounts) {
    routes.set(a.phoneNumberId, a.id);
    engineTransports.set(a.id, transportFor(fake, { phoneNumberId: a.phoneNumberId, throughputBackoffMs: 50, pairRateBackoffMs: 50 }));
  }
  engine = createEngine({
    store: createMemoryStore(),
    logger: silentLogger,
    accounts: accounts.map((a) => ({ id: a.id, transport: engineTransports.get(a.id)!, pacing: { intervalMs: { min: 0, max: 0 } } })),
  });
}

async function drive(campaignId: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const r = await engine.step({ campaignId, maxBatches: 5, budgetMs: 10_000 });
    if (r.done) return;
    const wait = r.continueAt === null ? 10 : Math.max(0, r.continueAt - Date.now());
    await new Promise((res) => setTimeout(res, Math.min(wait, 200)));
  }
  throw new Error('campaign did not finish');
}

const phones = (n: number, from = 10) => Array.from({ length: n }, (_, i) => `55119999900${String(from + i).padStart(2, '0')}`);

describe('engine + Cloud API transport', () => {
  it('completes a campaign through rate limits, bad recipients and a closed 24 h window; signed receipts flow back through handleWebhook', async () => {
    setup([{ id: 'loja', phoneNumberId: '100000000000001' }]);
    const list = phones(8);
    const [, , notOnWhatsApp, closedWindow, undeliverable] = list;
    fake.next({ code: 130429 }); // the first send hits the throughput limit: backs off, no attempt used
    fake.inject({ code: 131026, to: notOnWhatsApp });
    fake.inject({ code: 131047, to: closedWindow });
    fake.undeliverable.add(undeliverable!);

    const campaign = await engine.createCampaign({ name: 'promo', template: 'Olá {{name|cliente}}, temos novidades!', accountIds: ['loja'], batchPauseMs: { min: 0, max: 0 } });
    await engine.addRecipients(campaign.id, list.map((phone, i) => ({ phone, vars: { name: `Cliente ${i}` } })));
    await engine.start(campaign.id);
    await drive(campaign.id);

    // Each recipient reached Meta at most once, with its idempotency key as the correlation string.
    const accepted = fake.messages('100000000000001');
    expect(accepted.map((m) => m.to).sort()).toEqual(list.filter((p) => p !== notOnWhatsApp && p !== closedWindow));
    for (const m of accepted) expect(m.callbackData).toBe(`${campaign.id}:${m.to}`);
    expect(fake.rejected.map((r) => r.code).sort()).toEqual([130429, 131026, 131047]);

    let progress = await engine.progress(campaign.id);
    expect(progress.status).toBe('completed');
    expect(progress.counters).toMatchObject({ total: 8, skipped: 1, failed: 1, unknown: 0 });

    // Receipts: Meta's status webhooks, signed, several statuses per POST, all accepted.
    await fake.idle();
    expect(fake.deliveries.length).toBeGreaterThan(0);
    expect(fake.deliveries.every((d) => d.status === 200)).toBe(true);
    expect(fake.deliveries.some((d) => d.statuses > 1)).toBe(true);
    const statuses = received.flatMap((r) => r.events).filter((e): e is Extract<TransportEvent, { type: 'status' }> => e.type === 'status');
    const byId = new Map(accepted.map((m) => [m.id, m]));
    for (const s of statuses) expect(s.idempotencyKey).toBe(`${campaign.id}:${byId.get(s.providerMessageId)!.to}`);
    expect(statuses.find((s) => s.status === 'failed')).toMatchObject({ code: 131026, providerMessageId: accepted.find((m) => m.to === undeliverable)!.id });

    progress = await engine.progress(campaign.id);
    expect(progress.counters.read).toBe(accepted.length - 1);
    expect(progress.counters.failed).toBe(2);

    // A reply with an opt-out keyword is an inbound event: the engine opts the contact out.
    const optedOut: string[] = [];
    engine.on('contact:opted_out', (e) => void optedOut.push(e.phone));
    expect(await fake.emitInbound('100000000000001', list[0]!, 'PARAR')).toBe(200);
    expect(optedOut).toEqual([list[0]]);

    // A forged webhook (no signature) is refused by the endpoint and changes nothing.
    const forged = await fetch(fake.webhook!.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: fake.deliveries[0]!.body });
    expect(forged.status).toBe(401);
  });

  it('sends an approved template whose parameters come from each recipient; one bad value fails only that recipient', async () => {
    setup([{ id: 'loja', phoneNumberId: '100000000000001' }]);
    const template = cloudApiTemplateText({ name: 'order_shipped', language: 'pt_BR', body: ['{{name}}', '#{{order}}'] });
    const campaign = await engine.createCampaign({ name: 'shipping', template, accountIds: ['loja'], batchPauseMs: { min: 0, max: 0 } });
    const list = phones(3, 40);
    await engine.addRecipients(campaign.id, [
      { phone: list[0]!, vars: { name: 'Maria', order: '1234' } },
      { phone: list[1]!, vars: { name: 'João', order: '1235' } },
      { phone: list[2]!, vars: { name: 'Ana\nSilva', order: '1236' } },
    ]);
    await engine.start(campaign.id);
    await drive(campaign.id);

    const sent = fake.messages().map((m) => ({ to: m.to, template: m.template }));
    expect(sent).toEqual([
      { to: list[0], template: { name: 'order_shipped', language: 'pt_BR', components: [{ type: 'body', parameters: [{ type: 'text', text: 'Maria' }, { type: 'text', text: '#1234' }] }] } },
      { to: list[1], template: { name: 'order_shipped', language: 'pt_BR', components: [{ type: 'body', parameters: [{ type: 'text', text: 'João' }, { type: 'text', text: '#1235' }] }] } },
    ]);
    const progress = await engine.progress(campaign.id);
    expect(progress).toMatchObject({ status: 'completed', counters: { total: 3, sent: 2, failed: 1 } });
  });

  it('a ban-like 368 stops that number; the campaign finishes on the other', async () => {
    setup([
      { id: 'a', phoneNumberId: '100000000000001' },
      { id: 'b', phoneNumberId: '100000000000002' },
    ]);
    fake.inject({ code: 368, phoneNumberId: '100000000000001' });
    const campaign = await engine.createCampaign({ name: 'multi', template: 'Oi {{name|cliente}}', accountIds: ['a', 'b'], batchPauseMs: { min: 0, max: 0 } });
    const list = phones(6, 60);
    await engine.addRecipients(campaign.id, list.map((phone) => ({ phone })));
    await engine.start(campaign.id);
    await drive(campaign.id);

    expect(fake.messages('100000000000001')).toHaveLength(0);
    expect(fake.messages('100000000000002').map((m) => m.to).sort()).toEqual(list);
    expect(await engine.progress(campaign.id)).toMatchObject({ status: 'completed', counters: { total: 6, sent: 6, failed: 0 } });
    const report = await engine.pacingReport();
    expect(report.find((r) => r.accountId === 'a')).toMatchObject({ state: 'stopped', disabledReason: expect.stringContaining('restricted') });
  });

  it("Meta's GET verification reaches the endpoint and is answered with the challenge", async () => {
    setup([{ id: 'loja', phoneNumberId: '100000000000001' }]);
    expect(await fake.verifyCallback(fake.webhook!.url, VERIFY_TOKEN)).toMatchObject({ status: 200, echoed: true });
    expect(await fake.verifyCallback(fake.webhook!.url, 'wrong')).toMatchObject({ status: 403, echoed: false });
  });

  // The lead's in-flight window and per-account rate make these possible; the fake server already
  // measures them (perSecond, maxInWindow, sustainedRate). Figures to quote: cloudapi.throughput.80, cloudapi.throughput.1000.
  it.todo(
    'cloudapi.throughput.80: an engine run through the fake Graph server on PostgreSQL, one number configured at 80 mps with 150 ms latency, sustains >= 76 messages per second and never exceeds 80 in any second at the server (fake.sustainedRate, fake.maxInWindow)',
  );
  it.todo('cloudapi.throughput.1000: one number at 1,000 mps with window 256 (150 ms latency, PostgreSQL) sustains >= 950 messages per second at the server, never above 1,000 in any second');
  it.todo('a lost HTTP response (timeout after Meta accepted) is settled by its status webhook carrying biz_opaque_callback_data, within a bounded wait, without a resend');
  it.todo('131056 backs off that recipient only while the campaign keeps sending to the others (TransportError.scope === "recipient")');
});
