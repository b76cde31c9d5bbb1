import type { IncomingHttpHeaders } from 'node:http';
import type { Engine } from '@disparo/core';
import { cloudApiWebhookTargets, verifyCloudApiSubscription, type CloudApiTransport, type VerificationAnswer } from '@disparo/transport-cloud-api';

type StatusUpdate = Parameters<Engine['applyStatusUpdates']>[0][number];
type TransportEvent = ReturnType<CloudApiTransport['parseWebhook']>[number];

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
      const targets = named.length > 0 ? named : [...accounts];
      const parsed = targets.map(([accountId, transport]) => ({ accountId, events: transport.parseWebhook(raw, headers) }));
      for (const { accountId, events } of parsed) await engine.handleTransportEvents(accountId, events.filter((e) => e.type !== 'status'));
      const statuses = parsed.flatMap(({ events }) => events.flatMap(statusUpdate));
      if (statuses.length > 0) await engine.applyStatusUpdates(statuses);
      return parsed.reduce((n, p) => n + p.events.length, 0);
    },
  };
}

function statusUpdate(e: TransportEvent): StatusUpdate[] {
  return e.type === 'status' ? [{ providerMessageId: e.providerMessageId, status: e.status, at: e.at, error: e.error ?? null, idempotencyKey: e.idempotencyKey ?? null }] : [];
}
