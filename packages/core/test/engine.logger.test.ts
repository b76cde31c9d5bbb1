import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createEngine, createMemoryStore, createSimulatorTransport } from '@disparo/core';
import { VirtualClock } from '@disparo/core/testing';

/** Disconnect the only account of a running campaign: the engine pauses it and warns, with the campaign id as a field. */
async function pausedForLackOfAccounts(logger: unknown): Promise<string> {
  const clock = new VirtualClock();
  const sim = createSimulatorTransport({ clock });
  const engine = createEngine({ store: createMemoryStore(), clock, logger: logger as never, accounts: [{ id: 'a1', transport: sim, pacing: { intervalMs: { min: 0, max: 0 } } }] });
  const c = await engine.createCampaign({ name: 'x', template: 'Oi', accountIds: ['a1'] });
  await engine.addRecipients(c.id, [{ phone: '5511987654321' }]);
  await engine.start(c.id);
  sim.setConnected(false);
  await engine.step({ campaignId: c.id });
  return c.id;
}

describe('logger', () => {
  it('a pino logger keeps the fields (pino takes the fields first, then the message)', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    });
    const campaignId = await pausedForLackOfAccounts(pino({ level: 'debug' }, sink));
    const paused = lines.find((l) => String(l.msg).includes('paused'));
    expect(paused, JSON.stringify(lines)).toMatchObject({ level: 40, campaignId, msg: `campaign ${campaignId} paused: no usable sender account` });
  });

  it('console works as it is: the fields, then the message', async () => {
    const calls: unknown[][] = [];
    const fake = { debug: () => {}, info: () => {}, warn: (...args: unknown[]) => calls.push(args), error: (...args: unknown[]) => calls.push(args) };
    const campaignId = await pausedForLackOfAccounts(fake);
    expect(calls).toContainEqual([{ campaignId }, `campaign ${campaignId} paused: no usable sender account`]);
  });
});
