import express, { type Router } from 'express';
import type { Engine } from '@disparo/core';
import { cloudApiWebhookTargets, verifyCloudApiSubscription, type CloudApiTransport } from '@disparo/transport-cloud-api';
import { HttpError } from './errors.js';

type StatusUpdate = Parameters<Engine['applyStatusUpdates']>[0][number];
type TransportEvent = ReturnType<CloudApiTransport['parseWebhook']>[number];

/**
 * Meta's one callback URL per app, for every Cloud API account: `GET` answers the verification
 * handshake, `POST` takes the signed webhook. The body is read raw (`express.raw`): the transport
 * checks `X-Hub-Signature-256` over the exact bytes Meta signed, which `express.json()` would throw away.
 */
export function cloudApiWebhooks(engine: Engine, accounts: ReadonlyMap<string, CloudApiTransport>): Router {
  const router = express.Router();

  // GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…: the challenge back when an account's token matches, else 403.
  router.get('/', (req, res) => {
    const query = req.query as Record<string, unknown>;
    const answers = [...accounts.values()].map((t) => t.verifySubscription(query));
    const answer = answers.find((a) => a.status === 200) ?? answers[0] ?? verifyCloudApiSubscription(query, '');
    res.status(answer.status).type(answer.contentType).send(answer.body);
  });

  // POST: statuses (sent, delivered, read, failed), errors, replies and quality updates. Meta retries
  // anything but a 200, so the answer comes only after the events are stored.
  router.post('/', express.raw({ type: () => true, limit: '2mb' }), async (req, res, next) => {
    try {
      if (accounts.size === 0) throw new HttpError(404, 'NOT_FOUND', 'No Cloud API account is configured (ACCOUNTS entries with "transport": "cloud-api").');
      const raw: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      // The numbers the body is about, read before the signature check only to pick the accounts: each
      // account's transport verifies the signature itself and keeps its own number's changes. A quality
      // update names a display number, not an id: every account sees it and keeps its own.
      const { phoneNumberIds } = cloudApiWebhookTargets(raw);
      const named = [...accounts].filter(([, t]) => phoneNumberIds.includes(t.phoneNumberId));
      const targets = named.length > 0 ? named : [...accounts];
      // Verify and parse for every account first: a bad signature refuses the whole POST and changes nothing.
      const parsed = targets.map(([accountId, transport]) => ({ accountId, events: transport.parseWebhook(raw, req.headers) }));
      // Replies, holds and connection changes per account; then every status of the POST in one store call.
      for (const { accountId, events } of parsed) await engine.handleTransportEvents(accountId, events.filter((e) => e.type !== 'status'));
      const statuses = parsed.flatMap(({ events }) => events.flatMap(statusUpdate));
      if (statuses.length > 0) await engine.applyStatusUpdates(statuses);
      res.json({ ok: true, events: parsed.reduce((n, p) => n + p.events.length, 0) });
    } catch (error) {
      next(error);
    }
  });

  return router;
}

function statusUpdate(e: TransportEvent): StatusUpdate[] {
  return e.type === 'status' ? [{ providerMessageId: e.providerMessageId, status: e.status, at: e.at, error: e.error ?? null, idempotencyKey: e.idempotencyKey ?? null }] : [];
}
