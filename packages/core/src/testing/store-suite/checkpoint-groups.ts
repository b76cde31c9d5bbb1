import { describe, expect, it } from 'vitest';
import type { CapWindow } from '../../domain/calendar.js';
import type { Recipient } from '../../domain/types.js';
import type { Outcome } from '../../store/contract.js';
import type { Suite } from './harness.js';
import { T0, LEASE_MS, HOUR_MS, pacing } from './harness.js';

export function groupedCases(s: Suite): void {
  const { rawRows, rawRow, seed, claim, out, consistent } = s;
  describe('checkpoint: a group written ahead through one account', () => {
    const group = (owner: string, rows: Recipient[], o: { now?: number; gapMs?: number; leadMs?: number; outcomes?: Outcome[]; hourly?: CapWindow; attempt?: number } = {}) =>
      s.store.checkpoint({
        owner,
        now: o.now ?? T0,
        leaseMs: LEASE_MS,
        outcomes: o.outcomes ?? [],
        writeAhead: {
          accountId: 'a1',
          maxInFlight: 1_000,
          ...(o.hourly ? { hourly: o.hourly } : {}),
          items: rows.map((r) => ({ recipientId: r.id, campaignId: r.campaignId, text: `Oi ${r.seq}`, attempt: o.attempt ?? 1, providerMessageId: null, gapMs: o.gapMs ?? 0, leadMs: o.leadMs ?? 0 })),
        },
      });

    it('records outcomes first, then reserves consecutive slots in order and writes each item ahead', async () => {
      const rows = await seed({ n: 5 });
      await claim('o1');
      const first = await group('o1', rows.slice(0, 3), { gapMs: 1_000, leadMs: 100 });
      expect(first.grants).toEqual([
        { granted: true, slotAt: T0 + 100 },
        { granted: true, slotAt: T0 + 1_200 },
        { granted: true, slotAt: T0 + 2_300 },
      ]);
      expect((await s.raw.account('a1'))!.nextSendAt).toBe(T0 + 3_300);
      for (const r of rows.slice(0, 3)) expect(await rawRow(r.id)).toMatchObject({ status: 'sending', text: `Oi ${r.seq}`, accountId: 'a1', attempts: 1, leaseOwner: 'o1' });
      expect((await consistent()).campaign.counters).toMatchObject({ sending: 3, pending: 2 });

      // Too early: every new item is refused for pacing, the outcomes still land.
      const early = await group('o1', rows.slice(3), {
        now: T0 + 3_000,
        outcomes: [out(rows[0]!, 'sent', { providerMessageId: 'g1', accountId: 'a1', accountEffect: 'success' })],
      });
      expect(early.outcomes.map((x) => x.applied)).toEqual([true]);
      expect(early.grants).toEqual([
        { granted: false, reason: 'pacing', retryAt: T0 + 3_300 },
        { granted: false, reason: 'pacing', retryAt: T0 + 3_300 },
      ]);
      const next = await group('o1', rows.slice(3), {
        now: T0 + 3_300,
        outcomes: [out(rows[1]!, 'sent', { providerMessageId: 'g2', accountId: 'a1' }), out(rows[2]!, 'failed', { accountId: 'a1', error: 'boom', accountEffect: 'failure' })],
      });
      expect(next.outcomes.map((x) => [x.applied, x.consecutiveFailures])).toEqual([
        [true, 0],
        [true, 1],
      ]);
      expect(next.grants.map((b) => b.granted)).toEqual([true, true]);
      expect((await rawRows()).map((r) => r.status)).toEqual(['sent', 'sent', 'failed', 'sending', 'sending']);
      expect((await s.store.getRecipientByProviderId('g2'))?.id).toBe(rows[1]!.id);
      await consistent();
    });

    it('refuses rows the owner does not lease without taking a slot, and cuts the group at a full cap', async () => {
      const rows = await seed({ n: 6 });
      await claim('o1', { limit: 2 });
      await claim('o2', { limit: 1 }); // row 3 belongs to o2
      await claim('o1', { limit: 3 });
      const hourly = { key: 'h1', limit: 3, endsAt: T0 + HOUR_MS };
      const r = await group('o1', rows, { gapMs: 10, hourly });
      expect(r.grants).toEqual([
        { granted: true, slotAt: T0 },
        { granted: true, slotAt: T0 + 10 },
        { granted: false, reason: 'lease_lost', retryAt: T0 },
        { granted: true, slotAt: T0 + 20 },
        { granted: false, reason: 'hourly_cap', retryAt: T0 + HOUR_MS },
        { granted: false, reason: 'hourly_cap', retryAt: T0 + HOUR_MS },
      ]);
      expect(await s.raw.account('a1')).toMatchObject({ nextSendAt: T0 + 30, sentThisHour: 3, hourKey: 'h1' });
      expect((await rawRows()).map((x) => x.status)).toEqual(['sending', 'sending', 'pending', 'sending', 'pending', 'pending']);
      expect((await rawRow(rows[2]!.id)).leaseOwner).toBe('o2');
      await consistent();
    });

    it('a repeated group (its commit was not heard) is granted again without new slots', async () => {
      const rows = await seed({ n: 3 });
      await claim('o1');
      const outcomes = [] as Outcome[];
      expect((await group('o1', rows, { gapMs: 500, outcomes })).grants.every((b) => b.granted)).toBe(true);
      const account = await s.raw.account('a1');
      const again = await group('o1', rows, { now: T0 + 5, gapMs: 500 });
      expect(again.grants.every((b) => b.granted)).toBe(true);
      expect(await s.raw.account('a1')).toEqual(account);
      expect((await consistent()).campaign.counters).toMatchObject({ sending: 3 });
    });
  });
}
