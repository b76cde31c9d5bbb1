import { describe, expect, it } from 'vitest';
import type { Suite } from './harness.js';
import { T0, DAY_MS, phone } from './harness.js';

export function maintenanceCases(s: Suite): void {
  const { seed, claim, begin, out, record, sendAll, consistent } = s;
  describe('progress and maintenance', () => {
    it('countProcessedSince counts rows that reached a terminal status at or after the time', async () => {
      const rows = await seed({ n: 5 });
      await seed({ id: 'c2', n: 1, from: 50 });
      await claim('o1');
      expect((await begin('o1', rows[3]!)).granted).toBe(true);
      await record('o1', [out(rows[0]!, 'sent', { at: T0 + 100, providerMessageId: 'm1' }), out(rows[1]!, 'failed', { at: T0 + 200 }), out(rows[2]!, 'skipped', { at: T0 + 300, skipReason: 'not_on_whatsapp' })]);
      await s.store.addOptOuts([{ phone: rows[4]!.phone, reason: 'x', source: 'api', at: T0 + 400 }], T0 + 400);
      expect(await s.store.countProcessedSince('c1', T0)).toBe(4);
      expect(await s.store.countProcessedSince('c1', T0 + 200)).toBe(3);
      expect(await s.store.countProcessedSince('c1', T0 + 301)).toBe(1);
      expect(await s.store.countProcessedSince('c1', T0 + 401)).toBe(0);
      expect(await s.store.countProcessedSince('c2', T0)).toBe(0);
      expect(await s.store.countProcessedSince('missing', T0)).toBe(0);
    });

    it('cleanup deletes only finished campaigns finished before the cut, with their rows', async () => {
      const old = await seed({ n: 2 });
      await s.store.transitionCampaign('c1', { from: ['draft'], to: 'running', now: T0 + 10 });
      await sendAll(old, 'o1', { prefix: 'old' });
      await s.store.transitionCampaign('c1', { from: ['running'], to: 'completed', now: T0 + 100 });
      await seed({ id: 'c2', n: 1, from: 10 });
      await s.store.transitionCampaign('c2', { from: ['draft'], to: 'cancelled', now: T0 + 500 });
      await seed({ id: 'c3', n: 1, from: 20 });
      await s.store.transitionCampaign('c3', { from: ['draft'], to: 'running', now: T0 + 10 });
      await seed({ id: 'c4', n: 1, from: 30 });

      expect(await s.store.cleanup(T0 + 200)).toEqual({ campaigns: 1, recipients: 2 });
      expect(await s.store.getCampaign('c1')).toBeNull();
      expect(await s.raw.campaign('c1')).toBeNull();
      expect(await s.raw.recipients('c1')).toEqual([]);
      expect(await s.store.listBatches('c1')).toEqual([]);
      expect(await s.store.getRecipientByProviderId('old-1')).toBeNull();
      expect((await s.store.listCampaigns()).map((c) => c.id)).toEqual(['c2', 'c3', 'c4']);
      expect(await s.store.cleanup(T0 + 200)).toEqual({ campaigns: 0, recipients: 0 });
      expect(await s.store.cleanup(T0 + 10 * DAY_MS)).toEqual({ campaigns: 1, recipients: 1 });
      expect((await s.store.listCampaigns()).map((c) => c.id)).toEqual(['c3', 'c4']);
      await consistent('c3');
      await consistent('c4');
    });

    it('contactHistory lists sends to the phones in any campaign, newest first (when implemented)', async () => {
      if (!s.store.contactHistory) return;
      const c1 = await seed({ n: 2 });
      const c2 = await seed({ id: 'c2', n: 1 }); // the same first phone
      await sendAll(c1.slice(0, 1), 'o1', { at: T0 + 10 });
      await sendAll(c2, 'o1', { prefix: 'c2', at: T0 + 20, campaignId: 'c2' });
      const history = await s.store.contactHistory([phone(0), phone(1)], T0);
      expect(history).toEqual([
        { phone: phone(0), campaignId: 'c2', accountId: 'a1', sentAt: T0 + 20 },
        { phone: phone(0), campaignId: 'c1', accountId: 'a1', sentAt: T0 + 10 },
      ]);
      expect((await s.store.contactHistory([phone(0)], T0 + 15)).map((h) => h.campaignId)).toEqual(['c2']);
    });

    it("accountSendTimes lists an account's send times ascending (when implemented)", async () => {
      if (!s.store.accountSendTimes) return;
      const rows = await seed({ n: 3 });
      await claim('o1');
      for (const [i, r] of rows.entries()) {
        expect((await begin('o1', r)).granted).toBe(true);
        await record('o1', [out(r, 'sent', { at: T0 + 1_000 * (3 - i), providerMessageId: `t${i}`, accountId: 'a1' })]);
      }
      expect(await s.store.accountSendTimes('a1', T0, 10)).toEqual([T0 + 1_000, T0 + 2_000, T0 + 3_000]);
      expect(await s.store.accountSendTimes('a1', T0 + 1_500, 1)).toEqual([T0 + 2_000]);
      expect(await s.store.accountSendTimes('a2', T0, 10)).toEqual([]);
    });
  });
}
