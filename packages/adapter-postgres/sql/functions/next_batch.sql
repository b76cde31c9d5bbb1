-- StateStore.nextBatch: move the campaign's batch pointer from `p_current` to `p_next` (and set the
-- pause before it) when its current batch is `p_current` and none of that batch's rows is pending or
-- sending; mark the finished batch. Returns the campaign, or null (not finished, or another worker
-- moved the pointer first). The campaign row is locked first, so an import into the current batch
-- either commits before (and its rows hold the move back) or waits and sees the new batch.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.next_batch(p_campaign_id text, p_current integer, p_next integer,
  p_next_batch_at bigint, p_now bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_current integer;
  v_result jsonb;
BEGIN
  SELECT c.current_batch INTO v_current FROM :DISPARO_SCHEMA.campaigns c WHERE c.id = p_campaign_id FOR UPDATE;
  IF NOT FOUND OR v_current <> p_current THEN
    RETURN NULL;
  END IF;
  IF (SELECT coalesce(sum(k.n_pending + k.n_sending), 0) FROM :DISPARO_SCHEMA.batch_counts k
      WHERE k.campaign_id = p_campaign_id AND k.batch = p_current) > 0 THEN
    RETURN NULL;
  END IF;
  UPDATE :DISPARO_SCHEMA.batches SET finished_at = p_now WHERE campaign_id = p_campaign_id AND batch = p_current;
  UPDATE :DISPARO_SCHEMA.campaigns c SET current_batch = p_next, next_batch_at = p_next_batch_at, updated_at = p_now
    WHERE c.id = p_campaign_id
    RETURNING :DISPARO_SCHEMA._campaign_json(c) INTO v_result;
  RETURN v_result;
END
$$;
