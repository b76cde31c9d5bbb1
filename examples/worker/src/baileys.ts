/**
 * One WhatsApp number over Baileys, owned by this worker: login with a QR (logged as the `qr` field
 * of a JSON line; render it with e.g. `jq -r 'select(.qr).qr' | qrencode -t ansiutf8`), auth state in
 * a folder, and a new socket after every transient close (Baileys needs a fresh `makeWASocket` per
 * connection), handed to the transport with `useSocket` so the engine keeps one Transport.
 *
 * The `baileys` module is imported only when an account uses it, so workers on Evolution or the
 * simulator never load it.
 */
import type { Logger as Pino } from 'pino';
import type { Transport } from '@disparo/core';
import { createBaileysTransport, type BaileysTransport } from '@disparo/transport-baileys';

type BaileysModule = typeof import('baileys');
type LiveSocket = ReturnType<BaileysModule['makeWASocket']>;
type ConnectionUpdate = { connection?: string; qr?: string; lastDisconnect?: { error?: unknown } };

export interface BaileysAccount {
  transport: Transport;
  close(): Promise<void>;
}

const statusCodeOf = (error: unknown): number | undefined => {
  const e = error as { output?: { statusCode?: unknown } } | undefined;
  return typeof e?.output?.statusCode === 'number' ? e.output.statusCode : undefined;
};

export async function createBaileysAccount(id: string, authDir: string, parent: Pino): Promise<BaileysAccount> {
  const log = parent.child({ account: id, transport: 'baileys' });
  let mod: BaileysModule;
  try {
    mod = await import('baileys');
  } catch (error) {
    throw new Error(`Account ${id} uses transport "baileys", but the baileys package could not be loaded (run pnpm install in the repository): ${(error as Error).message}`);
  }
  const { state, saveCreds } = await mod.useMultiFileAuthState(authDir);
  const loggedOut = Number(mod.DisconnectReason.loggedOut ?? 401);
  const restartRequired = Number(mod.DisconnectReason.restartRequired ?? 515);

  let transport: BaileysTransport | null = null;
  let current: LiveSocket | null = null;
  let closed = false;
  let attempt = 0;
  let retry: NodeJS.Timeout | null = null;

  const connect = () => {
    if (closed) return;
    const sock = mod.makeWASocket({ auth: state, logger: log.child({ module: 'baileys' }, { level: 'warn' }), markOnlineOnConnect: false, syncFullHistory: false });
    current = sock;
    const onCreds = () => void saveCreds().catch((err: unknown) => log.error({ err }, 'saving Baileys credentials failed'));
    const onConnection = (u: ConnectionUpdate) => {
      if (u.qr) log.info({ qr: u.qr }, 'scan this QR in WhatsApp > Linked devices to log in');
      if (u.connection === 'open') {
        attempt = 0;
        log.info('WhatsApp connection open');
      }
      if (u.connection !== 'close') return;
      sock.ev.off('creds.update', onCreds);
      sock.ev.off('connection.update', onConnection);
      if (current === sock) current = null;
      if (closed) return;
      const code = statusCodeOf(u.lastDisconnect?.error);
      if (code === loggedOut) {
        // The transport reports the logout to the engine (account stopped, campaigns pause no_accounts).
        log.error({ code }, `logged out: delete ${authDir} and restart the worker to scan a new QR`);
        return;
      }
      // 515 right after the QR scan is routine: reconnect at once. Otherwise back off, up to a minute.
      const delayMs = code === restartRequired ? 0 : Math.min(60_000, 1_000 * 2 ** attempt++);
      log.warn({ code, delayMs }, 'WhatsApp connection closed; reconnecting');
      retry = setTimeout(connect, delayMs);
    };
    sock.ev.on('creds.update', onCreds);
    sock.ev.on('connection.update', onConnection);
    // The transport listens to the socket's events itself (connection, receipts, inbound, holds).
    if (transport) transport.useSocket(sock);
    else transport = createBaileysTransport({ socket: sock });
  };
  connect();

  return {
    transport: transport!,
    close: async () => {
      closed = true;
      if (retry) clearTimeout(retry);
      await transport?.close();
      current?.end(undefined);
      current = null;
    },
  };
}
