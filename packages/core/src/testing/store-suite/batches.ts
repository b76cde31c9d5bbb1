import { describe, expect, it } from 'vitest';
import type { Suite } from './harness.js';
import { T0 } from './harness.js';

export function batchesCases(s: Suite): void {
  const { seed, claim, begin, out, record, consistent } = s;
  describe('batches', () => {
    it('advances only when the current batch is finished, and only once', async () => {
      const rows = await seed({ n: 3, batchSize: 2 });
      const first = await s.store.nextBatch({ campaignId: 'c1', current: 0, next: 1, nextBatchAt: null, now: T0 });
      expect(first).toMatchObject({ currentBatch: 1, nextBatchAt: null });
      expect(await s.store.nextBatch({ campaignId: 'c1', current: 0, next: 1, nextBatchAt: null, now: T0 })).toBeNull();
      await claim('o1');
      const next = { campaignId: 'c1', current: 1, next: 2, nextBatchAt: T0 + 20_000, now: T0 + 50 };
      expect(await s.store.nextBatch(next)).toBeNull(); // pending rows
      expect((await begin('o1', rows[0]!)).granted).toBe(true);
      await record('o1', [out(rows[1]!, 'sent', { providerMessageId: 'b1' })]);
      expect(await s.store.nextBatch(next)).toBeNull(); // a row is still sending
      expect((await s.raw.campaign('c1'))!.currentBatch).toBe(1);
      await record('o1', [out(rows[0]!, 'failed', { error: 'permanent' })]);
      const moved = await s.store.nextBatch(next);
      expect(moved).toMatchObject({ currentBatch: 2, nextBatchAt: T0 + 20_000 });
      expect(await s.raw.campaign('c1')).toMatchObject({ currentBatch: 2, nextBatchAt: T0 + 20_000 });
      expect(await s.store.nextBatch(next)).toBeNull(); // the racing worker loses
      const records = await s.store.listBatches('c1');
      expect(records.map((b) => [b.batch, b.size, b.sent, b.failed, b.finishedAt])).toEqual([
        [1, 2, 1, 1, T0 + 50],
        [2, 1, 0, 0, null],
      ]);
      await claim('o1', { batch: 2 });
      await record('o1', [out(rows[2]!, 'skipped', { skipReason: 'not_on_whatsapp' })]);
      expect(await s.store.nextBatch({ campaignId: 'c1', current: 2, next: 3, nextBatchAt: null, now: T0 + 60 })).toMatchObject({ currentBatch: 3, nextBatchAt: null });
      expect(await s.store.nextBatch({ campaignId: 'missing', current: 0, next: 1, nextBatchAt: null, now: T0 })).toBeNull();
      await consistent();
    });

    it('lists batch records in order with size, counts and start/finish times', async () => {
      await seed({ n: 5, batchSize: 2 });
      await claim('o1', { batch: 2, now: T0 + 7 });
      const records = await s.store.listBatches('c1');
      expect(records.map((b) => [b.batch, b.size, b.startedAt, b.finishedAt, b.error])).toEqual([
        [1, 2, null, null, null],
        [2, 2, T0 + 7, null, null],
        [3, 1, null, null, null],
      ]);
      expect(await s.store.listBatches('missing')).toEqual([]);
      await consistent();
    });
  });
}
