import { safeEqual } from './signature.js';

/** The query of Meta's GET verification request, in any shape a framework hands over. */
export type VerificationQuery = URLSearchParams | string | Record<string, unknown>;

export interface VerificationAnswer {
  /** 200 with the challenge, or 403. */
  status: 200 | 403;
  /** The body to send, as `text/plain`. */
  body: string;
  contentType: 'text/plain';
}

function read(query: VerificationQuery, key: 'mode' | 'verify_token' | 'challenge'): string | undefined {
  if (typeof query === 'string') return new URLSearchParams(query.startsWith('?') ? query.slice(1) : query).get(`hub.${key}`) ?? undefined;
  if (query instanceof URLSearchParams) return query.get(`hub.${key}`) ?? undefined;
  // Flat keys (`hub.mode`, Express's default parser) or nested ones (`{ hub: { mode } }`, parsers with dots on).
  let value: unknown = query[`hub.${key}`];
  if (value === undefined && typeof query.hub === 'object' && query.hub !== null) value = (query.hub as Record<string, unknown>)[key];
  if (Array.isArray(value)) value = value[0];
  return typeof value === 'string' ? value : typeof value === 'number' ? String(value) : undefined;
}

/** Meta sends a number; anything else is not echoed back (it would let others make us reflect text). */
const CHALLENGE = /^[A-Za-z0-9_-]{1,256}$/;

/**
 * Meta's webhook verification handshake: `GET <callback>?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`.
 * Answers 200 with the challenge as the body when the mode is `subscribe` and the token matches
 * (constant-time), otherwise 403.
 *
 * ```ts
 * app.get('/webhooks/cloud-api', (req, res) => {
 *   const answer = verifyCloudApiSubscription(req.query, process.env.WHATSAPP_VERIFY_TOKEN!);
 *   res.status(answer.status).type('text/plain').send(answer.body);
 * });
 * ```
 */
export function verifyCloudApiSubscription(query: VerificationQuery, verifyToken: string): VerificationAnswer {
  const forbidden = (why: string): VerificationAnswer => ({ status: 403, body: `Forbidden: ${why}`, contentType: 'text/plain' });
  if (typeof verifyToken !== 'string' || verifyToken.length === 0) return forbidden('no verify token is configured');
  const mode = read(query, 'mode');
  const token = read(query, 'verify_token');
  const challenge = read(query, 'challenge');
  if (mode !== 'subscribe') return forbidden('hub.mode is not "subscribe"');
  if (token === undefined || !safeEqual(token, verifyToken)) return forbidden('hub.verify_token does not match');
  if (challenge === undefined || !CHALLENGE.test(challenge)) return forbidden('hub.challenge is missing or not a plain token');
  return { status: 200, body: challenge, contentType: 'text/plain' };
}
