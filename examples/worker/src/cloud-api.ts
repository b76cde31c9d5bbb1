import type { IncomingHttpHeaders } from 'node:http';
import type { Engine } from '@disparo/core';
import { cloudApiWebhookTargets, verifyCloudApiSubscription, type CloudApiTransport, type VerificationAnswer } from '@disparo/transport-cloud-api';

/**
 * Meta's one callback URL per app, for every Cloud API account of this worker (`/webhooks/cloud-api`
 * on HEALTH_PORT): the GET verification handshake, and signed POSTs routed by the `phone_number_id`
 * they name.
 */
export function cloudApiIntake(engine: Engine, accounts: ReadonlyMap<string, CloudApiTransport>) {
  return {
    /** `hub.mode=subscribe`, `hub.verify_token`, `hub.challenge`: 200 with the challenge when an account's verify token matches, else 403. */
    verify(query: URLSearchParams): VerificationAnswer {
      const answers = [...accounts.values()].map((t) => t.verifySubscription(query));
      return answers.find((a) => a.status === 200) ?? answers[0] ?? verifyCloudApiSubscription(query, '');
    },

    /**
     * A POST's raw body: every target account's transport verifies `X-Hub-Signature-256` over these
     * bytes before anything is applied (a bad signature throws a WebhookError and changes nothing);
     * then replies and holds per account, and every status of the POST in one store call.
     */
    async receive(raw: Buffer, headers: IncomingHttpHeaders): Promise<number> {
      const { phoneNumberIds } = cloudApiWebhookTargets(raw);
      const named = [...accounts].filter(([, t]) => phoneNumberIds.includes(t.phoneNumberId));
      const targets = (named.length > 0 ? named : [...accounts]).map(([accountId]) => accountId);
      return (await engine.handleWebhook(targets, raw, headers)).length;
    },
  };
}
