import type { CapWindow } from '../domain/calendar.js';
import type { AccountRecord } from '../domain/types.js';
import { accountUsability } from './accounts.js';

/** Why a write-ahead got no slot. */
export type SlotRefusal = 'lease_lost' | 'account_unavailable' | 'daily_cap' | 'hourly_cap' | 'in_flight' | 'pacing';

/**
 * The order in which a write-ahead is checked: the first that applies is the answer, and nothing is
 * reserved or marked. `lease_lost`: the caller does not lease the pending row. `account_unavailable`:
 * see `ACCOUNT_USABILITY_RULES`. Caps: a full day wins over a full hour (its retry time is the later
 * one). `in_flight`: the account already has its window W of sends without an outcome, across every
 * worker: every `sending` row of the account counts, on the wire or in doubt (its lease expired),
 * until its outcome is recorded or it is settled. `pacing`: the account's next slot (`nextSendAt`)
 * is still ahead.
 */
export const SLOT_CHECKS: readonly SlotRefusal[] = ['lease_lost', 'account_unavailable', 'daily_cap', 'hourly_cap', 'in_flight', 'pacing'];

export type Grant =
  | { granted: true; slotAt: number }
  /** Nothing was reserved or marked; try again at `retryAt` (lease_lost: drop the recipient). */
  | { granted: false; reason: SlotRefusal; retryAt: number };

/** The pacing part of an account record, plus how many of its sends are in flight now. */
export type AccountSlots = Pick<AccountRecord, 'state' | 'connection' | 'disabledUntil' | 'nextSendAt' | 'hourKey' | 'sentThisHour' | 'dayKey' | 'sentToday'> & {
  inFlight: number;
};

export interface SlotItem {
  /**
   * What the store found for the item's row: `leased` (pending, leased by the caller), `repeat` (the
   * caller's own write-ahead of this very attempt, still live: a retried call whose commit was not
   * heard; granted again without a second slot), or `lost` (anything else).
   */
  row: 'leased' | 'repeat' | 'lost';
  /** Gap reserved after this send. */
  gapMs: number;
  /** Time between the slot's start and the send (typing presence). */
  leadMs: number;
}

export interface SlotRequest {
  maxInFlight: number;
  /**
   * How far ahead of now the first slot may lie (rate-paced accounts keep their pipeline full by
   * writing the next sends ahead before the current ones left). 0 (the default): a send is written
   * ahead only when its account may send now.
   */
  aheadMs?: number | undefined;
  hourly?: CapWindow | undefined;
  daily?: CapWindow | undefined;
  items: SlotItem[];
}

/**
 * Reserve consecutive slots of one account for `items`, in order, as if each were reserved when the
 * previous one's gap ends: the first new reservation needs `nextSendAt <= now + aheadMs` and starts at
 * `max(now, nextSendAt)`, item i's slot is the previous slot + its gap + item i's lead, and every grant
 * counts toward the caps and the window.
 * Returns one grant per item and the account's new pacing state (unchanged when nothing was granted).
 * The one source of slot arithmetic: the memory store calls it, SQL stores implement it and are
 * checked against it.
 */
export function reserveSlots(account: AccountSlots, request: SlotRequest, now: number): { grants: Grant[]; account: AccountSlots } {
  const a = { ...account };
  const grants: Grant[] = [];
  const usable = accountUsability(a, now) === 'usable';
  let at = now;
  for (const item of request.items) {
    if (item.row === 'repeat') {
      grants.push({ granted: true, slotAt: now });
      continue;
    }
    const refusal = firstRefusal(a, request, item, usable, at);
    if (refusal) {
      grants.push({ granted: false, reason: refusal.reason, retryAt: refusal.retryAt ?? now });
      continue;
    }
    const slotAt = Math.max(at, a.nextSendAt) + item.leadMs;
    a.nextSendAt = slotAt + item.gapMs;
    at = Math.max(at, a.nextSendAt);
    a.inFlight++;
    if (request.hourly) {
      a.sentThisHour = a.hourKey === request.hourly.key ? a.sentThisHour + 1 : 1;
      a.hourKey = request.hourly.key;
    }
    if (request.daily) {
      a.sentToday = a.dayKey === request.daily.key ? a.sentToday + 1 : 1;
      a.dayKey = request.daily.key;
    }
    grants.push({ granted: true, slotAt });
  }
  return { grants, account: a };
}

function firstRefusal(a: AccountSlots, request: SlotRequest, item: SlotItem, usable: boolean, at: number): { reason: SlotRefusal; retryAt?: number } | null {
  for (const check of SLOT_CHECKS) {
    switch (check) {
      case 'lease_lost':
        if (item.row === 'lost') return { reason: check };
        break;
      case 'account_unavailable':
        if (!usable) return { reason: check };
        break;
      case 'daily_cap':
        if (request.daily && a.dayKey === request.daily.key && a.sentToday >= request.daily.limit) return { reason: check, retryAt: request.daily.endsAt };
        break;
      case 'hourly_cap':
        if (request.hourly && a.hourKey === request.hourly.key && a.sentThisHour >= request.hourly.limit) return { reason: check, retryAt: request.hourly.endsAt };
        break;
      case 'in_flight':
        if (a.inFlight >= request.maxInFlight) return { reason: check };
        break;
      case 'pacing':
        if (a.nextSendAt > at + (request.aheadMs ?? 0)) return { reason: check, retryAt: a.nextSendAt - (request.aheadMs ?? 0) };
        break;
    }
  }
  return null;
}

/**
 * Settling a send in doubt counts as its end: the provider may have taken it as late as the dead
 * worker's last moment, so the account's next send waits at least its minimum interval from now.
 */
export const nextSendAfterSettling = (account: Pick<AccountRecord, 'nextSendAt' | 'pacing'>, now: number): number => Math.max(account.nextSendAt, now + account.pacing.intervalMs.min);
