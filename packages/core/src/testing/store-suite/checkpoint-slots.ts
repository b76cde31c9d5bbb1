import { describe, expect, it } from 'vitest';
import type { Suite } from './harness.js';
import type { CapWindow } from '../../domain/calendar.js';
import type { Recipient } from '../../domain/types.js';
import type { WriteAheadItem } from '../../store/contract.js';
import { T0, LEASE_MS, HOUR_MS, DAY_MS, pacing } from './harness.js';

export function slotsCases(s: Suite): void {
  const { rawRows, rawRow, seed, claim, begin, out, record, consistent } = s;
  describe('checkpoint: slot reservation and write-ahead', () => {
    it('grants a slot at now + lead, reserves the next one, and writes the recipient ahead as sending', async () => {
      const rows = await seed({ n: 2 });
      await claim('o1');
      const granted = await begin('o1', rows[0]!, { now: T0 + 1_000, gapMs: 5_000, leadMs: 300, text: 'Oi Ana', attempt: 2, pid: 'bp-1' });
      expect(granted).toEqual({ granted: true, slotAt: T0 + 1_300 });
      expect((await s.raw.account('a1'))!.nextSendAt).toBe(T0 + 6_300);
      expect(await rawRow(rows[0]!.id)).toMatchObject({
        status: 'sending',
        text: 'Oi Ana',
        accountId: 'a1',
        attempts: 2,
        providerMessageId: 'bp-1',
        leaseOwner: 'o1',
        leaseExpiresAt: T0 + 1_000 + LEASE_MS,
      });
      expect((await s.store.getRecipientByProviderId('bp-1'))?.id).toBe(rows[0]!.id);
      const { campaign } = await consistent();
      expect(campaign.counters).toMatchObject({ sending: 1, pending: 1 });
    });

    it("a retry written ahead with a new provider id is found by that id, and no longer by the first attempt's", async () => {
      const rows = await seed({ n: 1 });
      await claim('o1');
      expect((await begin('o1', rows[0]!, { pid: 'bp-1' })).granted).toBe(true);
      const [first] = await record('o1', [out(rows[0]!, 'pending', { keepLease: true, error: 'timeout' })], T0 + 1);
      expect(first?.applied).toBe(true);
      expect((await s.store.getRecipientByProviderId('bp-1'))?.id).toBe(rows[0]!.id);
      expect((await begin('o1', rows[0]!, { now: T0 + 2, attempt: 2, pid: 'bp-2' })).granted).toBe(true);
      expect(await s.store.getRecipientByProviderId('bp-2')).toMatchObject({ id: rows[0]!.id, status: 'sending', attempts: 2, providerMessageId: 'bp-2' });
      expect(await s.store.getRecipientByProviderId('bp-1')).toBeNull();
    });

    it('an item without gapMs or leadMs (a JavaScript caller) reserves its slot as if both were 0', async () => {
      const rows = await seed({ n: 1 });
      await claim('o1');
      const item = { recipientId: rows[0]!.id, campaignId: rows[0]!.campaignId, text: 'Oi', attempt: 1 } as unknown as WriteAheadItem;
      const result = await s.store.checkpoint({ owner: 'o1', now: T0 + 1_000, leaseMs: LEASE_MS, writeAhead: { accountId: 'a1', maxInFlight: 1, items: [item] } });
      expect(result.grants).toEqual([{ granted: true, slotAt: T0 + 1_000 }]);
      expect((await s.raw.account('a1'))!.nextSendAt).toBe(T0 + 1_000);
    });

    it('a repeated write-ahead (same owner, same attempt: a retried call whose commit was not heard) is granted again without a second slot', async () => {
      const rows = await seed({ n: 2 });
      await claim('o1');
      expect(await begin('o1', rows[0]!, { gapMs: 5_000 })).toEqual({ granted: true, slotAt: T0 });
      const account = await s.raw.account('a1');
      const row = await rawRow(rows[0]!.id);
      expect(await begin('o1', rows[0]!, { now: T0 + 10, gapMs: 5_000 })).toEqual({ granted: true, slotAt: T0 + 10 });
      expect(await s.raw.account('a1')).toEqual(account); // no second reservation
      expect((await rawRow(rows[0]!.id)).status).toBe('sending');
      expect((await rawRow(rows[0]!.id)).attempts).toBe(row.attempts);
      // Another owner, or another attempt number, is not a repeat.
      expect(await begin('o2', rows[0]!, { now: T0 + 10 })).toMatchObject({ granted: false, reason: 'lease_lost' });
      expect(await begin('o1', rows[0]!, { now: T0 + 10, attempt: 2 })).toMatchObject({ granted: false, reason: 'lease_lost' });
      // Nor is one after the lease ran out (the row is in doubt then, recovery's to settle).
      expect(await begin('o1', rows[0]!, { now: T0 + LEASE_MS + 1 })).toMatchObject({ granted: false, reason: 'lease_lost' });
      await consistent();
    });

    it('refuses a slot before nextSendAt (pacing) with its time, changing nothing, and grants it at that time', async () => {
      const rows = await seed({ n: 2 });
      await claim('o1');
      expect(await begin('o1', rows[0]!, { gapMs: 5_000 })).toEqual({ granted: true, slotAt: T0 });
      const account = await s.raw.account('a1');
      const row = await rawRow(rows[1]!.id);
      expect(await begin('o1', rows[1]!, { now: T0 + 4_999, gapMs: 5_000 })).toEqual({ granted: false, reason: 'pacing', retryAt: T0 + 5_000 });
      expect(await s.raw.account('a1')).toEqual(account);
      expect(await rawRow(rows[1]!.id)).toEqual(row);
      expect(await begin('o1', rows[1]!, { now: T0 + 5_000, gapMs: 5_000 })).toEqual({ granted: true, slotAt: T0 + 5_000 });
      expect((await s.raw.account('a1'))!.nextSendAt).toBe(T0 + 10_000);
      await consistent();
    });

    it('enforces the hourly cap per window and restarts the count in a new window', async () => {
      const rows = await seed({ n: 4 });
      await claim('o1');
      const h1: CapWindow = { key: '2026-01-05T12', limit: 2, endsAt: T0 + HOUR_MS };
      expect((await begin('o1', rows[0]!, { hourly: h1 })).granted).toBe(true);
      expect((await begin('o1', rows[1]!, { hourly: h1 })).granted).toBe(true);
      expect(await s.raw.account('a1')).toMatchObject({ hourKey: h1.key, sentThisHour: 2 });
      const account = await s.raw.account('a1');
      expect(await begin('o1', rows[2]!, { hourly: h1 })).toEqual({ granted: false, reason: 'hourly_cap', retryAt: T0 + HOUR_MS });
      expect(await s.raw.account('a1')).toEqual(account);
      expect((await rawRow(rows[2]!.id)).status).toBe('pending');
      const h2: CapWindow = { key: '2026-01-05T13', limit: 2, endsAt: T0 + 2 * HOUR_MS };
      expect((await begin('o1', rows[2]!, { now: T0 + HOUR_MS, hourly: h2 })).granted).toBe(true);
      expect(await s.raw.account('a1')).toMatchObject({ hourKey: h2.key, sentThisHour: 1 });
      await consistent();
    });

    it('enforces the daily cap, and a full day wins over a full hour', async () => {
      const rows = await seed({ n: 3 });
      await claim('o1');
      const d1: CapWindow = { key: '2026-01-05', limit: 2, endsAt: T0 + 12 * HOUR_MS };
      const h1: CapWindow = { key: '2026-01-05T12', limit: 2, endsAt: T0 + HOUR_MS };
      expect((await begin('o1', rows[0]!, { daily: d1, hourly: h1 })).granted).toBe(true);
      expect((await begin('o1', rows[1]!, { daily: d1, hourly: h1 })).granted).toBe(true);
      expect(await s.raw.account('a1')).toMatchObject({ dayKey: d1.key, sentToday: 2, hourKey: h1.key, sentThisHour: 2 });
      expect(await begin('o1', rows[2]!, { daily: d1, hourly: h1 })).toEqual({ granted: false, reason: 'daily_cap', retryAt: d1.endsAt });
      const d2: CapWindow = { key: '2026-01-06', limit: 2, endsAt: T0 + 12 * HOUR_MS + DAY_MS };
      expect(await begin('o1', rows[2]!, { daily: d2, hourly: h1 })).toEqual({ granted: false, reason: 'hourly_cap', retryAt: h1.endsAt });
      expect(await s.raw.account('a1')).toMatchObject({ dayKey: d1.key, sentToday: 2, sentThisHour: 2 });
      const h2: CapWindow = { key: '2026-01-06T00', limit: 2, endsAt: T0 + 13 * HOUR_MS };
      expect((await begin('o1', rows[2]!, { now: T0 + 12 * HOUR_MS, daily: d2, hourly: h2 })).granted).toBe(true);
      expect(await s.raw.account('a1')).toMatchObject({ dayKey: d2.key, sentToday: 1, hourKey: h2.key, sentThisHour: 1 });
      await consistent();
    });

    it('refuses an unavailable account (missing, stopped, cooling down, disconnected) and changes nothing', async () => {
      const rows = await seed({ n: 1 });
      await claim('o1');
      const r = rows[0]!;
      const row = await rawRow(r.id);
      expect(await begin('o1', r, { accountId: 'ghost' })).toMatchObject({ granted: false, reason: 'account_unavailable' });
      await s.store.updateAccount('a1', { state: 'stopped', disabledReason: 'logged_out' }, T0);
      const stopped = await s.raw.account('a1');
      expect(await begin('o1', r)).toMatchObject({ granted: false, reason: 'account_unavailable' });
      expect(await s.raw.account('a1')).toEqual(stopped);
      await s.store.updateAccount('a1', { state: 'active', connection: 'close' }, T0);
      expect(await begin('o1', r)).toMatchObject({ granted: false, reason: 'account_unavailable' });
      await s.store.updateAccount('a1', { state: 'disabled', connection: 'open', disabledUntil: T0 + 10_000 }, T0);
      expect(await begin('o1', r, { now: T0 + 9_999 })).toMatchObject({ granted: false, reason: 'account_unavailable' });
      expect(await rawRow(r.id)).toEqual(row);
      // The cooldown is over: the probe send may go.
      expect(await begin('o1', r, { now: T0 + 10_000 })).toEqual({ granted: true, slotAt: T0 + 10_000 });
      await consistent();
    });

    it('refuses lease_lost when the caller does not lease the pending row, and reserves nothing', async () => {
      const rows = await seed({ n: 2 });
      await claim('o1', { limit: 1 });
      const account = await s.raw.account('a1');
      expect(await begin('o2', rows[0]!, { gapMs: 5_000 })).toMatchObject({ granted: false, reason: 'lease_lost' });
      expect(await begin('o1', rows[1]!, { gapMs: 5_000 })).toMatchObject({ granted: false, reason: 'lease_lost' }); // never claimed
      expect(await begin('o1', rows[1]!, { accountId: 'ghost' })).toMatchObject({ granted: false, reason: 'lease_lost' }); // the lease is checked first
      expect(await begin('o1', { ...rows[0]!, campaignId: 'other' })).toMatchObject({ granted: false, reason: 'lease_lost' });
      expect(await s.raw.account('a1')).toEqual(account);
      expect(await begin('o1', rows[0]!, { gapMs: 5_000 })).toMatchObject({ granted: true });
      // Already sending: a write-ahead of another attempt must not pass (the same one again is a repeat, below).
      expect(await begin('o1', rows[0]!, { now: T0 + 5_000, attempt: 2 })).toMatchObject({ granted: false, reason: 'lease_lost' });
      expect((await s.raw.account('a1'))!.nextSendAt).toBe(T0 + 5_000);
      await consistent();
    });

    it('records outcomes and begins the next send in one step, even when the slot is refused', async () => {
      const rows = await seed({ n: 3 });
      await claim('o1');
      expect((await begin('o1', rows[0]!)).granted).toBe(true);
      const step = await s.store.checkpoint({
        owner: 'o1',
        now: T0 + 1,
        leaseMs: LEASE_MS,
        outcomes: [out(rows[0]!, 'sent', { providerMessageId: 'm1', accountId: 'a1', accountEffect: 'success' })],
        writeAhead: { accountId: 'a1', maxInFlight: 1_000, items: [{ recipientId: rows[1]!.id, campaignId: 'c1', text: 'two', attempt: 1, gapMs: 1_000, leadMs: 0 }] },
      });
      expect(step.outcomes.map((o) => o.applied)).toEqual([true]);
      expect(step.grants[0]).toEqual({ granted: true, slotAt: T0 + 1 });
      const refused = await s.store.checkpoint({
        owner: 'o1',
        now: T0 + 2,
        leaseMs: LEASE_MS,
        outcomes: [out(rows[1]!, 'sent', { providerMessageId: 'm2', accountId: 'a1' })],
        writeAhead: { accountId: 'a1', maxInFlight: 1_000, items: [{ recipientId: rows[2]!.id, campaignId: 'c1', text: 'three', attempt: 1, gapMs: 1_000, leadMs: 0 }] },
      });
      expect(refused.outcomes.map((o) => o.applied)).toEqual([true]);
      expect(refused.grants[0]).toEqual({ granted: false, reason: 'pacing', retryAt: T0 + 1_001 });
      expect((await rawRows()).map((r) => r.status)).toEqual(['sent', 'sent', 'pending']);
      expect((await rawRow(rows[2]!.id)).text).toBeNull();
      await consistent();
    });

    it('aheadMs lets a slot lie ahead of now: granted at nextSendAt when within aheadMs, refused until then otherwise', async () => {
      const rows = await seed({ n: 4 });
      await claim('o1');
      const ahead = async (r: Recipient, now: number, aheadMs: number) =>
        (
          await s.store.checkpoint({
            owner: 'o1',
            now,
            leaseMs: LEASE_MS,
            writeAhead: { accountId: 'a1', maxInFlight: 1_000, aheadMs, items: [{ recipientId: r.id, campaignId: 'c1', text: 'x', attempt: 1, gapMs: 100, leadMs: 0 }] },
          })
        ).grants[0];
      expect(await ahead(rows[0]!, T0, 0)).toEqual({ granted: true, slotAt: T0 });
      // nextSendAt is T0 + 100: 50 ms early with 100 ms ahead allowed is granted at T0 + 100, not at now.
      expect(await ahead(rows[1]!, T0 + 50, 100)).toEqual({ granted: true, slotAt: T0 + 100 });
      // nextSendAt is now T0 + 200: at T0 + 60 with 100 ms ahead it is still too early, until T0 + 100.
      expect(await ahead(rows[2]!, T0 + 60, 100)).toEqual({ granted: false, reason: 'pacing', retryAt: T0 + 100 });
      expect(await ahead(rows[2]!, T0 + 100, 100)).toEqual({ granted: true, slotAt: T0 + 200 });
      expect((await s.raw.account('a1'))!.nextSendAt).toBe(T0 + 300);
      await consistent();
    });
  });
}
