import type { InDoubtPolicy } from '../../domain/types.js';
import { between } from '../../random.js';
import type { StateStore } from '../../store/contract.js';
import { createMemoryStore } from '../../store/memory/memory-store.js';
import { checkInvariants } from './checks.js';
import { World } from './world.js';

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

/**
 * One deterministic run of the whole system on virtual time, with chaos: several engines share a
 * store and accounts; engines die at arbitrary await points (their store calls, sleeps and sends never
 * answer again, like a killed process; a store call may or may not have been applied); new ones
 * start; transports fail, disconnect, answer slower than the accounts' gaps, and have lookups that
 * prove everything, only what they find, or nothing; some accounts are rate-paced with a window above
 * one; overlapping step() calls race run(); contacts opt out; campaigns are paused and resumed; an
 * account is logged out and comes back. Then the chaos stops, everything heals, and the invariants
 * I1-I5 and the account rules are checked where it matters: at the simulated providers.
 */
export async function runSimulation(options: SimulationOptions): Promise<SimulationReport> {
  const store = options.store ? await options.store() : createMemoryStore();
  const world = new World(options.seed, store);
  const { rng, clock } = world;
  const pick = <T>(xs: readonly T[]) => world.pick(xs);
  const violations: string[] = [];
  const chaosMs = options.chaosMs ?? 3 * 60_000;
  const started = clock.now();
  let steps = 0;
  let optOuts = 0;

  const admin = world.spawn('step').engine; // never crashed: the admin API caller
  const campaignIds: string[] = [];
  const policies = new Map<string, InDoubtPolicy>();
  // Everything but the store is in-process; a custom store may do real I/O, so give it more turns.
  const stopAuto = clock.autoAdvance({ idleTurns: options.idleTurns ?? (options.store ? 3 : 1) });
  try {
    for (let i = 0, n = between(rng, 1, 3); i < n; i++) {
      const inDoubt: InDoubtPolicy = rng() < 0.7 ? 'at-most-once' : 'at-least-once';
      const used = world.accounts.map((a) => a.id).filter(() => rng() < 0.7);
      const c = await admin.createCampaign({
        id: `c${i}`,
        name: `sim ${i}`,
        templates: ['{Oi|Olá} {{name|amigo}} #' + i],
        accountIds: used.length ? used : [world.accounts[0]!.id],
        batchSize: pick([5, 10, 25]),
        batchPauseMs: { min: 0, max: pick([0, 1_000, 3_000]) },
        maxAttempts: pick([1, 3]),
        retryBackoffMs: { min: 100, max: 500 },
        inDoubt,
      });
      policies.set(c.id, inDoubt);
      // Phones overlap across campaigns so opt-outs reach several.
      await admin.addRecipients(
        c.id,
        Array.from({ length: between(rng, 10, 60) }, (_, k) => ({ phone: `55119${String(80_000_000 + ((k * 7 + i * 3) % 90)).padStart(8, '0')}` })),
      );
      campaignIds.push(c.id);
      if (rng() < 0.3) await admin.schedule(c.id, clock.now() + between(rng, 1, 30) * 1_000);
      else await admin.start(c.id);
    }
    for (let i = 0, n = between(rng, 1, 3); i < n; i++) world.spawn('run');

    // ---- chaos
    const chaosEnd = clock.now() + chaosMs;
    while (clock.now() < chaosEnd) {
      await clock.sleep(between(rng, 200, 5_000));
      const live = world.engines.filter((e) => !e.life.crashed && e.engine !== admin);
      const roll = rng();
      if (roll < 0.2 && live.length > 0) {
        pick(live).life.armed = true; // dies at its next await point, wherever that is
      } else if (roll < 0.35) {
        world.spawn('run');
      } else if (roll < 0.5) {
        // Duplicate, overlapping step() calls from fresh "invocations", racing everything else.
        const id = pick(campaignIds);
        const a = world.spawn('step');
        const b = world.spawn('step');
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
        const { id, sim } = pick(world.accounts);
        if (!world.loggedOut(id)) {
          sim.setConnected(false);
          // A logged-out account does not come back by reconnecting: only its re-login does.
          void clock.sleep(between(rng, 1_000, 20_000)).then(() => !world.loggedOut(id) && sim.setConnected(true));
        }
      } else if (roll < 0.85) {
        const { id, sim } = pick(world.accounts);
        if (!world.loggedOut(id)) {
          const logout = { id, from: clock.now(), to: null as number | null, attempts: new Map<number, { first: number; after: number }>() };
          world.logouts.push(logout);
          sim.inject({ type: 'connection', state: 'close', stopReason: 'logged_out', detail: 'simulated logout' });
          void clock.sleep(between(rng, 5_000, 30_000)).then(() => {
            if (logout.to !== null) return; // healing already logged it back in
            logout.to = clock.now();
            sim.setConnected(true);
            sim.inject({ type: 'connection', state: 'open', detail: 'logged in again' });
          });
        }
      }
    }

    // ---- heal: everything reconnects, manual pauses end, one healthy worker finishes the job
    // The healer subscribes first, so it hears every account come back (as a worker would after re-pairing).
    for (const l of world.logouts) l.to ??= clock.now();
    const healer = world.spawn('run').engine;
    await healer.ready();
    for (const { sim } of world.accounts) {
      sim.setConnected(true);
      sim.inject({ type: 'connection', state: 'open' });
    }
    const deadline = clock.now() + 6 * 3_600_000;
    for (;;) {
      const all = (await Promise.all(campaignIds.map((id) => store.getCampaign(id)))).map((c) => c!);
      if (all.every((c) => c.status === 'completed')) break;
      if (clock.now() > deadline) {
        violations.push(`I5: not every campaign completed within 6 h of healing: ${all.map((c) => `${c.id}=${c.status}/${c.pauseReason ?? ''}`).join(', ')}`);
        if (process.env.SIM_DEBUG) {
          for (const c of all) console.log(JSON.stringify({ id: c.id, batch: c.currentBatch, next: c.nextBatchAt, counters: c.counters, now: clock.now() }));
          for (const c of all) for (const r of await store.listRecipients(c.id, { status: ['pending', 'sending'] })) console.log(JSON.stringify({ c: r.campaignId, seq: r.seq, b: r.batch, st: r.status, owner: r.leaseOwner, exp: r.leaseExpiresAt, att: r.attempts, acct: r.accountId }));
          console.log(JSON.stringify(await store.listAccounts()));
        }
        break;
      }
      for (const c of all) if (c.status === 'paused' || (c.status === 'scheduled' && c.scheduledAt! < clock.now() - 60_000)) await healer.start(c.id).catch(() => undefined);
      await clock.sleep(5_000);
    }
    for (const e of world.engines) if (!e.life.crashed) await e.engine.stop();
  } finally {
    stopAuto();
  }

  const checked = await checkInvariants(world, campaignIds, policies);
  violations.push(...checked.violations);
  let recipients = 0;
  for (const id of campaignIds) recipients += (await store.getCampaign(id))!.counters.total;
  return {
    seed: options.seed,
    ok: violations.length === 0,
    violations,
    stats: {
      campaigns: campaignIds.length,
      accounts: world.accounts.length,
      recipients,
      sends: checked.sends,
      crashes: world.crashes,
      engines: world.lives.length,
      steps,
      optOuts,
      inDoubt: checked.inDoubt,
      virtualMs: clock.now() - started,
    },
  };
}
