import type { Transport, TransportErrorKind } from '@disparo/core/transport';
import { envelope, FakeEvolution, type Reply } from './fake-evolution.js';
import { fixture } from './fixtures.js';
import { transportFor } from './helpers.js';

/** Evolution wire answers that make the next send fail with each kind (CONTRACTS.md 1.4/1.10). */
export const FAIL_REPLY: Record<TransportErrorKind, Reply> = {
  // 500 with a plain "Timed Out": the number check timed out before the send.
  transient: { status: 500, body: envelope(500, 'Timed Out') },
  rate_limited: { fixture: 'evolution.error.rate-overlimit.json' },
  invalid_recipient: { fixture: 'evolution.error.number-not-exists.json' },
  permanent: { fixture: 'evolution.error.validation.json' },
  account: { fixture: 'evolution.error.connection-closed.400.json' },
  // It went out, then the connection dropped before the answer.
  ambiguous: { sendFirst: true, destroy: true },
};

export const HARNESS_JWT_KEY = 'conformance-jwt-key';

type Headers = Record<string, string | string[] | undefined>;

/** The harness shape of core's `describeTransport` (`TransportHarness` in @disparo/core/testing). */
export interface EvolutionHarness {
  transport: Transport;
  lookupProvesAbsence: boolean;
  script: {
    failNext(kind: TransportErrorKind): void;
    markNotOnWhatsApp(phone: string): void;
    disconnect(): void;
    reconnect(): void;
    received(): Array<{ to: string; text: string }>;
    holdNext(): void;
    webhookHeaders(body: unknown): Headers;
    sampleWebhook(): { body: unknown; headers: Headers };
  };
  close(): Promise<void>;
  fake: FakeEvolution;
}

/** The real transport against a fresh fake Evolution server, with the scripting hooks core's suite uses. */
export async function evolutionHarness(): Promise<EvolutionHarness> {
  const fake = await FakeEvolution.start();
  // The fake instance stores what it sends, so its lookup may prove a message never left.
  const transport = transportFor(fake, { timeoutMs: 2_000, rateLimitBackoffMs: 1_000, storesMessages: true, webhook: { jwtKey: HARNESS_JWT_KEY } });
  const signed = (): Headers => ({ authorization: `Bearer ${fake.signJwt(HARNESS_JWT_KEY)}` });
  return {
    transport,
    fake,
    lookupProvesAbsence: true,
    script: {
      failNext: (kind) => void fake.next('send', FAIL_REPLY[kind]),
      markNotOnWhatsApp: (phone) => void fake.notOnWhatsApp.add(phone),
      disconnect: () => {
        fake.state = 'close';
      },
      reconnect: () => {
        fake.state = 'open';
      },
      received: () => fake.stored.filter((s) => s.fromMe).map((s) => ({ to: s.number, text: s.text ?? '' })),
      holdNext: () => void fake.next('send', { sendFirst: true, hold: true }),
      webhookHeaders: () => signed(),
      sampleWebhook: () => ({ body: fixture('evolution.webhook.messages.update.read.json'), headers: signed() }),
    },
    close: () => fake.close(),
  };
}
