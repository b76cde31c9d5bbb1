-- Add the counter deltas of `p_moves` (recipient status changes) to this backend's shards of
-- `campaign_counts` and `batch_counts`, so that counters always equal the rows (I2). Every function
-- that changes a status calls it once, last in its transaction, so its row locks (taken in key
-- order) never wait behind a recipient's or an account's lock. A move with `from_status` null is an
-- insert, with `to_status` null a delete.
--
-- A per-message checkpoint moves one or two rows of one batch: those are added up here without a
-- query and written to the shard's rows by key; anything larger (or a shard's first rows of a batch)
-- is added up and upserted set-based.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA._count_moves(p_moves :DISPARO_SCHEMA.move[])
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_shard smallint := (pg_backend_pid() % 16)::smallint;
  v_move :DISPARO_SCHEMA.move;
  v_campaign text;
  v_batch integer;
  v_small boolean;
  -- Deltas: total, pending, sending, sent, delivered, read, failed, skipped, unknown.
  v_delta integer[] := '{0,0,0,0,0,0,0,0,0}';
  v_from integer;
  v_to integer;
BEGIN
  IF p_moves IS NULL OR cardinality(p_moves) = 0 THEN
    RETURN;
  END IF;
  v_campaign := p_moves[1].campaign_id;
  v_batch := p_moves[1].batch;
  v_small := cardinality(p_moves) <= 4;
  IF v_small THEN
    FOREACH v_move IN ARRAY p_moves LOOP
      IF v_move.campaign_id IS DISTINCT FROM v_campaign OR v_move.batch IS DISTINCT FROM v_batch THEN
        v_small := false;
        EXIT;
      END IF;
      CONTINUE WHEN v_move.from_status IS NOT DISTINCT FROM v_move.to_status;
      v_from := array_position(ARRAY['pending', 'sending', 'sent', 'delivered', 'read', 'failed', 'skipped', 'unknown'], v_move.from_status) + 1;
      v_to := array_position(ARRAY['pending', 'sending', 'sent', 'delivered', 'read', 'failed', 'skipped', 'unknown'], v_move.to_status) + 1;
      IF v_move.from_status IS NULL THEN v_delta[1] := v_delta[1] + 1; ELSE v_delta[v_from] := v_delta[v_from] - 1; END IF;
      IF v_move.to_status IS NULL THEN v_delta[1] := v_delta[1] - 1; ELSE v_delta[v_to] := v_delta[v_to] + 1; END IF;
    END LOOP;
  END IF;

  IF v_small THEN
    IF v_delta = '{0,0,0,0,0,0,0,0,0}'::integer[] THEN
      RETURN;
    END IF;
    -- The shard's rows exist but for a backend's first moves in a batch: an UPDATE by key is cheaper
    -- than an upsert that finds its conflict. (A batch's shard row never exists without its campaign's:
    -- both are written together, here and by the import, and deleted together.)
    UPDATE :DISPARO_SCHEMA.batch_counts k SET
      n_total = k.n_total + v_delta[1], n_pending = k.n_pending + v_delta[2], n_sending = k.n_sending + v_delta[3],
      n_sent = k.n_sent + v_delta[4], n_delivered = k.n_delivered + v_delta[5], n_read = k.n_read + v_delta[6],
      n_failed = k.n_failed + v_delta[7], n_skipped = k.n_skipped + v_delta[8], n_unknown = k.n_unknown + v_delta[9]
    WHERE k.campaign_id = v_campaign AND k.batch = v_batch AND k.shard = v_shard;
    IF FOUND THEN
      UPDATE :DISPARO_SCHEMA.campaign_counts k SET
        n_total = k.n_total + v_delta[1], n_pending = k.n_pending + v_delta[2], n_sending = k.n_sending + v_delta[3],
        n_sent = k.n_sent + v_delta[4], n_delivered = k.n_delivered + v_delta[5], n_read = k.n_read + v_delta[6],
        n_failed = k.n_failed + v_delta[7], n_skipped = k.n_skipped + v_delta[8], n_unknown = k.n_unknown + v_delta[9]
      WHERE k.campaign_id = v_campaign AND k.shard = v_shard;
      IF NOT FOUND THEN
        INSERT INTO :DISPARO_SCHEMA.campaign_counts AS k
          (campaign_id, shard, n_total, n_pending, n_sending, n_sent, n_delivered, n_read, n_failed, n_skipped, n_unknown)
        VALUES (v_campaign, v_shard, v_delta[1], v_delta[2], v_delta[3], v_delta[4], v_delta[5], v_delta[6], v_delta[7], v_delta[8], v_delta[9])
        ON CONFLICT (campaign_id, shard) DO UPDATE SET
          n_total = k.n_total + excluded.n_total, n_pending = k.n_pending + excluded.n_pending,
          n_sending = k.n_sending + excluded.n_sending, n_sent = k.n_sent + excluded.n_sent,
          n_delivered = k.n_delivered + excluded.n_delivered, n_read = k.n_read + excluded.n_read,
          n_failed = k.n_failed + excluded.n_failed, n_skipped = k.n_skipped + excluded.n_skipped,
          n_unknown = k.n_unknown + excluded.n_unknown;
      END IF;
      RETURN;
    END IF;
    -- The batch's shard row is new: both rows are upserted below (nothing was written yet).
  END IF;

  WITH d AS (
    SELECT m.campaign_id, m.batch,
      (count(*) FILTER (WHERE m.from_status IS NULL) - count(*) FILTER (WHERE m.to_status IS NULL))::int AS n_total,
      (count(*) FILTER (WHERE m.to_status = 'pending') - count(*) FILTER (WHERE m.from_status = 'pending'))::int AS n_pending,
      (count(*) FILTER (WHERE m.to_status = 'sending') - count(*) FILTER (WHERE m.from_status = 'sending'))::int AS n_sending,
      (count(*) FILTER (WHERE m.to_status = 'sent') - count(*) FILTER (WHERE m.from_status = 'sent'))::int AS n_sent,
      (count(*) FILTER (WHERE m.to_status = 'delivered') - count(*) FILTER (WHERE m.from_status = 'delivered'))::int AS n_delivered,
      (count(*) FILTER (WHERE m.to_status = 'read') - count(*) FILTER (WHERE m.from_status = 'read'))::int AS n_read,
      (count(*) FILTER (WHERE m.to_status = 'failed') - count(*) FILTER (WHERE m.from_status = 'failed'))::int AS n_failed,
      (count(*) FILTER (WHERE m.to_status = 'skipped') - count(*) FILTER (WHERE m.from_status = 'skipped'))::int AS n_skipped,
      (count(*) FILTER (WHERE m.to_status = 'unknown') - count(*) FILTER (WHERE m.from_status = 'unknown'))::int AS n_unknown
    FROM unnest(p_moves) AS m
    WHERE m.from_status IS DISTINCT FROM m.to_status
    GROUP BY m.campaign_id, m.batch
  ), b AS (
    INSERT INTO :DISPARO_SCHEMA.batch_counts AS k
      (campaign_id, batch, shard, n_total, n_pending, n_sending, n_sent, n_delivered, n_read, n_failed, n_skipped, n_unknown)
    SELECT d.campaign_id, d.batch, v_shard, d.n_total, d.n_pending, d.n_sending, d.n_sent, d.n_delivered, d.n_read,
      d.n_failed, d.n_skipped, d.n_unknown
    FROM d ORDER BY d.campaign_id, d.batch
    ON CONFLICT (campaign_id, batch, shard) DO UPDATE SET
      n_total = k.n_total + excluded.n_total, n_pending = k.n_pending + excluded.n_pending,
      n_sending = k.n_sending + excluded.n_sending, n_sent = k.n_sent + excluded.n_sent,
      n_delivered = k.n_delivered + excluded.n_delivered, n_read = k.n_read + excluded.n_read,
      n_failed = k.n_failed + excluded.n_failed, n_skipped = k.n_skipped + excluded.n_skipped,
      n_unknown = k.n_unknown + excluded.n_unknown
  )
  INSERT INTO :DISPARO_SCHEMA.campaign_counts AS k
    (campaign_id, shard, n_total, n_pending, n_sending, n_sent, n_delivered, n_read, n_failed, n_skipped, n_unknown)
  SELECT d.campaign_id, v_shard, sum(d.n_total), sum(d.n_pending), sum(d.n_sending), sum(d.n_sent), sum(d.n_delivered),
    sum(d.n_read), sum(d.n_failed), sum(d.n_skipped), sum(d.n_unknown)
  FROM d GROUP BY d.campaign_id ORDER BY d.campaign_id
  ON CONFLICT (campaign_id, shard) DO UPDATE SET
    n_total = k.n_total + excluded.n_total, n_pending = k.n_pending + excluded.n_pending,
    n_sending = k.n_sending + excluded.n_sending, n_sent = k.n_sent + excluded.n_sent,
    n_delivered = k.n_delivered + excluded.n_delivered, n_read = k.n_read + excluded.n_read,
    n_failed = k.n_failed + excluded.n_failed, n_skipped = k.n_skipped + excluded.n_skipped,
    n_unknown = k.n_unknown + excluded.n_unknown;
END
$$;
