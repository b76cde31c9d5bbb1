import { describe, expect, it } from 'vitest';
import type { Suite } from './harness.js';
import { T0, LEASE_MS, phone, seqs } from './harness.js';

export function claimsCases(s: Suite): void {
  const { rawRows, rawRow, seed, claim, begin, out, record, consistent } = s;
  describe('claims', () => {
    it('leases the lowest seq first, up to the limit, within the batch, and marks the batch started', async () => {
      await seed({ n: 8, batchSize: 5 });
      const first = await claim('o1', { limit: 3, now: T0 + 100 });
      expect(seqs(first)).toEqual([1, 2, 3]);
      for (const r of first) expect(r).toMatchObject({ status: 'pending', leaseOwner: 'o1', leaseExpiresAt: T0 + 100 + LEASE_MS });
      for (const r of first) expect(await rawRow(r.id)).toMatchObject({ status: 'pending', leaseOwner: 'o1', leaseExpiresAt: T0 + 100 + LEASE_MS });
      const batches = await s.raw.batches('c1');
      expect(batches.find((b) => b.batch === 1)!.startedAt).toBe(T0 + 100);
      expect(batches.find((b) => b.batch === 2)!.startedAt).toBeNull();
      expect(seqs(await claim('o2', { limit: 10, now: T0 + 200 }))).toEqual([4, 5]); // stops at the batch's end
      expect(await claim('o1', { limit: 10, now: T0 + 300 })).toEqual([]); // every lease is live
      expect(await claim('o3', { limit: 0, batch: 2, now: T0 + 300 })).toEqual([]);
      expect(seqs(await claim('o2', { batch: 2, now: T0 + 400 }))).toEqual([6, 7, 8]);
      expect((await s.raw.batches('c1')).find((b) => b.batch === 1)!.startedAt).toBe(T0 + 100);
      const { campaign } = await consistent();
      expect(campaign.counters).toMatchObject({ pending: 8, sending: 0 });
    });

    it('never hands out a live lease, and hands out an expired one again', async () => {
      await seed({ n: 4 });
      expect(seqs(await claim('o1', { now: T0 }))).toEqual([1, 2, 3, 4]);
      expect(await claim('o2', { now: T0 + LEASE_MS - 1 })).toEqual([]);
      const again = await claim('o2', { now: T0 + LEASE_MS, limit: 3 });
      expect(seqs(again)).toEqual([1, 2, 3]);
      for (const r of again) expect(await rawRow(r.id)).toMatchObject({ leaseOwner: 'o2', leaseExpiresAt: T0 + 2 * LEASE_MS });
      expect(seqs(await claim('o3', { now: T0 + LEASE_MS }))).toEqual([4]);
      expect(await claim('o1', { now: T0 + LEASE_MS + 1 })).toEqual([]);
      await consistent();
    });

    it('claims a row again when it returns to pending behind rows already done (hand-back, recovery)', async () => {
      const rows = await seed({ n: 4 });
      await claim('o1');
      expect((await begin('o1', rows[0]!)).granted).toBe(true);
      expect((await begin('o1', rows[1]!)).granted).toBe(true);
      await record('o1', [out(rows[2]!, 'sent', { providerMessageId: 'd3' }), out(rows[3]!, 'sent', { providerMessageId: 'd4' })]);
      // Nothing claimable now: a store cursor may have moved past every row.
      expect(await claim('o2', { now: T0 + 1 })).toEqual([]);
      expect((await record('o1', [out(rows[0]!, 'pending', { attempts: 1 })], T0 + 2))[0]!.applied).toBe(true);
      expect(seqs(await claim('o2', { now: T0 + 3 }))).toEqual([1]);
      expect(await s.store.settleInDoubt([{ recipientId: rows[1]!.id, status: 'pending' }], T0 + LEASE_MS)).toBe(1);
      expect(seqs(await claim('o3', { now: T0 + LEASE_MS }))).toEqual([2]);
      await consistent();
    });

    it('skips phones opted out after import: skipped/opted_out, counted, never returned', async () => {
      const rows = await seed({ n: 3 });
      await claim('o1');
      expect((await begin('o1', rows[1]!)).granted).toBe(true);
      // On the wire when the opt-out arrives: not cancelled; handed back, the claim must catch it.
      expect(await s.store.addOptOuts([{ phone: rows[1]!.phone, reason: 'SAIR', source: 'inbound', at: T0 + 1 }], T0 + 1)).toEqual({ added: 1, cancelled: 0 });
      expect((await record('o1', [out(rows[1]!, 'pending', { attempts: 1 })], T0 + 2))[0]!.applied).toBe(true);
      expect(await s.store.release('o1')).toBe(2);
      const claimed = await claim('o2', { now: T0 + 3 });
      expect(seqs(claimed)).toEqual([1, 3]);
      expect(await rawRow(rows[1]!.id)).toMatchObject({ status: 'skipped', skipReason: 'opted_out', leaseOwner: null });
      const { campaign } = await consistent();
      expect(campaign.counters).toMatchObject({ skipped: 1, pending: 2 });
      expect((await s.raw.batches('c1'))[0]).toMatchObject({ skipped: 1 });
    });

    it('claims nothing for an unknown campaign or batch', async () => {
      await seed({ n: 2 });
      expect(await claim('o1', { campaignId: 'missing' })).toEqual([]);
      expect(await claim('o1', { batch: 9 })).toEqual([]);
      expect((await rawRows()).every((r) => r.leaseOwner === null)).toBe(true);
    });
  });
}
