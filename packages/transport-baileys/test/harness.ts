import type { TransportErrorKind } from '@disparo/core/transport';
import type { TransportHarness } from '@disparo/core/testing';
import { createBaileysTransport, type BaileysTransport, type BaileysTransportOptions } from '../src/index.js';
import { FakeWhatsApp } from './fake-whatsapp.js';
import { boom, boomFixture } from './fixtures.js';

export const RATE_LIMIT_BACKOFF_MS = 120_000;

/** What Baileys throws for each kind (CONTRACTS.md 2.2, 2.6); `invalid_recipient` is onWhatsApp finding nobody. */
export function scriptFailure(fake: FakeWhatsApp, kind: TransportErrorKind): void {
  switch (kind) {
    case 'transient':
      // An IQ error from a device lookup inside relayMessage: Boom(text, { data: code }).
      return fake.failNextSend(boom('internal-server-error', { data: 500 }));
    case 'rate_limited':
      return fake.failNextSend(boomFixture('baileys.error.rate-overlimit.json'));
    case 'invalid_recipient':
      return fake.notFoundNextCheck();
    case 'permanent':
      // Baileys' own content check (generateWAMessageContent).
      return fake.failNextSend(boom('Invalid media type', { statusCode: 400 }));
    case 'account':
      return fake.failNextSend(boomFixture('baileys.error.connection-closed.json'));
    case 'ambiguous':
      // The stanza was written, then a query timed out (promiseTimeout).
      return fake.failNextSend(boom('Timed Out', { statusCode: 408 }), { sendFirst: true });
  }
}

export interface BaileysHarness extends TransportHarness {
  transport: BaileysTransport;
  fake: FakeWhatsApp;
}

/** The real transport over a fresh fake WhatsApp, with the hooks core's `describeTransport` drives. */
export function baileysHarness(extra: Partial<BaileysTransportOptions> = {}): BaileysHarness {
  const fake = new FakeWhatsApp();
  const transport = createBaileysTransport({ socket: fake.socket(), rateLimitBackoffMs: RATE_LIMIT_BACKOFF_MS, ...extra });
  fake.current.connect();
  return {
    transport,
    fake,
    script: {
      failNext: (kind) => {
        scriptFailure(fake, kind);
        return kind === 'rate_limited' ? { retryAfterMs: RATE_LIMIT_BACKOFF_MS } : undefined;
      },
      markNotOnWhatsApp: (phone) => void fake.notOnWhatsApp.add(phone),
      disconnect: () => fake.drop(),
      reconnect: () => {
        // Baileys needs a new socket after a close: the host's reconnect loop hands it over.
        const next = fake.socket({ open: false });
        transport.useSocket(next);
        next.connect();
      },
      received: () => fake.accepted.map((a) => ({ to: a.jid, text: a.text ?? '' })),
      holdNext: () => fake.holdNextSend(),
      emitInbound: (from, text) => fake.inbound(from, text),
    },
    close: () => transport.close(),
  };
}
