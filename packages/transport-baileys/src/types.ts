import type { WASocket } from 'baileys';

/**
 * The part of a Baileys `WASocket` (from `makeWASocket`) this transport uses. A real socket fits;
 * so does a test double. Only types come from `baileys`: nothing of it is loaded at run time.
 */
export type BaileysSocket = Pick<WASocket, 'sendMessage' | 'onWhatsApp' | 'sendPresenceUpdate'> & {
  ev: Pick<WASocket['ev'], 'on' | 'off'>;
  /** The logged-in account (`creds.me`), when known. */
  user?: WASocket['user'];
  /** Read only to guess the initial connection state of a socket wrapped after it opened. */
  ws?: { readonly isOpen?: boolean };
};
