-- Operators' helpers for the SQL editor (schema disparo_ops, never exposed to the Data API): what the
-- campaigns are doing, what is waiting, and a way to cancel one. They read and change Disparo's state
-- only through the store's own functions (schema disparo, from @disparo/adapter-supabase's migration),
-- so counters, statuses and transitions follow the same rules as the engine's.
--
--   SELECT * FROM disparo_ops.campaign_status();            -- every campaign, newest first
--   SELECT * FROM disparo_ops.campaign_status('<id>');      -- one
--   SELECT * FROM disparo_ops.queue_status();               -- due campaigns, pending per campaign, oldest due
--   SELECT disparo_ops.cancel_campaign('<id>');             -- stops within one invocation of process-campaigns
--
-- PL/pgSQL, so this file applies before or after the Disparo migration (bodies are checked when called).

CREATE SCHEMA IF NOT EXISTS disparo_ops;
REVOKE ALL ON SCHEMA disparo_ops FROM PUBLIC;

CREATE OR REPLACE FUNCTION disparo_ops.campaign_status(p_campaign_id text DEFAULT NULL)
RETURNS TABLE (
  id text, name text, status text, pause_reason text, batch integer,
  total bigint, pending bigint, sending bigint, sent bigint, delivered bigint, read bigint, failed bigint, skipped bigint, unknown bigint,
  percent_done numeric, created_at timestamptz, started_at timestamptz, next_batch_at timestamptz, finished_at timestamptz, last_error text
)
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN QUERY
  SELECT e.c ->> 'id', e.c ->> 'name', e.c ->> 'status', e.c ->> 'pauseReason', (e.c ->> 'currentBatch')::integer,
    (e.c -> 'counters' ->> 'total')::bigint, (e.c -> 'counters' ->> 'pending')::bigint, (e.c -> 'counters' ->> 'sending')::bigint,
    (e.c -> 'counters' ->> 'sent')::bigint, (e.c -> 'counters' ->> 'delivered')::bigint, (e.c -> 'counters' ->> 'read')::bigint,
    (e.c -> 'counters' ->> 'failed')::bigint, (e.c -> 'counters' ->> 'skipped')::bigint, (e.c -> 'counters' ->> 'unknown')::bigint,
    round(100.0 * ((e.c -> 'counters' ->> 'total')::bigint - (e.c -> 'counters' ->> 'pending')::bigint - (e.c -> 'counters' ->> 'sending')::bigint)
      / nullif((e.c -> 'counters' ->> 'total')::bigint, 0), 1),
    to_timestamp((e.c ->> 'createdAt')::bigint / 1000.0), to_timestamp((e.c ->> 'startedAt')::bigint / 1000.0),
    to_timestamp((e.c ->> 'nextBatchAt')::bigint / 1000.0), to_timestamp((e.c ->> 'finishedAt')::bigint / 1000.0),
    e.c ->> 'lastError'
  FROM jsonb_array_elements(
    CASE WHEN p_campaign_id IS NULL THEN disparo.list_campaigns(NULL, NULL) ELSE jsonb_build_array(disparo.get_campaign(p_campaign_id)) END
  ) AS e(c)
  WHERE e.c <> 'null'::jsonb
  ORDER BY (e.c ->> 'createdAt')::bigint DESC, e.c ->> 'id';
END
$$;

-- What process-campaigns will work on: campaigns due now (running and not pausing between batches, or
-- scheduled for a time that came), recipients pending and in flight, the oldest due time (how late the
-- queue is) and the next one to come. `by_campaign`: each open campaign's pending, in flight and due time.
CREATE OR REPLACE FUNCTION disparo_ops.queue_status()
RETURNS TABLE (due_campaigns integer, pending bigint, sending bigint, oldest_due timestamptz, next_due timestamptz, by_campaign jsonb)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_now bigint := (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
BEGIN
  RETURN QUERY
  WITH open AS (
    SELECT e.c ->> 'id' AS id, e.c ->> 'name' AS name, e.c ->> 'status' AS status,
      (e.c -> 'counters' ->> 'pending')::bigint AS pending, (e.c -> 'counters' ->> 'sending')::bigint AS sending,
      CASE e.c ->> 'status'
        WHEN 'running' THEN coalesce((e.c ->> 'nextBatchAt')::bigint, (e.c ->> 'startedAt')::bigint)
        WHEN 'scheduled' THEN (e.c ->> 'scheduledAt')::bigint
      END AS due_at
    FROM jsonb_array_elements(disparo.list_campaigns('["running", "scheduled", "paused"]', NULL)) AS e(c)
  )
  SELECT count(*) FILTER (WHERE o.due_at <= v_now)::integer,
    coalesce(sum(o.pending), 0)::bigint, coalesce(sum(o.sending), 0)::bigint,
    to_timestamp(min(o.due_at) FILTER (WHERE o.due_at <= v_now) / 1000.0),
    to_timestamp(min(o.due_at) FILTER (WHERE o.due_at > v_now) / 1000.0),
    coalesce(jsonb_object_agg(o.id, jsonb_build_object('name', o.name, 'status', o.status, 'pending', o.pending, 'sending', o.sending,
      'due', o.due_at <= v_now, 'due_at', to_timestamp(o.due_at / 1000.0))) FILTER (WHERE o.id IS NOT NULL), '{}')
  FROM open o;
END
$$;

-- Cancel a campaign (draft, scheduled, running or paused: core's CAMPAIGN_TRANSITIONS into cancelled),
-- with the store's compare-and-set: an invocation working on it stops at its next tick, and its pending
-- recipients stay pending, never sent. Returns the campaign; raises when there is none or it is finished.
CREATE OR REPLACE FUNCTION disparo_ops.cancel_campaign(p_campaign_id text)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_done jsonb;
  v_now jsonb;
BEGIN
  v_done := disparo.transition_campaign(p_campaign_id, jsonb_build_object('to', 'cancelled', 'from', '["draft", "scheduled", "running", "paused"]'::jsonb,
    'now', (extract(epoch FROM clock_timestamp()) * 1000)::bigint, 'finished', true));
  IF v_done IS NOT NULL THEN
    RETURN v_done;
  END IF;
  v_now := disparo.get_campaign(p_campaign_id);
  IF v_now IS NULL THEN
    RAISE EXCEPTION 'No campaign with id %', p_campaign_id USING HINT = 'SELECT id, name, status FROM disparo_ops.campaign_status();';
  END IF;
  RAISE EXCEPTION 'Campaign % is %: only draft, scheduled, running or paused campaigns can be cancelled', p_campaign_id, v_now ->> 'status';
END
$$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA disparo_ops FROM PUBLIC;
DO $$
BEGIN
  -- On Supabase (and wherever these roles exist): keep the API roles out, whatever default privileges say.
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'anon') THEN
    REVOKE ALL ON SCHEMA disparo_ops FROM anon, authenticated;
    REVOKE ALL ON ALL FUNCTIONS IN SCHEMA disparo_ops FROM anon, authenticated;
  END IF;
END
$$;
