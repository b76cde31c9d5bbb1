import { canTransition } from '../../domain/campaign-status.js';
import type { InDoubtPolicy } from '../../domain/types.js';
import { RATE_HEADROOM } from '../../pacing/plan.js';
import type { World } from './world.js';

/**
 * The invariants I1-I5 and the account rules, checked on what the store holds and on what reached the
 * simulated providers (not on what the engines believe). Returns the violations and the count of
 * sends left in doubt (`unknown`).
 */
export async function checkInvariants(world: World, campaignIds: string[], policies: Map<string, InDoubtPolicy>): Promise<{ violations: string[]; inDoubt: number; sends: number }> {
  const { store } = world;
  const violations: string[] = [];
  const sendsByKey = new Map<string, number>();
  let sends = 0;
  for (const a of world.accounts) {
    for (const s of a.sim.sends) {
      sends++;
      sendsByKey.set(s.idempotencyKey, (sendsByKey.get(s.idempotencyKey) ?? 0) + 1);
    }
  }
  let inDoubt = 0;
  for (const id of campaignIds) {
    const c = (await store.getCampaign(id))!;
    const rows = await store.listRecipients(id, { limit: 1_000_000 });
    const counted: Record<string, number> = { total: rows.length, pending: 0, sending: 0, sent: 0, delivered: 0, read: 0, failed: 0, skipped: 0, unknown: 0 };
    for (const r of rows) counted[r.status]!++;
    for (const [k, v] of Object.entries(counted)) {
      if (c.counters[k as keyof typeof c.counters] !== v) violations.push(`I2: campaign ${id} counter ${k}=${c.counters[k as keyof typeof c.counters]} but ${v} rows`);
    }
    if (c.status === 'completed' && counted.pending! + counted.sending! > 0) violations.push(`I2: campaign ${id} completed with ${counted.pending} pending and ${counted.sending} sending`);
    inDoubt += counted.unknown!;
    for (const r of rows) {
      const n = sendsByKey.get(`${id}:${r.phone}`) ?? 0;
      // at-least-once: a send left in doubt (crash, or an ambiguous answer without lookup) may repeat.
      const mayRepeat = policies.get(id) === 'at-least-once' && (world.settledPending.has(r.id) || world.ambiguousKeys.has(`${id}:${r.phone}`));
      if (n > 1 && !mayRepeat) violations.push(`I1: ${id}:${r.phone} sent ${n} times (status ${r.status})`);
      if ((r.status === 'sent' || r.status === 'delivered' || r.status === 'read') && n === 0) violations.push(`I2: ${id}:${r.phone} is ${r.status} but the provider never got it`);
    }
    const batches = await store.listBatches(id);
    const sentRows = rows.filter((r) => r.status === 'sent' || r.status === 'delivered' || r.status === 'read').length;
    const batchSent = batches.reduce((s, b) => s + b.sent, 0);
    if (batchSent !== sentRows) violations.push(`I2: campaign ${id} batch records say ${batchSent} sent, rows say ${sentRows}`);
  }
  violations.push(...pacingViolations(world));
  // I2 with a window: a crash leaves at most W sends of an account in doubt.
  for (const c of world.crashedInFlight) {
    if (c.sending > c.window) violations.push(`I2: engine e${c.engine} died with ${c.sending} sends of ${c.account} written ahead (window ${c.window})`);
  }
  // Account rule: a logged-out account stops at once. Nothing reaches the provider while it is
  // logged out (beyond a slot granted just before), and an engine that missed the event tries it
  // at most once, learns from the refusal, and stops too.
  for (const l of world.logouts) {
    const account = world.accounts.find((a) => a.id === l.id)!;
    const grace = l.from + account.graceMs + 1;
    const late = account.sim.sends.filter((s) => s.at > grace && s.at < l.to!);
    if (late.length > 0) violations.push(`accounts: ${l.id} sent ${late.length} message(s) while logged out (${l.from}..${l.to}: ${late.map((x) => `${x.idempotencyKey}@${x.at}`).join(', ')})`);
    for (const [engine, seen] of l.attempts) if (seen.after > 0) violations.push(`accounts: engine e${engine} tried logged-out ${l.id} ${seen.after} more time(s) after its refusal`);
  }
  // I4: every applied campaign transition is in the table.
  for (const t of world.transitions) {
    if (t.applied && !t.from.some((f) => canTransition(f, t.to))) violations.push(`I4: transition ${t.from.join('|')} -> ${t.to} applied`);
  }
  return { violations, inDoubt, sends };
}

/**
 * I3 at the provider, per account: a human-paced account's messages are never accepted closer than
 * its minimum gap (20 ms of jitter allowed) and never two are on the wire at once; a rate-paced one
 * never goes over its rate in any second, nor over its window on the wire.
 */
function pacingViolations(world: World): string[] {
  const out: string[] = [];
  for (const a of world.accounts) {
    const accepted = a.sim.sends.slice().sort((x, y) => x.at - y.at);
    if (a.minGap !== null) {
      for (let i = 1; i < accepted.length; i++) {
        const [x, y] = [accepted[i - 1]!, accepted[i]!];
        if (y.at - x.at < a.minGap - 20) {
          out.push(`I3: account ${a.id} sent twice ${y.at - x.at} ms apart at the provider (minimum ${a.minGap}): ${x.idempotencyKey}@${x.at}, ${y.idempotencyKey}@${y.at}`);
          break;
        }
      }
    } else {
      // A provider counts requests as they arrive; the simulated latency is its time to answer.
      const rate = a.pacing.ratePerSecond!;
      const arrivals = a.wire.map((w) => w.start).sort((x, y) => x - y);
      for (let i = 0, j = 0; i < arrivals.length; i++) {
        while (arrivals[i]! - arrivals[j]! >= 1_000) j++;
        if (i - j + 1 > Math.ceil(rate)) {
          out.push(`I3: account ${a.id} had ${i - j + 1} requests arrive within one second (rate ${rate}, scheduled at ${rate * RATE_HEADROOM})`);
          break;
        }
      }
    }
    const window = a.pacing.maxInFlight;
    const points = a.wire.flatMap((w) => [
      { at: w.start, d: 1, key: w.key },
      { at: w.end, d: -1, key: w.key },
    ]);
    points.sort((x, y) => x.at - y.at || x.d - y.d);
    let onWire = 0;
    for (const p of points) {
      onWire += p.d;
      if (onWire > window) {
        out.push(`I3: account ${a.id} had ${onWire} messages on the wire at once at ${p.at} (window ${window}; ${p.key})`);
        break;
      }
    }
  }
  return out;
}
