import type { TransportError, TransportErrorKind } from '../errors.js';
import type { CampaignSettings, SkipReason } from '../domain/types.js';
import { between } from '../random.js';

/** What the transport's lookup said about a send whose answer was ambiguous. */
export type LookupVerdict = 'absent' | 'unknown';

export interface FailedSend {
  error: TransportError;
  /** Attempts made, this one included. */
  attempts: number;
  /** For an `ambiguous` error: what the lookup proved (no lookup counts as `unknown`). */
  lookup?: LookupVerdict;
}

/**
 * What to do after a failed send, as a value:
 * - `retry`: back to the queue (lease kept) with `attempts` stored, sent again after `afterMs`; when
 *   `backOffAccountMs` is set the whole account waits that long (a rate limit);
 * - `finish`: a terminal status for the recipient (and, with `optOut`, the contact opts out);
 * - `account_lost`: the account cannot send (disconnected, logged out, banned): the recipient goes
 *   back to pending with no attempt consumed, and the account is marked so every worker moves on.
 * `accountEffect` feeds the account's run of consecutive real failures (see `failuresAfter`).
 */
export type FailureDecision =
  | { action: 'retry'; attempts: number; afterMs: number; backOffAccountMs?: number; accountEffect: 'failure' | 'none' }
  | { action: 'finish'; status: 'failed' | 'skipped' | 'unknown'; skipReason?: SkipReason; optOut?: boolean; accountEffect: 'failure' | 'none'; kind: TransportErrorKind }
  | { action: 'account_lost' };

type RetrySettings = Pick<CampaignSettings, 'maxAttempts' | 'retryBackoffMs' | 'inDoubt'>;

/** Default waits when the provider gives no retry-after: an account-wide rate limit, one contact's pair rate. */
export const RATE_LIMIT_WAIT_MS = 60_000;
export const RECIPIENT_RATE_WAIT_MS = 6_000;

/**
 * The retry rules, in one pure function (see the table in the @disparo/core README):
 *
 * | error                               | decision                                                        |
 * | ----------------------------------- | --------------------------------------------------------------- |
 * | rate_limited (account)              | retry, no attempt consumed, the account backs off               |
 * | rate_limited (scope recipient)      | retry this contact later, no attempt consumed, others go on     |
 * | account                             | account_lost                                                    |
 * | invalid_recipient                   | finish skipped (not_on_whatsapp, or opted_out with optOut)      |
 * | permanent                           | finish failed (counts against the account without a scope)      |
 * | transient                           | retry with backoff while attempts remain, then finish failed    |
 * | ambiguous, lookup proved absent     | as transient (a resend is safe)                                 |
 * | ambiguous, lookup cannot tell       | at-most-once: finish unknown; at-least-once: as transient       |
 */
export function decideAfterFailure(failed: FailedSend, settings: RetrySettings, random: () => number): FailureDecision {
  const { error, attempts } = failed;
  const backoff = () => between(random, settings.retryBackoffMs.min, settings.retryBackoffMs.max);
  const retryOrFail = (accountEffect: 'failure' | 'none'): FailureDecision =>
    attempts < settings.maxAttempts
      ? { action: 'retry', attempts, afterMs: backoff(), accountEffect }
      : { action: 'finish', status: 'failed', accountEffect, kind: error.kind };
  switch (error.kind) {
    case 'rate_limited':
      // A rate limit consumes no attempt: give this one back.
      return error.scope === 'recipient'
        ? { action: 'retry', attempts: attempts - 1, afterMs: error.retryAfterMs ?? RECIPIENT_RATE_WAIT_MS, accountEffect: 'none' }
        : { action: 'retry', attempts: attempts - 1, afterMs: 0, backOffAccountMs: error.retryAfterMs ?? RATE_LIMIT_WAIT_MS, accountEffect: 'none' };
    case 'account':
      return { action: 'account_lost' };
    case 'invalid_recipient':
      return error.optOut
        ? { action: 'finish', status: 'skipped', skipReason: 'opted_out', optOut: true, accountEffect: 'none', kind: error.kind }
        : { action: 'finish', status: 'skipped', skipReason: 'not_on_whatsapp', accountEffect: 'none', kind: error.kind };
    case 'permanent':
      // Only a failure that says nothing of its cause blames the account: one scoped to the content
      // (campaign) or to the contact (a closed 24 h window, a value the provider refuses for this
      // recipient) would disable a healthy number after a few such contacts in a row.
      return { action: 'finish', status: 'failed', accountEffect: error.scope === undefined ? 'failure' : 'none', kind: error.kind };
    case 'transient':
      return retryOrFail('failure');
    case 'ambiguous':
      if (failed.lookup !== 'absent' && settings.inDoubt === 'at-most-once') return { action: 'finish', status: 'unknown', accountEffect: 'none', kind: error.kind };
      return retryOrFail('none');
  }
}
