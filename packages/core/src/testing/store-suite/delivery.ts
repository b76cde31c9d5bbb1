import { describe, expect, it } from 'vitest';
import { HELD_RECEIPT_MS } from '../../rules/delivery.js';
import type { Suite } from './harness.js';
import { T0, newCampaign, pacing, people } from './harness.js';

export function deliveryCases(s: Suite): void {
  const { rawRows, rawRow, seed, claim, begin, out, record, sendAll, consistent, rowsOf } = s;
  describe('delivery receipts', () => {
    it('moves sent -> delivered -> read, ignores repeats and late receipts, and counts unmatched ids', async () => {
      const rows = await seed({ n: 3 });
      await sendAll(rows);
      const first = await s.store.applyStatusUpdates(
        [
          { providerMessageId: 'pid-1', status: 'delivered', at: T0 + 10 },
          { providerMessageId: 'pid-1', status: 'delivered', at: T0 + 11 },
          { providerMessageId: 'pid-2', status: 'read', at: T0 + 20 },
          { providerMessageId: 'ghost', status: 'delivered', at: T0 + 20 },
        ],
        T0 + 30,
      );
      expect(first).toMatchObject({ applied: 2, ignored: 1, unmatched: 1 });
      expect(first.changed).toEqual([
        { recipientId: rows[0]!.id, campaignId: 'c1', from: 'sent', to: 'delivered' },
        { recipientId: rows[1]!.id, campaignId: 'c1', from: 'sent', to: 'read' },
      ]);
      expect(await rawRow(rows[0]!.id)).toMatchObject({ status: 'delivered', deliveredAt: T0 + 10 });
      expect(await rawRow(rows[1]!.id)).toMatchObject({ status: 'read', readAt: T0 + 20 });
      const late = await s.store.applyStatusUpdates(
        [
          { providerMessageId: 'pid-2', status: 'delivered', at: T0 + 40 },
          { providerMessageId: 'pid-1', status: 'sent', at: T0 + 40 },
          { providerMessageId: 'pid-2', status: 'read', at: T0 + 41 },
        ],
        T0 + 50,
      );
      expect(late).toMatchObject({ applied: 0, ignored: 3, unmatched: 0, changed: [] });
      expect((await rawRows()).map((r) => r.status)).toEqual(['delivered', 'read', 'sent']);
      expect(await rawRow(rows[1]!.id)).toMatchObject({ readAt: T0 + 20 });
      const { campaign } = await consistent();
      expect(campaign.counters).toMatchObject({ sent: 1, delivered: 1, read: 1 });
      expect((await s.raw.batches('c1'))[0]).toMatchObject({ sent: 3 });
      // Later, it moves on.
      expect(await s.store.applyStatusUpdates([{ providerMessageId: 'pid-1', status: 'read', at: T0 + 60 }], T0 + 60)).toMatchObject({ applied: 1 });
    });

    it('applies failed only before delivered', async () => {
      const rows = await seed({ n: 3 });
      await sendAll(rows);
      await s.store.applyStatusUpdates([{ providerMessageId: 'pid-2', status: 'delivered', at: T0 + 1 }], T0 + 1);
      const result = await s.store.applyStatusUpdates(
        [
          { providerMessageId: 'pid-1', status: 'failed', at: T0 + 2, error: '131026: undeliverable' },
          { providerMessageId: 'pid-2', status: 'failed', at: T0 + 2, error: 'too late' },
        ],
        T0 + 3,
      );
      expect(result).toMatchObject({ applied: 1, ignored: 1 });
      expect(result.changed).toEqual([{ recipientId: rows[0]!.id, campaignId: 'c1', from: 'sent', to: 'failed' }]);
      expect(await rawRow(rows[0]!.id)).toMatchObject({ status: 'failed', lastError: '131026: undeliverable' });
      expect((await rawRow(rows[1]!.id)).status).toBe('delivered');
      const { campaign } = await consistent();
      expect(campaign.counters).toMatchObject({ sent: 1, delivered: 1, failed: 1 });
      expect((await s.raw.batches('c1'))[0]).toMatchObject({ sent: 2, failed: 1 });
    });

    it('settles unknown rows forward, leaves sending rows to their worker, and counters follow', async () => {
      const rows = await seed({ n: 3 });
      await claim('o1');
      for (const [i, r] of rows.entries()) expect((await begin('o1', r, { pid: `bp-${i}` })).granted).toBe(true);
      await record('o1', [out(rows[1]!, 'unknown', { error: 'timed out' }), out(rows[2]!, 'unknown', { error: 'timed out' })]);
      const result = await s.store.applyStatusUpdates(
        [
          { providerMessageId: 'bp-0', status: 'delivered', at: T0 + 5 },
          { providerMessageId: 'bp-1', status: 'read', at: T0 + 6 },
          { providerMessageId: 'bp-2', status: 'sent', at: T0 + 7 },
        ],
        T0 + 8,
      );
      expect(result).toMatchObject({ applied: 2, ignored: 1, unmatched: 0 });
      expect(result.changed).toEqual([
        { recipientId: rows[1]!.id, campaignId: 'c1', from: 'unknown', to: 'read' },
        { recipientId: rows[2]!.id, campaignId: 'c1', from: 'unknown', to: 'sent' },
      ]);
      expect(await rawRow(rows[0]!.id)).toMatchObject({ status: 'sending', leaseOwner: 'o1' });
      expect(await rawRow(rows[1]!.id)).toMatchObject({ status: 'read', readAt: T0 + 6 });
      expect(await rawRow(rows[2]!.id)).toMatchObject({ status: 'sent', sentAt: T0 + 7 });
      // The worker still records its own outcome for the row that was sending.
      expect((await record('o1', [out(rows[0]!, 'sent', { providerMessageId: 'bp-0' })], T0 + 9))[0]!.applied).toBe(true);
      const { campaign } = await consistent();
      expect(campaign.counters).toMatchObject({ sent: 2, read: 1, unknown: 0, sending: 0 });
      expect((await s.raw.batches('c1'))[0]).toMatchObject({ sent: 3, unknown: 0 });
    });

    it('holds a receipt that comes before its send\'s outcome, and applies it once the outcome is recorded', async () => {
      const rows = await seed({ n: 3 });
      await claim('o1');
      // Row 0: the provider id comes with the answer (Evolution, Cloud API); row 1: it is known ahead (Baileys).
      expect((await begin('o1', rows[0]!)).granted).toBe(true);
      expect((await begin('o1', rows[1]!, { pid: 'bp-1' })).granted).toBe(true);
      const early = await s.store.applyStatusUpdates(
        [
          { providerMessageId: 'wamid.0', status: 'delivered', at: T0 + 5 },
          { providerMessageId: 'bp-1', status: 'read', at: T0 + 6 },
        ],
        T0 + 7,
      );
      expect(early).toMatchObject({ applied: 0, ignored: 1, unmatched: 1, held: 2, changed: [] });
      expect((await rawRows()).map((r) => r.status)).toEqual(['sending', 'sending', 'pending']);
      // Nothing to apply while the rows are still sending.
      expect(await s.store.applyStatusUpdates([], T0 + 8)).toMatchObject({ applied: 0, held: 0, changed: [] });
      await record('o1', [out(rows[0]!, 'sent', { providerMessageId: 'wamid.0', accountId: 'a1', at: T0 + 9 }), out(rows[1]!, 'sent', { providerMessageId: 'bp-1', accountId: 'a1', at: T0 + 9 })], T0 + 9);
      // A webhook's call holds its own unmatched receipt and leaves the held ones alone; a call with no updates tries them.
      expect(await s.store.applyStatusUpdates([{ providerMessageId: 'pid-none', status: 'sent', at: T0 + 10 }], T0 + 10)).toMatchObject({
        applied: 0,
        unmatched: 1,
        held: 1,
        changed: [],
      });
      expect((await rawRow(rows[0]!.id)).status).toBe('sent');
      const later = await s.store.applyStatusUpdates([], T0 + 10);
      expect(later).toMatchObject({ applied: 2, held: 0 });
      expect(later.changed).toEqual([
        { recipientId: rows[0]!.id, campaignId: 'c1', from: 'sent', to: 'delivered' },
        { recipientId: rows[1]!.id, campaignId: 'c1', from: 'sent', to: 'read' },
      ]);
      expect(await rawRow(rows[0]!.id)).toMatchObject({ status: 'delivered', sentAt: T0 + 9, deliveredAt: T0 + 5 });
      expect(await rawRow(rows[1]!.id)).toMatchObject({ status: 'read', readAt: T0 + 6 });
      // Applied once: the next call finds nothing held for them.
      expect(await s.store.applyStatusUpdates([], T0 + 11)).toMatchObject({ applied: 0, changed: [] });
      const { campaign } = await consistent();
      expect(campaign.counters).toMatchObject({ pending: 1, sending: 0, delivered: 1, read: 1 });
    });

    it('a held receipt found by its idempotency key teaches the row its provider id, and is dropped after HELD_RECEIPT_MS', async () => {
      const rows = await seed({ n: 2 });
      await claim('o1');
      expect((await begin('o1', rows[0]!)).granted).toBe(true);
      expect((await begin('o1', rows[1]!)).granted).toBe(true);
      const early = await s.store.applyStatusUpdates(
        [
          { providerMessageId: 'wamid.0', status: 'delivered', at: T0 + 5, idempotencyKey: `c1:${rows[0]!.phone}` },
          { providerMessageId: 'wamid.1', status: 'delivered', at: T0 + 5 },
        ],
        T0 + 5,
      );
      expect(early).toMatchObject({ applied: 0, ignored: 1, unmatched: 1, held: 2 });
      expect(await rawRow(rows[0]!.id)).toMatchObject({ status: 'sending', providerMessageId: 'wamid.0' });
      // Row 0's outcome comes in time; row 1's only after the receipt was given up.
      await record('o1', [out(rows[0]!, 'sent', { providerMessageId: 'wamid.0', accountId: 'a1', at: T0 + 6 })], T0 + 6);
      expect((await s.store.applyStatusUpdates([], T0 + 6)).changed).toEqual([{ recipientId: rows[0]!.id, campaignId: 'c1', from: 'sent', to: 'delivered' }]);
      await record('o1', [out(rows[1]!, 'sent', { providerMessageId: 'wamid.1', accountId: 'a1', at: T0 + 7 })], T0 + 5 + HELD_RECEIPT_MS);
      expect(await s.store.applyStatusUpdates([], T0 + 5 + HELD_RECEIPT_MS)).toMatchObject({ applied: 0, changed: [] });
      expect((await rawRow(rows[1]!.id)).status).toBe('sent');
      const { campaign } = await consistent();
      expect(campaign.counters).toMatchObject({ sent: 1, delivered: 1 });
    });

    it('a receipt carrying the idempotency key matches a row whose provider id was lost, and the row learns it', async () => {
      await s.store.createCampaign(newCampaign('c:with:colons', { batchSize: 10 }));
      await s.store.addRecipients('c:with:colons', people(2), T0);
      if (!(await s.store.getAccount('a1'))) await s.store.upsertAccount('a1', pacing(), T0);
      const rows = await rowsOf('c:with:colons');
      await claim('o1', { campaignId: 'c:with:colons' });
      // Sent, but the answer (and the wamid) never came back: in doubt, settled `unknown` by the policy.
      expect((await begin('o1', rows[0]!)).granted).toBe(true);
      await record('o1', [out(rows[0]!, 'unknown', { error: 'timed out' })]);
      const key = `c:with:colons:${rows[0]!.phone}`;
      const result = await s.store.applyStatusUpdates([{ providerMessageId: 'wamid.1', status: 'delivered', at: T0 + 5, idempotencyKey: key }], T0 + 6);
      expect(result).toMatchObject({ applied: 1, unmatched: 0 });
      expect(await rawRow(rows[0]!.id, 'c:with:colons')).toMatchObject({ status: 'delivered', providerMessageId: 'wamid.1' });
      // Later receipts find it by its provider id alone.
      expect((await s.store.applyStatusUpdates([{ providerMessageId: 'wamid.1', status: 'read', at: T0 + 7 }], T0 + 7)).applied).toBe(1);
      // A key that names no row, or a row that already has another provider id, changes nothing.
      const stray = await s.store.applyStatusUpdates([{ providerMessageId: 'wamid.2', status: 'read', at: T0 + 8, idempotencyKey: `c:with:colons:${rows[1]!.phone}` }, { providerMessageId: 'wamid.3', status: 'read', at: T0 + 8, idempotencyKey: 'nope:5511999999999' }], T0 + 8);
      expect(stray).toMatchObject({ applied: 0, unmatched: 1 });
      expect(await rawRow(rows[1]!.id, 'c:with:colons')).toMatchObject({ status: 'pending', providerMessageId: null });
      await consistent('c:with:colons');
    });
  });
}
