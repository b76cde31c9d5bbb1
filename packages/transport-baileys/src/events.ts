import { dateMs, isPersonMessage, longToNumber, messageText, phoneFromJid, timestampMs, type AccountStopReason, type ConnectionState, type TransportEvent } from '@disparo/core/transport';
import type { BaileysEventMap, WAMessage, WAMessageUpdate } from 'baileys';
import { disconnectCode, stopReasonForCode, boomInfo } from './classify.js';

/**
 * `proto.WebMessageInfo.Status`, re-declared (no runtime import of baileys):
 * ERROR 0, PENDING 1, SERVER_ACK 2, DELIVERY_ACK 3, READ 4, PLAYED 5.
 */
export const MESSAGE_STATUS = { ERROR: 0, PENDING: 1, SERVER_ACK: 2, DELIVERY_ACK: 3, READ: 4, PLAYED: 5 } as const;

/** Server error codes in a negative ack (BL: src/Utils/decode-wa-message.ts `SERVER_ERROR_CODES`). */
export const SERVER_ERROR = {
  /** The account is restricted from starting new chats (or the privacy token is missing). Never retry. */
  accountRestriction: '463',
  /** Stanza rejected, probably a stale device session. */
  smaxInvalid: '479',
} as const;

export interface MapContext {
  now: number;
  /** How long to hold the account after a 463 or a lock without an end time. */
  restrictionHoldMs: number;
}

/** A hold the transport applies to its own sends, and what lifted one. */
export type HoldChange = { source: 'reachout' | 'capping' | 'restriction'; until: number | null; reason: string };

export interface ConnectionMapping {
  events: TransportEvent[];
  /** The connection state after this update, when it says one. */
  state?: ConnectionState;
  /** Set on a close that needs a human; cleared (null) on open. */
  stopReason?: AccountStopReason | null;
  /** The close code, for closes. */
  code?: number;
  holds: HoldChange[];
}

/**
 * `connection.update` -> events (CONTRACTS.md 2.4):
 * - `open` / `connecting`: a `connection` event with that state;
 * - `close` with 401, 403, 440, 411, 402, 406: `close` with a `stopReason` (logged out, banned,
 *   replaced): the engine stops the account until it opens again;
 * - `close` with 428, 408, 500, 503, 515 (or no code): `close` without a stopReason: the account
 *   waits for the host's reconnect (a new socket handed over with `useSocket`);
 * - `reachoutTimeLock.isActive`: `account_hold` until `timeEnforcementEnds`.
 * A QR-only update changes nothing: the account stays where it is until the phone scans it.
 */
export function mapConnectionUpdate(update: BaileysEventMap['connection.update'], ctx: MapContext): ConnectionMapping {
  const out: ConnectionMapping = { events: [], holds: [] };
  if (update.connection === 'open') {
    out.state = 'open';
    out.stopReason = null;
    out.events.push({ type: 'connection', state: 'open' });
  } else if (update.connection === 'connecting') {
    out.state = 'connecting';
    out.events.push({ type: 'connection', state: 'connecting' });
  } else if (update.connection === 'close') {
    const error = update.lastDisconnect?.error;
    const code = disconnectCode(error);
    const message = error === undefined ? 'no reason given' : boomInfo(error).message;
    const stopReason = stopReasonForCode(code);
    out.state = 'close';
    if (code !== undefined) out.code = code;
    if (stopReason) {
      out.stopReason = stopReason;
      out.events.push({ type: 'connection', state: 'close', stopReason, detail: `${message} (${code}): ${STOP_ADVICE[stopReason]}` });
    } else {
      out.events.push({ type: 'connection', state: 'close', detail: `${message}${code !== undefined ? ` (${code})` : ''}: waiting for the socket to reconnect` });
    }
  }
  const lock = update.reachoutTimeLock;
  if (lock) {
    if (lock.isActive) {
      const until = dateMs(lock.timeEnforcementEnds) ?? ctx.now + ctx.restrictionHoldMs;
      const reason = `WhatsApp reachout time lock${lock.enforcementType ? ` (${lock.enforcementType})` : ''}: no new chats until ${new Date(until).toISOString()}`;
      out.holds.push({ source: 'reachout', until, reason });
      out.events.push({ type: 'account_hold', until, reason });
    } else {
      out.holds.push({ source: 'reachout', until: null, reason: 'reachout time lock lifted' });
    }
  }
  return out;
}

const STOP_ADVICE: Record<AccountStopReason, string> = {
  logged_out: 'the device was unlinked; log in again (new QR code or pairing code)',
  banned: 'WhatsApp refused the account (banned or forbidden); check the number in the app',
  replaced: 'another client took over this session; close it, then reconnect this one',
  disconnected: 'waiting for the socket to reconnect',
  unauthorized: 'the credentials were refused; log in again',
  restricted: 'the account is restricted by WhatsApp',
};

/**
 * `message-capping.update` (new-chat message cap): `CAPPED`, or a quota used up, holds the account
 * until the cycle ends; `NONE` lifts the hold; the warning levels only inform.
 */
export function mapMessageCapping(info: BaileysEventMap['message-capping.update'], ctx: MapContext): { events: TransportEvent[]; holds: HoldChange[] } {
  const used = longToNumber(info.used_quota);
  const total = longToNumber(info.total_quota);
  const capped = info.capping_status === 'CAPPED' || (used !== null && total !== null && total > 0 && used >= total);
  if (!capped) {
    return info.capping_status === 'NONE' ? { events: [], holds: [{ source: 'capping', until: null, reason: 'message cap lifted' }] } : { events: [], holds: [] };
  }
  const end = timestampMs(info.cycle_end_timestamp);
  const until = end !== null && end > ctx.now ? end : ctx.now + ctx.restrictionHoldMs;
  const reason = `WhatsApp new-chat message cap reached${used !== null && total !== null ? ` (${used}/${total})` : ''}: no new chats until ${new Date(until).toISOString()}`;
  return { events: [{ type: 'account_hold', until, reason }], holds: [{ source: 'capping', until, reason }] };
}

export interface StatusMapping {
  events: TransportEvent[];
  holds: HoldChange[];
  /** Message ids the server acknowledged (status >= SERVER_ACK): they certainly went out. */
  acked: string[];
}

/**
 * `messages.update` -> `status` events (CONTRACTS.md 0.1, 2.5): 2 sent, 3 delivered, 4 and 5 read,
 * 0 failed with the server code from `messageStubParameters[0]`. A 463 (account restricted from
 * new chats) also holds the account: Baileys' own advice is never to retry it, because a retry
 * counts as another reach-out. PENDING and updates without a status change nothing.
 */
export function mapMessagesUpdate(updates: WAMessageUpdate[], ctx: MapContext): StatusMapping {
  const out: StatusMapping = { events: [], holds: [], acked: [] };
  for (const u of Array.isArray(updates) ? updates : []) {
    const id = u?.key?.id;
    if (!id || u.key.fromMe === false) continue; // a receipt for a message we received
    const raw = u.update?.status;
    const status = typeof raw === 'number' ? raw : longToNumber(raw);
    if (status === null || status === undefined) continue;
    const at = timestampMs(u.update.messageTimestamp) ?? ctx.now;
    if (status >= MESSAGE_STATUS.SERVER_ACK) {
      out.acked.push(id);
      const mapped = status === MESSAGE_STATUS.SERVER_ACK ? 'sent' : status === MESSAGE_STATUS.DELIVERY_ACK ? 'delivered' : 'read';
      out.events.push({ type: 'status', providerMessageId: id, status: mapped, at });
    } else if (status === MESSAGE_STATUS.ERROR) {
      const params: unknown[] = Array.isArray(u.update.messageStubParameters) ? u.update.messageStubParameters : [];
      const code = typeof params[0] === 'string' || typeof params[0] === 'number' ? String(params[0]) : undefined;
      const text = params.slice(1).filter((p): p is string => typeof p === 'string').join('; ');
      let error: string;
      if (code === SERVER_ERROR.accountRestriction) {
        error = `account restricted (463${text ? `: ${text}` : ''}); not retried: a retry counts as another reach-out`;
        const until = ctx.now + ctx.restrictionHoldMs;
        const reason = `WhatsApp error 463 on ${id}: the account is restricted from starting new chats`;
        out.holds.push({ source: 'restriction', until, reason });
        out.events.push({ type: 'account_hold', until, reason });
      } else if (code === SERVER_ERROR.smaxInvalid) {
        error = `stanza rejected (479${text ? `: ${text}` : ''}), probably a stale device session`;
      } else {
        error = `rejected by the WhatsApp server${code ? ` (${code}${text ? `: ${text}` : ''})` : ''}`;
      }
      out.events.push({ type: 'status', providerMessageId: id, status: 'failed', at, error, ...(code !== undefined ? { code } : {}) });
    }
  }
  return out;
}

export interface UpsertMapping {
  events: TransportEvent[];
  /** Own messages seen (sent from this socket or from the phone): id, chat and time, for lookup. */
  own: Array<{ id: string; remoteJid: string; at: number }>;
}

/**
 * `messages.upsert` -> `inbound` events for messages a person sent to this account (not fromMe,
 * upsert type `notify`, from a phone-number chat; groups, broadcasts, newsletters and protocol
 * traffic are skipped). Core applies the opt-out keywords. Own messages are remembered for lookup.
 */
export function mapMessagesUpsert(upsert: BaileysEventMap['messages.upsert'], ctx: MapContext): UpsertMapping {
  const out: UpsertMapping = { events: [], own: [] };
  const messages: WAMessage[] = Array.isArray(upsert?.messages) ? upsert.messages : [];
  for (const m of messages) {
    const key = m?.key;
    if (!key?.id || !key.remoteJid) continue;
    const at = timestampMs(m.messageTimestamp) ?? ctx.now;
    if (key.fromMe) {
      out.own.push({ id: key.id, remoteJid: key.remoteJid, at });
      continue;
    }
    if (upsert.type !== 'notify' || !isPersonMessage(m.message)) continue;
    if (/@(g\.us|broadcast|newsletter)$/i.test(key.remoteJid)) continue;
    // A LID chat carries the phone address, if at all, in remoteJidAlt (or senderPn in older versions).
    const from = phoneFromJid(key.remoteJid) ?? phoneFromJid(key.remoteJidAlt) ?? phoneFromJid((key as { senderPn?: string }).senderPn);
    if (!from) continue;
    out.events.push({ type: 'inbound', from, text: messageText(m.message) ?? '', at, providerMessageId: key.id });
  }
  return out;
}
