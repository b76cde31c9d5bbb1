import type { OptOut } from '../../domain/types.js';
import { BATCH_COUNT } from '../../rules/counters.js';
import { OPT_OUT_CANCELS } from '../../rules/recipients.js';
import type { ContactSend } from '../contract.js';
import type { MemoryTables } from './memory-tables.js';

/** The memory store's contacts: the suppression list and who was sent what, across campaigns. */

export function addOptOuts(t: MemoryTables, entries: OptOut[], now: number): { added: number; cancelled: number } {
  let added = 0;
  let cancelled = 0;
  for (const e of entries) {
    if (!t.optOuts.has(e.phone)) {
      t.optOuts.set(e.phone, { ...e });
      added++;
    }
    // One lookup per campaign, not a scan of rows.
    for (const cs of t.campaigns.values()) {
      const row = cs.byPhone.get(e.phone);
      if (!row || !OPT_OUT_CANCELS.includes(row.status)) continue;
      t.skipOptedOut(cs, row, now);
      cancelled++;
    }
  }
  return { added, cancelled };
}

export function listOptOuts(t: MemoryTables, phones?: string[]): OptOut[] {
  if (!phones) return [...t.optOuts.values()].map((o) => ({ ...o }));
  const out: OptOut[] = [];
  for (const phone of new Set(phones)) {
    const o = t.optOuts.get(phone);
    if (o) out.push({ ...o });
  }
  return out;
}

export function contactHistory(t: MemoryTables, phones: string[], since: number): ContactSend[] {
  const out: ContactSend[] = [];
  for (const phone of new Set(phones)) {
    for (const cs of t.campaigns.values()) {
      const r = cs.byPhone.get(phone);
      if (r && BATCH_COUNT[r.status] === 'sent' && r.sentAt !== null && r.sentAt >= since) {
        out.push({ phone, campaignId: r.campaignId, accountId: r.accountId, sentAt: r.sentAt });
      }
    }
  }
  return out.sort((a, b) => b.sentAt - a.sentAt);
}

/** A report, not the hot path: it scans the rows. */
export function accountSendTimes(t: MemoryTables, accountId: string, since: number, limit: number): number[] {
  const times: number[] = [];
  for (const cs of t.campaigns.values()) {
    for (const r of cs.rows) {
      if (r.accountId === accountId && r.sentAt !== null && r.sentAt >= since && BATCH_COUNT[r.status] === 'sent') times.push(r.sentAt);
    }
  }
  return times.sort((a, b) => a - b).slice(0, Math.max(0, limit));
}
