import { describe, expect, it } from 'vitest';
import type { Recipient } from '../../domain/types.js';
import { seededRandom } from '../../random.js';
import type { StateStore } from '../../store/contract.js';
import type { Suite } from './harness.js';
import { LEASE_MS, T0, newCampaign, people, seqs } from './harness.js';

/** Several connections on one database at once (skipped for stores with one session, such as PGlite). */
export function concurrencyCases(s: Suite): void {
  const { rawRows, rawRow, seed, claim, begin, out, sendAll, consistent } = s;
  const concurrent = s.options.concurrency !== false && s.options.share !== undefined;
  (concurrent ? describe : describe.skip)('concurrency (several connections)', () => {
    const share = async (n: number) => {
      const list: StateStore[] = [];
      for (let i = 0; i < n; i++) list.push(await s.options.share!(s.store));
      s.peers.push(...list);
      return list;
    };

    it('peers claiming the same campaign at once never get the same row, and together get every row', async () => {
      await seed({ n: 60, batchSize: 60 });
      const workers = await share(4);
      const got = await Promise.all(
        workers.map(async (peer, i) => {
          const mine: Recipient[] = [];
          for (;;) {
            const claimed = await peer.claimRecipients({ campaignId: 'c1', batch: 1, owner: `w${i}`, limit: 3, now: T0, leaseMs: LEASE_MS });
            if (claimed.length === 0) return mine;
            mine.push(...claimed);
          }
        }),
      );
      const ids = got.flat().map((r) => r.id);
      expect(new Set(ids).size, 'no row given twice').toBe(ids.length);
      expect(ids.length, 'every row claimed').toBe(60);
      const rows = await rawRows();
      got.forEach((mine, i) => {
        for (const r of mine) expect(rows.find((x) => x.id === r.id)!.leaseOwner).toBe(`w${i}`);
      });
      await consistent();
    });

    it('peers claiming, letting leases expire, beating, handing back and writing ahead at once: no deadlock, no attempt written ahead twice, counters equal rows', async () => {
      await seed({ n: 300, batchSize: 300 });
      const workers = await share(4);
      const grants = new Map<string, string[]>();
      let granted = 0;
      let handedBack = 0;
      await Promise.all(
        workers.map(async (peer, i) => {
          const rng = seededRandom(100 + i);
          const owner = `w${i}`;
          let backlog: Recipient[] = [];
          for (let round = 0; round < 40; round++) {
            // Each peer's clock: a lease lasts about three rounds unless a heartbeat extends it.
            const now = T0 + round * Math.floor(LEASE_MS / 3) + i;
            const claimed = await peer.claimRecipients({ campaignId: 'c1', batch: 1, owner, limit: 1 + Math.floor(rng() * 15), now, leaseMs: LEASE_MS });
            backlog = [...backlog.filter((x) => !claimed.some((c) => c.id === x.id)), ...claimed];
            // Rows claimed rounds ago too: their leases may have expired and gone to another peer.
            const due = backlog.filter(() => rng() < 0.5);
            backlog = backlog.filter((x) => !due.includes(x));
            const back: string[] = [];
            for (const r of due) {
              const roll = rng();
              if (roll < 0.2) back.push(r.id);
              if (roll < 0.6) continue;
              const attempt = r.attempts + 1;
              const res = await peer.checkpoint({ owner, now, leaseMs: LEASE_MS, writeAhead: { accountId: 'a1', maxInFlight: 100_000, items: [{ recipientId: r.id, campaignId: 'c1', text: 'x', attempt, gapMs: 0, leadMs: 0 }] } });
              if (!res.grants[0]!.granted) continue;
              granted++;
              const key = `${r.id}:${attempt}`;
              grants.set(key, [...(grants.get(key) ?? []), owner]);
              // Sent, or handed back for anyone to try again (a later attempt).
              const status = rng() < 0.5 ? 'sent' : 'pending';
              if (status === 'pending') handedBack++;
              await peer.checkpoint({ owner, now, leaseMs: LEASE_MS, outcomes: [out(r, status, { attempts: attempt, at: now, ...(status === 'sent' ? { providerMessageId: `p-${key}` } : {}) })] });
            }
            if (back.length > 0) await peer.release(owner, back);
            if (rng() < 0.3) await peer.heartbeat(owner, now, LEASE_MS);
          }
        }),
      );
      const twice = [...grants].filter(([, owners]) => owners.length > 1);
      expect(twice, 'an attempt written ahead by two owners').toEqual([]);
      expect(granted).toBeGreaterThan(100);
      expect(handedBack).toBeGreaterThan(20);
      await consistent();
    });

    it('peers racing for one paced account get exactly one slot each time', async () => {
      const rows = await seed({ n: 5 });
      const workers = await share(5);
      for (const [i, r] of rows.entries()) {
        // Each worker leases one recipient of its own.
        expect(seqs(await workers[i]!.claimRecipients({ campaignId: 'c1', batch: 1, owner: `w${i}`, limit: 1, now: T0, leaseMs: LEASE_MS }))).toEqual([r.seq]);
      }
      let waiting = rows.map((r, i) => ({ r, i }));
      let now = T0;
      for (let round = 0; waiting.length > 0; round++) {
        const results = await Promise.all(
          waiting.map(({ r, i }) =>
            workers[i]!.checkpoint({
              owner: `w${i}`,
              now,
              leaseMs: LEASE_MS,
              writeAhead: { accountId: 'a1', maxInFlight: 1_000, items: [{ recipientId: r.id, campaignId: 'c1', text: 'x', attempt: 1, gapMs: 10_000, leadMs: 0 }] },
            }),
          ),
        );
        const granted = results.filter((res) => res.grants[0]!.granted);
        expect(granted.length, `round ${round}: one slot`).toBe(1);
        for (const res of results) if (!res.grants[0]!.granted) expect(res.grants[0]).toEqual({ granted: false, reason: 'pacing', retryAt: now + 10_000 });
        waiting = waiting.filter((_, k) => !results[k]!.grants[0]!.granted);
        expect((await s.raw.account('a1'))!.nextSendAt).toBe(now + 10_000);
        now += 10_000;
      }
      const { campaign } = await consistent();
      expect(campaign.counters.sending).toBe(5);
    });

    it('two peers settling the same in-doubt row: exactly one applies', async () => {
      const rows = await seed({ n: 1 });
      await claim('dead');
      expect((await begin('dead', rows[0]!)).granted).toBe(true);
      const [a, b] = await share(2);
      const at = T0 + LEASE_MS + 1;
      const applied = await Promise.all([
        a!.settleInDoubt([{ recipientId: rows[0]!.id, status: 'unknown' }], at),
        b!.settleInDoubt([{ recipientId: rows[0]!.id, status: 'pending' }], at),
      ]);
      expect(applied[0]! + applied[1]!).toBe(1);
      const row = await rawRow(rows[0]!.id);
      expect(row.status).toBe(applied[0] === 1 ? 'unknown' : 'pending');
      await consistent();
    });

    it('peers importing overlapping audiences at once insert each phone once with gapless seq', async () => {
      await s.store.createCampaign(newCampaign('c1', { batchSize: 7 }));
      const workers = await share(4);
      // Half import in order, half in reverse, so the peers collide on every phone.
      const results = await Promise.all(workers.map((peer, i) => peer.addRecipients('c1', i % 2 === 0 ? people(30) : people(30).reverse(), T0)));
      expect(results.reduce((s, r) => s + r.inserted, 0)).toBe(30);
      expect(results.reduce((s, r) => s + r.duplicates, 0)).toBe(90);
      const { campaign } = await consistent();
      expect(campaign.counters.total).toBe(30);
    });

    it('peers racing the same transition or receipt: exactly one applies', async () => {
      const rows = await seed({ n: 1 });
      await sendAll(rows);
      const workers = await share(4);
      const moved = await Promise.all(workers.map((peer) => peer.transitionCampaign('c1', { from: ['draft'], to: 'running', now: T0 + 1 })));
      expect(moved.filter((c) => c !== null)).toHaveLength(1);
      const receipts = await Promise.all(workers.map((peer) => peer.applyStatusUpdates([{ providerMessageId: 'pid-1', status: 'delivered', at: T0 + 2 }], T0 + 2)));
      expect(receipts.reduce((s, r) => s + r.applied, 0)).toBe(1);
      expect(receipts.reduce((s, r) => s + r.ignored, 0)).toBe(3);
      const { campaign } = await consistent();
      expect(campaign.counters).toMatchObject({ delivered: 1, sent: 0 });
    });
    it('peers racing for one account with a window of one never have two sends in flight; an outcome frees the window', async () => {
      const rows = await seed({ n: 4 });
      const workers = await share(4);
      for (const [i, r] of rows.entries()) expect(seqs(await workers[i]!.claimRecipients({ campaignId: 'c1', batch: 1, owner: `w${i}`, limit: 1, now: T0, leaseMs: LEASE_MS }))).toEqual([r.seq]);
      let waiting = rows.map((r, i) => ({ r, i }));
      const now = T0;
      for (let round = 0; waiting.length > 0; round++) {
        const results = await Promise.all(
          waiting.map(({ r, i }) =>
            workers[i]!.checkpoint({ owner: `w${i}`, now, leaseMs: LEASE_MS, writeAhead: { accountId: 'a1', maxInFlight: 1, items: [{ recipientId: r.id, campaignId: 'c1', text: 'x', attempt: 1, gapMs: 0, leadMs: 0 }] } }),
          ),
        );
        const grantedAt = results.flatMap((res, k) => (res.grants[0]!.granted ? [k] : []));
        expect(grantedAt.length, `round ${round}: one send in flight`).toBe(1);
        for (const res of results) if (!res.grants[0]!.granted) expect(res.grants[0]).toMatchObject({ granted: false, reason: 'in_flight' });
        const { r, i } = waiting[grantedAt[0]!]!;
        // The send's outcome frees the window for the next one.
        const [applied] = (await workers[i]!.checkpoint({ owner: `w${i}`, now, leaseMs: LEASE_MS, outcomes: [out(r, 'sent', { accountId: 'a1', providerMessageId: `pid-${r.seq}` })] })).outcomes;
        expect(applied?.applied).toBe(true);
        waiting = waiting.filter((_, k) => k !== grantedAt[0]);
      }
      const { campaign } = await consistent();
      expect(campaign.counters.sent).toBe(4);
    });
  });
}
