import { describe, expect, it } from 'vitest';
import type { Suite } from './harness.js';
import type { Recipient } from '../../domain/types.js';
import { T0, LEASE_MS, seqs, zero } from './harness.js';

export function outcomesCases(s: Suite): void {
  const { rawRows, rawRow, seed, claim, begin, out, record, consistent } = s;
  describe('checkpoint: outcomes', () => {
    it('records each outcome status while the owner holds the lease', async () => {
      const rows = await seed({ n: 6 });
      const [r1, r2, r3, r4, r5] = rows;
      await claim('o1');
      for (const r of [r1!, r2!, r4!, r5!]) expect((await begin('o1', r, { text: `text ${r.seq}` })).granted).toBe(true);
      const results = await record(
        'o1',
        [
          out(r1!, 'sent', { at: T0 + 5, providerMessageId: 'p1', accountId: 'a1' }),
          out(r2!, 'failed', { at: T0 + 6, error: 'permanent: bad request', accountId: 'a1' }),
          out(r3!, 'skipped', { at: T0 + 7, skipReason: 'template_error', error: 'missing {{name}}', attempts: 0 }),
          out(r4!, 'unknown', { at: T0 + 8, error: 'timed out' }),
          out(r5!, 'pending', { at: T0 + 9, attempts: 1, error: 'transient' }),
        ],
        T0 + 10,
      );
      expect(results.map((r) => [r.recipientId, r.applied])).toEqual([r1, r2, r3, r4, r5].map((r) => [r!.id, true]));
      expect(await rawRow(r1!.id)).toMatchObject({ status: 'sent', sentAt: T0 + 5, processedAt: T0 + 5, providerMessageId: 'p1', accountId: 'a1', attempts: 1, text: 'text 1', leaseOwner: null, leaseExpiresAt: null });
      expect(await rawRow(r2!.id)).toMatchObject({ status: 'failed', lastError: 'permanent: bad request', processedAt: T0 + 6, leaseOwner: null });
      expect(await rawRow(r3!.id)).toMatchObject({ status: 'skipped', skipReason: 'template_error', processedAt: T0 + 7, attempts: 0, leaseOwner: null });
      expect(await rawRow(r4!.id)).toMatchObject({ status: 'unknown', processedAt: T0 + 8, leaseOwner: null });
      expect(await rawRow(r5!.id)).toMatchObject({ status: 'pending', attempts: 1, lastError: 'transient', text: 'text 5', leaseOwner: null, leaseExpiresAt: null, processedAt: null });
      expect(await rawRow(rows[5]!.id)).toMatchObject({ status: 'pending', leaseOwner: 'o1' });
      const { campaign } = await consistent();
      expect(campaign.counters).toEqual({ ...zero(), total: 6, sent: 1, failed: 1, skipped: 1, unknown: 1, pending: 2 });
      expect((await s.raw.batches('c1'))[0]).toMatchObject({ size: 6, sent: 1, failed: 1, skipped: 1, unknown: 1 });
      // The handed-back row is claimable at once; the still-leased one is not.
      expect(seqs(await claim('o2', { now: T0 + 11 }))).toEqual([5]);
    });

    it('a pending outcome with keepLease leaves the row leased to its owner, so the retry begins in the same step', async () => {
      const rows = await seed({ n: 2 });
      await claim('o1');
      expect((await begin('o1', rows[0]!)).granted).toBe(true);
      const retry = await s.store.checkpoint({
        owner: 'o1',
        now: T0 + 10,
        leaseMs: LEASE_MS,
        outcomes: [out(rows[0]!, 'pending', { keepLease: true, attempts: 1, error: 'transient', accountId: 'a1', accountEffect: 'failure' })],
        writeAhead: { accountId: 'a1', maxInFlight: 1_000, items: [{ recipientId: rows[0]!.id, campaignId: 'c1', text: 'again', attempt: 2, gapMs: 0, leadMs: 0 }] },
      });
      expect(retry.outcomes.map((o) => o.applied)).toEqual([true]);
      expect(retry.grants[0]).toEqual({ granted: true, slotAt: T0 + 10 });
      expect(await rawRow(rows[0]!.id)).toMatchObject({ status: 'sending', attempts: 2, text: 'again', leaseOwner: 'o1', lastError: 'transient' });
      // Handed back with the lease kept (the retry waits out a backoff): still the owner's, nobody else's.
      expect((await record('o1', [out(rows[0]!, 'pending', { keepLease: true, attempts: 2 })], T0 + 20))[0]!.applied).toBe(true);
      expect(await rawRow(rows[0]!.id)).toMatchObject({ status: 'pending', leaseOwner: 'o1', attempts: 2 });
      expect(seqs(await claim('o2', { now: T0 + 20 }))).toEqual([]);
      // Without keepLease, a hand-back clears the lease: the same step's write-ahead is refused.
      const plain = await s.store.checkpoint({
        owner: 'o1',
        now: T0 + 30,
        leaseMs: LEASE_MS,
        outcomes: [out(rows[0]!, 'pending', { attempts: 2 })],
        writeAhead: { accountId: 'a1', maxInFlight: 1_000, items: [{ recipientId: rows[0]!.id, campaignId: 'c1', text: 'again', attempt: 3, gapMs: 0, leadMs: 0 }] },
      });
      expect(plain.outcomes.map((o) => o.applied)).toEqual([true]);
      expect(plain.grants[0]).toMatchObject({ granted: false, reason: 'lease_lost' });
      expect(await rawRow(rows[0]!.id)).toMatchObject({ status: 'pending', leaseOwner: null });
      expect(seqs(await claim('o2', { now: T0 + 31 }))).toEqual([1]);
      await consistent();
    });

    it('refuses outcomes without the lease and writes nothing', async () => {
      const rows = await seed({ n: 4 });
      const [r1, r2, r3] = rows;
      await claim('o1', { limit: 2 });
      const before = await rawRows();
      const refused = await record('o2', [out(r1!, 'sent', { providerMessageId: 'x1' })]);
      expect(refused).toEqual([{ recipientId: r1!.id, applied: false }]);
      expect((await record('o1', [out(r3!, 'sent', { providerMessageId: 'x3' })]))[0]!.applied).toBe(false); // never leased
      expect((await record('o1', [{ ...out(r1!, 'sent'), campaignId: 'other' }]))[0]!.applied).toBe(false);
      expect((await record('o1', [{ ...out(r1!, 'sent'), recipientId: 'missing' }]))[0]!.applied).toBe(false);
      expect(await rawRows()).toEqual(before);
      expect(await s.store.getRecipientByProviderId('x1')).toBeNull();

      expect((await record('o1', [out(r2!, 'sent', { providerMessageId: 'x2' })]))[0]!.applied).toBe(true);
      expect((await record('o1', [out(r2!, 'failed', { error: 'late' })]))[0]!.applied).toBe(false); // already terminal
      expect(await rawRow(r2!.id)).toMatchObject({ status: 'sent', lastError: null });

      // The lease expired and another worker took the row: the old owner's word no longer counts.
      expect(seqs(await claim('o2', { now: T0 + LEASE_MS }))).toEqual([1, 3, 4]);
      expect((await record('o1', [out(r1!, 'sent')], T0 + LEASE_MS + 1))[0]!.applied).toBe(false);
      expect(await rawRow(r1!.id)).toMatchObject({ status: 'pending', leaseOwner: 'o2' });
      await consistent();
    });

    it('keeps the account run of consecutive real failures', async () => {
      const rows = await seed({ n: 5 });
      await claim('o1');
      const fail = (r: Recipient) => out(r, 'failed', { accountId: 'a1', accountEffect: 'failure', error: 'transient' });
      expect((await record('o1', [fail(rows[0]!)]))[0]!.consecutiveFailures).toBe(1);
      expect((await record('o1', [fail(rows[1]!)]))[0]!.consecutiveFailures).toBe(2);
      await record('o1', [out(rows[2]!, 'skipped', { accountId: 'a1', accountEffect: 'none', skipReason: 'not_on_whatsapp' })]);
      expect((await s.raw.account('a1'))!.consecutiveFailures).toBe(2);
      // A refused outcome has no effect on the account.
      expect((await record('o2', [fail(rows[3]!)]))[0]!.applied).toBe(false);
      expect((await s.raw.account('a1'))!.consecutiveFailures).toBe(2);
      const success = await record('o1', [out(rows[3]!, 'sent', { accountId: 'a1', accountEffect: 'success', providerMessageId: 'ok' })]);
      expect(success[0]!.consecutiveFailures ?? 0).toBe(0);
      expect((await s.raw.account('a1'))!.consecutiveFailures).toBe(0);
      await consistent();
    });
  });
}
