-- StateStore.cleanup: delete finished campaigns whose `finished_at` is before `p_older_than`, with their
-- rows, batch records, counter shards, leases and sends in flight. Only a finished campaign has a `finished_at` (set by
-- transition_campaign when core's isFinished says so), so no list of statuses lives here.
-- Returns {"campaigns": n, "recipients": n}.
--
-- The rows go first, and their sends in flight in a statement of its own after them. A worker may be
-- writing one of them ahead as the campaign is cleaned up (it was cancelled moments before): deleting
-- the row waits for that write-ahead's row lock, and a later statement's snapshot holds the send it
-- committed meanwhile. In one statement, that send was past its snapshot: it stayed, with no row to
-- settle it, and held its account's window for good. A write-ahead that comes after the rows are gone
-- finds no row and writes nothing.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.cleanup(p_older_than bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_ids text[];
  v_recipients bigint;
BEGIN
  WITH c AS (
    DELETE FROM :DISPARO_SCHEMA.campaigns WHERE finished_at < p_older_than RETURNING id
  )
  SELECT coalesce(array_agg(c.id), '{}') INTO v_ids FROM c;
  IF cardinality(v_ids) = 0 THEN
    RETURN jsonb_build_object('campaigns', 0, 'recipients', 0);
  END IF;
  WITH r AS (
    DELETE FROM :DISPARO_SCHEMA.recipients WHERE campaign_id = ANY (v_ids) RETURNING 1
  )
  SELECT count(*) INTO v_recipients FROM r;
  DELETE FROM :DISPARO_SCHEMA.in_flight WHERE campaign_id = ANY (v_ids);
  DELETE FROM :DISPARO_SCHEMA.leases WHERE campaign_id = ANY (v_ids);
  DELETE FROM :DISPARO_SCHEMA.batches WHERE campaign_id = ANY (v_ids);
  DELETE FROM :DISPARO_SCHEMA.campaign_counts WHERE campaign_id = ANY (v_ids);
  DELETE FROM :DISPARO_SCHEMA.batch_counts WHERE campaign_id = ANY (v_ids);
  RETURN jsonb_build_object('campaigns', cardinality(v_ids), 'recipients', v_recipients);
END
$$;
