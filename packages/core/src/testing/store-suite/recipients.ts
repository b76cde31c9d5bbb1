import { describe, expect, it } from 'vitest';
import type { Suite } from './harness.js';
import { T0, newCampaign, phone, people, seqs } from './harness.js';

export function recipientsCases(s: Suite): void {
  const { rowsOf, rawRows, rawRow, seed, claim, begin, out, record, sendAll, consistent } = s;
  describe('recipients', () => {
    it('numbers rows with consecutive seq and batch = ceil(seq / batchSize) across calls', async () => {
      await s.store.createCampaign(newCampaign('c1', { batchSize: 3 }));
      expect(await s.store.addRecipients('c1', people(4), T0)).toEqual({ inserted: 4, duplicates: 0, optedOut: 0 });
      expect(await s.store.addRecipients('c1', people(4, 4), T0 + 1)).toEqual({ inserted: 4, duplicates: 0, optedOut: 0 });
      const rows = await rawRows();
      expect(seqs(rows)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      expect(rows.map((r) => r.batch)).toEqual([1, 1, 1, 2, 2, 2, 3, 3]);
      expect(rows.map((r) => r.phone)).toEqual(people(8).map((p) => p.phone));
      expect(new Set(rows.map((r) => r.id)).size).toBe(8);
      for (const [i, r] of rows.entries()) {
        expect(r).toMatchObject({ campaignId: 'c1', status: 'pending', vars: { name: `n${i}` }, attempts: 0, text: null, leaseOwner: null, skipReason: null, providerMessageId: null, processedAt: null });
      }
      expect(await rowsOf()).toEqual(rows);
      const batches = await s.store.listBatches('c1');
      expect(batches.map((b) => [b.batch, b.size, b.sent, b.failed, b.skipped, b.unknown])).toEqual([
        [1, 3, 0, 0, 0, 0],
        [2, 3, 0, 0, 0, 0],
        [3, 2, 0, 0, 0, 0],
      ]);
      expect(batches.every((b) => b.campaignId === 'c1' && b.startedAt === null && b.finishedAt === null)).toBe(true);
      const { campaign } = await consistent();
      expect(campaign.counters).toMatchObject({ total: 8, pending: 8 });
    });

    it('counts duplicates within a call and across calls and inserts each phone once', async () => {
      await s.store.createCampaign(newCampaign('c1'));
      const [p0, p1, p2, p3] = people(4);
      expect(await s.store.addRecipients('c1', [p0!, p1!, p0!, p2!], T0)).toEqual({ inserted: 3, duplicates: 1, optedOut: 0 });
      expect(await s.store.addRecipients('c1', [{ phone: p1!.phone, vars: { name: 'changed' } }, p3!, p3!], T0)).toEqual({ inserted: 1, duplicates: 2, optedOut: 0 });
      const rows = await rawRows();
      expect(rows.map((r) => r.phone)).toEqual([p0!.phone, p1!.phone, p2!.phone, p3!.phone]);
      expect(rows[1]!.vars).toEqual({ name: 'n1' });
      expect(rows[3]!.seq).toBe(4);
      await consistent();
    });

    it('does not insert phones on the suppression list and counts them as opted out', async () => {
      await s.store.createCampaign(newCampaign('c1'));
      const [p0, p1, p2] = people(3);
      await s.store.addOptOuts([{ phone: p1!.phone, reason: 'asked', source: 'api', at: T0 }], T0);
      const result = await s.store.addRecipients('c1', [p0!, p1!, p2!, p1!], T0);
      expect(result.inserted).toBe(2);
      expect(result.optedOut).toBeGreaterThanOrEqual(1);
      expect(result.optedOut + result.duplicates).toBe(2);
      const rows = await rawRows();
      expect(rows.map((r) => [r.phone, r.seq])).toEqual([
        [p0!.phone, 1],
        [p2!.phone, 2],
      ]);
      await consistent();
    });

    it('rejects rows for an unknown campaign and stores nothing', async () => {
      await expect(s.store.addRecipients('missing', people(2), T0)).rejects.toThrow();
      expect(await s.raw.recipients('missing')).toEqual([]);
      expect(await s.raw.campaign('missing')).toBeNull();
    });

    it('lists recipients by status with keyset paging, and finds them by provider message id', async () => {
      const rows = await seed({ n: 7 });
      await claim('o1', { limit: 3 });
      await begin('o1', rows[0]!);
      await record('o1', [out(rows[0]!, 'sent', { providerMessageId: 'pid-1', accountId: 'a1' }), out(rows[1]!, 'failed', { error: 'permanent' })]);
      expect(seqs(await s.store.listRecipients('c1', { status: ['pending'], limit: 100 }))).toEqual([3, 4, 5, 6, 7]);
      expect(seqs(await s.store.listRecipients('c1', { status: ['sent', 'failed'], limit: 100 }))).toEqual([1, 2]);
      expect(seqs(await s.store.listRecipients('c1', { afterSeq: 2, limit: 3 }))).toEqual([3, 4, 5]);
      expect(seqs(await s.store.listRecipients('c1', { afterSeq: 5, limit: 10 }))).toEqual([6, 7]);
      expect(seqs(await s.store.listRecipients('c1', { status: ['pending'], afterSeq: 4, limit: 2 }))).toEqual([5, 6]);
      expect(await s.store.listRecipients('missing', { limit: 10 })).toEqual([]);
      const found = await s.store.getRecipientByProviderId('pid-1');
      expect(found).toMatchObject({ id: rows[0]!.id, status: 'sent', providerMessageId: 'pid-1', accountId: 'a1' });
      expect(found).toEqual(await rawRow(rows[0]!.id));
      expect(await s.store.getRecipientByProviderId('pid-unknown')).toBeNull();
    });

    it('returns copies: changing a returned recipient changes nothing stored', async () => {
      const [r] = await seed({ n: 1 });
      r!.status = 'sent';
      r!.leaseOwner = 'thief';
      const [claimed] = await claim('o1');
      claimed!.leaseOwner = 'thief';
      expect(await rawRow(r!.id)).toMatchObject({ status: 'pending', leaseOwner: 'o1' });
    });

    it('puts rows added after their batch finished into the current batch, so they are still sent', async () => {
      const rows = await seed({ n: 3, batchSize: 2 });
      expect(await s.store.nextBatch({ campaignId: 'c1', current: 0, next: 1, nextBatchAt: null, now: T0 })).not.toBeNull();
      await sendAll(rows.slice(0, 2));
      expect(await s.store.nextBatch({ campaignId: 'c1', current: 1, next: 2, nextBatchAt: null, now: T0 })).not.toBeNull();
      await sendAll(rows.slice(2));
      expect((await s.store.nextBatch({ campaignId: 'c1', current: 2, next: 3, nextBatchAt: null, now: T0 }))?.currentBatch).toBe(3);
      expect(await s.store.addRecipients('c1', people(2, 10), T0 + 1)).toMatchObject({ inserted: 2 });
      const late = (await rawRows()).slice(3);
      expect(late.map((r) => [r.seq, r.batch])).toEqual([
        [4, 3],
        [5, 3],
      ]);
      expect(seqs(await claim('o1', { batch: 3 }))).toEqual([4, 5]);
      await consistent();
    });
  });
}
