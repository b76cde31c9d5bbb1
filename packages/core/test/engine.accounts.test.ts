import { describe, expect, it } from 'vitest';
import { createMemoryStore, TransportError, type StateStore, type Transport } from '@disparo/core';
import { campaignWith, duplicateSends, expectCountersMatchRows, rig, runUntil } from './helpers.js';

describe('retries, error kinds and accounts', () => {
  it('retries transient failures, skips invalid recipients, fails permanent ones, and keeps counters equal to rows', async () => {
    const r = rig({ sim: { failureRates: { transient: 0.3, invalid_recipient: 0.05, permanent: 0.05 } }, engine: { failureThreshold: 1_000 } });
    const c = await campaignWith(r.engine, 200, { maxAttempts: 3 });
    const retries: number[] = [];
    r.engine.on('message:retrying', (e) => retries.push(e.attempt));
    await r.engine.start(c.id);
    await runUntil(r, 'campaign:completed');
    const rows = await r.store.listRecipients(c.id);
    const { counters, counted } = await expectCountersMatchRows(r.store, c.id);
    expect(counters).toEqual(counted);
    expect(counted.sent).toBeGreaterThan(150);
    expect(counted.skipped).toBeGreaterThan(0);
    expect(counted.failed).toBeGreaterThan(0);
    expect(retries.length).toBeGreaterThan(20);
    expect(Math.max(...rows.map((x) => x.attempts))).toBeLessThanOrEqual(3);
    for (const row of rows.filter((x) => x.status === 'skipped')) expect(row.skipReason).toBe('not_on_whatsapp');
    expect(duplicateSends([r.sims.a1!])).toEqual([]);
  });

  it('a rate limit backs the account off and consumes no attempt', async () => {
    let calls = 0;
    const limited: Transport = {
      name: 'limited',
      async send(message) {
        calls++;
        if (calls % 2 === 1) throw new TransportError('rate_limited', 'rate-overlimit', { retryAfterMs: 5_000 });
        return { providerMessageId: `id-${message.idempotencyKey}`, acceptedAt: 0 };
      },
    };
    const r = rig({ accounts: [] });
    await r.engine.addAccount({ id: 'lim', transport: limited, pacing: { intervalMs: { min: 0, max: 0 } } });
    const c = await campaignWith(r.engine, 4, { maxAttempts: 1 }, ['lim']);
    await r.engine.start(c.id);
    const started = r.clock.now();
    await runUntil(r, 'campaign:completed');
    const rows = await r.store.listRecipients(c.id);
    expect(rows.map((x) => x.status)).toEqual(['sent', 'sent', 'sent', 'sent']);
    expect(rows.map((x) => x.attempts)).toEqual([1, 1, 1, 1]);
    expect(r.clock.now() - started).toBeGreaterThanOrEqual(4 * 5_000);
  });

  it('moves work to the other account when one disconnects, and pauses with no_accounts when none is left, resuming on reconnect', async () => {
    const r = rig({ accounts: ['a1', 'a2'], pacing: { intervalMs: { min: 1_000, max: 1_000 } } });
    const c = await campaignWith(r.engine, 40, { batchSize: 40 }, ['a1', 'a2']);
    await r.engine.start(c.id);
    const paused = new Promise<void>((resolve) => r.engine.on('campaign:paused', (e) => e.reason === 'no_accounts' && resolve()));
    let sent = 0;
    r.engine.on('message:sent', () => {
      sent++;
      if (sent === 10) r.sims.a1!.setConnected(false);
      if (sent === 20) r.sims.a2!.setConnected(false);
    });
    const stopClock = r.clock.autoAdvance();
    void r.engine.run();
    await paused;
    const mid = (await r.store.getCampaign(c.id))!;
    expect(mid).toMatchObject({ status: 'paused', pauseReason: 'no_accounts' });
    const a1After = r.sims.a1!.sends.length;
    expect(r.sims.a2!.sends.length).toBeGreaterThan(5); // a2 took a1's share
    // Reconnect: the campaign resumes by itself and completes.
    const done = new Promise<void>((resolve) => r.engine.on('campaign:completed', () => resolve()));
    r.sims.a1!.setConnected(true);
    await done;
    await r.engine.stop();
    stopClock();
    expect(r.sims.a1!.sends.length).toBeGreaterThan(a1After);
    expect(duplicateSends([r.sims.a1!, r.sims.a2!])).toEqual([]);
    const { counters, counted } = await expectCountersMatchRows(r.store, c.id);
    expect(counters).toEqual(counted);
    expect(counted.sent).toBe(40);
  });

  it('disables an account after N real failures in a row, then a probe send brings it back', async () => {
    let failing = true;
    const flaky: Transport = {
      name: 'flaky',
      async send(message) {
        if (failing) throw new TransportError('transient', 'HTTP 500');
        return { providerMessageId: `id-${message.idempotencyKey}`, acceptedAt: 0 };
      },
    };
    const r = rig({ accounts: [], engine: { failureThreshold: 3, cooldownMs: 60_000 } });
    await r.engine.addAccount({ id: 'flaky', transport: flaky, pacing: { intervalMs: { min: 0, max: 0 } } });
    const c = await campaignWith(r.engine, 6, { maxAttempts: 10, retryBackoffMs: { min: 100, max: 100 } }, ['flaky']);
    const disabled = new Promise<number | null>((resolve) => r.engine.on('account:disabled', (e) => resolve(e.until)));
    const enabled = new Promise<void>((resolve) => r.engine.on('account:enabled', () => resolve()));
    await r.engine.start(c.id);
    const stopClock = r.clock.autoAdvance();
    void r.engine.run();
    const until = await disabled;
    expect(until).toBeGreaterThan(r.clock.now() - 1);
    expect((await r.store.getAccount('flaky'))!.state).toBe('disabled');
    failing = false;
    await enabled;
    expect(r.clock.now()).toBeGreaterThanOrEqual(until!);
    const done = new Promise<void>((resolve) => r.engine.on('campaign:completed', () => resolve()));
    await done;
    await r.engine.stop();
    stopClock();
    expect((await r.store.getAccount('flaky'))!.state).toBe('active');
  });

  it('a logged-out account stops at once with its reason', async () => {
    const r = rig({ accounts: ['ok'] });
    const banned: Transport = {
      name: 'banned',
      async send() {
        throw new TransportError('account', 'logged out from the phone', { accountReason: 'logged_out', providerCode: 401 });
      },
    };
    await r.engine.addAccount({ id: 'gone', transport: banned, pacing: { intervalMs: { min: 0, max: 0 } } });
    const stopped = new Promise<string>((resolve) => r.engine.on('account:stopped', (e) => resolve(e.reason)));
    const c = await campaignWith(r.engine, 20, {}, ['gone', 'ok']);
    await r.engine.start(c.id);
    const reasonP = stopped;
    await runUntil(r, 'campaign:completed');
    expect(await reasonP).toBe('logged_out');
    expect((await r.store.getAccount('gone'))!).toMatchObject({ state: 'stopped' });
    expect(r.sims.ok!.sends).toHaveLength(20);
  });

  it('a listener that throws never breaks the loop; the error reaches the error event', async () => {
    const r = rig();
    const c = await campaignWith(r.engine, 10);
    const errors: string[] = [];
    r.engine.on('message:sent', () => {
      throw new Error('listener bug');
    });
    r.engine.on('error', (e) => errors.push(e.context));
    await r.engine.start(c.id);
    await runUntil(r, 'campaign:completed');
    expect(r.sims.a1!.sends).toHaveLength(10);
    expect(errors.filter((x) => x === 'listener of message:sent')).toHaveLength(10);
  });

  it('receipts move statuses forward only, and an inbound SAIR opts the contact out of every campaign', async () => {
    const r = rig({ sim: { receipts: { deliveredAfterMs: 1_000, readAfterMs: 2_000, readRate: 1 } }, pacing: { intervalMs: { min: 10_000, max: 10_000 } } });
    const c1 = await campaignWith(r.engine, 6);
    const c2 = await campaignWith(r.engine, 6);
    await r.engine.start(c1.id);
    let sent = 0;
    r.engine.on('message:sent', (e) => {
      if (++sent === 2) r.sims.a1!.inject({ type: 'inbound', from: e.phone, text: ' sair ', at: r.clock.now() });
    });
    await runUntil(r, 'campaign:completed');
    const rows1 = await r.store.listRecipients(c1.id);
    // The contact who replied SAIR had been sent to; the others after it were read.
    expect(rows1.filter((x) => x.status === 'read').length).toBeGreaterThanOrEqual(4);
    const rows2 = await r.store.listRecipients(c2.id);
    const optedOut = rows2.filter((x) => x.status === 'skipped');
    expect(optedOut).toHaveLength(1);
    expect(optedOut[0]!.skipReason).toBe('opted_out');
    // A late "delivered" after "read" changes nothing.
    const read = rows1.find((x) => x.status === 'read')!;
    const res = await r.engine.applyStatusUpdates([{ providerMessageId: read.providerMessageId!, status: 'delivered', at: r.clock.now() }]);
    expect(res.applied).toBe(0);
    expect((await r.store.listRecipients(c1.id)).find((x) => x.id === read.id)!.status).toBe('read');

  });

  it('a SAIR from a WhatsApp id without the ninth digit opts out the contact as the list has it', async () => {
    // Meta gives older Brazilian mobiles' ids without the ninth digit: 551199990001 for 5511999990001.
    const r = rig();
    const c = await campaignWith(r.engine, 3);
    const [first] = await r.store.listRecipients(c.id);
    expect(first!.phone).toMatch(/^55\d{2}9\d{8}$/);
    const waId = `${first!.phone.slice(0, 4)}${first!.phone.slice(5)}`;
    await r.engine.handleTransportEvents('a1', [{ type: 'inbound', from: waId, text: 'SAIR', at: r.clock.now() }]);
    expect((await r.store.listOptOuts()).map((o) => o.phone)).toEqual([first!.phone]);
    await r.engine.start(c.id);
    await runUntil(r, 'campaign:completed');
    expect(r.sims.a1!.sends.map((x) => x.to)).not.toContain(first!.phone);
    expect((await r.store.listRecipients(c.id)).find((x) => x.id === first!.id)).toMatchObject({ status: 'skipped', skipReason: 'opted_out' });
  });

  it("an account's transport events are stored in the order they came, even when the store answers out of order", async () => {
    // The store answers the first account read late: handled concurrently, the `open` would land after the `close`.
    const memory = createMemoryStore();
    let slowOnce = true;
    const store = new Proxy(memory, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (prop === 'getAccount' && typeof value === 'function') {
          return async (...args: unknown[]) => {
            if (slowOnce) {
              slowOnce = false;
              await new Promise((res) => setTimeout(res, 30));
            }
            return value.apply(target, args);
          };
        }
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as StateStore;
    const r = rig({ store });
    await r.engine.ready();
    r.sims.a1!.setConnected(false);
    await new Promise((res) => setTimeout(res, 50));
    slowOnce = true;
    r.sims.a1!.setConnected(true); // its handler reads the account (slowly) before writing `open`
    r.sims.a1!.setConnected(false); // and this one arrives right after
    await new Promise((res) => setTimeout(res, 100));
    expect((await memory.getAccount('a1'))!.connection).toBe('close');
  });
  it('an engine that starts after the phone reconnected records it open and resumes the campaign paused for lack of accounts', async () => {
    const first = rig();
    const c = await campaignWith(first.engine, 10);
    await first.engine.start(c.id);
    await first.engine.ready();
    first.sims.a1!.setConnected(false);
    await runUntil(first, 'campaign:paused', (e) => e.reason === 'no_accounts', 60_000);
    expect((await first.store.getAccount('a1'))!.connection).toBe('close');

    // A new worker on the same store, with the account connected again: nobody emits an `open` event.
    const second = rig({ store: first.store, clock: first.clock });
    const seen: string[] = [];
    second.engine.on('account:connection', (e) => seen.push(`${e.state}: ${e.detail}`));
    await runUntil(second, 'campaign:completed', () => true, 60_000);
    expect(seen).toEqual(['open: reported open by the transport at start']);
    expect((await second.store.getCampaign(c.id))!.counters.sent).toBe(10);
    expect(duplicateSends([first.sims.a1!, second.sims.a1!])).toEqual([]);
  });

  it('an engine that starts while the account is down records it closed; a matching or unknown state changes nothing', async () => {
    const store = createMemoryStore();
    const first = rig({ store });
    await first.engine.ready();
    await first.engine.handleTransportEvents('a1', [{ type: 'connection', state: 'open' }]);
    expect((await store.getAccount('a1'))!.connection).toBe('open');

    const agreeing = rig({ store });
    const agreed: string[] = [];
    agreeing.engine.on('account:connection', (e) => agreed.push(e.state));
    await agreeing.engine.ready();
    expect(agreed).toEqual([]);

    const unreachable: Transport = {
      name: 'unreachable',
      send: async () => ({ providerMessageId: 'x', acceptedAt: 0 }),
      connectionState: async () => {
        throw new TransportError('transient', 'HTTP 502 from the provider');
      },
    };
    const third = rig({ store, accounts: [] });
    await third.engine.addAccount({ id: 'a1', transport: unreachable, pacing: { intervalMs: { min: 0, max: 0 } } });
    expect((await store.getAccount('a1'))!.connection).toBe('open');

    // A transport that never answers holds the start for 5 s of the engine's clock, no longer.
    const hanging: Transport = { name: 'hanging', send: unreachable.send, connectionState: () => new Promise(() => {}) };
    const fourth = rig({ store, accounts: [] });
    let added = false;
    const adding = fourth.engine.addAccount({ id: 'a1', transport: hanging, pacing: { intervalMs: { min: 0, max: 0 } } }).then(() => (added = true));
    await fourth.clock.advance(4_999);
    expect(added).toBe(false);
    await fourth.clock.advance(1);
    await adding;
    expect((await store.getAccount('a1'))!.connection).toBe('open');

    const down = rig({ store });
    down.sims.a1!.setConnected(false); // before it subscribes: no event reaches the engine
    await down.engine.ready();
    expect((await store.getAccount('a1'))!.connection).toBe('close');
  });
});


