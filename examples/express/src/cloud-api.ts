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

  // GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…: the challenge back when a token matches.
  router.get('/', (req, res) => {
    const tokens = [...accounts.values()].map((t) => t.verifySubscription(req.query as Record<string, unknown>));
    const answer = tokens.find((a) => a.status === 200) ?? (accounts.size > 0 ? tokens[0]! : verifyCloudApiSubscription(req.query as Record<string, unknown>, ''));
    res.status(answer.status).type(answer.contentType).send(answer.body);
  });

  // POST: statuses (sent, delivered, read, failed), errors, replies and quality updates.
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
      let events = 0;
      // One handleWebhook per account: that account's statuses go to the store in one call.
      for (const [accountId] of targets) events += (await engine.handleWebhook(accountId, raw, req.headers)).length;
      res.json({ ok: true, events });
    } catch (error) {
      next(error);
    }
  });

  return router;
}
