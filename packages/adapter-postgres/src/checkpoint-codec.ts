import type { CheckpointInput, CheckpointResult, Grant, Outcome, OutcomeResult, SlotRefusal, WriteAhead } from '@disparo/core/store';
import { num } from './rows.js';

/**
 * The checkpoint on the wire: the arguments of the SQL function `checkpoint` and its result. Shared
 * by every store that calls the function: node-postgres and PGlite here, PostgREST
 * (`supabase.rpc('checkpoint', checkpointArgs(input))`) for Supabase.
 *
 * Outcomes and write-ahead items go as columns, one JSON array per field of the contract's `Outcome`
 * and `WriteAheadItem` (the i-th entry of each is the i-th record): the function turns each column
 * into an array in one step (`jsonb_to_record`). As an array of records, the same group of 200 took
 * about 1 ms of the function's time to take apart, field by field (bench/explain.ts). An `error` key
 * that is present, even as null, clears the row's last error; absent, it keeps it: `hasError` says
 * which.
 *
 * Times and gaps go as whole milliseconds (the columns are bigint): a gap or a lead is rounded, a
 * next-send time rounded up (pacing never moves earlier than asked).
 */
export interface CheckpointArgs {
  p_owner: string;
  p_now: number;
  p_lease_ms: number;
  p_outcomes: OutcomeColumns | null;
  p_write_ahead: (Omit<WriteAhead, 'items'> & { items: ItemColumns }) | null;
}

/** `Outcome` records as columns (see above). */
export interface OutcomeColumns {
  recipientId: string[];
  campaignId: string[];
  status: Outcome['status'][];
  keepLease: Array<boolean | null>;
  attempts: number[];
  at: number[];
  accountId: Array<string | null>;
  providerMessageId: Array<string | null>;
  error: Array<string | null>;
  hasError: boolean[];
  skipReason: Array<string | null>;
  accountEffect: Array<Outcome['accountEffect'] | null>;
  accountNextSendAt: Array<number | null>;
}

/** `WriteAheadItem` records as columns (see above). */
export interface ItemColumns {
  recipientId: string[];
  campaignId: string[];
  text: string[];
  attempt: number[];
  providerMessageId: Array<string | null>;
  gapMs: number[];
  leadMs: number[];
}

export function checkpointArgs(input: CheckpointInput): CheckpointArgs {
  const outcomes = input.outcomes ?? [];
  const w = input.writeAhead;
  let items: (Omit<WriteAhead, 'items'> & { items: ItemColumns }) | null = null;
  if (w && w.items.length > 0) {
    const { items: list, ...rest } = w;
    items = {
      ...rest,
      items: {
        recipientId: list.map((i) => i.recipientId),
        campaignId: list.map((i) => i.campaignId),
        text: list.map((i) => i.text),
        attempt: list.map((i) => i.attempt),
        providerMessageId: list.map((i) => i.providerMessageId ?? null),
        gapMs: list.map((i) => Math.round(i.gapMs)),
        leadMs: list.map((i) => Math.round(i.leadMs)),
      },
    };
  }
  return {
    p_owner: input.owner,
    p_now: Math.round(input.now),
    p_lease_ms: Math.round(input.leaseMs),
    p_outcomes: outcomes.length > 0 ? outcomeColumns(outcomes) : null,
    p_write_ahead: items,
  };
}

function outcomeColumns(list: Outcome[]): OutcomeColumns {
  return {
    recipientId: list.map((o) => o.recipientId),
    campaignId: list.map((o) => o.campaignId),
    status: list.map((o) => o.status),
    keepLease: list.map((o) => o.keepLease ?? null),
    attempts: list.map((o) => o.attempts),
    at: list.map((o) => Math.round(o.at)),
    accountId: list.map((o) => o.accountId ?? null),
    providerMessageId: list.map((o) => o.providerMessageId ?? null),
    error: list.map((o) => o.error ?? null),
    hasError: list.map((o) => o.error !== undefined),
    skipReason: list.map((o) => o.skipReason ?? null),
    accountEffect: list.map((o) => o.accountEffect ?? null),
    accountNextSendAt: list.map((o) => (o.accountNextSendAt === undefined ? null : Math.ceil(o.accountNextSendAt))),
  };
}

interface CheckpointResultOnWire {
  applied?: boolean[];
  failures?: Array<number | string | null>;
  granted?: boolean[];
  at?: Array<number | string>;
  reason?: Array<SlotRefusal | null>;
}

/** The function's result (JSON, or its text) as the contract's `CheckpointResult`, one entry per outcome and per item given. */
export function checkpointResult(input: CheckpointInput, value: unknown): CheckpointResult {
  const r = (typeof value === 'string' ? JSON.parse(value) : (value ?? {})) as CheckpointResultOnWire;
  const outcomes = (input.outcomes ?? []).map((o, i): OutcomeResult => {
    if (!r.applied?.[i]) return { recipientId: o.recipientId, applied: false };
    const failures = r.failures?.[i];
    return failures === null || failures === undefined
      ? { recipientId: o.recipientId, applied: true }
      : { recipientId: o.recipientId, applied: true, consecutiveFailures: num(failures) };
  });
  const grants = (input.writeAhead?.items ?? []).map((_, i): Grant => {
    const at = num(r.at?.[i] ?? input.now);
    if (r.granted?.[i]) return { granted: true, slotAt: at };
    return { granted: false, reason: r.reason?.[i] ?? 'lease_lost', retryAt: at };
  });
  return { outcomes, grants };
}
