import type { CheckpointInput, CheckpointResult, Grant, Outcome, OutcomeResult, SlotRefusal, WriteAhead } from '@disparo/core/store';
import { num } from './rows.js';

/**
 * The checkpoint on the wire: the arguments of the SQL function `checkpoint` and its result, as JSON
 * with the contract's own keys (an `Outcome` is sent as an `Outcome`, a `WriteAhead` as a
 * `WriteAhead`). Shared by every store that calls the function: node-postgres and PGlite here,
 * PostgREST (`supabase.rpc('checkpoint', checkpointArgs(input))`) for Supabase.
 *
 * Times and gaps go as whole milliseconds (the columns are bigint): a gap or a lead is rounded, a
 * next-send time rounded up (pacing never moves earlier than asked).
 */
export interface CheckpointArgs {
  p_owner: string;
  p_now: number;
  p_lease_ms: number;
  p_outcomes: Outcome[] | null;
  p_write_ahead: WriteAhead | null;
}

export function checkpointArgs(input: CheckpointInput): CheckpointArgs {
  const outcomes = input.outcomes ?? [];
  const w = input.writeAhead;
  return {
    p_owner: input.owner,
    p_now: Math.round(input.now),
    p_lease_ms: Math.round(input.leaseMs),
    p_outcomes: outcomes.length > 0 ? outcomes.map(outcomeOnWire) : null,
    p_write_ahead: w && w.items.length > 0 ? writeAheadOnWire(w) : null,
  };
}

function outcomeOnWire(o: Outcome): Outcome {
  const x: Outcome = { ...o, at: Math.round(o.at) };
  if (o.accountNextSendAt !== undefined) x.accountNextSendAt = Math.ceil(o.accountNextSendAt);
  return x;
}

function writeAheadOnWire(w: WriteAhead): WriteAhead {
  return {
    ...w,
    items: w.items.map((item) => ({ ...item, providerMessageId: item.providerMessageId ?? null, gapMs: Math.round(item.gapMs), leadMs: Math.round(item.leadMs) })),
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
