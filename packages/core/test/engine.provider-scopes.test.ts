import { describe, expect, it } from 'vitest';
import { campaignWith, duplicateSends, expectCountersMatchRows, phones, rig, runUntil } from './helpers.js';

describe('what a failure says beyond its message', () => {
  it('a content error every recipient would meet pauses the campaign (error_threshold) instead of failing them all', async () => {
    const r = rig();
    r.sims.a1!.failNext('permanent', { scope: 'campaign' });
    const c = await campaignWith(r.engine, 20, { batchSize: 20 });
    await r.engine.start(c.id);
    await runUntil(r, 'campaign:paused');
    const campaign = await r.engine.getCampaign(c.id);
    expect(campaign).toMatchObject({ status: 'paused', pauseReason: 'error_threshold', lastError: 'template rejected (simulated)' });
    const { counted } = await expectCountersMatchRows(r.store, c.id);
    expect(counted.failed).toBe(1);
    expect(counted.pending).toBe(19);
    // The account is not blamed for the content.
    expect((await r.store.getAccount('a1'))!.consecutiveFailures).toBe(0);
  });

  it('a contact that stopped marketing messages is skipped and opted out of every campaign', async () => {
    const r = rig();
    const c1 = await campaignWith(r.engine, 3, { batchSize: 3 });
    const c2 = await campaignWith(r.engine, 3, { batchSize: 3 });
    r.sims.a1!.failNext('invalid_recipient', { optOut: true });
    await r.engine.start(c1.id);
    await runUntil(r, 'campaign:completed');
    const first = (await r.store.listRecipients(c1.id)).find((row) => row.status === 'skipped')!;
    expect(first).toMatchObject({ skipReason: 'opted_out' });
    expect((await r.store.listOptOuts()).map((o) => o.phone)).toEqual([first.phone]);
    expect((await r.store.listRecipients(c2.id)).find((row) => row.phone === first.phone)).toMatchObject({ status: 'skipped', skipReason: 'opted_out' });
  });

  it("one contact's rate limit backs off that contact only; the others go on, and no attempt is consumed", async () => {
    const r = rig({ pacing: { intervalMs: { min: 100, max: 100 } } });
    r.sims.a1!.failNext('rate_limited', { scope: 'recipient', retryAfterMs: 6_000 });
    const c = await campaignWith(r.engine, 5, { batchSize: 5, maxAttempts: 1 });
    await r.engine.start(c.id);
    await runUntil(r, 'campaign:completed');
    const sends = r.sims.a1!.sends;
    // The contact refused first went out last, after its back-off; the others did not wait for it.
    expect(sends.map((s) => s.to)).toEqual([...phones(5).slice(1), phones(5)[0]]);
    expect(sends[3]!.at - r.sims.a1!.sends[0]!.at).toBeLessThan(1_000);
    expect((await expectCountersMatchRows(r.store, c.id)).counted).toMatchObject({ sent: 5, failed: 0 });
    expect(duplicateSends([r.sims.a1!])).toEqual([]);
  });

  it('a run of failures that name the contact (a closed 24 h window) does not disable a healthy number', async () => {
    const r = rig({ engine: { failureThreshold: 3 } });
    for (let i = 0; i < 4; i++) r.sims.a1!.failNext('permanent', { scope: 'recipient' });
    const disabled: string[] = [];
    r.engine.on('account:disabled', (e) => disabled.push(e.accountId));
    const c = await campaignWith(r.engine, 6, { batchSize: 6 });
    await r.engine.start(c.id);
    await runUntil(r, 'campaign:completed');
    expect(disabled).toEqual([]);
    expect((await r.store.getAccount('a1'))!).toMatchObject({ state: 'active', consecutiveFailures: 0 });
    expect((await expectCountersMatchRows(r.store, c.id)).counted).toMatchObject({ failed: 4, sent: 2 });
  });

  it('a failed receipt that says the contact stopped marketing messages opts the contact out of every campaign', async () => {
    // Cloud API 131050 comes as a `failed` webhook for a message it had accepted, more often than as a send's reply.
    const r = rig();
    const c1 = await campaignWith(r.engine, 2, { batchSize: 2 });
    const c2 = await campaignWith(r.engine, 2, { batchSize: 2 });
    await r.engine.start(c1.id);
    await runUntil(r, 'campaign:completed');
    const [first, second] = await r.store.listRecipients(c1.id);
    await r.engine.handleTransportEvents('a1', [
      { type: 'status', providerMessageId: first!.providerMessageId!, status: 'failed', at: r.clock.now(), code: 131050, error: 'User stopped marketing messages', optOut: true },
      { type: 'status', providerMessageId: second!.providerMessageId!, status: 'failed', at: r.clock.now(), code: 131026, error: 'Message undeliverable' },
    ]);
    expect((await r.store.listOptOuts()).map((o) => o.phone)).toEqual([first!.phone]);
    const rows2 = await r.store.listRecipients(c2.id);
    expect(rows2.find((x) => x.phone === first!.phone)).toMatchObject({ status: 'skipped', skipReason: 'opted_out' });
    expect(rows2.find((x) => x.phone === second!.phone)).toMatchObject({ status: 'pending' });
  });
});
