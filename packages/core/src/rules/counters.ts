import type { RecipientCounters, RecipientStatus } from '../domain/types.js';

/** Statuses a recipient is still being worked in. */
export const isOpen = (s: RecipientStatus): boolean => s === 'pending' || s === 'sending';

/**
 * Which count of its batch record a recipient status adds to (sent includes delivered and read);
 * null for the open statuses. Campaign counters count every status by its own name.
 */
export const BATCH_COUNT: Readonly<Record<RecipientStatus, 'sent' | 'failed' | 'skipped' | 'unknown' | null>> = {
  pending: null,
  sending: null,
  sent: 'sent',
  delivered: 'sent',
  read: 'sent',
  failed: 'failed',
  skipped: 'skipped',
  unknown: 'unknown',
};

export const emptyCounters = (): RecipientCounters => ({ total: 0, pending: 0, sending: 0, sent: 0, delivered: 0, read: 0, failed: 0, skipped: 0, unknown: 0 });

/** Move one recipient's count from `from` to `to` (a store keeps counters equal to its rows, I2). */
export function moveCount(counters: RecipientCounters, from: RecipientStatus, to: RecipientStatus): void {
  if (from === to) return;
  counters[from]--;
  counters[to]++;
}
