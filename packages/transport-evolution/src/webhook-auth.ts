import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { WebhookError } from '@disparo/core/transport';

import { headerValue, type WebhookHeaders } from '@disparo/core/transport';

export { headerValue, type WebhookHeaders };

export interface WebhookAuthOptions {
  /** Static shared secret Evolution sends in `headerName` (set as a custom webhook header). */
  secret?: string | undefined;
  /** The `jwt_key` webhook header: Evolution then sends `Authorization: Bearer <HS256 JWT>` signed with it. */
  jwtKey?: string | undefined;
  headerName: string;
  /** Accept webhooks with no credential at all (only when nothing is configured). */
  allowUnsigned: boolean;
  now: () => number;
}

/** Clock skew tolerated on `exp`, `nbf` and `iat`. */
export const JWT_LEEWAY_SECONDS = 60;

/** Constant-time string equality (hashing first makes the lengths equal). */
function safeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}


const base64url = (input: Buffer | string) => Buffer.from(input).toString('base64url');

function decodeJson(segment: string): Record<string, unknown> | null {
  if (!/^[A-Za-z0-9_-]+$/.test(segment)) return null;
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/**
 * Verify an HS256 JWT with `key`: the header says HS256, the signature matches, and `exp`/`nbf`
 * (when present) hold at `nowMs`, within a small leeway. Returns the payload or why it failed.
 */
export function verifyHs256Jwt(token: string, key: string, nowMs: number): { ok: true; payload: Record<string, unknown> } | { ok: false; reason: string } {
  const parts = token.split('.');
  if (parts.length !== 3) return { ok: false, reason: 'not a JWT' };
  const [h, p, s] = parts as [string, string, string];
  const header = decodeJson(h);
  if (!header) return { ok: false, reason: 'unreadable JWT header' };
  // Only HS256: never let the token choose `none` or another algorithm.
  if (header.alg !== 'HS256') return { ok: false, reason: `JWT algorithm ${String(header.alg)} is not HS256` };
  const expected = base64url(createHmac('sha256', key).update(`${h}.${p}`).digest());
  if (!safeEqual(expected, s)) return { ok: false, reason: 'JWT signature does not match jwtKey' };
  const payload = decodeJson(p);
  if (!payload) return { ok: false, reason: 'unreadable JWT payload' };
  const now = nowMs / 1000;
  if (payload.exp !== undefined) {
    if (typeof payload.exp !== 'number') return { ok: false, reason: 'JWT exp is not a number' };
    if (now > payload.exp + JWT_LEEWAY_SECONDS) return { ok: false, reason: 'JWT expired' };
  }
  if (payload.nbf !== undefined && (typeof payload.nbf !== 'number' || now + JWT_LEEWAY_SECONDS < payload.nbf)) return { ok: false, reason: 'JWT not valid yet' };
  if (payload.iat !== undefined && (typeof payload.iat !== 'number' || now + JWT_LEEWAY_SECONDS < payload.iat)) return { ok: false, reason: 'JWT issued in the future' };
  return { ok: true, payload };
}

/**
 * The token Evolution puts in `Authorization: Bearer …` when the webhook has a `jwt_key` header:
 * HS256 over `{ iat, exp: iat + 600, app: 'evolution', action: 'webhook' }`. For tests and for
 * hosts that forward webhooks.
 */
export function createEvolutionWebhookJwt(jwtKey: string, options: { now?: number; ttlSeconds?: number } = {}): string {
  const iat = Math.floor((options.now ?? Date.now()) / 1000);
  const header = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const payload = base64url(JSON.stringify({ iat, exp: iat + (options.ttlSeconds ?? 600), app: 'evolution', action: 'webhook' }));
  const signature = base64url(createHmac('sha256', jwtKey).update(`${header}.${payload}`).digest());
  return `${header}.${payload}.${signature}`;
}

/**
 * Throws `WebhookError` unless the request carries a configured credential and every credential
 * it carries is right: the secret header, or the bearer JWT signed with `jwtKey`.
 */
export function verifyWebhookAuth(headers: WebhookHeaders | Headers | undefined, options: WebhookAuthOptions): void {
  const { secret, jwtKey } = options;
  if (!secret && !jwtKey) {
    if (options.allowUnsigned) return;
    throw new WebhookError(
      '[evolution] webhook rejected: no webhook secret or jwtKey is configured on this transport. Set webhook.jwtKey (recommended) or webhook.secret, or webhook.allowUnsigned for a trusted network.',
      'unsigned',
    );
  }
  let verified = false;
  if (secret) {
    const presented = headerValue(headers, options.headerName);
    if (presented !== undefined) {
      if (!safeEqual(presented, secret)) throw new WebhookError(`[evolution] webhook rejected: the ${options.headerName} header does not match the secret`, 'bad_signature');
      verified = true;
    }
  }
  if (jwtKey) {
    const authorization = headerValue(headers, 'authorization');
    if (authorization !== undefined) {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
      if (!match) throw new WebhookError('[evolution] webhook rejected: the Authorization header is not a Bearer token', 'bad_signature');
      const result = verifyHs256Jwt(match[1]!, jwtKey, options.now());
      if (!result.ok) throw new WebhookError(`[evolution] webhook rejected: ${result.reason}`, 'bad_signature');
      verified = true;
    }
  }
  if (!verified) {
    const expected = [secret ? `the ${options.headerName} header` : null, jwtKey ? 'an Authorization: Bearer JWT' : null].filter(Boolean).join(' or ');
    throw new WebhookError(`[evolution] webhook rejected: it carries no credential (expected ${expected})`, 'unsigned');
  }
}
