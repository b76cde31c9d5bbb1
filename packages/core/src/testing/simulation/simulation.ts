import type { Clock } from '../../clock.js';
import { canTransition } from '../../domain/campaign-status.js';
import type { CampaignStatus, InDoubtPolicy } from '../../domain/types.js';
import { createEngine, type Engine } from '../../engine/engine.js';
import { TransportError } from '../../errors.js';
import { silentLogger } from '../../events.js';
import { between, seededRandom } from '../../random.js';
import type { StateStore } from '../../store/contract.js';
import { createMemoryStore } from '../../store/memory/memory-store.js';
import type { Transport } from '../../transport/contract.js';
import { createSimulatorTransport, type SimulatorTransport } from '../../transport/simulator/simulator.js';
import { VirtualClock } from '../virtual-clock.js';

export interface SimulationOptions {
  seed: number;
  /** A fresh store per seed (default: a MemoryStore). */
  store?: () => Promise<StateStore> | StateStore;
  /** Virtual time of chaos before healing. Default 3 minutes. */
  chaosMs?: number;
  /** Event-loop turns without activity before virtual time jumps (more for stores doing real I/O). */
  idleTurns?: number;
}

export interface SimulationReport {
  seed: number;
  ok: boolean;
  violations: string[];
  stats: {
    campaigns: number;
    accounts: number;
    recipients: number;
    sends: number;
    crashes: number;
    engines: number;
    steps: number;
    optOuts: number;
    inDoubt: number;
    virtualMs: number;
  };
}

interface Life {
  id: number;
  crashed: boolean;
  /** Crash at the next await point (store call, sleep or send). */
  armed: boolean;
}

const never = <T>() => new Promise<T>(() => {});

/**
 * One deterministic run of the whole system on virtual time, with chaos: several engines share a
 * store; engines die at arbitrary await points (their store calls, sleeps and sends never answer
 * again, like a killed process; a store call may or may not have been applied); new ones start;
 * transports fail and disconnect; overlapping step() calls race run(); contacts opt out;
 * campaigns are paused and resumed; an account is logged out and comes back. Then the chaos stops,
 * everything heals, and the invariants I1-I5 and the account rules are checked.
 */
export async function runSimulation(options: SimulationOptions): Promise<SimulationReport> {
  const rng = seededRandom(options.seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rng() * xs.length)]!;
  const world = new VirtualClock(Date.UTC(2026, 2, 2, 12, 0, 0));
  const store = options.store ? await options.store() : createMemoryStore();
  const violations: string[] = [];
  const chaosMs = options.chaosMs ?? 3 * 60_000;

  // ---- the world: accounts (one provider each, outside every engine) and campaigns
  const accountCount = between(rng, 1, 3);
  const minGap = between(rng, 0, 3) * 500;
  const maxGap = minGap + between(rng, 0, 4) * 500;
  const latency = { min: between(rng, 0, 2) * 50, max: 0 };
  latency.max = latency.min + between(rng, 0, 10) * 50;
  const leaseMs = pick([2_000, 5_000, 10_000]);
  const pollIntervalMs = pick([200, 500, 1_000]);
  const accounts = Array.from({ length: accountCount }, (_, i) => `acct${i}`);
  const sims = new Map<string, SimulatorTransport>();
  const wire = new Map<string, Array<{ start: number; end: number; key: string }>>();
  for (const id of accounts) {
    sims.set(
      id,
      createSimulatorTransport({
        seed: options.seed * 101 + sims.size,
        clock: world,
        latencyMs: latency,
        failureRates: {
          transient: pick([0, 0.02, 0.1]),
          rate_limited: pick([0, 0.01]),
          invalid_recipient: pick([0, 0.02]),
          permanent: pick([0, 0.01]),
          ambiguous: pick([0, 0.01]),
        },
        rateLimitRetryAfterMs: 1_000,
        receipts: { deliveredAfterMs: 500, readAfterMs: 2_000, readRate: 0.5 },
        // What the provider's lookup can prove: everything, only what it finds, nothing, or no lookup at all.
        lookup: pick(['full', 'found-only', 'blind', 'none'] as const),
      }),
    );
  }
  const pacing = { intervalMs: { min: minGap, max: maxGap } };

  const lives: Life[] = [];
  const engines: Array<{ engine: Engine; life: Life }> = [];
  const transitions: Array<{ from: CampaignStatus[]; to: CampaignStatus; applied: boolean }> = [];
  const settledPending = new Set<string>();
  const ambiguousKeys = new Set<string>();
  const logouts: Array<{ id: string; from: number; to: number | null; attempts: Map<number, number> }> = [];
  const loggedOut = (id: string) => logouts.some((l) => l.id === id && l.to === null);
  let steps = 0;
  let crashes = 0;
  let optOuts = 0;

  const wrapStore = (life: Life): StateStore =>
    new Proxy(store, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (typeof value !== 'function') return value;
        return async (...args: unknown[]) => {
          if (life.crashed) return never();
          const call = () => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          if (life.armed) {
            life.crashed = true;
            crashes++;
            if (rng() < 0.5) await call(); // applied, but the engine never hears back
            return never();
          }
          const result = await call();
          if (prop === 'transitionCampaign') {
            const change = args[1] as { from: CampaignStatus[]; to: CampaignStatus };
            transitions.push({ from: change.from, to: change.to, applied: result !== null });
          }
          if (prop === 'settleInDoubt') {
            for (const s of args[0] as Array<{ recipientId: string; status: string }>) if (s.status === 'pending') settledPending.add(s.recipientId);
          }
          return life.crashed ? never() : result;
        };
      },
    });

  const wrapClock = (life: Life): Clock => ({
    now: () => world.now(),
    async sleep(ms, signal) {
      if (life.crashed) return never();
      if (life.armed) {
        life.crashed = true;
        crashes++;
        return never();
      }
      await world.sleep(ms, signal);
      if (life.crashed) return never();
    },
  });

  const wrapTransport = (sim: SimulatorTransport, accountId: string, life: Life): Transport => ({
    name: sim.name,
    async send(message, opts) {
      if (life.crashed) return never();
      const logout = logouts.find((l) => l.id === accountId && l.to === null);
      if (logout) {
        // The provider refuses a logged-out number; an engine that missed the event learns it here.
        logout.attempts.set(life.id, (logout.attempts.get(life.id) ?? 0) + (world.now() > logout.from + maxGap + latency.max ? 1 : 0));
        throw new TransportError('account', 'logged out', { accountReason: 'logged_out', providerCode: 401 });
      }
      let result;
      const onWire = { start: world.now(), end: Number.POSITIVE_INFINITY, key: message.idempotencyKey };
      (wire.get(accountId) ?? wire.set(accountId, []).get(accountId)!).push(onWire);
      try {
        result = await sim.send(message, opts); // the provider has it even if we die now
      } catch (error) {
        if (TransportError.isInstance(error) && error.kind === 'ambiguous') ambiguousKeys.add(message.idempotencyKey);
        throw error;
      } finally {
        onWire.end = world.now();
      }
      return life.crashed ? never() : result;
    },
    ...(sim.lookup ? { lookup: (q) => sim.lookup!(q) } : {}),
    subscribe: (listener) => sim.subscribe((event) => (life.crashed ? undefined : listener(event))),
  });

  const spawn = (mode: 'run' | 'step') => {
    const life: Life = { id: lives.length, crashed: false, armed: false };
    lives.push(life);
    const engine = createEngine({
      store: wrapStore(life),
      clock: wrapClock(life),
      logger: silentLogger,
      random: seededRandom(options.seed * 7 + life.id),
      workerId: `e${life.id}`,
      leaseMs,
      pollIntervalMs,
      claimSize: pick([5, 20, 100]),
      failureThreshold: 1_000,
      accounts: accounts.map((id) => ({ id, transport: wrapTransport(sims.get(id)!, id, life), pacing })),
    });
    engines.push({ engine, life });
    if (mode === 'run') void engine.run().catch(() => undefined);
    return { engine, life };
  };

  // ---- campaigns
  const admin = spawn('step').engine; // never crashed: the admin API caller
  const campaignCount = between(rng, 1, 3);
  const campaignIds: string[] = [];
  const policies = new Map<string, InDoubtPolicy>();
  let recipients = 0;
  // Everything but the store is in-process; a custom store may do real I/O, so give it more turns.
  const stopAuto = world.autoAdvance({ idleTurns: options.idleTurns ?? (options.store ? 3 : 1) });
  try {
    for (let i = 0; i < campaignCount; i++) {
      const inDoubt: InDoubtPolicy = rng() < 0.7 ? 'at-most-once' : 'at-least-once';
      const used = accounts.filter(() => rng() < 0.7);
      const c = await admin.createCampaign({
        id: `c${i}`,
        name: `sim ${i}`,
        templates: ['{Oi|Olá} {{name|amigo}} #' + i],
        accountIds: used.length ? used : [accounts[0]!],
        batchSize: pick([5, 10, 25]),
        batchPauseMs: { min: 0, max: pick([0, 1_000, 3_000]) },
        maxAttempts: pick([1, 3]),
        retryBackoffMs: { min: 100, max: 500 },
        inDoubt,
      });
      policies.set(c.id, inDoubt);
      const n = between(rng, 10, 60);
      recipients += n;
      // Phones overlap across campaigns so opt-outs reach several.
      await admin.addRecipients(
        c.id,
        Array.from({ length: n }, (_, k) => ({ phone: `55119${String(80_000_000 + ((k * 7 + i * 3) % 90)).padStart(8, '0')}` })),
      );
      campaignIds.push(c.id);
      if (rng() < 0.3) await admin.schedule(c.id, world.now() + between(rng, 1, 30) * 1_000);
      else await admin.start(c.id);
    }
    recipients = 0;
    for (const id of campaignIds) recipients += (await store.getCampaign(id))!.counters.total;

    const workers = between(rng, 1, 3);
    for (let i = 0; i < workers; i++) spawn('run');

    // ---- chaos
    const chaosEnd = world.now() + chaosMs;
    while (world.now() < chaosEnd) {
      await world.sleep(between(rng, 200, 5_000));
      const live = engines.filter((e) => !e.life.crashed && e.engine !== admin);
      const roll = rng();
      if (roll < 0.2 && live.length > 0) {
        pick(live).life.armed = true; // dies at its next await point, wherever that is
      } else if (roll < 0.35) {
        spawn('run');
      } else if (roll < 0.5) {
        // Duplicate, overlapping step() calls from fresh "invocations", racing everything else.
        const id = pick(campaignIds);
        const a = spawn('step');
        const b = spawn('step');
        steps += 2;
        void a.engine.step({ campaignId: id, budgetMs: between(rng, 500, 5_000) }).catch(() => undefined);
        void b.engine.step({ campaignId: id, budgetMs: between(rng, 500, 5_000) }).catch(() => undefined);
        if (rng() < 0.5) a.life.armed = true;
      } else if (roll < 0.6) {
        const id = pick(campaignIds);
        const c = (await store.getCampaign(id))!;
        if (c.status === 'running') await admin.pause(id).catch(() => undefined);
        else if (c.status === 'paused') await admin.resume(id).catch(() => undefined);
      } else if (roll < 0.7) {
        const rows = await store.listRecipients(pick(campaignIds), { limit: 100 });
        if (rows.length) {
          await admin.optOut([pick(rows).phone]);
          optOuts++;
        }
      } else if (roll < 0.8) {
        const id = pick(accounts);
        const sim = sims.get(id)!;
        if (!loggedOut(id)) {
          sim.setConnected(false);
          // A logged-out account does not come back by reconnecting: only its re-login does.
          void world.sleep(between(rng, 1_000, 20_000)).then(() => !loggedOut(id) && sim.setConnected(true));
        }
      } else if (roll < 0.85) {
        const id = pick(accounts);
        if (!loggedOut(id)) {
          const logout = { id, from: world.now(), to: null as number | null, attempts: new Map<number, number>() };
          logouts.push(logout);
          sims.get(id)!.inject({ type: 'connection', state: 'close', stopReason: 'logged_out', detail: 'simulated logout' });
          void world.sleep(between(rng, 5_000, 30_000)).then(() => {
            if (logout.to !== null) return; // healing already logged it back in
            logout.to = world.now();
            sims.get(id)!.setConnected(true);
            sims.get(id)!.inject({ type: 'connection', state: 'open', detail: 'logged in again' });
          });
        }
      }
    }

    // ---- heal: everything reconnects, manual pauses end, one healthy worker finishes the job
    // The healer subscribes first, so it hears every account come back (as a worker would after re-pairing).
    for (const l of logouts) l.to ??= world.now();
    const healer = spawn('run').engine;
    await healer.ready();
    for (const sim of sims.values()) {
      sim.setConnected(true);
      sim.inject({ type: 'connection', state: 'open' });
    }
    const deadline = world.now() + 6 * 3_600_000;
    for (;;) {
      const all = await Promise.all(campaignIds.map((id) => store.getCampaign(id)));
      if (all.every((c) => c!.status === 'completed')) break;
      if (world.now() > deadline) {
        violations.push(`I5: not every campaign completed within 6 h of healing: ${all.map((c) => `${c!.id}=${c!.status}/${c!.pauseReason ?? ''}`).join(', ')}`);
        if (process.env.SIM_DEBUG) {
          for (const c of all) console.log(JSON.stringify({ id: c!.id, batch: c!.currentBatch, next: c!.nextBatchAt, counters: c!.counters, now: world.now() }));
          for (const c of all) for (const r of await store.listRecipients(c!.id, { status: ['pending', 'sending'] })) console.log(JSON.stringify({ c: r.campaignId, seq: r.seq, b: r.batch, st: r.status, owner: r.leaseOwner, exp: r.leaseExpiresAt, att: r.attempts, acct: r.accountId }));
          console.log(JSON.stringify(await store.listAccounts()));
        }
        break;
      }
      for (const c of all) if (c!.status === 'paused' || (c!.status === 'scheduled' && c!.scheduledAt! < world.now() - 60_000)) await healer.start(c!.id).catch(() => undefined);
      await world.sleep(5_000);
    }
    for (const e of engines) if (!e.life.crashed) await e.engine.stop();
  } finally {
    stopAuto();
  }

  // ---- invariants
  const sendsByKey = new Map<string, number>();
  let sends = 0;
  for (const sim of sims.values()) {
    for (const s of sim.sends) {
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
      const mayRepeat = policies.get(id) === 'at-least-once' && (settledPending.has(r.id) || ambiguousKeys.has(`${id}:${r.phone}`));
      if (n > 1 && !mayRepeat) violations.push(`I1: ${id}:${r.phone} sent ${n} times (status ${r.status})`);
      if ((r.status === 'sent' || r.status === 'delivered' || r.status === 'read') && n === 0) violations.push(`I2: ${id}:${r.phone} is ${r.status} but the provider never got it`);
    }
    const batches = await store.listBatches(id);
    const sentRows = rows.filter((r) => r.status === 'sent' || r.status === 'delivered' || r.status === 'read').length;
    const batchSent = batches.reduce((s, b) => s + b.sent, 0);
    if (batchSent !== sentRows) violations.push(`I2: campaign ${id} batch records say ${batchSent} sent, rows say ${sentRows}`);
  }
  // I3: per account, at the provider: accepted messages never closer than the minimum (20 ms of
  // jitter allowed), and never two on the wire at once (window of one).
  for (const [id, sim] of sims) {
    const accepted = sim.sends.slice().sort((a, b) => a.at - b.at);
    for (let i = 1; i < accepted.length; i++) {
      const [a, b] = [accepted[i - 1]!, accepted[i]!];
      if (b.at - a.at < minGap - 20) {
        violations.push(`I3: account ${id} sent twice ${b.at - a.at} ms apart at the provider (minimum ${minGap}): ${a.idempotencyKey}@${a.at}, ${b.idempotencyKey}@${b.at}`);
        break;
      }
    }
    const spans = (wire.get(id) ?? []).slice().sort((a, b) => a.start - b.start);
    let open: { end: number; key: string } | null = null;
    for (const w of spans) {
      if (open && w.start < open.end) {
        violations.push(`I3: account ${id} had two messages on the wire at once (${open.key} and ${w.key} at ${w.start})`);
        break;
      }
      if (!open || w.end > open.end) open = w;
    }
  }
  // Account rule: a logged-out account stops at once. Nothing reaches the provider while it is
  // logged out (beyond a slot granted just before), and an engine that missed the event tries it
  // at most once, learns from the refusal, and stops too.
  for (const l of logouts) {
    const grace = l.from + maxGap + latency.max + 1;
    const late = sims.get(l.id)!.sends.filter((s) => s.at > grace && s.at < l.to!);
    if (late.length > 0) violations.push(`accounts: ${l.id} sent ${late.length} message(s) while logged out (${l.from}..${l.to}: ${late.map((x) => `${x.idempotencyKey}@${x.at}`).join(', ')})`);
    for (const [engine, n] of l.attempts) if (n > 1) violations.push(`accounts: engine e${engine} tried logged-out ${l.id} ${n} times`);
  }
  // I4: every applied campaign transition is in the table.
  for (const t of transitions) {
    if (t.applied && !t.from.some((f) => canTransition(f, t.to))) violations.push(`I4: transition ${t.from.join('|')} -> ${t.to} applied`);
  }

  return {
    seed: options.seed,
    ok: violations.length === 0,
    violations,
    stats: {
      campaigns: campaignIds.length,
      accounts: accounts.length,
      recipients,
      sends,
      crashes,
      engines: lives.length,
      steps,
      optOuts,
      inDoubt,
      virtualMs: world.now() - Date.UTC(2026, 2, 2, 12, 0, 0),
    },
  };
}
