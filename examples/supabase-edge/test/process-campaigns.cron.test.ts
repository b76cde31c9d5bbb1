/**
 * The schedule for real, end to end: pg_cron (Debian's pg_cron 1.4, a one-minute job: it has no
 * second-level schedules) runs the job the example's migration schedules, whose SQL is the one that runs
 * on Supabase: net.http_post (the PL/Python stand-in of pg_net) with the URL and key from Vault (a
 * stand-in too) -> the process-campaigns function under Deno -> the Supabase store through the PostgREST
 * stand-in -> the same database -> the Evolution transport -> the fake Evolution server, where the sends
 * are counted. pg_cron fires on the next whole minute, so this waits up to about a minute.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServedFunction } from './support/deno.js';
import { CRON_MIGRATION, sendsTo, startEdge, startedCampaign, type Edge } from './support/edge.js';
import { requirePgCron, startCronPostgres, VAULT_STAND_IN_SQL, type CronPostgres } from './support/pg-cron.js';

const enabled = requirePgCron();

describe.skipIf(!enabled)('pg_cron -> net.http_post -> process-campaigns (Deno) -> Supabase store -> Evolution', () => {
  let cron: CronPostgres;
  let db: pg.Client;
  let edge: Edge;
  let fn: ServedFunction;

  beforeAll(async () => {
    cron = await startCronPostgres({ database: 'disparo_cron_e2e' });
    db = new pg.Client({ connectionString: cron.url });
    await db.connect();
    await db.query(VAULT_STAND_IN_SQL);
    // Supabase's roles, the Disparo migration and the operators' helpers on the pg_cron database itself.
    edge = await startEdge('cron_e2e', { databaseUrl: cron.url, pacing: { min: 100, max: 120 } });
    fn = await edge.serve();
    await db.query(`SELECT vault.create_secret($1, 'project_url'), vault.create_secret($2, 'disparo_service_role_key')`, [fn.url, edge.project.sb.serviceKey]);
  }, 240_000);

  afterAll(async () => {
    await db?.query(`SELECT disparo_ops.unschedule_process_campaigns()`).catch(() => undefined);
    await db?.end();
    await edge?.stop();
    await cron?.stop();
  });

  it('a scheduled run sends a due campaign to the end, once each, and records the function answer', async () => {
    const { campaign, phones } = await startedCampaign(edge, 3);
    // The example's migration as it is, with the interval pg_cron 1.4 understands.
    await db.query(`SET disparo.cron_schedule = '* * * * *'; ${CRON_MIGRATION}`);
    const { rows: jobs } = await db.query<{ jobid: string; schedule: string; command: string }>(`SELECT jobid, schedule, command FROM cron.job WHERE jobname = 'disparo-process-campaigns'`);
    expect(jobs).toHaveLength(1);
    expect(jobs[0]!.schedule).toBe('* * * * *');
    expect(jobs[0]!.command).toContain(`FROM vault.decrypted_secrets WHERE name = 'project_url') || '/functions/v1/process-campaigns'`);

    const deadline = Date.now() + 75_000;
    while (sendsTo(edge.fake, phones).length < 3) {
      if (Date.now() > deadline) throw new Error(`pg_cron did not get the campaign sent within 75 s. Server log:\n${cron.log().slice(-3000)}\nDeno:\n${fn.output().slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    // The job's run and the function's answer, as an operator reads them.
    let run: { status: string; return_message: string } | undefined;
    for (let i = 0; i < 200 && !run; i++) {
      run = (await db.query(`SELECT status, return_message FROM cron.job_run_details WHERE jobid = $1 AND status IN ('succeeded', 'failed')`, [jobs[0]!.jobid])).rows[0];
      if (!run) await new Promise((r) => setTimeout(r, 100));
    }
    expect(run).toEqual({ status: 'succeeded', return_message: '1 row' });
    const { rows: responses } = await db.query<{ status_code: number; content: string }>(`SELECT status_code, content FROM net._http_response ORDER BY created, id`);
    expect(responses[0]!.status_code).toBe(200);
    const answer = JSON.parse(responses[0]!.content);
    expect(answer).toMatchObject({ success: true, messages_sent: 3, batches_processed: 1, campaigns: 1 });
    expect(answer.results[0]).toMatchObject({ campaign_id: campaign.id, status: 'completed', remaining: 0, done: true });

    expect(sendsTo(edge.fake, phones).map((s) => s.number).sort()).toEqual([...phones].sort());
    expect((await edge.project.raw.campaign(campaign.id))!).toMatchObject({ status: 'completed', counters: { sent: 3 } });
    // Stopping it: the operators' helper removes the job.
    await db.query(`SELECT disparo_ops.unschedule_process_campaigns()`);
    expect((await db.query(`SELECT count(*)::int AS n FROM cron.job`)).rows[0].n).toBe(0);
  }, 120_000);
});
