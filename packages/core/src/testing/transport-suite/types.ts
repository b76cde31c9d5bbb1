import type { TransportErrorKind } from '../../errors.js';
import type { Transport } from '../../transport/contract.js';

/** A message as the provider received it. */
export interface ReceivedMessage {
  /** E.164 digits of the addressee (strip any `@s.whatsapp.net`). */
  to: string;
  text: string;
  /** The idempotency key, when the provider can attribute the message to one; checked when present. */
  idempotencyKey?: string;
}

/** What the provider said when a failure was scripted, so the suite can check the transport carried it. */
export interface ScriptedFailure {
  /** For `rate_limited`: the retry-after the provider announced (the transport must surface it). */
  retryAfterMs?: number;
}

export type Awaitable<T> = T | Promise<T>;

/**
 * Control over the provider behind the transport, faked at the wire (an HTTP server speaking the
 * provider's API, a fake socket). Every capability is optional; the cases that need one it lacks
 * are skipped (or fail, when listed in `TransportSuiteOptions.require`).
 */
export interface TransportScript {
  /** Make the provider answer the next send with a failure the transport must classify as `kind`. */
  failNext?(kind: TransportErrorKind): Awaitable<void | ScriptedFailure>;
  /** Kinds `failNext` can produce; all six when absent. */
  failKinds?: readonly TransportErrorKind[];
  /** From now on the provider says this number is not on WhatsApp. */
  markNotOnWhatsApp?(phone: string): Awaitable<void>;
  /** Drop the account's connection (recoverable: not a logout). */
  disconnect?(): Awaitable<void>;
  /** Bring the connection back after `disconnect`. */
  reconnect?(): Awaitable<void>;
  /** Messages the provider accepted, oldest first. */
  received?(): Awaitable<ReceivedMessage[]>;
  /** The provider accepts the next send but never answers, so only the caller's signal can end it. */
  holdNext?(): Awaitable<void>;
  /** Make the provider push an inbound message (for `subscribe`). */
  emitInbound?(from: string, text: string): Awaitable<void>;
  /** Headers that authenticate `body` as the provider would sign it (so garbage is rejected as malformed, not only as unsigned). */
  webhookHeaders?(body: unknown): Awaitable<Record<string, string | string[] | undefined>>;
  /** A genuine, authenticated webhook for `parseWebhook`. */
  sampleWebhook?(): Awaitable<{ body: unknown; headers: Record<string, string | string[] | undefined> }>;
}

/** What the factory returns for each case: a fresh transport on a fresh (faked) provider. */
export interface TransportHarness {
  transport: Transport;
  script?: TransportScript;
  /**
   * Whether this transport's lookup can prove that a message was never sent (the provider keeps a
   * record of everything it sent): it may then answer `absent`; otherwise it must answer `unknown`.
   */
  lookupProvesAbsence?: boolean;
  /** Tear down the fake provider and the transport; when absent the suite calls `transport.close()`. */
  close?(): Awaitable<void>;
}

export type TransportCapability =
  | 'failNext'
  | 'markNotOnWhatsApp'
  | 'disconnect'
  | 'reconnect'
  | 'received'
  | 'holdNext'
  | 'emitInbound'
  | 'connectionState'
  | 'checkNumbers'
  | 'lookup'
  | 'parseWebhook'
  | 'subscribe'
  | 'typing';

export interface TransportSuiteOptions {
  /** Phones to send to (at least 4, distinct, accepted by the provider); Brazilian sample mobiles by default. */
  phones?: string[];
  /** Text of the messages sent. */
  text?: string;
  /** How long to wait for a pushed event or an aborted send to settle (real ms). Default 2000. */
  eventTimeoutMs?: number;
  /** Capabilities this transport must have: their cases fail instead of skipping when absent. */
  require?: readonly TransportCapability[];
  /** Case titles to skip, with the reason (for a provider that truly cannot do something). */
  skip?: Record<string, string>;
}

