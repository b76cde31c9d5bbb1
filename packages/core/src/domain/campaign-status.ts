import { InvalidTransitionError } from '../errors.js';
import type { CampaignStatus } from './types.js';

/** The campaign status machine (DESIGN.md). Every other transition is rejected. */
export const CAMPAIGN_TRANSITIONS: Readonly<Record<CampaignStatus, readonly CampaignStatus[]>> = {
  draft: ['scheduled', 'running', 'cancelled'],
  scheduled: ['running', 'paused', 'cancelled'],
  running: ['paused', 'completed', 'cancelled'],
  paused: ['running', 'scheduled', 'cancelled'],
  completed: [],
  cancelled: [],
};

export function canTransition(from: CampaignStatus, to: CampaignStatus): boolean {
  return CAMPAIGN_TRANSITIONS[from].includes(to);
}

/** Statuses from which `to` may be reached: the `from` list of a compare-and-set transition. */
export function sourcesOf(to: CampaignStatus): CampaignStatus[] {
  return (Object.keys(CAMPAIGN_TRANSITIONS) as CampaignStatus[]).filter((from) => CAMPAIGN_TRANSITIONS[from].includes(to));
}

export function assertTransition(campaignId: string, from: CampaignStatus, to: CampaignStatus): void {
  if (!canTransition(from, to)) throw new InvalidTransitionError(campaignId, from, to);
}

/** A campaign that will never send again (only these carry a `finishedAt`, which `cleanup` reads). */
export const isFinished = (s: CampaignStatus): boolean => s === 'completed' || s === 'cancelled';
