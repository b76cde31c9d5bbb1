/**
 * HS256 JSON Web Tokens, as Supabase's legacy API keys and PostgREST's `jwt-secret` use them
 * (node:crypto only). Test support: not part of the published package.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export type JwtClaims = Record<string, unknown>;

const b64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

export function signJwt(claims: JwtClaims, secret: string): string {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  const signature = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${signature}`;
}

/** A random secret of the length Supabase generates (at least 32 characters). */
export const randomJwtSecret = () => randomBytes(32).toString('hex');

/**
 * The keys a Supabase project hands out: `anon` and `service_role` JWTs, long-lived, signed with the
 * project's JWT secret (claims as in Supabase's key generator: iss, ref, role, iat, exp).
 */
export function supabaseKeys(secret: string, nowSeconds = Math.floor(Date.now() / 1000)) {
  const claims = (role: string) => ({ iss: 'supabase', ref: 'disparo-test', role, iat: nowSeconds, exp: nowSeconds + 10 * 365 * 24 * 3600 });
  return { anonKey: signJwt(claims('anon'), secret), serviceKey: signJwt(claims('service_role'), secret) };
}

export type JwtFailure =
  /** PGRST301: could not be decoded, or the signature does not verify. */
  | { kind: 'decode'; message: string; details: string | null }
  /** PGRST303: the claims failed validation. */
  | { kind: 'claims'; message: string };

/**
 * Verifies an HS256 token the way PostgREST does: three parts, a signature that verifies with the
 * secret (no `alg: none`, no other algorithm), then `exp`/`nbf`/`iat` with 30 s of clock skew.
 * Messages are PostgREST's own (src/PostgREST/Error.hs, JwtError).
 */
export function verifyJwt(token: string, secret: string, nowSeconds = Math.floor(Date.now() / 1000)): { ok: true; claims: JwtClaims } | { ok: false; failure: JwtFailure } {
  if (token === '') return { ok: false, failure: { kind: 'decode', message: 'Empty JWT is sent in Authorization header', details: null } };
  const parts = token.split('.');
  if (parts.length !== 3) return { ok: false, failure: { kind: 'decode', message: `Expected 3 parts in JWT; got ${parts.length}`, details: null } };
  const [head, body, signature] = parts as [string, string, string];
  let header: { alg?: unknown };
  try {
    header = JSON.parse(Buffer.from(head, 'base64url').toString('utf8')) as { alg?: unknown };
  } catch {
    return { ok: false, failure: { kind: 'decode', message: "JWT couldn't be decoded", details: null } };
  }
  if (header.alg !== 'HS256') return { ok: false, failure: { kind: 'decode', message: 'Wrong or unsupported encoding algorithm', details: null } };
  const expected = createHmac('sha256', secret).update(`${head}.${body}`).digest();
  const given = Buffer.from(signature, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, failure: { kind: 'decode', message: 'No suitable key or wrong key type', details: 'None of the keys was able to decode the JWT' } };
  }
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
  } catch {
    return { ok: false, failure: { kind: 'claims', message: 'Parsing claims failed' } };
  }
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) return { ok: false, failure: { kind: 'claims', message: 'Parsing claims failed' } };
  const c = claims as JwtClaims;
  const skew = 30;
  const time = (key: string, notNumber: string, bad: (v: number) => boolean, badMessage: string): JwtFailure | undefined => {
    if (!(key in c) || c[key] === null) return undefined;
    if (typeof c[key] !== 'number') return { kind: 'claims', message: notNumber };
    return bad(c[key] as number) ? { kind: 'claims', message: badMessage } : undefined;
  };
  const failure =
    time('exp', "The JWT 'exp' claim must be a number", (v) => nowSeconds - skew > v, 'JWT expired') ??
    time('nbf', "The JWT 'nbf' claim must be a number", (v) => nowSeconds + skew < v, 'JWT not yet valid') ??
    time('iat', "The JWT 'iat' claim must be a number", (v) => nowSeconds + skew < v, 'JWT issued at future');
  if (failure) return { ok: false, failure };
  return { ok: true, claims: c };
}
