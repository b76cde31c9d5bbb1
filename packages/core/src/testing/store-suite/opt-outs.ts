import { describe, expect, it } from 'vitest';
import type { Suite } from './harness.js';
import { T0, phone, people } from './harness.js';

export function optOutsCases(s: Suite): void {
  const { rawRow, seed, claim, begin, out, record, consistent } = s;
  describe('opt-outs', () => {
    it('cancel pending sends, leased or not, in every campaign, and block later imports', async () => {
      const c1 = await seed({ n: 4 }); // p0..p3
      const c2 = await seed({ id: 'c2', n: 4, from: 2 }); // p2..p5
      await claim('o1', { limit: 3 });
      expect((await begin('o1', c1[0]!)).granted).toBe(true);
      const [p0, , p2] = people(3);
      const result = await s.store.addOptOuts(
        [
          { phone: p0!.phone, reason: 'SAIR', source: 'inbound', at: T0 + 5 },
          { phone: p2!.phone, reason: 'api', source: 'api', at: T0 + 5 },
          { phone: phone(99), reason: 'api', source: 'api', at: T0 + 5 },
        ],
        T0 + 5,
      );
      // p0 is on the wire in c1 (left alone); p2 is leased in c1 and unleased in c2.
      expect(result).toEqual({ added: 3, cancelled: 2 });
      expect(await rawRow(c1[0]!.id)).toMatchObject({ status: 'sending' });
      expect(await rawRow(c1[2]!.id)).toMatchObject({ status: 'skipped', skipReason: 'opted_out', leaseOwner: null });
      expect(await rawRow(c2[0]!.id, 'c2')).toMatchObject({ status: 'skipped', skipReason: 'opted_out' });
      expect(await begin('o1', c1[2]!)).toMatchObject({ granted: false, reason: 'lease_lost' });
      expect((await record('o1', [out(c1[2]!, 'sent')]))[0]!.applied).toBe(false);
      expect(await s.store.addOptOuts([{ phone: p0!.phone, reason: 'again', source: 'api', at: T0 + 6 }], T0 + 6)).toEqual({ added: 0, cancelled: 0 });
      expect((await s.store.listOptOuts()).map((o) => o.phone).sort()).toEqual([p0!.phone, p2!.phone, phone(99)].sort());
      expect(await s.store.listOptOuts([p0!.phone, phone(5)])).toEqual([{ phone: p0!.phone, reason: 'SAIR', source: 'inbound', at: T0 + 5 }]);
      expect(await s.store.addRecipients('c2', [{ phone: phone(99), vars: {} }], T0 + 7)).toEqual({ inserted: 0, duplicates: 0, optedOut: 1 });
      expect(await s.store.removeOptOut(phone(99))).toBe(true);
      expect(await s.store.removeOptOut(phone(99))).toBe(false);
      expect(await s.store.addRecipients('c2', [{ phone: phone(99), vars: {} }], T0 + 8)).toEqual({ inserted: 1, duplicates: 0, optedOut: 0 });
      expect((await consistent('c1')).campaign.counters).toMatchObject({ skipped: 1, sending: 1, pending: 2 });
      expect((await consistent('c2')).campaign.counters).toMatchObject({ skipped: 1, pending: 4 });
    });
  });
}
