-- Calls the process-campaigns Edge Function every 30 seconds (seed S4) with pg_cron and pg_net.
--
-- Before the first run, store the project URL and the service_role key in Vault (Dashboard > Project
-- Settings > Vault, or in the SQL editor):
--   SELECT vault.create_secret('https://<project-ref>.supabase.co', 'project_url');
--   SELECT vault.create_secret('<service_role key>', 'disparo_service_role_key');
-- The job reads them each time it runs, so they never sit in cron.job's text.
--
-- The interval is a parameter: disparo_ops.schedule_process_campaigns('30 seconds') here (pg_cron 1.5+,
-- as on Supabase); a pg_cron without second-level schedules takes cron syntax ('* * * * *'), which
-- `SET disparo.cron_schedule = '* * * * *'` before this file selects. Calling it again replaces the job.
-- Stop: SELECT disparo_ops.unschedule_process_campaigns();

CREATE EXTENSION IF NOT EXISTS pg_cron;
DO $$
BEGIN
  -- pg_net brings net.http_post; a database that already has it (or a stand-in of it) keeps what it has.
  IF NOT EXISTS (SELECT FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'net' AND p.proname = 'http_post') THEN
    CREATE EXTENSION IF NOT EXISTS pg_net;
  END IF;
END
$$;

CREATE SCHEMA IF NOT EXISTS disparo_ops;

-- The job's SQL is pg_net's documented call; the body's budget_ms is how long one invocation works, and
-- the request waits that long plus 30 s for the answer (net._http_response keeps it).
CREATE OR REPLACE FUNCTION disparo_ops.schedule_process_campaigns(p_schedule text DEFAULT '30 seconds', p_budget_ms integer DEFAULT 25000)
RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
  RETURN cron.schedule('disparo-process-campaigns', p_schedule, format($job$SELECT net.http_post(
    url := (SELECT decrypted_secret FROM vault.decrypted_secrets WHERE name = 'project_url') || '/functions/v1/process-campaigns',
    headers := jsonb_build_object('Content-Type', 'application/json',
      'Authorization', 'Bearer ' || (SELECT decrypted_secret FROM vault.decrypted_secrets WHERE name = 'disparo_service_role_key')),
    body := jsonb_build_object('source', 'pg_cron', 'budget_ms', %s),
    timeout_milliseconds := %s
  ) AS request_id$job$, p_budget_ms, p_budget_ms + 30000));
END
$$;

CREATE OR REPLACE FUNCTION disparo_ops.unschedule_process_campaigns()
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  RETURN cron.unschedule('disparo-process-campaigns');
END
$$;

REVOKE ALL ON FUNCTION disparo_ops.schedule_process_campaigns(text, integer), disparo_ops.unschedule_process_campaigns() FROM PUBLIC;

SELECT disparo_ops.schedule_process_campaigns(coalesce(nullif(current_setting('disparo.cron_schedule', true), ''), '30 seconds'));
