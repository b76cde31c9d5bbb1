import type { AccountStopReason } from '../errors.js';
import type { ConnectionState, MediaSpec } from '../domain/types.js';

/** One message on its way out. */
export interface OutboundMessage {
  /** E.164 digits without '+'. */
  to: string;
  text: string;
  media?: MediaSpec | null;
  /**
   * Deterministic per (campaign, recipient): the same key on every attempt and after every crash.
   * Transports pass it to the provider where it accepts one (Baileys: the message id is derived from it).
   */
  idempotencyKey: string;
}

export interface SendOptions {
  signal?: AbortSignal;
}

export interface SendResult {
  providerMessageId: string;
  /** Epoch ms at which the provider accepted the message. */
  acceptedAt: number;
  /** Provider-normalised recipient address, e.g. `5511987654321@s.whatsapp.net`. */
  remoteJid?: string;
}

export interface NumberCheck {
  phone: string;
  exists: boolean;
  /** The canonical address when it differs (Brazilian 9th digit). */
  jid?: string;
}

export interface LookupQuery {
  message: OutboundMessage;
  /** The send was attempted at or after this time. */
  since: number;
}

/**
 * What a lookup can say about a send in doubt. Only `found` and `absent` settle it: `absent` is a
 * proof (the provider keeps a record of everything it sent and this is not in it), so a resend is
 * safe; a provider that keeps no record proves nothing by finding nothing and answers `unknown`,
 * and the campaign's `inDoubt` policy decides.
 */
export type LookupResult = { status: 'found'; sent: SendResult } | { status: 'absent' } | { status: 'unknown'; reason: string };

/** What a provider tells us outside a send's reply: receipts, connection changes, inbound messages. */
export type TransportEvent =
  | {
      type: 'status';
      providerMessageId: string;
      status: 'sent' | 'delivered' | 'read' | 'failed';
      at: number;
      error?: string;
      /** Provider code for failures, e.g. 131047 or 463. */
      code?: string | number;
      /**
       * A failure that says the contact stopped receiving these messages (Cloud API 131050): the
       * engine opts the contact out of every campaign, as for a send refused with `optOut`.
       */
      optOut?: boolean;
      /**
       * The message's idempotency key when the provider echoes a correlation string (Cloud API
       * `biz_opaque_callback_data`): settles a send whose reply was lost, before its id was known.
       */
      idempotencyKey?: string;
    }
  | {
      type: 'connection';
      state: ConnectionState;
      /** Set when the account cannot come back without a human (logged out, banned, replaced). */
      stopReason?: AccountStopReason;
      detail?: string;
    }
  | {
      /** The provider asks this account to hold off (Baileys reachoutTimeLock, message capping). */
      type: 'account_hold';
      until: number;
      reason: string;
    }
  | { type: 'inbound'; from: string; text: string; at: number; providerMessageId?: string };

export type TransportEventListener = (event: TransportEvent) => void;

/**
 * One sender account's connection to a provider. `send` throws `TransportError` with a `kind`
 * (see errors.ts) for every failure; anything else thrown is treated as `transient`.
 * A transport is done when it passes `describeTransport` from `@disparo/core/testing`.
 */
export interface Transport {
  /** e.g. `evolution`, `baileys`, `cloud-api`, `simulator`. */
  readonly name: string;
  send(message: OutboundMessage, options?: SendOptions): Promise<SendResult>;
  connectionState?(): Promise<ConnectionState>;
  checkNumbers?(phones: string[]): Promise<NumberCheck[]>;
  /** Find a message already sent under this key (or matching it), for in-doubt recovery. See `LookupResult`. */
  lookup?(query: LookupQuery): Promise<LookupResult>;
  /** Turn a provider webhook into events. Throws `WebhookError` when unsigned or malformed. */
  parseWebhook?(body: unknown, headers: Record<string, string | string[] | undefined>): TransportEvent[] | Promise<TransportEvent[]>;
  /** Push transports (sockets) deliver events here. Returns an unsubscribe function. */
  subscribe?(listener: TransportEventListener): () => void;
  /** Show "typing..." to `to` for about `ms`. Best effort: failures are ignored. */
  typing?(to: string, ms: number, options?: SendOptions): Promise<void>;
  close?(): Promise<void>;
}

export type { AccountStopReason };
