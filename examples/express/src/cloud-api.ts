import express, { type Router } from 'express';
import type { Engine } from '@disparo/core';
import { cloudApiWebhookTargets, verifyCloudApiSubscription, type CloudApiTransport } from '@disparo/transport-cloud-api';
import { HttpError } from './errors.js';

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
      const targets = (named.length > 0 ? named : [...accounts]).map(([accountId]) => accountId);
      // Every target account's transport checks the signature before anything is applied (a bad one
      // refuses the whole POST and changes nothing); every status of the POST goes in one store call.
      const events = await engine.handleWebhook(targets, raw, req.headers);
      res.json({ ok: true, events: events.length });
    } catch (error) {
      next(error);
    }
  });

  return router;
}
