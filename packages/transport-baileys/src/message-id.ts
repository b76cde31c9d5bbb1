import { createHash } from 'node:crypto';

/** WA-Web message ids: `3EB0` + 18 upper-case hex characters (Baileys `generateMessageIDV2`). */
export const MESSAGE_ID_PATTERN = /^3EB0[0-9A-F]{18}$/;

/**
 * The WhatsApp message id a send under `idempotencyKey` carries: `3EB0` + the first 18 hex
 * characters of sha256(key), upper case. Deterministic, so a receipt can be matched to its
 * recipient even before `sendMessage` returns, and a retry after a crash reuses the same id.
 * The WA-Web shape keeps Baileys' `getDevice` (and Evolution's source detection) reading it as `web`.
 */
export function messageIdFor(idempotencyKey: string): string {
  if (typeof idempotencyKey !== 'string' || idempotencyKey.length === 0) throw new TypeError('messageIdFor: idempotencyKey must be a non-empty string');
  return `3EB0${createHash('sha256').update(idempotencyKey, 'utf8').digest('hex').slice(0, 18).toUpperCase()}`;
}
