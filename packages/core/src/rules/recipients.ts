import type { RecipientStatus } from '../domain/types.js';
import { isOpen } from './counters.js';

/**
 * The batch a recipient joins when imported: `ceil(seq / batchSize)`, but never one the campaign has
 * already left (such a row would never be claimed): late rows join the current batch.
 */
export const batchForRow = (seq: number, batchSize: number, currentBatch: number): number => Math.max(Math.ceil(seq / Math.max(1, batchSize)), currentBatch);

/**
 * Statuses an opt-out cancels (to `skipped`, reason `opted_out`), leased or not, in every campaign;
 * a claim also skips a pending row whose phone is on the suppression list. A `sending` row is left:
 * its message is already on the wire.
 */
export const OPT_OUT_CANCELS: readonly RecipientStatus[] = ['pending'];

/** An outcome applies only to a row still open and leased by the caller (another worker may own it now). */
export const outcomeApplies = (row: { leaseOwner: string | null; status: RecipientStatus }, owner: string): boolean => row.leaseOwner === owner && isOpen(row.status);

/** The account's run of consecutive real failures after an outcome's effect. */
export function failuresAfter(current: number, effect: 'success' | 'failure' | 'none' | undefined): number {
  if (effect === 'success') return 0;
  if (effect === 'failure') return current + 1;
  return current;
}
