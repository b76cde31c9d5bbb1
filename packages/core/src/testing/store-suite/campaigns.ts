import { describe, expect, it } from 'vitest';
import type { Suite } from './harness.js';
import { T0, settings, newCampaign, zero } from './harness.js';

export function campaignsCases(s: Suite): void {
  const { seed, consistent } = s;
  describe('campaigns', () => {
    it('creates a campaign with empty counters at batch 0 and reads it back', async () => {
      const created = await s.store.createCampaign(
        newCampaign('c1', { status: 'scheduled', scheduledAt: T0 + 60_000, metadata: { source: 'suite', nested: { a: 1 } }, media: { url: 'https://x.test/a.png', type: 'image' } }),
      );
      expect(created).toMatchObject({
        id: 'c1',
        name: 'campaign c1',
        templates: ['Oi {{name|amigo}}'],
        media: { url: 'https://x.test/a.png', type: 'image' },
        accountIds: ['a1'],
        status: 'scheduled',
        pauseReason: null,
        scheduledAt: T0 + 60_000,
        currentBatch: 0,
        nextBatchAt: null,
        lastError: null,
        metadata: { source: 'suite', nested: { a: 1 } },
        createdAt: T0,
        updatedAt: T0,
        startedAt: null,
        finishedAt: null,
      });
      expect(created.counters).toEqual(zero());
      expect(created.settings).toEqual(settings({ batchSize: 3 }));
      expect(await s.store.getCampaign('c1')).toEqual(created);
      expect(await s.raw.campaign('c1')).toEqual(created);
      expect(await s.store.getCampaign('missing')).toBeNull();
    });

    it('returns copies: changing a returned campaign changes nothing stored', async () => {
      const created = await s.store.createCampaign(newCampaign('c1', { metadata: { tag: 'x' } }));
      const got = (await s.store.getCampaign('c1'))!;
      got.name = 'mutated';
      got.counters.total = 99;
      got.settings.batchSize = 1;
      got.templates.push('extra');
      got.metadata.tag = 'y';
      created.accountIds.push('a9');
      expect(await s.raw.campaign('c1')).toEqual(await s.store.getCampaign('c1'));
      expect(await s.raw.campaign('c1')).toMatchObject({ name: 'campaign c1', counters: zero(), settings: { batchSize: 3 }, templates: ['Oi {{name|amigo}}'], metadata: { tag: 'x' }, accountIds: ['a1'] });
    });

    it('refuses a second campaign with the same id and keeps the first', async () => {
      await s.store.createCampaign(newCampaign('c1'));
      await expect(s.store.createCampaign(newCampaign('c1', { name: 'impostor' }))).rejects.toThrow();
      expect((await s.raw.campaign('c1'))!.name).toBe('campaign c1');
      expect((await s.store.listCampaigns()).map((c) => c.id)).toEqual(['c1']);
    });

    it('lists campaigns oldest first, filtered by status, with a limit', async () => {
      await s.store.createCampaign(newCampaign('c1', { now: T0 }));
      await s.store.createCampaign(newCampaign('c2', { now: T0 + 1, status: 'scheduled', scheduledAt: T0 + 5_000 }));
      await s.store.createCampaign(newCampaign('c3', { now: T0 + 2 }));
      expect((await s.store.listCampaigns()).map((c) => c.id)).toEqual(['c1', 'c2', 'c3']);
      expect((await s.store.listCampaigns({ status: ['draft'] })).map((c) => c.id)).toEqual(['c1', 'c3']);
      expect((await s.store.listCampaigns({ status: ['draft', 'scheduled'], limit: 2 })).map((c) => c.id)).toEqual(['c1', 'c2']);
      expect(await s.store.listCampaigns({ status: ['running'] })).toEqual([]);
      await s.store.transitionCampaign('c3', { from: ['draft'], to: 'running', now: T0 + 3 });
      expect((await s.store.listCampaigns({ status: ['running'] })).map((c) => c.id)).toEqual(['c3']);
    });

    it('transitions by compare-and-set and stamps start, pause reason, schedule, error and finish', async () => {
      await s.store.createCampaign(newCampaign('c1'));
      const running = await s.store.transitionCampaign('c1', { from: ['draft', 'scheduled'], to: 'running', now: T0 + 10 });
      expect(running).toMatchObject({ status: 'running', startedAt: T0 + 10, updatedAt: T0 + 10, pauseReason: null, finishedAt: null });
      const paused = await s.store.transitionCampaign('c1', { from: ['running'], to: 'paused', pauseReason: 'no_accounts', now: T0 + 20 });
      expect(paused).toMatchObject({ status: 'paused', pauseReason: 'no_accounts', startedAt: T0 + 10, updatedAt: T0 + 20 });
      const resumed = await s.store.transitionCampaign('c1', { from: ['paused'], to: 'running', now: T0 + 30 });
      expect(resumed).toMatchObject({ status: 'running', pauseReason: null, startedAt: T0 + 10 });
      const done = await s.store.transitionCampaign('c1', { from: ['running'], to: 'completed', now: T0 + 40 });
      expect(done).toMatchObject({ status: 'completed', finishedAt: T0 + 40, startedAt: T0 + 10 });
      expect(await s.raw.campaign('c1')).toEqual(done);

      await s.store.createCampaign(newCampaign('c2'));
      const scheduled = await s.store.transitionCampaign('c2', { from: ['draft'], to: 'scheduled', scheduledAt: T0 + 99_000, now: T0 + 1 });
      expect(scheduled).toMatchObject({ status: 'scheduled', scheduledAt: T0 + 99_000, startedAt: null });
      await s.store.transitionCampaign('c2', { from: ['scheduled'], to: 'running', now: T0 + 2 });
      const cancelled = await s.store.transitionCampaign('c2', { from: ['running'], to: 'cancelled', lastError: 'boom', now: T0 + 3 });
      expect(cancelled).toMatchObject({ status: 'cancelled', lastError: 'boom', finishedAt: T0 + 3, scheduledAt: T0 + 99_000 });
      expect(await s.raw.campaign('c2')).toEqual(cancelled);
    });

    it('refuses a stale or illegal transition and changes nothing', async () => {
      await s.store.createCampaign(newCampaign('c1'));
      const before = await s.raw.campaign('c1');
      expect(await s.store.transitionCampaign('c1', { from: ['running'], to: 'paused', pauseReason: 'manual', now: T0 + 1 })).toBeNull();
      // draft -> completed and draft -> paused are not in the table, even when `from` names draft (I4).
      expect(await s.store.transitionCampaign('c1', { from: ['draft'], to: 'completed', now: T0 + 1 })).toBeNull();
      expect(await s.store.transitionCampaign('c1', { from: ['draft', 'running'], to: 'paused', pauseReason: 'manual', now: T0 + 1 })).toBeNull();
      expect(await s.store.transitionCampaign('missing', { from: ['draft'], to: 'running', now: T0 + 1 })).toBeNull();
      expect(await s.raw.campaign('c1')).toEqual(before);
      expect(await s.store.transitionCampaign('c1', { from: ['draft'], to: 'cancelled', now: T0 + 2 })).not.toBeNull();
      const cancelled = await s.raw.campaign('c1');
      expect(await s.store.transitionCampaign('c1', { from: ['cancelled'], to: 'running', now: T0 + 3 })).toBeNull();
      expect(await s.raw.campaign('c1')).toEqual(cancelled);
    });

    it('updates name, templates, media, accounts, settings, metadata and schedule without touching status or counters', async () => {
      await seed({ n: 2 });
      const before = (await s.raw.campaign('c1'))!;
      const updated = await s.store.updateCampaign(
        'c1',
        {
          name: 'renamed',
          templates: ['A {{name}}', 'B {{name}}'],
          media: { url: 'https://x.test/doc.pdf', type: 'document', fileName: 'doc.pdf' },
          accountIds: ['a1', 'a2'],
          settings: settings({ batchSize: 50, maxAttempts: 5 }),
          metadata: { owner: 'crm' },
          scheduledAt: T0 + 1_000,
        },
        T0 + 5,
      );
      expect(updated).toMatchObject({
        name: 'renamed',
        templates: ['A {{name}}', 'B {{name}}'],
        media: { url: 'https://x.test/doc.pdf', type: 'document', fileName: 'doc.pdf' },
        accountIds: ['a1', 'a2'],
        settings: { batchSize: 50, maxAttempts: 5 },
        metadata: { owner: 'crm' },
        scheduledAt: T0 + 1_000,
        status: before.status,
        counters: before.counters,
        createdAt: T0,
        updatedAt: T0 + 5,
      });
      expect(await s.raw.campaign('c1')).toEqual(updated);
      const partial = await s.store.updateCampaign('c1', { name: 'again' }, T0 + 6);
      expect(partial).toMatchObject({ name: 'again', templates: ['A {{name}}', 'B {{name}}'], accountIds: ['a1', 'a2'], scheduledAt: T0 + 1_000 });
      expect(await s.store.updateCampaign('missing', { name: 'x' }, T0)).toBeNull();
      await consistent();
    });
  });
}
