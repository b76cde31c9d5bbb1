import type { Transport, TransportErrorKind } from '@disparo/core/transport';
import { FakeGraph, metaSerialize, metaSign, type Reply } from './fake-graph.js';
import { fixture } from './fixtures.js';
import { transportFor } from './helpers.js';

/** Graph answers that make the next send fail with each kind (CONTRACTS.md 3.5). */
export const FAIL_REPLY: Record<TransportErrorKind, Reply> = {
  transient: { code: 131016 },
  rate_limited: { code: 130429 },
  invalid_recipient: { code: 131026 },
  permanent: { code: 131047 },
  account: { code: 190 },
  // Meta took it, then the connection dropped before the answer.
  ambiguous: { sendFirst: true, destroy: true },
};

const THROUGHPUT_BACKOFF_MS = 1_500;

type Headers = Record<string, string | string[] | undefined>;

/** The harness shape of core's `describeTransport` (`TransportHarness` in @disparo/core/testing). */
export interface CloudApiHarness {
  transport: Transport;
  script: {
    failNext(kind: TransportErrorKind): { retryAfterMs?: number };
    received(): Array<{ to: string; text: string; idempotencyKey?: string }>;
    holdNext(): void;
    webhookHeaders(body: unknown): Headers;
    sampleWebhook(): { body: unknown; headers: Headers };
  };
  close(): Promise<void>;
  fake: FakeGraph;
}

/**
 * The real transport against a fresh fake Graph server. No disconnect/reconnect or
 * markNotOnWhatsApp: the Cloud API has no connection to drop, and it accepts a send to a number
 * that is not on WhatsApp (the failure arrives later as a 131026 status webhook).
 */
export async function cloudApiHarness(): Promise<CloudApiHarness> {
  const fake = await FakeGraph.start();
  const transport = transportFor(fake, { throughputBackoffMs: THROUGHPUT_BACKOFF_MS });
  const sign = (body: unknown): Headers => {
    const raw = typeof body === 'string' ? body : (JSON.stringify(body) ?? '');
    return { 'x-hub-signature-256': metaSign(raw, fake.appSecret) };
  };
  return {
    transport,
    fake,
    script: {
      failNext: (kind) => {
        fake.next(FAIL_REPLY[kind]);
        return kind === 'rate_limited' ? { retryAfterMs: THROUGHPUT_BACKOFF_MS } : {};
      },
      received: () => fake.accepted.map((m) => ({ to: m.to, text: m.text, ...(m.callbackData !== undefined ? { idempotencyKey: m.callbackData } : {}) })),
      holdNext: () => void fake.next({ sendFirst: true, hold: true }),
      webhookHeaders: sign,
      sampleWebhook: () => {
        const raw = metaSerialize(fixture('cloudapi.webhook.status.read.json'));
        return { body: raw, headers: sign(raw) };
      },
    },
    close: () => fake.close(),
  };
}
