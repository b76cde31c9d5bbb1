import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createEngine, createMemoryStore, silentLogger, type Engine, type StateStore } from '@disparo/core';
import { createEvolutionWebhookJwt, type EvolutionTransport } from '@disparo/transport-evolution';
import { FakeEvolution } from './fake-evolution.js';
import { fixture } from './fixtures.js';
import { transportFor } from './helpers.js';

/** The real engine driving the real transport against the fake Evolution server, on the real clock. */
let fake: FakeEvolution;
let transport: EvolutionTransport;
let engine: Engine;
const JWT_KEY = 'engine-test-key';

beforeEach(async () => {
  fake = await FakeEvolution.start();
  transport = transportFor(fake, { timeoutMs: 1_000, rateLimitBackoffMs: 50, webhook: { jwtKey: JWT_KEY } });
  engine = createEngine({ store: createMemoryStore(), logger: silentLogger, accounts: [{ id: 'loja', transport, pacing: { intervalMs: { min: 0, max: 0 } } }] });
});
afterEach(async () => {
  await fake.close();
});

async function drive(campaignId: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const r = await engine.step({ campaignId, maxBatches: 5, budgetMs: 10_000 });
    if (r.done) return;
    const wait = r.continueAt === null ? 10 : Math.max(0, r.continueAt - Date.now());
    await new Promise((res) => setTimeout(res, Math.min(wait, 500)));
  }
  throw new Error('campaign did not finish');
}

describe('engine + Evolution transport', () => {
  it('sends each recipient once through timeouts, rate limits and invalid numbers, then applies receipts and opt-outs', async () => {
    const phones = ['5511999990101', '5511999990102', '5511999990103', '5511999990104', '5511999990105'];
    fake.notOnWhatsApp.add('5511999990104');
    fake.next('send', {}); // first send normal
    fake.next('send', { sendFirst: true, hold: true }); // went out, answer never came: ambiguous -> lookup
    fake.next('send', { fixture: 'evolution.error.rate-overlimit.json' }); // backs off, no attempt used

    const campaign = await engine.createCampaign({ name: 'promo', template: 'Olá {{name|cliente}}, temos novidades!', accountIds: ['loja'], batchPauseMs: { min: 0, max: 0 } });
    await engine.addRecipients(campaign.id, phones.map((phone, i) => ({ phone, vars: { name: `Cliente ${i}` } })));
    await engine.start(campaign.id);
    await drive(campaign.id);

    const perPhone = new Map<string, number>();
    for (const s of fake.stored) perPhone.set(s.number, (perPhone.get(s.number) ?? 0) + 1);
    expect([...perPhone.values()].every((n) => n === 1)).toBe(true);
    expect([...perPhone.keys()].sort()).toEqual(phones.filter((p) => p !== '5511999990104'));
    expect(fake.calls('findMessages').length).toBeGreaterThan(0);

    let progress = await engine.progress(campaign.id);
    expect(progress.status).toBe('completed');
    expect(progress.counters).toMatchObject({ total: 5, sent: 4, skipped: 1, failed: 0, unknown: 0 });

    // Receipts and a reply arrive as Evolution webhooks.
    const headers = { authorization: `Bearer ${createEvolutionWebhookJwt(JWT_KEY)}` };
    const update = fixture('evolution.webhook.messages.update.read.json');
    update.data.keyId = fake.stored[0]!.id;
    await engine.handleWebhook('loja', update, headers);
    const reply = fixture('evolution.webhook.messages.upsert.json');
    reply.data.key.remoteJid = '5511999990105@s.whatsapp.net';
    reply.data.message = { conversation: 'SAIR' };
    const events = await engine.handleWebhook('loja', reply, headers);
    expect(events).toEqual([expect.objectContaining({ type: 'inbound', from: '5511999990105', text: 'SAIR' })]);
    progress = await engine.progress(campaign.id);
    expect(progress.counters.read).toBe(1);

    await expect(engine.handleWebhook('loja', update, {})).rejects.toMatchObject({ code: 'WEBHOOK', reason: 'unsigned' });
  });

  it('on an instance that stores nothing, a send left in doubt by a dead worker becomes unknown (at-most-once) and is never sent again', async () => {
    fake.savesSentMessages = false;
    const store = createMemoryStore();
    // Worker A dies mid-send: its message reaches Evolution and WhatsApp, the answer never comes back,
    // and from then on its database connection answers nothing (a killed process).
    let dead = false;
    const deadStore = new Proxy(store, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => (dead ? new Promise(() => {}) : value.apply(target, args));
      },
    }) as StateStore;
    const pacing = { intervalMs: { min: 0, max: 0 } };
    const a = createEngine({ store: deadStore, logger: silentLogger, leaseMs: 1_000, accounts: [{ id: 'loja', transport: transportFor(fake, { timeoutMs: 60_000 }), pacing }] });
    const campaign = await a.createCampaign({ name: 'promo', template: 'Olá {{name|cliente}}', accountIds: ['loja'], batchPauseMs: { min: 0, max: 0 } });
    const phones = ['5511999990201', '5511999990202', '5511999990203'];
    await a.addRecipients(campaign.id, phones.map((phone) => ({ phone })));
    await a.start(campaign.id);
    fake.next('send', { sendFirst: true, hold: true });
    void a.step({ campaignId: campaign.id, budgetMs: 60_000 });
    while (fake.stored.length === 0) await new Promise((res) => setTimeout(res, 5));
    dead = true;

    // Worker B, a new process: after A's lease expires, recovery asks Evolution, which finds nothing.
    const b = createEngine({ store, logger: silentLogger, leaseMs: 1_000, accounts: [{ id: 'loja', transport: transportFor(fake, { timeoutMs: 1_000 }), pacing }] });
    const unknown: string[] = [];
    b.on('message:unknown', (e) => unknown.push(e.phone));
    await new Promise((res) => setTimeout(res, 1_100));
    engine = b;
    await drive(campaign.id);

    expect(fake.calls('findMessages').length).toBeGreaterThan(0);
    expect(unknown).toEqual([phones[0]]);
    const perPhone = new Map<string, number>();
    for (const s of fake.stored) perPhone.set(s.number, (perPhone.get(s.number) ?? 0) + 1);
    expect(Object.fromEntries(perPhone)).toEqual({ [phones[0]!]: 1, [phones[1]!]: 1, [phones[2]!]: 1 });
    expect((await b.progress(campaign.id)).counters).toMatchObject({ total: 3, sent: 2, unknown: 1, pending: 0, sending: 0 });
  });
});
