import type { RecipientStatus } from '../domain/types.js';

export type DeliveryUpdate = 'sent' | 'delivered' | 'read' | 'failed';

/**
 * What a provider receipt does to a recipient: its new status, or null (nothing changes: a repeat,
 * a late receipt, or a row its worker still owns). Delivery only moves forward (sent < delivered <
 * read); `failed` only before delivered; an `unknown` row (in doubt) is settled forward by any
 * receipt, since the provider has the message after all; `sending` rows are left to their worker,
 * whose outcome (and account effect) must not be refused.
 */
export const DELIVERY_TRANSITIONS: Readonly<Record<RecipientStatus, Readonly<Record<DeliveryUpdate, RecipientStatus | null>>>> = {
  pending: { sent: null, delivered: null, read: null, failed: null },
  sending: { sent: null, delivered: null, read: null, failed: null },
  sent: { sent: null, delivered: 'delivered', read: 'read', failed: 'failed' },
  delivered: { sent: null, delivered: null, read: 'read', failed: null },
  read: { sent: null, delivered: null, read: null, failed: null },
  failed: { sent: null, delivered: null, read: null, failed: null },
  skipped: { sent: null, delivered: null, read: null, failed: null },
  unknown: { sent: 'sent', delivered: 'delivered', read: 'read', failed: 'failed' },
};

export const deliveryTransition = (from: RecipientStatus, update: DeliveryUpdate): RecipientStatus | null => DELIVERY_TRANSITIONS[from][update];

/**
 * A receipt can arrive before its send's outcome is recorded: a fast provider's `delivered` while the
 * row is still `sending` (outcomes ride with the next checkpoint, up to `checkpoints.maxDelayMs`
 * later), or before the row even knows the provider id the answer brought. Such a receipt is held,
 * not dropped: a row still `sending`, or no row at all, means "not yet". An `applyStatusUpdates`
 * call with no updates tries the held receipts again, oldest first; the engine makes one at every poll
 * and every step (housekeeping). A held receipt is dropped once it applies, is ignored by its row, or
 * is older than `HELD_RECEIPT_MS`. Webhook calls do not retry them: a number that also sends outside
 * the campaigns (a support chat on the same Evolution instance) brings receipts that never find a
 * row, and each webhook would pay for all of them.
 */
export const holdsReceipt = (row: RecipientStatus | null): boolean => row === null || row === 'sending';

/** How long a receipt that found no row, or a `sending` one, is kept and tried again (see holdsReceipt). */
export const HELD_RECEIPT_MS = 10 * 60_000;
