-- StateStore.claimRecipients: lease up to `p_limit` pending rows of one batch, lowest seq first, that
-- no live lease holds. Marks the batch started. Rows whose phone opted out after the import are
-- skipped here (_skip_opted_out) and do not count toward the limit.
--
-- Why a keyset lower bound (`p_after_seq`): the claim index keeps the entries of rows already claimed
-- and finished until a vacuum removes them, so a claim that scans the batch from its start walks
-- more dead entries at every claim. The caller passes the highest seq it last claimed in this batch;
-- when a claim comes back short it passes 0 next time. When the range above `p_after_seq` runs out,
-- the same call fills up from below it, so rows handed back below the cursor (retries, recovery) are
-- still found, lowest first among those.
--
-- SKIP LOCKED: two callers never wait on, or get, the same row.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.claim_recipients(p_campaign_id text, p_batch integer, p_owner text, p_limit integer,
  p_now bigint, p_lease_ms bigint, p_after_seq integer DEFAULT 0)
RETURNS SETOF :DISPARO_SCHEMA.recipients
LANGUAGE plpgsql AS $$
DECLARE
  v_got integer := 0;
  v_need integer;
  v_low integer;
  v_high integer;
  v_pass integer;
  v_take bigint[];
  v_skip bigint[];
  v_max integer;
  v_found integer;
  v_moves :DISPARO_SCHEMA.move[] := '{}';
BEGIN
  UPDATE :DISPARO_SCHEMA.batches SET started_at = p_now
    WHERE campaign_id = p_campaign_id AND batch = p_batch AND started_at IS NULL;
  FOR v_pass IN 1..2 LOOP
    EXIT WHEN v_pass = 2 AND coalesce(p_after_seq, 0) <= 0;
    IF v_pass = 1 THEN
      v_low := greatest(coalesce(p_after_seq, 0), 0);
      v_high := NULL;
    ELSE
      v_low := 0;
      v_high := p_after_seq;
    END IF;
    LOOP
      v_need := p_limit - v_got;
      EXIT WHEN v_need <= 0;
      WITH cand AS (
        SELECT r.id, r.seq, r.phone FROM :DISPARO_SCHEMA.recipients r
        WHERE r.campaign_id = p_campaign_id AND r.batch = p_batch AND r.processed_at IS NULL AND r.status = 'pending'
          AND r.seq > v_low AND (v_high IS NULL OR r.seq <= v_high)
          AND (r.lease_owner IS NULL OR r.lease_expires_at IS NULL OR r.lease_expires_at <= p_now)
        ORDER BY r.seq
        LIMIT v_need
        FOR UPDATE SKIP LOCKED
      ), flagged AS (
        SELECT c.id, c.seq, EXISTS (SELECT 1 FROM :DISPARO_SCHEMA.opt_outs o WHERE o.phone = c.phone) AS opted FROM cand c
      )
      SELECT coalesce(array_agg(f.id) FILTER (WHERE NOT f.opted), '{}'), coalesce(array_agg(f.id) FILTER (WHERE f.opted), '{}'),
        max(f.seq), count(*)
        INTO v_take, v_skip, v_max, v_found
        FROM flagged f;
      EXIT WHEN v_found = 0;
      IF cardinality(v_take) > 0 THEN
        RETURN QUERY
          UPDATE :DISPARO_SCHEMA.recipients SET lease_owner = p_owner, lease_expires_at = p_now + p_lease_ms, updated_at = p_now
          WHERE id = ANY (v_take) RETURNING *;
        v_got := v_got + cardinality(v_take);
      END IF;
      IF cardinality(v_skip) > 0 THEN
        v_moves := v_moves || :DISPARO_SCHEMA._skip_opted_out(v_skip, p_now);
      END IF;
      EXIT WHEN v_found < v_need;
      v_low := v_max;
    END LOOP;
  END LOOP;
  PERFORM :DISPARO_SCHEMA._count_moves(v_moves);
END
$$;
