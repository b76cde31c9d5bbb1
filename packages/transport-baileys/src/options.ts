import { z } from 'zod';
import { validate, type Clock, type OutboundMessage } from '@disparo/core/transport';
import type { WAMessageKey, proto } from 'baileys';
import type { BaileysSocket } from './types.js';

const fn = <T>(what: string) => z.custom<T>((v) => typeof v === 'function', `must be ${what}`);

const isSocket = (v: unknown): boolean => {
  if (typeof v !== 'object' || v === null) return false;
  const s = v as Record<string, unknown>;
  const ev = s.ev as Record<string, unknown> | undefined;
  return typeof s.sendMessage === 'function' && typeof s.onWhatsApp === 'function' && typeof s.sendPresenceUpdate === 'function' && typeof ev?.on === 'function' && typeof ev?.off === 'function';
};

export const socketSchema = z.custom<BaileysSocket>(isSocket, 'must be a Baileys socket from makeWASocket (ev, sendMessage, onWhatsApp, sendPresenceUpdate)');

const typingSchema = z
  .object({
    /** "typing…" per character of the text. */
    msPerChar: z.number().nonnegative().max(1_000).default(40),
    minMs: z.number().int().nonnegative().default(800),
    maxMs: z.number().int().nonnegative().max(60_000).default(8_000),
  })
  .strict()
  .refine((t) => t.maxMs >= t.minMs, { message: 'must be >= minMs', path: ['maxMs'] });

const DEFAULT_TYPING = { msPerChar: 40, minMs: 800, maxMs: 8_000 };

export const optionsSchema = z
  .object({
    /** The socket the host created with `makeWASocket` (the host owns login, QR and auth state). */
    socket: socketSchema,
    /** Time source for typing pauses, holds and event times; defaults to the system clock. */
    clock: z.custom<Clock>((v) => typeof v === 'object' && v !== null && typeof (v as Clock).now === 'function' && typeof (v as Clock).sleep === 'function', 'must be a Clock (now and sleep)').optional(),
    /**
     * Show "typing…" (`composing`) before each send, for a time proportional to the text
     * (`msPerChar`, bounded by `minMs`..`maxMs`), then `paused`, then send. Off by default: the
     * engine's own typing (`pacing.typingMsPerChar`, through `typing()`) holds no worker while it waits.
     */
    typingBeforeSend: z
      .union([z.boolean(), typingSchema])
      .default(false)
      .transform((v) => (v === true ? DEFAULT_TYPING : v === false ? null : v)),
    /**
     * Ask `onWhatsApp` before sending to a number not checked yet (Baileys itself does not check):
     * a number WhatsApp does not know fails as `invalid_recipient` and nothing is sent; the
     * canonical JID it returns (Brazil's 9th digit) is the one sent to. On by default.
     */
    checkBeforeSend: z.boolean().default(true),
    /** How long a positive number check is trusted (negative ones are never cached). */
    numberCacheTtlMs: z.number().int().nonnegative().default(24 * 3_600_000),
    /** Numbers per `onWhatsApp` call in `checkNumbers`. */
    numberCheckChunk: z.number().int().positive().max(500).default(50),
    /** Back-off for WhatsApp's `rate-overlimit`, which carries no retry-after (CONTRACTS.md 2.6: minutes). */
    rateLimitBackoffMs: z.number().int().positive().default(300_000),
    /** Hold after an error 463, or a lock/cap without an end time. */
    restrictionHoldMs: z.number().int().positive().default(3_600_000),
    /**
     * While a hold is active (reachout time lock, message cap, 463), `send` refuses at once with
     * `rate_limited` until it ends, without touching WhatsApp. On by default.
     */
    enforceHolds: z.boolean().default(true),
    /**
     * The host's message store, with the signature of Baileys' own `getMessage` config option: lets
     * `lookup` find a message sent by an earlier process (the deterministic id is asked for).
     */
    getMessage: fn<(key: WAMessageKey) => Promise<proto.IMessage | undefined | null>>('a function (key) => Promise<message | undefined>').optional(),
    /** Sent or acknowledged message ids remembered in memory for `lookup`. */
    lookupMemory: z.number().int().positive().default(10_000),
  })
  .strict();

export type BaileysTransportOptions = z.input<typeof optionsSchema>;
export type ResolvedOptions = z.output<typeof optionsSchema>;
export type TypingOptions = z.input<typeof typingSchema>;

export const parseOptions = (input: unknown): ResolvedOptions => validate(optionsSchema, input, 'Baileys transport options');

/** How long to show "typing…" before `message`, or 0. */
export function typingMsFor(message: OutboundMessage, typing: ResolvedOptions['typingBeforeSend']): number {
  if (!typing) return 0;
  return Math.round(Math.min(typing.maxMs, Math.max(typing.minMs, message.text.length * typing.msPerChar)));
}
