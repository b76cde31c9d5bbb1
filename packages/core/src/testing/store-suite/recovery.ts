import { describe, expect, it } from 'vitest';
import type { Suite } from './harness.js';
import { T0, LEASE_MS, seqs } from './harness.js';

export function recoveryCases(s: Suite): void {
  const { rawRows, rawRow, seed, claim, begin, out, record, consistent } = s;
  describe('recovery of in-doubt sends', () => {
    it('lists only sending rows whose lease expired, oldest first, by campaign, up to the limit', async () => {
      const c1 = await seed({ n: 4 });
      const c2 = await seed({ id: 'c2', n: 2, from: 100 });
      await claim('o1');
      await claim('o1', { campaignId: 'c2' });
      expect((await begin('o1', c1[0]!, { now: T0 })).granted).toBe(true);
      expect((await begin('o1', c2[0]!, { now: T0 + 500 })).granted).toBe(true);
      expect((await begin('o1', c1[1]!, { now: T0 + 1_000 })).granted).toBe(true);
      expect(await s.store.listInDoubt(T0 + LEASE_MS - 1, 10)).toEqual([]);
      expect((await s.store.listInDoubt(T0 + LEASE_MS, 10)).map((r) => r.id)).toEqual([c1[0]!.id]);
      const all = await s.store.listInDoubt(T0 + LEASE_MS + 1_000, 10);
      expect(all.map((r) => r.id)).toEqual([c1[0]!.id, c2[0]!.id, c1[1]!.id]);
      expect(all[0]).toMatchObject({ status: 'sending', text: `Oi ${c1[0]!.phone}`, accountId: 'a1', leaseOwner: 'o1' });
      expect((await s.store.listInDoubt(T0 + LEASE_MS + 1_000, 10, 'c1')).map((r) => r.id)).toEqual([c1[0]!.id, c1[1]!.id]);
      expect((await s.store.listInDoubt(T0 + LEASE_MS + 1_000, 1)).map((r) => r.id)).toEqual([c1[0]!.id]);
      // Leased pending rows with expired leases are simply claimable, never in doubt.
      expect((await s.store.listInDoubt(T0 + 10 * LEASE_MS, 100)).every((r) => r.status === 'sending')).toBe(true);
    });

    it('settles each in-doubt row once, as sent, pending or unknown, and only after its lease expired', async () => {
      const rows = await seed({ n: 3 });
      await claim('o1');
      for (const r of rows) expect((await begin('o1', r)).granted).toBe(true);
      const settlements = [
        { recipientId: rows[0]!.id, status: 'sent' as const, providerMessageId: 'found-1', sentAt: T0 + 200 },
        { recipientId: rows[1]!.id, status: 'pending' as const },
        { recipientId: rows[2]!.id, status: 'unknown' as const },
      ];
      const live = await rawRows();
      expect(await s.store.settleInDoubt(settlements, T0 + LEASE_MS - 1)).toBe(0);
      expect(await rawRows()).toEqual(live);
      expect(await s.store.settleInDoubt(settlements, T0 + LEASE_MS)).toBe(3);
      expect(await rawRow(rows[0]!.id)).toMatchObject({ status: 'sent', providerMessageId: 'found-1', sentAt: T0 + 200, leaseOwner: null });
      expect((await rawRow(rows[0]!.id)).processedAt).not.toBeNull();
      expect(await rawRow(rows[1]!.id)).toMatchObject({ status: 'pending', leaseOwner: null, text: `Oi ${rows[1]!.phone}` });
      expect(await rawRow(rows[2]!.id)).toMatchObject({ status: 'unknown', leaseOwner: null });
      expect((await rawRow(rows[2]!.id)).processedAt).not.toBeNull();
      expect(await s.store.settleInDoubt(settlements, T0 + LEASE_MS + 1)).toBe(0);
      expect((await s.store.getRecipientByProviderId('found-1'))?.id).toBe(rows[0]!.id);
      // The dead worker's late outcome no longer applies; the pending row is claimable again.
      expect((await record('o1', [out(rows[2]!, 'sent')], T0 + LEASE_MS + 2))[0]!.applied).toBe(false);
      expect(seqs(await claim('o2', { now: T0 + LEASE_MS + 2 }))).toEqual([2]);
      const { campaign } = await consistent();
      expect(campaign.counters).toMatchObject({ sent: 1, pending: 1, unknown: 1, sending: 0 });
      expect((await s.raw.batches('c1'))[0]).toMatchObject({ sent: 1, unknown: 1 });
    });
  });
}
