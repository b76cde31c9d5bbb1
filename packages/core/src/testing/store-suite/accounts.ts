import { describe, expect, it } from 'vitest';
import type { Suite } from './harness.js';
import { T0, pacing } from './harness.js';

export function accountsCases(s: Suite): void {
  describe('accounts', () => {
    it('upsert creates an active account and afterwards changes only its pacing', async () => {
      const created = await s.store.upsertAccount('a1', pacing({ intervalMs: { min: 5_000, max: 15_000 } }), T0);
      expect(created).toMatchObject({ id: 'a1', state: 'active', consecutiveFailures: 0, disabledUntil: null, disabledReason: null, hourKey: null, sentThisHour: 0, dayKey: null, sentToday: 0 });
      expect(created.connection).not.toBe('close');
      expect(created.nextSendAt).toBeLessThanOrEqual(T0);
      expect(created.pacing.intervalMs).toEqual({ min: 5_000, max: 15_000 });
      expect(await s.raw.account('a1')).toEqual(created);
      await s.store.updateAccount('a1', { state: 'disabled', disabledUntil: T0 + 60_000, disabledReason: '5 failures', consecutiveFailures: 3, connection: 'open', nextSendAtAtLeast: T0 + 50_000 }, T0 + 1);
      const again = await s.store.upsertAccount('a1', pacing({ hourlyCap: 10, dailyCap: 100 }), T0 + 2);
      expect(again).toMatchObject({ state: 'disabled', disabledUntil: T0 + 60_000, disabledReason: '5 failures', consecutiveFailures: 3, connection: 'open', nextSendAt: T0 + 50_000 });
      expect(again.pacing).toMatchObject({ hourlyCap: 10, dailyCap: 100 });
      expect(await s.raw.account('a1')).toEqual(again);
      expect(await s.store.getAccount('a1')).toEqual(again);
      expect(await s.store.getAccount('missing')).toBeNull();
      await s.store.upsertAccount('a2', pacing(), T0);
      expect((await s.store.listAccounts(['a2', 'a1', 'missing'])).map((a) => a.id).sort()).toEqual(['a1', 'a2']);
      expect((await s.store.listAccounts()).map((a) => a.id).sort()).toEqual(['a1', 'a2']);
      expect(await s.store.listAccounts([])).toEqual([]);
    });

    it('updateAccount patches fields, and nextSendAtAtLeast never moves nextSendAt earlier', async () => {
      await s.store.upsertAccount('a1', pacing(), T0);
      expect((await s.store.updateAccount('a1', { nextSendAtAtLeast: T0 + 10_000 }, T0 + 1))!.nextSendAt).toBe(T0 + 10_000);
      expect((await s.store.updateAccount('a1', { nextSendAtAtLeast: T0 + 5_000 }, T0 + 2))!.nextSendAt).toBe(T0 + 10_000);
      expect((await s.raw.account('a1'))!.nextSendAt).toBe(T0 + 10_000);
      const patched = await s.store.updateAccount('a1', { state: 'disabled', connection: 'connecting', consecutiveFailures: 2, disabledUntil: T0 + 1, disabledReason: 'cooldown' }, T0 + 3);
      expect(patched).toMatchObject({ state: 'disabled', connection: 'connecting', consecutiveFailures: 2, disabledUntil: T0 + 1, disabledReason: 'cooldown', nextSendAt: T0 + 10_000, updatedAt: T0 + 3 });
      const cleared = await s.store.updateAccount('a1', { state: 'active', disabledUntil: null, disabledReason: null }, T0 + 4);
      expect(cleared).toMatchObject({ state: 'active', disabledUntil: null, disabledReason: null, consecutiveFailures: 2, connection: 'connecting' });
      expect(await s.raw.account('a1')).toEqual(cleared);
      expect(await s.store.updateAccount('missing', { state: 'stopped' }, T0)).toBeNull();
      expect(await s.raw.account('missing')).toBeNull();
    });
  });
}
