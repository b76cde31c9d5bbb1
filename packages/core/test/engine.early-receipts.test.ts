import { describe, expect, it } from 'vitest';
import { HELD_RECEIPT_MS } from '@disparo/core/store';
import { VirtualClock } from '@disparo/core/testing';
import { campaignWith, expectCountersMatchRows, rig, runUntil } from './helpers.js';

describe('receipts that come before their send is recorded', () => {
  it('a fast provider\'s "delivered" during a grouped checkpoint is held and applied, with its event', async () => {
    // Grouped checkpoints hold a group's outcomes until the group is sent (10 sends, 1-2 s apart);
    // the provider reports each one delivered after 200 ms, long before its outcome is recorded.
    // The provider's answer takes 500 ms after it accepted the message: the last send's receipt comes
    // before its answer, and so before its outcome is recorded, and no other receipt follows it.
    const clock = new VirtualClock();
    const r = rig({
      clock,
      sim: { receipts: { deliveredAfterMs: 200 }, onSend: () => clock.sleep(500) },
      pacing: { intervalMs: { min: 1_000, max: 2_000 } },
      engine: { checkpoints: { groupSize: 10, maxDelayMs: 20_000 } },
    });
    const c = await campaignWith(r.engine, 30, { batchSize: 30 });
    const events: string[] = [];
    r.engine.on('message:status', (e) => events.push(`${e.from}->${e.to}`));
    await r.engine.start(c.id);
    // Held receipts are applied by the engine's own call at each poll (webhook calls leave them).
    await runUntil(r, 'message:status', () => events.length === 30, HELD_RECEIPT_MS);
    expect((await r.engine.getCampaign(c.id))?.status).toBe('completed');
    const rows = await r.store.listRecipients(c.id);
    expect(rows.map((x) => x.status)).toEqual(Array(30).fill('delivered'));
    expect(events).toEqual(Array(30).fill('sent->delivered'));
    const { counters, counted } = await expectCountersMatchRows(r.store, c.id);
    expect(counters).toEqual(counted);
    expect(counters).toMatchObject({ sent: 0, delivered: 30 });
  });
});
