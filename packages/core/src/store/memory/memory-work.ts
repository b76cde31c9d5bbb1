import type { Recipient, RecipientStatus } from '../../domain/types.js';
import { HELD_RECEIPT_MS, deliveryTransition, holdsReceipt } from '../../rules/delivery.js';
import { failuresAfter, outcomeApplies } from '../../rules/recipients.js';
import { nextSendAfterSettling, reserveSlots, type SlotItem } from '../../rules/slots.js';
import type { CheckpointInput, CheckpointResult, ClaimInput, InDoubtSettlement, Outcome, OutcomeResult, StatusUpdate, StatusUpdateResult } from '../contract.js';
import { copyRow, type MemoryTables, type Row } from './memory-tables.js';

/** The send path of the memory store: claims, checkpoints, leases, recovery and receipts. */

export function claim(t: MemoryTables, input: ClaimInput): Recipient[] {
  const cs = t.campaigns.get(input.campaignId);
  const b = cs?.batches.get(input.batch);
  if (!cs || !b) return [];
  const { now, owner } = input;
  if (b.record.startedAt === null) b.record.startedAt = now;
  const out: Recipient[] = [];
  const rows = b.rows;
  let i = b.low;
  while (i < rows.length && rows[i]!.status !== 'pending') i++;
  b.low = i;
  const expiresAt = now + input.leaseMs;
  for (; i < rows.length && out.length < input.limit; i++) {
    const row = rows[i]!;
    if (row.status !== 'pending') continue;
    if (row.leaseOwner !== null && row.leaseExpiresAt !== null && row.leaseExpiresAt > now) continue; // live lease
    if (t.optOuts.has(row.phone)) {
      // Opted out after import: never sent, and it does not count toward `limit`.
      t.skipOptedOut(cs, row, now);
      continue;
    }
    t.setLease(row, owner, expiresAt);
    row.updatedAt = now;
    out.push(copyRow(row));
  }
  return out;
}

export function checkpoint(t: MemoryTables, input: CheckpointInput): CheckpointResult {
  const outcomes = (input.outcomes ?? []).map((o) => applyOutcome(t, o, input.owner, input.now, input.leaseMs));
  const w = input.writeAhead;
  if (!w || w.items.length === 0) return { outcomes, grants: [] };
  const { now, owner } = input;
  const account = t.accounts.get(w.accountId);
  const rows = w.items.map((item) => t.byId.get(item.recipientId));
  // A gap or lead left out (a JavaScript caller) counts as 0, as in the SQL stores.
  const items: SlotItem[] = w.items.map((item, i) => ({ row: rowState(rows[i], item.campaignId, owner, item.attempt, now), gapMs: item.gapMs ?? 0, leadMs: item.leadMs ?? 0 }));
  if (!account) {
    return { outcomes, grants: items.map((it) => ({ granted: false, reason: it.row === 'lost' ? 'lease_lost' : 'account_unavailable', retryAt: now })) };
  }
  const reserved = reserveSlots(
    {
      state: account.state,
      connection: account.connection,
      disabledUntil: account.disabledUntil,
      nextSendAt: account.nextSendAt,
      hourKey: account.hourKey,
      sentThisHour: account.sentThisHour,
      dayKey: account.dayKey,
      sentToday: account.sentToday,
      inFlight: t.inFlight(account.id),
    },
    { maxInFlight: w.maxInFlight, aheadMs: w.aheadMs, hourly: w.hourly, daily: w.daily, items },
    now,
  );
  if (reserved.grants.some((g, i) => g.granted && items[i]!.row === 'leased')) {
    const a = reserved.account;
    account.nextSendAt = a.nextSendAt;
    account.hourKey = a.hourKey;
    account.sentThisHour = a.sentThisHour;
    account.dayKey = a.dayKey;
    account.sentToday = a.sentToday;
    account.updatedAt = now;
  }
  reserved.grants.forEach((g, i) => {
    if (!g.granted || items[i]!.row !== 'leased') return;
    const row = rows[i]!;
    const item = w.items[i]!;
    const cs = t.campaigns.get(row.campaignId)!;
    row.text = item.text;
    row.attempts = item.attempt;
    t.setAccount(row, w.accountId);
    if (item.providerMessageId) t.setPid(row, item.providerMessageId);
    t.setLease(row, owner, now + input.leaseMs);
    row.updatedAt = now;
    t.move(cs, row, 'sending');
  });
  return { outcomes, grants: reserved.grants };
}

function rowState(row: Row | undefined, campaignId: string, owner: string, attempt: number, now: number): SlotItem['row'] {
  if (!row || row.campaignId !== campaignId || row.leaseOwner !== owner) return 'lost';
  if (row.status === 'pending') return 'leased';
  // The same write-ahead again (a retried call whose first commit was not heard).
  if (row.status === 'sending' && row.attempts === attempt && row.leaseExpiresAt !== null && row.leaseExpiresAt > now) return 'repeat';
  return 'lost';
}

/** Record one outcome if `owner` still leases the open row. */
function applyOutcome(t: MemoryTables, o: Outcome, owner: string, now: number, leaseMs: number): OutcomeResult {
  const row = t.byId.get(o.recipientId);
  if (!row || row.campaignId !== o.campaignId || !outcomeApplies(row, owner)) return { recipientId: o.recipientId, applied: false };
  const cs = t.campaigns.get(row.campaignId)!;
  row.attempts = o.attempts;
  row.updatedAt = now;
  // Absent or null keeps what the row knows (the write-ahead set the account).
  if (o.accountId) t.setAccount(row, o.accountId);
  if (o.providerMessageId) t.setPid(row, o.providerMessageId);
  if (o.error !== undefined) row.lastError = o.error;
  // A retry by the same owner follows (often in this very checkpoint): keep the row, renewed like a heartbeat.
  if (o.status === 'pending' && o.keepLease) t.setLease(row, owner, now + leaseMs);
  else t.setLease(row, null, null);
  if (o.status === 'pending') t.move(cs, row, 'pending');
  else {
    row.skipReason = o.status === 'skipped' ? (o.skipReason ?? null) : null;
    if (o.status === 'sent') row.sentAt = o.at;
    t.finish(cs, row, o.status, o.at);
  }
  const result: OutcomeResult = { recipientId: o.recipientId, applied: true };
  const account = t.accounts.get(o.accountId ?? row.accountId ?? '');
  if (account) {
    const failures = failuresAfter(account.consecutiveFailures, o.accountEffect);
    const next = o.accountNextSendAt !== undefined && o.accountNextSendAt > account.nextSendAt ? o.accountNextSendAt : account.nextSendAt;
    if (failures !== account.consecutiveFailures || next !== account.nextSendAt) {
      account.consecutiveFailures = failures;
      account.nextSendAt = next;
      account.updatedAt = now;
    }
    result.consecutiveFailures = account.consecutiveFailures;
  }
  return result;
}

export function heartbeat(t: MemoryTables, owner: string, now: number, leaseMs: number): number {
  const held = t.owners.get(owner);
  if (!held) return 0;
  const expiresAt = now + leaseMs;
  for (const row of held) row.leaseExpiresAt = expiresAt;
  return held.size;
}

export function release(t: MemoryTables, owner: string, recipientIds?: string[]): number {
  const held = t.owners.get(owner);
  if (!held) return 0;
  const targets = recipientIds ? recipientIds.map((id) => t.byId.get(id)) : [...held];
  let released = 0;
  for (const row of targets) {
    if (!row || row.leaseOwner !== owner || row.status !== 'pending') continue;
    t.setLease(row, null, null);
    released++;
  }
  return released;
}

/** Oldest expiry first. `sending` rows are few (about W per account per worker), so this is cheap. */
export function listInDoubt(t: MemoryTables, now: number, limit: number, campaignId?: string): Recipient[] {
  const found: Row[] = [];
  for (const rows of t.sendingByAccount.values()) {
    for (const row of rows) {
      if (campaignId !== undefined && row.campaignId !== campaignId) continue;
      if (row.leaseExpiresAt === null || row.leaseExpiresAt <= now) found.push(row);
    }
  }
  found.sort((a, b) => (a.leaseExpiresAt ?? 0) - (b.leaseExpiresAt ?? 0) || a.seq - b.seq);
  return found.slice(0, Math.max(0, limit)).map(copyRow);
}

export function settleInDoubt(t: MemoryTables, settlements: InDoubtSettlement[], now: number): number {
  let applied = 0;
  for (const s of settlements) {
    const row = t.byId.get(s.recipientId);
    if (!row || row.status !== 'sending' || (row.leaseExpiresAt !== null && row.leaseExpiresAt > now)) continue;
    const cs = t.campaigns.get(row.campaignId)!;
    const account = t.accounts.get(row.accountId ?? '');
    if (account) {
      account.nextSendAt = nextSendAfterSettling(account, now);
      account.updatedAt = now;
    }
    t.setLease(row, null, null);
    row.updatedAt = now;
    if (s.status === 'sent') {
      if (s.providerMessageId) t.setPid(row, s.providerMessageId);
      row.sentAt = s.sentAt ?? now;
      t.finish(cs, row, 'sent', now);
    } else if (s.status === 'unknown') {
      t.finish(cs, row, 'unknown', now);
    } else {
      t.move(cs, row, 'pending');
    }
    applied++;
  }
  return applied;
}

export function applyStatusUpdates(t: MemoryTables, updates: StatusUpdate[], now: number): StatusUpdateResult {
  const result: StatusUpdateResult = { applied: 0, ignored: 0, unmatched: 0, held: 0, changed: [] };
  t.held = t.held.filter((h) => h.heldAt > now - HELD_RECEIPT_MS);
  if (updates.length === 0) {
    // The held receipts, oldest first: still held, or done (applied, or ignored by their row).
    const earlier = t.held;
    t.held = [];
    for (const h of earlier) {
      const outcome = applyReceipt(t, h.update, now, result);
      if (outcome === 'held') t.held.push(h);
      else if (outcome === 'applied') result.applied++;
    }
  }
  for (const u of updates) {
    const outcome = applyReceipt(t, u, now, result);
    if (outcome === 'held') {
      t.held.push({ update: u, heldAt: now });
      result.held++;
      if (!findReceiptRow(t, u)) result.unmatched++;
      else result.ignored++;
    } else result[outcome]++;
  }
  return result;
}

function findReceiptRow(t: MemoryTables, u: StatusUpdate): Row | undefined {
  return t.byPid.get(u.providerMessageId) ?? (u.idempotencyKey ? byIdempotencyKey(t, u.idempotencyKey) : undefined);
}

/** One receipt against its row (DELIVERY_TRANSITIONS), a change pushed to `result.changed`. */
function applyReceipt(t: MemoryTables, u: StatusUpdate, now: number, result: StatusUpdateResult): 'applied' | 'ignored' | 'held' {
  const row = findReceiptRow(t, u);
  if (!row || holdsReceipt(row.status)) {
    // A receipt for a send whose answer was lost, or not recorded yet: the row learns its provider id.
    if (row && row.providerMessageId === null) t.setPid(row, u.providerMessageId);
    return 'held';
  }
  if (row.providerMessageId === null && row.status === 'unknown') t.setPid(row, u.providerMessageId);
  const from: RecipientStatus = row.status;
  const to = deliveryTransition(from, u.status);
  if (to === null) return 'ignored';
  if (to === 'failed') row.lastError = u.error ?? 'the provider reported the message failed';
  else {
    row.sentAt ??= u.at;
    if (to === 'delivered' || to === 'read') row.deliveredAt ??= u.at;
    if (to === 'read') row.readAt = u.at;
  }
  row.updatedAt = now;
  t.move(t.campaigns.get(row.campaignId)!, row, to);
  result.changed.push({ recipientId: row.id, campaignId: row.campaignId, from, to });
  return 'applied';
}

/** The row an idempotency key `campaignId:phone` names (campaign ids may hold ':'; the phone never does). */
function byIdempotencyKey(t: MemoryTables, key: string): Row | undefined {
  const at = key.lastIndexOf(':');
  return at > 0 ? t.campaigns.get(key.slice(0, at))?.byPhone.get(key.slice(at + 1)) : undefined;
}
