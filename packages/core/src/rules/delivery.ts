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
