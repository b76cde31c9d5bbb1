-- StateStore.cleanup: delete finished campaigns whose `finished_at` is before `p_older_than`, with their
-- rows, batch records, counter shards, leases and sends in flight. Only a finished campaign has a `finished_at` (set by
-- transition_campaign when core's isFinished says so), so no list of statuses lives here.
-- Returns {"campaigns": n, "recipients": n}.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.cleanup(p_older_than bigint)
RETURNS jsonb
LANGUAGE sql AS $$
  WITH c AS (
    DELETE FROM :DISPARO_SCHEMA.campaigns WHERE finished_at < p_older_than RETURNING id
  ), r AS (
    DELETE FROM :DISPARO_SCHEMA.recipients WHERE campaign_id IN (SELECT id FROM c) RETURNING 1
  ), b AS (
    DELETE FROM :DISPARO_SCHEMA.batches WHERE campaign_id IN (SELECT id FROM c) RETURNING 1
  ), k AS (
    DELETE FROM :DISPARO_SCHEMA.campaign_counts WHERE campaign_id IN (SELECT id FROM c) RETURNING 1
  ), bk AS (
    DELETE FROM :DISPARO_SCHEMA.batch_counts WHERE campaign_id IN (SELECT id FROM c) RETURNING 1
  ), l AS (
    DELETE FROM :DISPARO_SCHEMA.leases WHERE campaign_id IN (SELECT id FROM c) RETURNING 1
  ), f AS (
    DELETE FROM :DISPARO_SCHEMA.in_flight WHERE campaign_id IN (SELECT id FROM c) RETURNING 1
  )
  -- (Every data-modifying CTE runs to completion whether or not the query reads it.)
  SELECT jsonb_build_object('campaigns', (SELECT count(*) FROM c), 'recipients', (SELECT count(*) FROM r))
$$;
