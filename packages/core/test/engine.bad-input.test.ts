import { describe, expect, it } from 'vitest';
import { createEngine, createMemoryStore, ValidationError, NotFoundError, type StateStore } from '@disparo/core';
import { campaignWith, rig, runUntil } from './helpers.js';

async function snapshot(store: StateStore) {
  const campaigns = await store.listCampaigns();
  const rows = await Promise.all(campaigns.map((c) => store.listRecipients(c.id, { limit: 100_000 })));
  return { campaigns, rows, accounts: await store.listAccounts(), optOuts: await store.listOptOuts() };
}

async function expectValidation(promise: Promise<unknown> | (() => unknown), field: string) {
  let error: unknown;
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (e) {
    error = e;
  }
  expect(ValidationError.isInstance(error), `expected a ValidationError for ${field}, got ${String(error)}`).toBe(true);
  const v = error as ValidationError;
  expect(v.code).toBe('VALIDATION');
  expect(v.issues.map((i) => i.path)).toContain(field);
  expect(v.message).toContain(field);
}

describe('bad input', () => {
  it('engine options name the field', async () => {
    await expectValidation(() => createEngine({ store: {} as StateStore }), 'store');
    await expectValidation(() => createEngine({ store: createMemoryStore(), leaseMs: 5 }), 'leaseMs');
    await expectValidation(() => createEngine({ store: createMemoryStore(), accounts: [{ id: 'bad id!', transport: { name: 'x', send: async () => ({ providerMessageId: '1', acceptedAt: 0 }) } }] }), 'accounts.0.id');
    await expectValidation(
      () => createEngine({ store: createMemoryStore(), accounts: [{ id: 'a', transport: { name: 'x', send: async () => ({ providerMessageId: '1', acceptedAt: 0 }) }, pacing: { intervalMs: { min: 10, max: 5 } } }] }),
      'accounts.0.pacing.intervalMs.max',
    );
  });

  it('every public method rejects invalid arguments with a ValidationError naming the field, and nothing stored changes', async () => {
    const { engine, store, clock } = rig();
    const c = await campaignWith(engine, 5);
    const before = await snapshot(store);
    const cases: Array<[() => Promise<unknown>, string]> = [
      [() => engine.createCampaign({ name: '', template: 'x', accountIds: ['a1'] }), 'name'],
      [() => engine.createCampaign({ name: 'x', accountIds: ['a1'] } as never), 'template'],
      [() => engine.createCampaign({ name: 'x', template: 'x', accountIds: [] }), 'accountIds'],
      [() => engine.createCampaign({ name: 'x', template: 'Olá {nome', accountIds: ['a1'] }), 'template'],
      [() => engine.createCampaign({ name: 'x', template: 'a'.repeat(5_000), accountIds: ['a1'] }), 'template'],
      [() => engine.createCampaign({ name: 'x', template: 'x', accountIds: ['a1'], batchSize: 0 }), 'batchSize'],
      [() => engine.createCampaign({ name: 'x', template: 'x', accountIds: ['a1'], batchPauseMs: { min: 5, max: 1 } }), 'batchPauseMs.max'],
      [() => engine.createCampaign({ name: 'x', template: 'x', accountIds: ['a1'], inDoubt: 'maybe' as never }), 'inDoubt'],
      [() => engine.createCampaign({ name: 'x', template: 'x', accountIds: ['a1'], sendWindow: { start: '25:00', end: '18:00', timeZone: 'America/Sao_Paulo' } }), 'sendWindow.start'],
      [() => engine.createCampaign({ name: 'x', template: 'x', accountIds: ['a1'], sendWindow: { start: '09:00', end: '18:00', timeZone: 'Mars/Olympus' } }), 'sendWindow.timeZone'],
      [() => engine.createCampaign({ name: 'x', template: 'x', accountIds: ['a1'], scheduledAt: 'tomorrow' }), 'scheduledAt'],
      [() => engine.createCampaign({ name: 'x', template: 'x', accountIds: ['a1'], colour: 'red' } as never), 'colour'],
      [() => engine.addRecipients(c.id, [{ phone: '5511987654321' }, { vars: {} } as never]), 'recipients.1.phone'],
      [() => engine.addRecipients(c.id, [{ phone: '5511987654321', vars: { a: { nested: true } } as never }]), 'recipients.0.vars.a'],
      [() => engine.addRecipients(c.id, 42 as never), 'recipients'],
      [() => engine.addRecipients('bad id!', []), 'campaignId'],
      [() => engine.schedule(c.id, 'next week'), 'at'],
      [() => engine.start('bad id!'), 'campaignId'],
      [() => engine.pause(''), 'campaignId'],
      [() => engine.progress('bad id!'), 'campaignId'],
      [() => engine.step({ budgetMs: -1 }), 'budgetMs'],
      [() => engine.step({ maxBatches: 0 }), 'maxBatches'],
      [() => engine.optOut(['not a phone']), 'phones.0'],
      [() => engine.optOut([]), 'phones'],
      [() => engine.applyStatusUpdates([{ providerMessageId: '', status: 'read', at: 1 }]), 'updates.0.providerMessageId'],
      [() => engine.applyStatusUpdates([{ providerMessageId: 'x', status: 'seen' as never, at: 1 }]), 'updates.0.status'],
      [() => engine.cleanup({ olderThan: 'yesterday' as never }), 'olderThan'],
      [() => engine.addAccount({ id: 'a2', transport: {} as never }), 'account.transport'],
    ];
    for (const [call, field] of cases) await expectValidation(call(), field);
    expect(await snapshot(store)).toEqual(before);
    void clock;
  });

  it('an empty audience cannot start, and unknown ids are NotFoundError', async () => {
    const { engine } = rig();
    const c = await engine.createCampaign({ name: 'empty', template: 'x', accountIds: ['a1'] });
    await expectValidation(engine.start(c.id), 'recipients');
    const missing = await engine.start('nope').catch((e: unknown) => e);
    expect(NotFoundError.isInstance(missing)).toBe(true);
    expect((missing as Error).message).toContain('nope');
  });

  it('invalid and duplicate phones are counted and skipped at import, never stored', async () => {
    const { engine, store } = rig();
    const c = await engine.createCampaign({ name: 'import', template: 'x', accountIds: ['a1'] });
    const result = await engine.addRecipients(c.id, [
      { phone: '(11) 98765-4321' },
      { phone: '+55 11 98765-4321' }, // same number
      { phone: '5511987654321' }, // same number
      { phone: '123' },
      { phone: 'call me' },
      { phone: 21998765432 },
    ]);
    expect(result).toEqual({ processed: 6, inserted: 2, duplicates: 2, invalid: 2, optedOut: 0, missingVariables: {} });
    const rows = await store.listRecipients(c.id);
    expect(rows.map((r) => r.phone).sort()).toEqual(['5511987654321', '5521998765432']);
  });

  it('variables named like object internals (__proto__, constructor, toString) are plain variables: stored, counted when missing, and sent', async () => {
    const r = rig();
    const c = await r.engine.createCampaign({ name: 'internals', template: 'Oi {{__proto__}} {{constructor}} {{toString|-}}', accountIds: ['a1'] });
    // JSON.parse makes an own `__proto__` key, as a parsed request body or CSV row would.
    const withVars = JSON.parse('{"phone":"5511987654321","vars":{"__proto__":"Ana","constructor":"C1","toString":"T"}}');
    const result = await r.engine.addRecipients(c.id, [withVars, { phone: '5511987654322', vars: { constructor: 'C2' } }]);
    expect(Object.entries(result.missingVariables)).toEqual([['__proto__', 1]]);
    const rows = await r.store.listRecipients(c.id);
    const ana = rows.find((x) => x.phone === '5511987654321')!;
    expect(Object.hasOwn(ana.vars, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(ana.vars)).toBe(Object.prototype);
    await r.engine.start(c.id);
    await runUntil(r, 'campaign:completed');
    expect(r.sims.a1!.sends.map((x) => x.text)).toEqual(['Oi Ana C1 T']);
    expect((await r.engine.progress(c.id)).counters.skipped).toBe(1);
  });

  it('every name on Object.prototype is a plain variable: rendered from the recipient, missing when absent', async () => {
    const names = Object.getOwnPropertyNames(Object.prototype);
    const r = rig();
    const c = await r.engine.createCampaign({ name: 'all internals', template: names.map((n) => `{{${n}}}`).join('|'), accountIds: ['a1'] });
    // Object.fromEntries and JSON.parse both make own properties, `__proto__` included.
    const withAll = JSON.parse(JSON.stringify({ phone: '5511987654321', vars: Object.fromEntries(names.map((n, i) => [n, `v${i}`])) }));
    const result = await r.engine.addRecipients(c.id, [withAll, { phone: '5511987654322' }]);
    expect(Object.keys(result.missingVariables).sort()).toEqual([...names].sort());
    await r.engine.start(c.id);
    await runUntil(r, 'campaign:completed');
    expect(r.sims.a1!.sends.map((x) => x.text)).toEqual([names.map((_, i) => `v${i}`).join('|')]);
  });
});
