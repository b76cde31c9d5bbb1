/**
 * PostgREST sends at most db-max-rows rows of a set-returning function (Supabase: "Max rows", 1000 by
 * default), after the function has run to the end. The store never asks one call for more: claims are
 * capped (a claimed row is leased, so a cut one would sit leased until its lease expired), listings are
 * paged, and a listing that cannot be paged says so instead of coming back short. Here with a cap of 5.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { StoreError } from '@disparo/core';
import type { StateStore } from '@disparo/core/store';
import { startDisparoSupabase, type DisparoSupabase } from './support/disparo.js';

const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);
const CAP = 5;
const phone = (i: number) => `55119${String(80_000_000 + i).padStart(8, '0')}`;
const pacing = { intervalMs: { min: 0, max: 0 }, hourlyCap: null, dailyCap: null, warmup: null, typingMsPerChar: 0, typingMaxMs: 0, maxInFlight: 1, ratePerSecond: null };

let project: DisparoSupabase;
let store: StateStore;
beforeAll(async () => {
  project = await startDisparoSupabase('sb_maxrows', { maxRows: CAP });
});
afterAll(async () => {
  await project?.stop();
});

async function seed(n: number) {
  await store.createCampaign({
    id: 'c1',
    name: 'cap',
    templates: ['Oi'],
    media: null,
    accountIds: ['a1'],
    settings: { batchSize: 100, batchPauseMs: { min: 0, max: 0 }, maxAttempts: 3, retryBackoffMs: { min: 0, max: 0 }, inDoubt: 'at-most-once', sendWindow: null, stickySender: false, precheckNumbers: false, contactCap: null },
    status: 'draft',
    scheduledAt: null,
    metadata: {},
    now: T0,
  });
  await store.addRecipients('c1', Array.from({ length: n }, (_, i) => ({ phone: phone(i), vars: {} })), T0);
}

beforeEach(async () => {
  await project.truncate();
  store = project.store();
});

describe(`under a row cap of ${CAP}`, () => {
  it('the stand-in cuts a set-returning call at the cap after the function ran: a store that asked for more leaves rows leased that it never saw', async () => {
    await seed(12);
    const unaware = project.store({ maxRows: 1_000 });
    const got = await unaware.claimRecipients({ campaignId: 'c1', batch: 1, owner: 'w1', limit: 10, now: T0, leaseMs: 30_000 });
    expect(got).toHaveLength(CAP);
    expect((await project.raw.recipients('c1')).filter((r) => r.leaseOwner === 'w1')).toHaveLength(10);
  });

  it('claims at most the cap, so every row it leased is one it returned', async () => {
    await seed(12);
    const got = await store.claimRecipients({ campaignId: 'c1', batch: 1, owner: 'w1', limit: 10, now: T0, leaseMs: 30_000 });
    expect(got.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    const leased = (await project.raw.recipients('c1')).filter((r) => r.leaseOwner === 'w1').map((r) => r.id);
    expect(leased.sort()).toEqual(got.map((r) => r.id).sort());
    // The next claim goes on from there.
    expect((await store.claimRecipients({ campaignId: 'c1', batch: 1, owner: 'w1', limit: 10, now: T0, leaseMs: 30_000 })).map((r) => r.seq)).toEqual([6, 7, 8, 9, 10]);
  });

  it('lists recipients in pages: all of them, a limit above the cap, a cursor', async () => {
    await seed(12);
    expect((await store.listRecipients('c1')).map((r) => r.seq)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect((await store.listRecipients('c1', { limit: 7 })).map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect((await store.listRecipients('c1', { afterSeq: 3, limit: 100 })).map((r) => r.seq)).toEqual(Array.from({ length: 9 }, (_, i) => i + 4));
    expect(await store.listRecipients('c1', { limit: 0 })).toEqual([]);
  });

  it('lists accounts and opt-outs for given ids in groups; without ids, a list that may be cut is an error, not a short answer', async () => {
    const ids = Array.from({ length: 7 }, (_, i) => `acct-${6 - i}`);
    for (const id of ids) await store.upsertAccount(id, pacing, T0);
    expect((await store.listAccounts(ids)).map((a) => a.id)).toEqual(ids);
    await expect(store.listAccounts()).rejects.toThrow(StoreError);
    await expect(store.listAccounts()).rejects.toThrow(/row cap \(maxRows 5\): the list may be cut/);

    const phones = Array.from({ length: 12 }, (_, i) => phone(i));
    await store.addOptOuts(phones.map((p, i) => ({ phone: p, reason: 'SAIR', source: 'inbound' as const, at: T0 + (11 - i) })), T0);
    expect((await store.listOptOuts(phones)).map((o) => o.phone)).toEqual([...phones].reverse());
    await expect(store.listOptOuts()).rejects.toThrow(/listOptOuts\(\) returned 5 rows/);
    // Under the cap, no error.
    expect(await project.store({ maxRows: 50 }).listOptOuts()).toHaveLength(CAP);
  });

  it('reads the contact history of many phones, newest first, however many sends each has', async () => {
    await seed(12);
    // Sends recorded as the checkpoint would have (only what contactHistory reads).
    await project.sb.sql(`UPDATE disparo.recipients SET status = 'sent', account_id = 'a1', sent_at = $1::bigint + seq * 1000`, [T0]);
    const phones = Array.from({ length: 12 }, (_, i) => phone(i));
    const history = await store.contactHistory!(phones, T0);
    expect(history.map((h) => h.phone)).toEqual([...phones].reverse());
    expect(history.map((h) => h.sentAt)).toEqual(Array.from({ length: 12 }, (_, i) => T0 + (12 - i) * 1000));
  });

  it('reads an account send times in pages, each time once, equal times across a page boundary included', async () => {
    await seed(12);
    const times = [1, 2, 3, 4, 5, 5, 5, 6, 7, 8, 9, 10].map((t) => T0 + t);
    await project.sb.sql(
      `UPDATE disparo.recipients r SET status = 'sent', account_id = 'a1', sent_at = t.at FROM unnest($1::bigint[]) WITH ORDINALITY AS t(at, n) WHERE r.seq = t.n`,
      [times],
    );
    expect(await store.accountSendTimes!('a1', T0, 100)).toEqual(times);
    expect(await store.accountSendTimes!('a1', T0, 6)).toEqual(times.slice(0, 6));
  });

  it('lists sends in doubt up to the cap; recovery asks again for the rest', async () => {
    await seed(12);
    // Twelve sends of a dead worker, in flight (written ahead: adapter-postgres's sql/000006_in_flight.sql).
    await project.sb.sql(
      `INSERT INTO disparo.in_flight (recipient_id, campaign_id, batch, account_id, owner, expires_at, attempt, text, started_at)
       SELECT r.id, r.campaign_id, r.batch, 'a1', 'dead', $1, 1, 'Oi', $1 FROM disparo.recipients r`,
      [T0],
    );
    expect(await store.listInDoubt(T0 + 1, 500)).toHaveLength(CAP);
  });
});
