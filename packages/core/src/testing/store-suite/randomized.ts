import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../random.js';
import type { RecipientStatus } from '../../domain/types.js';
import type { Suite } from './harness.js';
import { T0, LEASE_MS, LIMIT_ALL, TERMINAL, RANK, pacing, newCampaign, phone, people, seqs } from './harness.js';

export function randomizedCases(s: Suite): void {
  const { rawRows, rawRow, seed, claim, begin, out, record, sendAll, consistent } = s;
  describe('randomized', () => {
    for (const seedValue of [1, 2, 3]) {
      it(`keeps counters equal to rows and statuses monotonic under a mixed sequence (seed ${seedValue})`, async () => {
        await randomized(seedValue);
      });
    }
  });

  /**
   * A deterministic mixed sequence of every operation (imports with duplicates, claims by several
   * owners, write-aheads, outcomes right and wrong, heartbeats, releases, time passing, recovery,
   * opt-outs, receipts, batch moves), checking I2 and monotonic statuses along the way.
   */
  const randomized = async (seedValue: number) => {
    const rng = seededRandom(seedValue);
    const int = (n: number) => Math.floor(rng() * n);
    const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
    const campaigns = ['c1', 'c2'];
    await s.store.createCampaign(newCampaign('c1', { batchSize: 4 }));
    await s.store.createCampaign(newCampaign('c2', { batchSize: 5 }));
    await s.store.upsertAccount('a1', pacing(), T0);
    await s.store.upsertAccount('a2', pacing(), T0);
    const owners = ['o1', 'o2', 'o3'];
    const pids: string[] = [];
    let now = T0;
    let pidSeq = 0;
    const last = new Map<string, RecipientStatus>();

    const checkpoint = async () => {
      for (const id of campaigns) {
        const { rows } = await consistent(id);
        for (const r of rows) {
          const before = last.get(r.id);
          if (before && TERMINAL.includes(before)) {
            expect(TERMINAL.includes(r.status), `row ${r.id} went back from ${before} to ${r.status}`).toBe(true);
            if (RANK[before] !== undefined && RANK[r.status] !== undefined) expect(RANK[r.status]!).toBeGreaterThanOrEqual(RANK[before]!);
          }
          last.set(r.id, r.status);
        }
      }
    };

    for (let step = 0; step < 160; step++) {
      const campaignId = pick(campaigns);
      const roll = rng();
      if (roll < 0.1) {
        const batch = Array.from({ length: 1 + int(6) }, () => {
          const k = int(40);
          return { phone: phone(k), vars: { k: String(k) } };
        });
        await s.store.addRecipients(campaignId, batch, now);
      } else if (roll < 0.25) {
        await claim(pick(owners), { campaignId, batch: 1 + int(3), limit: 1 + int(4), now });
      } else if (roll < 0.45) {
        const leased = (await s.store.listRecipients(campaignId, { status: ['pending'], limit: LIMIT_ALL })).filter((r) => r.leaseOwner !== null);
        if (leased.length > 0) {
          const r = pick(leased);
          const pid = rng() < 0.5 ? `rp-${++pidSeq}` : undefined;
          const result = await begin(rng() < 0.9 ? r.leaseOwner! : pick(owners), r, { now, accountId: pick(['a1', 'a2']), gapMs: pick([0, 0, 500]), ...(pid ? { pid } : {}) });
          if (result.granted && pid) pids.push(pid);
        }
      } else if (roll < 0.65) {
        const open = (await s.store.listRecipients(campaignId, { status: ['pending', 'sending'], limit: LIMIT_ALL })).filter((r) => r.leaseOwner !== null);
        if (open.length > 0) {
          const r = pick(open);
          const status = pick(['sent', 'sent', 'failed', 'skipped', 'unknown', 'pending'] as const);
          const pid = status === 'sent' ? `op-${++pidSeq}` : undefined;
          const [res] = await record(
            rng() < 0.85 ? r.leaseOwner! : pick(owners),
            [out(r, status, { at: now, attempts: r.attempts + 1, accountEffect: pick(['success', 'failure', 'none'] as const), accountId: pick(['a1', 'a2']), ...(pid ? { providerMessageId: pid } : {}), ...(status === 'skipped' ? { skipReason: 'not_on_whatsapp' as const } : {}) })],
            now,
          );
          if (res?.applied && pid) pids.push(pid);
        }
      } else if (roll < 0.7) {
        await s.store.heartbeat(pick(owners), now, LEASE_MS);
      } else if (roll < 0.75) {
        await s.store.release(pick(owners));
      } else if (roll < 0.83) {
        now += int(LEASE_MS / 2);
      } else if (roll < 0.88) {
        const doubt = await s.store.listInDoubt(now, 5);
        await s.store.settleInDoubt(
          doubt.map((r) => ({ recipientId: r.id, status: pick(['sent', 'pending', 'unknown'] as const), providerMessageId: `sp-${++pidSeq}`, sentAt: now })),
          now,
        );
      } else if (roll < 0.9) {
        await s.store.addOptOuts([{ phone: phone(int(40)), reason: 'random', source: 'api', at: now }], now);
      } else if (roll < 0.97) {
        if (pids.length > 0) {
          await s.store.applyStatusUpdates(
            Array.from({ length: 1 + int(3) }, () => ({ providerMessageId: rng() < 0.9 ? pick(pids) : 'nope', status: pick(['sent', 'delivered', 'read', 'failed'] as const), at: now })),
            now,
          );
        }
      } else {
        const c = (await s.store.getCampaign(campaignId))!;
        await s.store.nextBatch({ campaignId, current: c.currentBatch, next: c.currentBatch + 1, nextBatchAt: null, now });
      }
      if (step % 20 === 19) await checkpoint();
    }
    await checkpoint();
    // Drain: recover everything, hand every lease back, and work each campaign to the end.
    now += 10 * LEASE_MS;
    await s.store.settleInDoubt((await s.store.listInDoubt(now, LIMIT_ALL)).map((r) => ({ recipientId: r.id, status: 'unknown' as const })), now);
    for (const campaignId of campaigns) {
      for (const { batch } of await s.raw.batches(campaignId)) {
        const claimed = await claim('drain', { campaignId, batch, limit: LIMIT_ALL, now });
        if (claimed.length > 0) await record('drain', claimed.map((r) => out(r, 'failed', { at: now, error: 'drained' })), now);
      }
      const rows = await rawRows(campaignId);
      expect(rows.filter((r) => r.status === 'pending' || r.status === 'sending'), `campaign ${campaignId} drained`).toEqual([]);
    }
    await checkpoint();
  };
}
