import { capWindows } from '../domain/calendar.js';
import type { Pacing } from '../domain/types.js';
import { between } from '../random.js';
import type { WriteAhead } from '../store/contract.js';

/**
 * Pacing arithmetic, in one room: how long to show "typing", which gap follows a send, how many
 * sends of an account are written ahead at once, and what the store is asked to reserve. The
 * reservation itself is `reserveSlots` (rules), done atomically by the store.
 */

/** Typing presence before a send: proportional to the text, capped; 0 when disabled. */
export const typingMs = (pacing: Pacing, text: string): number =>
  pacing.typingMsPerChar > 0 ? Math.min(pacing.typingMaxMs, Math.round(text.length * pacing.typingMsPerChar)) : 0;

/** The gap that follows a send: random within the account's interval. */
export const drawGap = (pacing: Pacing, random: () => number): number => between(random, pacing.intervalMs.min, pacing.intervalMs.max);

/**
 * How far under its configured rate a rate-paced account is scheduled: a send that leaves a little
 * late (an event loop busy for a few ms) then never pushes a second over the provider's limit.
 *
 * The two go together. Sends up to `LATE_TOLERANCE_MS` late can bunch with the on-time ones after
 * them, so a sliding second may hold rate x headroom x (1 + tolerance / 1000) sends: 0.97 x 1.025 =
 * 0.994 of the rate, and what is left covers the network's own jitter. 0.98 and 15 ms (0.995, 1% more
 * throughput) held at the engine, but the fake Graph API in its own process saw up to 1,010 in a
 * second at 1,000/s and answered 130429 twenty times (`pnpm --filter @disparo/transport-cloud-api bench`).
 */
export const RATE_HEADROOM = 0.97;

/** How late a rate-paced send may leave after its slot; later than that it is scheduled again, not sent late. */
export const LATE_TOLERANCE_MS = 25;

/**
 * Gaps after `n` consecutive sends of a rate-paced account: 1000 / (rate x headroom x share) ms each,
 * rounded so that their running sum never drifts from the exact spacing (12.5 ms -> 12, 13, 12, 13...).
 * `from`: how many sends of the account were planned before these, so that consecutive groups continue
 * the same sequence; each group starting afresh would round its span up once (16 sends of 1.03 ms
 * took 17 ms: 6% under the rate).
 */
export function rateGaps(pacing: Pacing, n: number, share = 1, from = 0): number[] {
  const spacing = 1_000 / (pacing.ratePerSecond! * RATE_HEADROOM * share);
  const gaps: number[] = [];
  for (let i = from; i < from + n; i++) gaps.push(Math.ceil((i + 1) * spacing) - Math.ceil(i * spacing));
  return gaps;
}

/** Whether the account is paced by rate (official APIs: concurrent sends up to its window) rather than by a human interval. */
export const isRatePaced = (pacing: Pacing): boolean => pacing.ratePerSecond !== null;

/**
 * How many of an account's sends go into one write-ahead: the configured group (checkpoints), but
 * no more than fit in `maxDelayMs` of the account's pacing, so outcomes are not held back long.
 */
export function groupSize(pacing: Pacing, checkpoints: { groupSize: number; maxDelayMs: number }): number {
  // A rate-paced account writes ahead what its window has room for (see AccountSender).
  if (isRatePaced(pacing)) return pacing.maxInFlight;
  if (checkpoints.groupSize <= 1) return 1;
  const perSend = (pacing.intervalMs.min + pacing.intervalMs.max) / 2 + (pacing.typingMsPerChar > 0 ? pacing.typingMaxMs / 2 : 0);
  return perSend <= 0 ? checkpoints.groupSize : Math.max(1, Math.min(checkpoints.groupSize, Math.floor(checkpoints.maxDelayMs / perSend)));
}

/**
 * The account's window W as the store enforces it: its own `maxInFlight`, widened to the group when
 * grouped checkpoints write several sends ahead at once (all of them are in doubt after a crash).
 */
export const inFlightWindow = (pacing: Pacing, group: number): number => Math.max(pacing.maxInFlight, group);

/**
 * How many recipients to claim at once for these accounts: with paced accounts, what the accounts
 * can send within about half a lease (a crash strands few rows); unpaced, big slices, so the store's
 * round trips stay few.
 */
export function claimLimit(pacings: Pacing[], claimSize: number, leaseMs: number): number {
  const perAccount = pacings.map((p) => {
    const avg = isRatePaced(p) ? 1_000 / p.ratePerSecond! : (p.intervalMs.min + p.intervalMs.max) / 2;
    return avg <= 0 ? claimSize : Math.max(1, Math.floor(leaseMs / 2 / avg)) * Math.max(1, p.maxInFlight);
  });
  return Math.max(1, Math.min(claimSize, perAccount.reduce((s, n) => s + n, 0)));
}

export interface PlannedSend {
  recipientId: string;
  campaignId: string;
  text: string;
  attempt: number;
  gapMs: number;
  leadMs: number;
}

/** The store request that writes `sends` ahead through one account, with the cap windows in force at `now`. */
export function writeAhead(accountId: string, pacing: Pacing, sends: PlannedSend[], window: number, now: number, capTimeZone: string, aheadMs = 0): WriteAhead {
  return { accountId, maxInFlight: window, ...(aheadMs > 0 ? { aheadMs } : {}), ...capWindows(pacing, now, capTimeZone), items: sends };
}
