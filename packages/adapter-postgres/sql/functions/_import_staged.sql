-- Import the rows staged in the session's `pg_temp.disparo_import` (ord, phone, vars) into a campaign:
-- the one import path, behind both the COPY fast path (node-postgres pools) and add_recipients (JSON).
-- Returns {"inserted", "duplicates", "optedOut"}; raises P0002 when the campaign does not exist.
--
-- The campaign row is locked first, so concurrent imports into one campaign take turns: each sees the
-- phones the previous one committed, and seq stays gapless. The first occurrence of a phone wins; a
-- phone already in the campaign, or repeated, is a duplicate; a phone on the suppression list is
-- counted once as opted out (its repeats are duplicates). A row joins batch ceil(seq / batchSize), or
-- the current batch when the campaign has left that one (core's batchForRow), so it is still sent.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA._import_staged(p_campaign_id text, p_now bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_last integer;
  v_current integer;
  v_size integer;
  v_total integer;
  v_inserted integer;
  v_opted_out integer;
  v_batches integer[];
  v_counts integer[];
  v_shard smallint := (pg_backend_pid() % 16)::smallint;
BEGIN
  SELECT c.last_seq, c.current_batch, greatest(1, coalesce((c.settings ->> 'batchSize')::integer, 1))
    INTO v_last, v_current, v_size
    FROM :DISPARO_SCHEMA.campaigns c WHERE c.id = p_campaign_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'campaign % not found', p_campaign_id USING ERRCODE = 'P0002';
  END IF;
  SELECT count(*) INTO v_total FROM pg_temp.disparo_import;

  WITH firsts AS (
    SELECT DISTINCT ON (s.phone) s.ord, s.phone, s.vars FROM pg_temp.disparo_import s ORDER BY s.phone, s.ord
  ), fresh AS (
    -- Each phone is looked up in the unique index (the LIMIT keeps it a per-row probe): planned as an
    -- anti-join, it hashed every row the campaign already had, so each chunk of a long import read all
    -- the chunks before it.
    SELECT f.ord, f.phone, f.vars,
      EXISTS (SELECT 1 FROM :DISPARO_SCHEMA.opt_outs o WHERE o.phone = f.phone) AS opted
    FROM firsts f
    LEFT JOIN LATERAL (SELECT 1 AS hit FROM :DISPARO_SCHEMA.recipients r WHERE r.phone = f.phone AND r.campaign_id = p_campaign_id LIMIT 1) d ON true
    WHERE d.hit IS NULL
  ), numbered AS (
    SELECT f.phone, f.vars, (v_last + row_number() OVER (ORDER BY f.ord))::integer AS seq
    FROM fresh f WHERE NOT f.opted
  ), ins AS (
    INSERT INTO :DISPARO_SCHEMA.recipients (campaign_id, seq, batch, phone, vars, status, updated_at)
    SELECT p_campaign_id, n.seq, greatest((n.seq + v_size - 1) / v_size, v_current), n.phone, n.vars, 'pending', p_now
    FROM numbered n ORDER BY n.seq
    RETURNING batch
  ), per_batch AS (
    SELECT i.batch, count(*)::integer AS n FROM ins i GROUP BY i.batch
  ), new_batches AS (
    INSERT INTO :DISPARO_SCHEMA.batches (campaign_id, batch)
    SELECT p_campaign_id, pb.batch FROM per_batch pb ORDER BY pb.batch
    ON CONFLICT (campaign_id, batch) DO NOTHING
  )
  SELECT coalesce((SELECT sum(pb.n) FROM per_batch pb), 0)::integer,
    (SELECT count(*) FROM fresh f WHERE f.opted)::integer,
    (SELECT array_agg(pb.batch ORDER BY pb.batch) FROM per_batch pb),
    (SELECT array_agg(pb.n ORDER BY pb.batch) FROM per_batch pb)
    INTO v_inserted, v_opted_out, v_batches, v_counts;

  IF v_inserted > 0 THEN
    UPDATE :DISPARO_SCHEMA.campaigns SET last_seq = last_seq + v_inserted WHERE id = p_campaign_id;
    -- The new rows' counts into the same shards _count_moves writes, one delta per batch rather than
    -- one move per row (an import chunk holds thousands).
    INSERT INTO :DISPARO_SCHEMA.batch_counts AS k (campaign_id, batch, shard, n_total, n_pending)
      SELECT p_campaign_id, x.batch, v_shard, x.n, x.n FROM unnest(v_batches, v_counts) AS x(batch, n) ORDER BY x.batch
      ON CONFLICT (campaign_id, batch, shard) DO UPDATE SET n_total = k.n_total + excluded.n_total, n_pending = k.n_pending + excluded.n_pending;
    INSERT INTO :DISPARO_SCHEMA.campaign_counts AS k (campaign_id, shard, n_total, n_pending) VALUES (p_campaign_id, v_shard, v_inserted, v_inserted)
      ON CONFLICT (campaign_id, shard) DO UPDATE SET n_total = k.n_total + excluded.n_total, n_pending = k.n_pending + excluded.n_pending;
  END IF;
  -- Emptied at commit too (ON COMMIT DELETE ROWS); emptied now for callers inside a longer transaction.
  DELETE FROM pg_temp.disparo_import;
  RETURN jsonb_build_object('inserted', v_inserted, 'duplicates', v_total - v_inserted - v_opted_out, 'optedOut', v_opted_out);
END
$$;
