import { describe, expect, it } from 'vitest';
import type { AccountState, ConnectionState, Recipient, RecipientStatus } from '../../domain/types.js';
import { RECIPIENT_STATUSES } from '../../domain/types.js';
import { ACCOUNT_USABILITY_RULES, accountUsability } from '../../rules/accounts.js';
import { DELIVERY_TRANSITIONS, type DeliveryUpdate } from '../../rules/delivery.js';
import { OPT_OUT_CANCELS, failuresAfter } from '../../rules/recipients.js';
import { SLOT_CHECKS, type SlotRefusal } from '../../rules/slots.js';
import type { Suite } from './harness.js';
import { HOUR_MS, LEASE_MS, T0, pacing } from './harness.js';

const STATES: AccountState[] = ['active', 'disabled', 'stopped'];
const CONNECTIONS: ConnectionState[] = ['open', 'connecting', 'close', 'unknown'];
const UPDATES: DeliveryUpdate[] = ['sent', 'delivered', 'read', 'failed'];

/** Every set of one or two slot refusals, with the one `SLOT_CHECKS` says wins. */
const REFUSAL_CASES: Array<{ active: SlotRefusal[]; wins: SlotRefusal }> = SLOT_CHECKS.flatMap((a, i) => [
  { active: [a], wins: a },
  ...SLOT_CHECKS.slice(i + 1).map((b) => ({ active: [a, b], wins: a })),
]);

/**
 * Cases generated from core's decision tables (`@disparo/core/store`): every row of account usability,
 * every pair of slot refusals, every delivery transition, the opt-out skip by status, and the
 * account effects of an outcome. A SQL store is checked against the one source of each rule.
 */
export function rulesCases(s: Suite): void {
  const { seed, claim, begin, out, record, rawRow, consistent } = s;

  /** Rows of campaign c1 brought to `status` through the store's own operations, row i with provider id `p-<i>`. */
  const rowsIn = async (rows: Recipient[], status: RecipientStatus): Promise<void> => {
    if (status === 'pending') return;
    await claim('o1', { limit: 1_000 });
    for (const [i, r] of rows.entries()) expect((await begin('o1', r, { pid: `p-${i}` })).granted).toBe(true);
    if (status === 'sending') return;
    if (status === 'unknown') {
      expect(await s.store.settleInDoubt(rows.map((r) => ({ recipientId: r.id, status: 'unknown' as const })), T0 + LEASE_MS + 1)).toBe(rows.length);
      return;
    }
    const terminal = status === 'delivered' || status === 'read' ? 'sent' : status;
    const results = await record('o1', rows.map((r, i) => out(r, terminal, { providerMessageId: `p-${i}`, accountId: 'a1', ...(terminal === 'skipped' ? { skipReason: 'not_on_whatsapp' as const } : {}) })));
    expect(results.every((x) => x.applied)).toBe(true);
    if (status === 'delivered' || status === 'read') {
      expect((await s.store.applyStatusUpdates(rows.map((_, i) => ({ providerMessageId: `p-${i}`, status, at: T0 + 1 })), T0 + 1)).applied).toBe(rows.length);
    }
  };

  describe('rules from the decision tables', () => {
    describe('account usability (ACCOUNT_USABILITY_RULES)', () => {
      const cases = STATES.flatMap((state) => CONNECTIONS.flatMap((connection) => [true, false].map((coolingDown) => ({ state, connection, coolingDown }))));
      it.each(cases)('$state, $connection, cooling down: $coolingDown', async ({ state, connection, coolingDown }) => {
        expect(ACCOUNT_USABILITY_RULES.length).toBeGreaterThan(0);
        const rows = await seed({ n: 1 });
        await s.store.updateAccount('a1', { state, connection, disabledUntil: coolingDown ? T0 + 60_000 : T0 - 1 }, T0);
        await claim('o1');
        const expected = accountUsability({ state, connection, disabledUntil: coolingDown ? T0 + 60_000 : T0 - 1 }, T0);
        const grant = await begin('o1', rows[0]!);
        if (expected === 'usable') expect(grant).toEqual({ granted: true, slotAt: T0 });
        else expect(grant).toMatchObject({ granted: false, reason: 'account_unavailable' });
        await consistent();
      });
    });

    describe('slot refusals in SLOT_CHECKS order', () => {
      it.each(REFUSAL_CASES)('$active -> $wins', async ({ active, wins }) => {
        const on = (r: SlotRefusal) => active.includes(r);
        const rows = await seed({ n: 2 });
        await claim('o1', { limit: 1 });
        await claim(on('lease_lost') ? 'other' : 'o1', { limit: 1 });
        // A first send of the account: its gap (pacing), its cap windows, and its place in the window.
        const prior = await begin('o1', rows[0]!, { gapMs: on('pacing') ? 10_000 : 0, daily: { key: 'd', limit: 100, endsAt: T0 + 24 * HOUR_MS }, hourly: { key: 'h', limit: 100, endsAt: T0 + HOUR_MS } });
        expect(prior.granted).toBe(true);
        if (on('account_unavailable')) await s.store.updateAccount('a1', { state: 'stopped' }, T0);
        const before = await s.raw.account('a1');
        const grant = await begin('o1', rows[1]!, {
          daily: { key: 'd', limit: on('daily_cap') ? 1 : 100, endsAt: T0 + 24 * HOUR_MS },
          hourly: { key: 'h', limit: on('hourly_cap') ? 1 : 100, endsAt: T0 + HOUR_MS },
          maxInFlight: on('in_flight') ? 1 : 1_000,
        });
        expect(grant).toMatchObject({ granted: false, reason: wins });
        // A refusal reserves nothing and marks nothing.
        expect(await s.raw.account('a1')).toEqual(before);
        expect((await rawRow(rows[1]!.id)).status).toBe('pending');
        await consistent();
      });
    });

    describe('delivery transitions (DELIVERY_TRANSITIONS)', () => {
      it.each(RECIPIENT_STATUSES)('from %s', async (from) => {
        const rows = await seed({ n: UPDATES.length });
        await rowsIn(rows, from);
        for (const [i, update] of UPDATES.entries()) {
          const to = DELIVERY_TRANSITIONS[from][update];
          const result = await s.store.applyStatusUpdates([{ providerMessageId: `p-${i}`, status: update, at: T0 + 5 }], T0 + 5);
          expect(result.applied, `${from} + ${update}`).toBe(to === null ? 0 : 1);
          expect((await rawRow(rows[i]!.id)).status, `${from} + ${update}`).toBe(to ?? from);
        }
        await consistent();
      });
    });

    describe('opt-out skip (OPT_OUT_CANCELS)', () => {
      it.each(RECIPIENT_STATUSES)('a %s row', async (status) => {
        const rows = await seed({ n: 1 });
        await rowsIn(rows, status);
        const result = await s.store.addOptOuts([{ phone: rows[0]!.phone, reason: 'test', source: 'api', at: T0 + 2 }], T0 + 2);
        const cancels = OPT_OUT_CANCELS.includes(status);
        expect(result.cancelled).toBe(cancels ? 1 : 0);
        expect(await rawRow(rows[0]!.id)).toMatchObject(cancels ? { status: 'skipped', skipReason: 'opted_out' } : { status });
        await consistent();
      });
    });

    describe('what an outcome does to its account', () => {
      it('failuresAfter: success resets the run, failure adds one, none leaves it', async () => {
        const rows = await seed({ n: 4 });
        await claim('o1');
        const effects = ['failure', 'failure', 'none', 'success'] as const;
        let expected = 0;
        for (const [i, effect] of effects.entries()) {
          expect((await begin('o1', rows[i]!)).granted).toBe(true);
          const [result] = await record('o1', [out(rows[i]!, effect === 'success' ? 'sent' : 'failed', { accountId: 'a1', accountEffect: effect })]);
          expected = failuresAfter(expected, effect);
          expect(result).toMatchObject({ applied: true, consecutiveFailures: expected });
          expect((await s.raw.account('a1'))!.consecutiveFailures).toBe(expected);
        }
      });

      it('accountNextSendAt paces from the send as it happened: it moves nextSendAt later, never earlier', async () => {
        const rows = await seed({ n: 3 });
        await s.store.upsertAccount('a1', pacing({ intervalMs: { min: 1_000, max: 1_000 } }), T0);
        await claim('o1');
        expect(await begin('o1', rows[0]!, { gapMs: 1_000 })).toEqual({ granted: true, slotAt: T0 });
        expect((await s.raw.account('a1'))!.nextSendAt).toBe(T0 + 1_000);
        // The answer came back late: the next send waits for it plus the gap.
        await record('o1', [out(rows[0]!, 'sent', { accountId: 'a1', providerMessageId: 'x1', accountNextSendAt: T0 + 1_700 })], T0 + 700);
        expect((await s.raw.account('a1'))!.nextSendAt).toBe(T0 + 1_700);
        expect(await begin('o1', rows[1]!, { now: T0 + 1_200, gapMs: 1_000 })).toEqual({ granted: false, reason: 'pacing', retryAt: T0 + 1_700 });
        expect(await begin('o1', rows[1]!, { now: T0 + 1_700, gapMs: 1_000 })).toEqual({ granted: true, slotAt: T0 + 1_700 });
        // An earlier time never pulls the slot back.
        await record('o1', [out(rows[1]!, 'sent', { accountId: 'a1', providerMessageId: 'x2', accountNextSendAt: T0 + 100 })], T0 + 1_800);
        expect((await s.raw.account('a1'))!.nextSendAt).toBe(T0 + 2_700);
        await consistent();
      });

      it('a send written ahead holds the window until its outcome or its settlement, across owners; settling paces the account', async () => {
        const rows = await seed({ n: 4 });
        await claim('o1', { limit: 1 });
        await claim('o2', { limit: 2 });
        expect((await begin('o1', rows[0]!, { maxInFlight: 1 })).granted).toBe(true);
        expect(await begin('o2', rows[1]!, { maxInFlight: 1 })).toMatchObject({ granted: false, reason: 'in_flight' });
        expect((await begin('o2', rows[1]!, { maxInFlight: 2 })).granted).toBe(true);
        expect(await begin('o2', rows[2]!, { maxInFlight: 2 })).toMatchObject({ granted: false, reason: 'in_flight' });
        await record('o1', [out(rows[0]!, 'sent', { accountId: 'a1', providerMessageId: 'w1' })]);
        expect((await begin('o2', rows[2]!, { maxInFlight: 2 })).granted).toBe(true);
        // o2 dies. Its sends are in doubt once their leases expire, and still hold the window (the
        // provider may have taken them late) until they are settled; settling paces the account.
        await s.store.upsertAccount('a1', pacing({ intervalMs: { min: 2_000, max: 2_000 } }), T0);
        const later = T0 + LEASE_MS + 1;
        expect((await claim('o3', { limit: 1, now: later })).map((r) => r.id)).toEqual([rows[3]!.id]);
        expect(await begin('o3', rows[3]!, { now: later, maxInFlight: 2 })).toMatchObject({ granted: false, reason: 'in_flight' });
        expect(await s.store.settleInDoubt([{ recipientId: rows[1]!.id, status: 'unknown' }], later)).toBe(1);
        expect((await s.raw.account('a1'))!.nextSendAt).toBe(later + 2_000);
        expect(await begin('o3', rows[3]!, { now: later, maxInFlight: 2 })).toMatchObject({ granted: false, reason: 'pacing', retryAt: later + 2_000 });
        expect(await begin('o3', rows[3]!, { now: later + 2_000, maxInFlight: 2 })).toEqual({ granted: true, slotAt: later + 2_000 });
        await consistent();
      });
    });
  });
}
