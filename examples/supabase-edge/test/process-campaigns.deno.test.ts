/**
 * The process-campaigns Edge Function for real under Deno (the built packages through an import map,
 * supabase-js from npm), against the PostgREST stand-in and real PostgreSQL, sending through the
 * Evolution transport to the fake Evolution server. Measured where the provider sees it: which numbers
 * arrived, how often, and how far apart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServedFunction } from './support/deno.js';
import { invoke, minGap, sendsTo, startEdge, startedCampaign, type Edge, type Invocation } from './support/edge.js';

const PACING = { min: 200, max: 220 };
let edge: Edge;
let fn: ServedFunction;

beforeAll(async () => {
  edge = await startEdge('edge_fn', { pacing: PACING });
  fn = await edge.serve();
}, 240_000);

afterAll(async () => {
  await edge?.stop();
});

const counts = (numbers: string[]) => {
  const m = new Map<string, number>();
  for (const n of numbers) m.set(n, (m.get(n) ?? 0) + 1);
  return m;
};
const waitFor = async (what: string, ok: () => boolean | Promise<boolean>, timeoutMs = 20_000) => {
  const end = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('process-campaigns under Deno', () => {
  it("refuses a call without the service_role key, and a body it does not know", async () => {
    const anon = await invoke(edge, fn, {}, edge.project.sb.anonKey);
    expect(anon.status).toBe(401);
    expect(anon.body).toMatchObject({ success: false });
    const bad = await invoke(edge, fn, { budget: 5 });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/Invalid body: \(root\): Unrecognized key: "budget"/);
  });

  it("answers seed S4's shape and sends a campaign over several invocations, paced across them as the provider sees it", async () => {
    const { campaign, phones } = await startedCampaign(edge, 8, 4);
    const answers: Invocation[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await invoke(edge, fn, { budget_ms: 700 });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      answers.push(r);
      if (r.body.results.find((x) => x.campaign_id === campaign.id)?.done) break;
    }
    const first = answers[0]!.body;
    expect(first).toMatchObject({ success: true, campaigns: 1, message: expect.stringMatching(/^Processed \d+ batch\(es\), \d+ message\(s\) sent, 1 campaign\(s\)$/) });
    expect(new Date(first.timestamp).toISOString()).toBe(first.timestamp);
    expect(first.results[0]).toMatchObject({ campaign_id: campaign.id, campaign_name: campaign.name, success: true, status: 'running', batch: expect.any(Number) });
    // Several invocations were needed, each did a bounded slice, and what they say adds up.
    expect(answers.length).toBeGreaterThan(2);
    const mine = answers.map((a) => a.body.results.find((x) => x.campaign_id === campaign.id)!);
    expect(mine.reduce((s, r) => s + r.messages_sent, 0)).toBe(8);
    expect(answers.reduce((s, a) => s + a.body.messages_sent, 0)).toBe(8);
    expect(mine.reduce((s, r) => s + r.batches_processed, 0)).toBe(2);
    expect(mine.map((r) => r.remaining)).toEqual([...mine.map((r) => r.remaining)].sort((a, b) => b - a));
    expect(mine.at(-1)).toMatchObject({ done: true, status: 'completed', remaining: 0, continue_at: null });

    const sends = sendsTo(edge.fake, phones);
    expect(sends.map((s) => s.number).sort()).toEqual([...phones].sort());
    expect(minGap(sends), 'no two sends of the account closer than its minimum gap (20 ms of jitter)').toBeGreaterThanOrEqual(PACING.min - 20);
    expect((await edge.project.raw.campaign(campaign.id))!.counters).toMatchObject({ total: 8, sent: 8, pending: 0, sending: 0 });
  }, 60_000);

  it('two overlapping invocations (two isolates) never send a message twice', async () => {
    const { campaign, phones } = await startedCampaign(edge, 12);
    const other = await edge.serve();
    for (let round = 0; round < 10; round++) {
      const [a, b] = await Promise.all([invoke(edge, fn, { budget_ms: 1_500 }), invoke(edge, other, { budget_ms: 1_500 })]);
      expect([a.status, b.status]).toEqual([200, 200]);
      // Both worked on it at once.
      if (round === 0) for (const r of [a, b]) expect(r.body.results.map((x) => x.campaign_id)).toContain(campaign.id);
      if ((await edge.project.raw.campaign(campaign.id))!.status === 'completed') break;
    }
    await other.stop();
    const sends = sendsTo(edge.fake, phones);
    expect([...counts(sends.map((s) => s.number)).values()].filter((n) => n > 1), 'a number sent twice').toEqual([]);
    expect(sends).toHaveLength(12);
    expect(minGap(sends)).toBeGreaterThanOrEqual(PACING.min - 20);
    expect((await edge.project.raw.campaign(campaign.id))!).toMatchObject({ status: 'completed', counters: { sent: 12, unknown: 0 } });
  }, 90_000);

  it('an invocation killed mid-slice loses nothing: the next one settles the send it left in doubt and resumes', async () => {
    const { campaign, phones } = await startedCampaign(edge, 6);
    const doomed = await edge.serve();
    // The third send reaches WhatsApp and Evolution stores it, but its answer never comes back.
    edge.fake.next('send', {}).next('send', {}).next('send', { sendFirst: true, hold: true });
    const before = sendsTo(edge.fake, phones).length;
    const running = invoke(edge, doomed, { budget_ms: 20_000 }).catch((e: unknown) => e);
    await waitFor('the third send', () => sendsTo(edge.fake, phones).length - before >= 3);
    await doomed.stop('SIGKILL');
    expect(await running).toBeInstanceOf(Error);

    // What the dead invocation left: one send in doubt, written ahead.
    const inDoubt = (await edge.project.raw.recipients(campaign.id)).filter((r) => r.status === 'sending');
    expect(inDoubt.map((r) => r.phone)).toEqual([sendsTo(edge.fake, phones).at(-1)!.number]);
    // Its lease (2 s here) runs out; then an invocation finds the send at Evolution and goes on.
    await waitFor('the lease to expire', async () => (await edge.project.raw.recipients(campaign.id)).every((r) => r.leaseExpiresAt === null || r.leaseExpiresAt < Date.now()), 10_000);
    let last: Invocation | undefined;
    for (let i = 0; i < 5 && (await edge.project.raw.campaign(campaign.id))!.status !== 'completed'; i++) last = await invoke(edge, fn, { budget_ms: 3_000 });
    expect(last?.status).toBe(200);
    const sends = sendsTo(edge.fake, phones);
    expect(sends.map((s) => s.number).sort(), 'every number once: none lost, none resent').toEqual([...phones].sort());
    expect((await edge.project.raw.campaign(campaign.id))!).toMatchObject({ status: 'completed', counters: { total: 6, sent: 6, unknown: 0, failed: 0 } });
  }, 90_000);

  it('a cancelled campaign stops within the invocation working on it; the next one sends nothing for it', async () => {
    const { campaign, phones } = await startedCampaign(edge, 20);
    const before = sendsTo(edge.fake, phones).length;
    const running = invoke(edge, fn, { budget_ms: 8_000 });
    await waitFor('two sends', () => sendsTo(edge.fake, phones).length - before >= 2);
    const { rows } = await edge.project.sb.sql<{ c: { status: string } }>('SELECT disparo_ops.cancel_campaign($1) AS c', [campaign.id]);
    expect(rows[0]!.c.status).toBe('cancelled');
    const cancelledAt = sendsTo(edge.fake, phones).length;
    const r = await running;
    expect(r.status).toBe(200);
    expect(r.body.results.find((x) => x.campaign_id === campaign.id)).toMatchObject({ status: 'cancelled', success: true });
    // It stopped at its next tick (the slice it had leased may finish: lease / 2 / mean gap = 4 here), long before its budget.
    const atStop = sendsTo(edge.fake, phones).length;
    expect(atStop - cancelledAt).toBeLessThanOrEqual(4);
    expect(r.ms).toBeLessThan(6_000);

    const next = await invoke(edge, fn, { budget_ms: 1_000 });
    expect(next.body.results.map((x) => x.campaign_id)).not.toContain(campaign.id);
    expect(sendsTo(edge.fake, phones)).toHaveLength(atStop);
    const rowsAfter = await edge.project.raw.recipients(campaign.id);
    expect(rowsAfter.filter((x) => x.status === 'sending' || x.leaseOwner !== null)).toEqual([]);
    expect(rowsAfter.filter((x) => x.status === 'pending').length).toBe(20 - atStop + before);
  }, 60_000);

  it('the operators\' helpers: campaign status and queue status', async () => {
    const { campaign } = await startedCampaign(edge, 3);
    const { rows: status } = await edge.project.sb.sql('SELECT * FROM disparo_ops.campaign_status($1)', [campaign.id]);
    expect(status).toEqual([expect.objectContaining({ id: campaign.id, status: 'running', total: '3', pending: '3', sent: '0', percent_done: '0.0' })]);
    const { rows: queue } = await edge.project.sb.sql('SELECT * FROM disparo_ops.queue_status()');
    expect(queue[0]!).toMatchObject({ due_campaigns: 1, pending: '3', sending: '0' });
    expect(queue[0]!.by_campaign[campaign.id]).toMatchObject({ status: 'running', pending: 3, due: true });
    expect(queue[0]!.oldest_due).toBeInstanceOf(Date);
    await expect(edge.project.sb.sql(`SELECT disparo_ops.cancel_campaign('nope')`)).rejects.toThrow('No campaign with id nope');
    await edge.project.sb.sql('SELECT disparo_ops.cancel_campaign($1)', [campaign.id]);
    await expect(edge.project.sb.sql('SELECT disparo_ops.cancel_campaign($1)', [campaign.id])).rejects.toThrow(/is cancelled: only draft, scheduled, running or paused campaigns can be cancelled/);
    expect((await edge.project.sb.sql('SELECT due_campaigns FROM disparo_ops.queue_status()')).rows[0]!.due_campaigns).toBe(0);
  });
});
