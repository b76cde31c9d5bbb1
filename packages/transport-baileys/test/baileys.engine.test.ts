import { afterEach, describe, expect, it } from 'vitest';
import { createEngine, createMemoryStore, silentLogger, type Engine, type EngineEvents, type MemoryStore } from '@disparo/core';
import { seededRandom } from '@disparo/core/testing';
import { VirtualClock } from '@disparo/core/testing';
import { createBaileysTransport, messageIdFor, type BaileysTransport } from '../src/index.js';
import { FakeWhatsApp } from './fake-whatsapp.js';

/** Core's engine and MemoryStore driving the real transport over the fake socket, on virtual time. */
interface Rig {
  clock: VirtualClock;
  fake: FakeWhatsApp;
  transport: BaileysTransport;
  store: MemoryStore;
  engine: Engine;
}

let stopClock: (() => void) | null = null;
let running: Rig | null = null;

function rig(): Rig {
  const clock = new VirtualClock();
  const fake = new FakeWhatsApp(() => clock.now());
  const transport = createBaileysTransport({ socket: fake.socket(), clock, restrictionHoldMs: 3_600_000 });
  fake.current.connect();
  const store = createMemoryStore();
  const engine = createEngine({
    store,
    clock,
    logger: silentLogger,
    random: seededRandom(11),
    pollIntervalMs: 1_000,
    accounts: [{ id: 'wa', transport, pacing: { intervalMs: { min: 5_000, max: 5_000 }, typingMsPerChar: 50, typingMaxMs: 2_000 } }],
  });
  running = { clock, fake, transport, store, engine };
  return running;
}

/** Resolves on the first `event` whose payload passes `predicate`. */
function next<K extends keyof EngineEvents>(engine: Engine, event: K, predicate: (p: EngineEvents[K]) => boolean = () => true): Promise<EngineEvents[K]> {
  return new Promise((resolve) => {
    const listener = (payload: EngineEvents[K]) => {
      if (!predicate(payload)) return;
      engine.off(event, listener as never);
      resolve(payload);
    };
    engine.on(event, listener as never);
  });
}

function start(r: Rig): void {
  stopClock = r.clock.autoAdvance();
  void r.engine.run();
}

afterEach(async () => {
  await running?.engine.stop();
  stopClock?.();
  stopClock = null;
  running = null;
});

const PHONES = ['5511999990101', '5511999990102', '5511987654321', '5511999990104', '5511999990105'];

describe('engine + Baileys transport over the fake socket', () => {
  it('completes a campaign with paced, typed, deterministic-id sends; receipts and a 463 update the recipients', async () => {
    const r = rig();
    r.fake.notOnWhatsApp.add('5511999990104');
    r.fake.canonical.set('5511987654321', '551187654321');
    const c = await r.engine.createCampaign({ name: 'promo', template: 'Olá {{name|cliente}}, temos novidades!', accountIds: ['wa'], batchPauseMs: { min: 0, max: 0 }, precheckNumbers: true });
    await r.engine.addRecipients(c.id, PHONES.map((phone, i) => ({ phone, vars: { name: `Cliente ${i}` } })));
    const completed = next(r.engine, 'campaign:completed');
    await r.engine.start(c.id);
    start(r);
    await completed;

    // Each recipient on WhatsApp got exactly one message, under the id derived from its idempotency key.
    const sent = PHONES.filter((p) => p !== '5511999990104');
    expect(r.fake.accepted.map((a) => a.id).sort()).toEqual(sent.map((p) => messageIdFor(`${c.id}:${p}`)).sort());
    expect(r.fake.accepted.find((a) => a.id === messageIdFor(`${c.id}:5511987654321`))!.jid).toBe('551187654321@s.whatsapp.net');
    // Pacing: 5 s between sends of the account, and "typing…" before each one.
    const times = r.fake.accepted.map((a) => a.at);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(5_000);
    expect(r.fake.presences.filter((p) => p.type === 'composing')).toHaveLength(4);

    const rows = await r.store.listRecipients(c.id);
    const byPhone = new Map(rows.map((row) => [row.phone, row]));
    expect(byPhone.get('5511999990104')).toMatchObject({ status: 'skipped', skipReason: 'not_on_whatsapp' });
    for (const p of sent) expect(byPhone.get(p)).toMatchObject({ status: 'sent', providerMessageId: messageIdFor(`${c.id}:${p}`) });

    // Receipts from the socket move statuses forward (and never back).
    const statusChanges = (n: number) => {
      const seen: Array<EngineEvents['message:status']> = [];
      return new Promise<Array<EngineEvents['message:status']>>((resolve) => {
        const l = (e: EngineEvents['message:status']) => {
          seen.push(e);
          if (seen.length === n) {
            r.engine.off('message:status', l);
            resolve(seen);
          }
        };
        r.engine.on('message:status', l);
      });
    };
    const changes = statusChanges(5);
    const idOf = (i: number) => messageIdFor(`${c.id}:${PHONES[i]}`);
    r.fake.receipt('baileys.event.messages.update.delivery.json', idOf(0));
    r.fake.receipt('baileys.event.messages.update.read.json', idOf(1));
    r.fake.receipt('baileys.event.messages.update.delivery.json', idOf(1)); // late: changes nothing
    r.fake.receipt('baileys.event.messages.update.delivery.json', idOf(2));
    r.fake.receipt('baileys.event.messages.update.read.json', idOf(2));
    r.fake.receipt('baileys.event.messages.update.error.463.json', idOf(4));
    const phoneOf = new Map(rows.map((row) => [row.id, row.phone]));
    const got = (await changes).map((e) => `${phoneOf.get(e.recipientId)}:${e.from}->${e.to}`).sort();
    expect(got).toEqual(
      [`${PHONES[0]}:sent->delivered`, `${PHONES[1]}:sent->read`, `${PHONES[2]}:sent->delivered`, `${PHONES[2]}:delivered->read`, `${PHONES[4]}:sent->failed`].sort(),
    );
    const progress = await r.engine.progress(c.id);
    expect(progress.counters).toMatchObject({ total: 5, sent: 0, delivered: 1, read: 2, failed: 1, skipped: 1, unknown: 0 });
    // The 463 also held the account for the restriction hold.
    expect((await r.store.getAccount('wa'))!.nextSendAt).toBeGreaterThanOrEqual(r.clock.now() + 3_600_000 - 5_000);
  });

  it('a 401 logout stops the account and pauses the campaign with no_accounts; logging in again resumes it without duplicates', async () => {
    const r = rig();
    const phones = Array.from({ length: 6 }, (_, i) => `55119999902${String(i).padStart(2, '0')}`);
    const c = await r.engine.createCampaign({ name: 'logout', template: 'Oi {{name}}', accountIds: ['wa'], batchPauseMs: { min: 0, max: 0 } });
    await r.engine.addRecipients(c.id, phones.map((phone) => ({ phone, vars: { name: 'x' } })));
    let sends = 0;
    r.engine.on('message:sent', () => {
      if (++sends === 2) r.fake.drop('baileys.event.connection.update.close.loggedOut.json');
    });
    const stopped = next(r.engine, 'account:stopped');
    const paused = next(r.engine, 'campaign:paused', (e) => e.reason === 'no_accounts');
    await r.engine.start(c.id);
    start(r);
    expect(await stopped).toEqual({ accountId: 'wa', reason: 'logged_out' });
    await paused;
    expect(await r.store.getCampaign(c.id)).toMatchObject({ status: 'paused', pauseReason: 'no_accounts' });
    expect(await r.store.getAccount('wa')).toMatchObject({ state: 'stopped', disabledReason: expect.stringContaining('logged_out') });
    expect(r.fake.accepted).toHaveLength(2);
    expect(await r.transport.connectionState()).toBe('close');

    // The host scans a new QR code: a new socket, handed to the transport, opens.
    const completed = next(r.engine, 'campaign:completed');
    const socket = r.fake.socket({ open: false });
    r.transport.useSocket(socket);
    socket.connect();
    await completed;
    expect(r.fake.accepted.map((a) => a.id).sort()).toEqual(phones.map((p) => messageIdFor(`${c.id}:${p}`)).sort());
    expect(r.fake.accepted.slice(2).every((a) => a.socket === 1)).toBe(true);
    const progress = await r.engine.progress(c.id);
    expect(progress.counters).toMatchObject({ total: 6, sent: 6, failed: 0, pending: 0, unknown: 0 });
  });
});
