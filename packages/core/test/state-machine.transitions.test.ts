import { describe, expect, it } from 'vitest';
import { InvalidTransitionError, type CampaignStatus } from '@disparo/core';
import { CAMPAIGN_STATUSES, CAMPAIGN_TRANSITIONS, canTransition } from '@disparo/core/store';
import { campaignWith, rig } from './helpers.js';

const allowed: Array<[CampaignStatus, CampaignStatus]> = [
  ['draft', 'scheduled'],
  ['draft', 'running'],
  ['draft', 'cancelled'],
  ['scheduled', 'running'],
  ['scheduled', 'paused'],
  ['scheduled', 'cancelled'],
  ['running', 'paused'],
  ['running', 'completed'],
  ['running', 'cancelled'],
  ['paused', 'running'],
  ['paused', 'scheduled'],
  ['paused', 'cancelled'],
];

describe('campaign status machine', () => {
  it('allows exactly the transitions of the design table', () => {
    for (const from of CAMPAIGN_STATUSES) {
      for (const to of CAMPAIGN_STATUSES) {
        const expected = allowed.some(([f, t]) => f === from && t === to);
        expect(canTransition(from, to), `${from} -> ${to}`).toBe(expected);
      }
    }
    expect(Object.values(CAMPAIGN_TRANSITIONS).flat()).toHaveLength(allowed.length);
  });

  // Drive a real campaign into each status through the engine, then try every target.
  async function campaignIn(status: CampaignStatus) {
    const r = rig();
    const c = await campaignWith(r.engine, 3);
    const now = r.clock.now();
    const path: Record<CampaignStatus, CampaignStatus[]> = {
      draft: [],
      scheduled: ['scheduled'],
      running: ['running'],
      paused: ['running', 'paused'],
      completed: ['running', 'completed'],
      cancelled: ['cancelled'],
    };
    let current: CampaignStatus = 'draft';
    for (const to of path[status]) {
      const next = await r.store.transitionCampaign(c.id, { from: [current], to, now, scheduledAt: to === 'scheduled' ? now + 60_000 : undefined, pauseReason: to === 'paused' ? 'manual' : null });
      expect(next?.status).toBe(to);
      current = to;
    }
    return { r, id: c.id };
  }

  const engineCall = async (r: ReturnType<typeof rig>, id: string, to: CampaignStatus) => {
    switch (to) {
      case 'running':
        return r.engine.start(id);
      case 'paused':
        return r.engine.pause(id);
      case 'cancelled':
        return r.engine.cancel(id);
      case 'scheduled':
        return r.engine.schedule(id, r.clock.now() + 60_000);
      default:
        return null; // completed is reached by the worker, not by a call
    }
  };

  for (const from of CAMPAIGN_STATUSES) {
    for (const to of ['running', 'paused', 'cancelled', 'scheduled'] as CampaignStatus[]) {
      const ok = canTransition(from, to);
      it(`${ok ? 'allows' : 'rejects'} ${from} -> ${to} through the engine`, async () => {
        const { r, id } = await campaignIn(from);
        const before = await r.store.getCampaign(id);
        if (ok) {
          const after = await engineCall(r, id, to);
          expect(after?.status).toBe(to);
        } else {
          const error = await engineCall(r, id, to)!.catch((e: unknown) => e);
          expect(InvalidTransitionError.isInstance(error)).toBe(true);
          expect((error as InvalidTransitionError).code).toBe('INVALID_TRANSITION');
          expect((error as Error).message).toContain(`"${from}" to "${to}"`);
          expect(await r.store.getCampaign(id)).toEqual(before);
        }
      });
    }
  }

  it('store-level compare-and-set refuses a stale source status and changes nothing', async () => {
    const { r, id } = await campaignIn('running');
    const before = await r.store.getCampaign(id);
    expect(await r.store.transitionCampaign(id, { from: ['paused'], to: 'running', now: r.clock.now() })).toBeNull();
    expect(await r.store.getCampaign(id)).toEqual(before);
  });
});
