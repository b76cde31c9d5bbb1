import { describe, expect, it } from 'vitest';
import type { Suite } from './harness.js';
import { T0, LEASE_MS, seqs } from './harness.js';

export function leasesCases(s: Suite): void {
  const { rawRow, seed, claim, begin, consistent } = s;
  describe('heartbeat and release', () => {
    it('heartbeat extends every lease the owner holds, pending or sending, and no one else', async () => {
      const rows = await seed({ n: 4 });
      await claim('o1', { limit: 2 });
      await claim('o2', { limit: 1 });
      expect((await begin('o1', rows[0]!)).granted).toBe(true);
      expect(await s.store.heartbeat('o1', T0 + 10_000, LEASE_MS)).toBe(2);
      expect(await rawRow(rows[0]!.id)).toMatchObject({ status: 'sending', leaseExpiresAt: T0 + 10_000 + LEASE_MS });
      expect(await rawRow(rows[1]!.id)).toMatchObject({ status: 'pending', leaseExpiresAt: T0 + 10_000 + LEASE_MS });
      expect(await rawRow(rows[2]!.id)).toMatchObject({ leaseOwner: 'o2', leaseExpiresAt: T0 + LEASE_MS });
      expect(await s.store.heartbeat('nobody', T0 + 10_000, LEASE_MS)).toBe(0);
      // Past the original expiry, the extended leases still hold.
      expect(seqs(await claim('o3', { now: T0 + LEASE_MS + 1 }))).toEqual([3, 4]);
      expect(await s.store.listInDoubt(T0 + LEASE_MS + 1, 10)).toEqual([]);
    });

    it('release drops pending leases (all or the ids given) and leaves sending rows to recovery', async () => {
      const rows = await seed({ n: 5 });
      await claim('o1', { limit: 4 });
      expect((await begin('o1', rows[0]!)).granted).toBe(true);
      expect(await s.store.release('o1', [rows[1]!.id, rows[4]!.id, rows[0]!.id])).toBe(1);
      expect(await rawRow(rows[1]!.id)).toMatchObject({ leaseOwner: null, leaseExpiresAt: null, status: 'pending' });
      expect(await s.store.release('o1')).toBe(2);
      expect(await rawRow(rows[0]!.id)).toMatchObject({ status: 'sending', leaseOwner: 'o1' });
      expect(await s.store.release('o1')).toBe(0);
      expect(await s.store.release('o2', [rows[0]!.id])).toBe(0);
      expect(seqs(await claim('o2', { now: T0 + 1 }))).toEqual([2, 3, 4, 5]);
      await consistent();
    });
  });
}
