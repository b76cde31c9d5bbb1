import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { headerValue, type WebhookHeaders } from '@disparo/core/transport';

export { headerValue, type WebhookHeaders };

/** A webhook body as it arrived: the raw bytes (Buffer/Uint8Array/ArrayBuffer) or their text. */
export type RawBody = string | Uint8Array | ArrayBuffer;

export const SIGNATURE_HEADER = 'x-hub-signature-256';


/** The bytes of a raw body, or null when `body` is not one (a parsed object, a number…). */
export function rawBytes(body: unknown): Buffer | null {
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  return null;
}

/**
 * Meta signs the payload with every non-ASCII character written as a lower-case `\uXXXX` escape
 * (UTF-16 code units, so an emoji is two escapes). A body that reached you decoded (`é` instead of
 * `\u00e9`) is turned back into that form here. Inside JSON strings the two forms are the same value.
 */
export function escapeNonAscii(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    out += unit < 0x80 ? text[i] : `\\u${unit.toString(16).padStart(4, '0')}`;
  }
  return out;
}

const hmac = (secret: string, data: Buffer | string) => createHmac('sha256', secret).update(data).digest();

/** `sha256=<hex>` for a body, as Meta computes it (for tests, relays and fake servers). */
export function cloudApiSignature(body: RawBody, appSecret: string): string {
  return `sha256=${hmac(appSecret, rawBytes(body)!).toString('hex')}`;
}

export type SignatureCheck = { ok: true; bytes: Buffer } | { ok: false; reason: 'unsigned' | 'bad_signature'; message: string };

/**
 * Verify `X-Hub-Signature-256` over the raw body bytes with the app secret, in constant time. When
 * the bytes do not match and the body holds non-ASCII characters, the escaped form Meta signs is
 * tried as well (a host that decoded the body before handing it over). Never hash re-serialised
 * JSON: key order, spacing and `\/` escapes would differ; a parsed object is refused.
 */
export function verifyCloudApiSignature(body: unknown, header: string | undefined, appSecret: string): SignatureCheck {
  const bytes = rawBytes(body);
  if (!bytes) {
    return {
      ok: false,
      reason: 'unsigned',
      message: 'the body is not the raw request body (string or bytes), so its signature cannot be checked; pass the raw body (e.g. express.raw({ type: "application/json" }), await request.text())',
    };
  }
  if (header === undefined || header.trim() === '') return { ok: false, reason: 'unsigned', message: 'no X-Hub-Signature-256 header' };
  const match = /^sha256=([0-9a-fA-F]{64})$/.exec(header.trim());
  if (!match) return { ok: false, reason: 'bad_signature', message: 'X-Hub-Signature-256 is not "sha256=<64 hex digits>"' };
  const presented = Buffer.from(match[1]!.toLowerCase(), 'hex');
  if (timingSafeEqual(presented, hmac(appSecret, bytes))) return { ok: true, bytes };
  const text = bytes.toString('utf8');
  if (/[^\x00-\x7f]/.test(text)) {
    const escaped = Buffer.from(escapeNonAscii(text), 'utf8');
    if (timingSafeEqual(presented, hmac(appSecret, escaped))) return { ok: true, bytes };
  }
  return { ok: false, reason: 'bad_signature', message: 'X-Hub-Signature-256 does not match the body and appSecret (check appSecret, and that the body is the raw request body)' };
}

/** Constant-time string equality (hashing first makes the lengths equal). */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}
