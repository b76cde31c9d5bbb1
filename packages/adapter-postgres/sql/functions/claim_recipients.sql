-- StateStore.claimRecipients: lease up to `p_limit` pending rows of one batch, lowest seq first, that
-- no live lease holds. Marks the batch started. Rows whose phone opted out after the import are
-- skipped here (_skip_opted_out) and do not count toward the limit.
--
-- Range leases (000005_range_leases.sql): a row with no lease of its own is not written. The claim
-- writes one `leases` row per contiguous stretch of such rows it takes, so a claim of a thousand
-- fresh rows is one insert, not a thousand updates. A row with a lease of its own (an expired one, or
-- the "not leased" mark a hand-back leaves) is leased on the row, as before ranges.
--
-- Claims of one batch take the batch row's lock first, so they run one at a time there and the ranges
-- they make never overlap: a stretch stops where a live range begins, and the expired ranges it
-- passes over are trimmed to what lies outside it (every row they covered there is now this claim's,
-- done, or leased on the row). Besides the batch row, a claim never waits: the expired ranges it may
-- trim are locked first with SKIP LOCKED, and one that a heartbeat or a release holds counts as live
-- this time (its rows are left for a later claim). So a claim, which holds ranges, never waits on a
-- heartbeat or a release, which lock ranges and rows.
--
-- Why a keyset lower bound (`p_after_seq`): the claim index keeps the entries of rows already claimed
-- and finished until a vacuum removes them, so a claim that scans the batch from its start walks
-- more dead entries at every claim. The caller passes the highest seq it last claimed in this batch;
-- when a claim comes back short it passes 0 next time. When the range above `p_after_seq` runs out,
-- the same call fills up from below it, so rows handed back below the cursor (retries, recovery) are
-- still found, lowest first among those.
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
  v_dead int4multirange;   -- expired ranges in the span this pass reads, locked by this claim
  v_dead_ids bigint[];     -- (their keys)
  v_live int4multirange;   -- every other range there, and opted-out rows another statement holds
  v_held integer[];        -- (those rows' seqs)
  v_ranged integer[];      -- seqs taken by range
  v_ranged_ids bigint[];   -- and their ids
  v_own bigint[];          -- ids to lease on the row
  v_skip bigint[];
  v_own_skip bigint[];
  v_max integer;
  v_found integer;
  v_taken bigint[] := '{}';
  v_moves :DISPARO_SCHEMA.move[] := '{}';
BEGIN
  PERFORM 1 FROM :DISPARO_SCHEMA.batches b WHERE b.campaign_id = p_campaign_id AND b.batch = p_batch FOR NO KEY UPDATE;
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
    SELECT range_agg(int4range(d.lo, d.hi, '[]')), coalesce(array_agg(d.id), '{}') INTO v_dead, v_dead_ids FROM (
      SELECT l.id, l.lo, l.hi FROM :DISPARO_SCHEMA.leases l
      WHERE l.campaign_id = p_campaign_id AND l.batch = p_batch AND l.hi > v_low AND (v_high IS NULL OR l.lo <= v_high)
        AND l.expires_at <= p_now
      ORDER BY l.id FOR UPDATE SKIP LOCKED
    ) d;
    SELECT range_agg(int4range(l.lo, l.hi, '[]')) INTO v_live FROM :DISPARO_SCHEMA.leases l
      WHERE l.campaign_id = p_campaign_id AND l.batch = p_batch AND l.hi > v_low AND (v_high IS NULL OR l.lo <= v_high)
        AND l.id <> ALL (v_dead_ids);
    LOOP
      v_need := p_limit - v_got;
      EXIT WHEN v_need <= 0;
      -- Free rows from the cursor up: with no lease of their own, outside every live range; with one,
      -- expired or the "not leased" mark.
      WITH cand AS (
        SELECT r.id, r.seq, r.phone, r.lease_expires_at IS NULL AS ranged FROM :DISPARO_SCHEMA.recipients r
        WHERE r.campaign_id = p_campaign_id AND r.batch = p_batch AND r.processed_at IS NULL AND r.status = 'pending'
          AND r.seq > v_low AND (v_high IS NULL OR r.seq <= v_high) AND NOT EXISTS (SELECT 1 FROM :DISPARO_SCHEMA.in_flight f WHERE f.recipient_id = r.id)
          AND CASE WHEN r.lease_expires_at IS NULL THEN NOT coalesce(v_live @> r.seq, false)
                   ELSE r.lease_owner IS NULL OR r.lease_expires_at <= p_now END
        ORDER BY r.seq
        LIMIT v_need
      ), flagged AS (
        SELECT c.id, c.seq, c.ranged, EXISTS (SELECT 1 FROM :DISPARO_SCHEMA.opt_outs o WHERE o.phone = c.phone) AS opted FROM cand c
      )
      SELECT coalesce(array_agg(f.seq) FILTER (WHERE f.ranged AND NOT f.opted), '{}'),
          coalesce(array_agg(f.id) FILTER (WHERE f.ranged AND NOT f.opted), '{}'),
          coalesce(array_agg(f.id) FILTER (WHERE NOT f.ranged AND NOT f.opted), '{}'),
          coalesce(array_agg(f.id) FILTER (WHERE f.opted), '{}'),
          max(f.seq), count(*)
        INTO v_ranged, v_ranged_ids, v_own, v_skip, v_max, v_found
        FROM flagged f;
      EXIT WHEN v_found = 0;
      -- Opted-out rows are skipped now, unless another statement holds one: then it is left as it is
      -- (a later claim skips it), and no range made here covers it.
      IF cardinality(v_skip) > 0 THEN
        SELECT coalesce(array_agg(x.id), '{}') INTO v_own_skip FROM (
          SELECT r.id FROM :DISPARO_SCHEMA.recipients r WHERE r.id = ANY (v_skip) ORDER BY r.id FOR UPDATE SKIP LOCKED
        ) x;
        SELECT coalesce(array_agg(r.seq), '{}') INTO v_held FROM :DISPARO_SCHEMA.recipients r
          WHERE r.id = ANY (v_skip) AND r.id <> ALL (v_own_skip);
        IF cardinality(v_held) > 0 THEN
          SELECT coalesce(v_live, '{}'::int4multirange) + range_agg(int4range(h.seq, h.seq, '[]')) INTO v_live FROM unnest(v_held) h(seq);
        END IF;
        v_moves := v_moves || :DISPARO_SCHEMA._skip_opted_out(v_own_skip, p_now);
      END IF;
      -- The expired ranges over the span read, (v_low, v_max], trimmed to what lies outside it.
      IF v_dead && int4range(v_low, v_max, '(]') THEN
        WITH piece AS (
          INSERT INTO :DISPARO_SCHEMA.leases (campaign_id, batch, lo, hi, owner, expires_at)
            SELECT l.campaign_id, l.batch, v_max + 1, l.hi, l.owner, l.expires_at FROM :DISPARO_SCHEMA.leases l
            WHERE l.id = ANY (v_dead_ids) AND l.lo <= v_low AND l.hi > v_max
            RETURNING id
        )
        SELECT v_dead_ids || coalesce(array_agg(piece.id), '{}') INTO v_dead_ids FROM piece;
        UPDATE :DISPARO_SCHEMA.leases l SET hi = v_low WHERE l.id = ANY (v_dead_ids) AND l.lo <= v_low AND l.hi > v_low;
        UPDATE :DISPARO_SCHEMA.leases l SET lo = v_max + 1 WHERE l.id = ANY (v_dead_ids) AND l.lo > v_low AND l.lo <= v_max AND l.hi > v_max;
        DELETE FROM :DISPARO_SCHEMA.leases l WHERE l.id = ANY (v_dead_ids) AND l.lo > v_low AND l.hi <= v_max;
      END IF;
      -- One range per stretch of the seqs taken by range: a stretch ends where a live range lies
      -- between two of them.
      IF cardinality(v_ranged) > 0 THEN
        INSERT INTO :DISPARO_SCHEMA.leases (campaign_id, batch, lo, hi, owner, expires_at)
          SELECT p_campaign_id, p_batch, min(s.seq), max(s.seq), p_owner, p_now + p_lease_ms
          FROM (
            SELECT b.seq, sum(b.brk) OVER (ORDER BY b.seq) AS g FROM (
              SELECT u.seq, CASE WHEN coalesce(v_live && int4range(lag(u.seq) OVER (ORDER BY u.seq), u.seq, '()'), false) THEN 1 ELSE 0 END AS brk
              FROM unnest(v_ranged) u(seq)
            ) b
          ) s
          GROUP BY s.g;
        v_taken := v_taken || v_ranged_ids;
        v_got := v_got + cardinality(v_ranged);
      END IF;
      -- Rows with a lease of their own, leased on the row; one another statement holds is left.
      IF cardinality(v_own) > 0 THEN
        WITH u AS (
          UPDATE :DISPARO_SCHEMA.recipients r SET lease_owner = p_owner, lease_expires_at = p_now + p_lease_ms, updated_at = p_now
          WHERE r.id IN (SELECT x.id FROM :DISPARO_SCHEMA.recipients x WHERE x.id = ANY (v_own) ORDER BY x.id FOR UPDATE SKIP LOCKED)
            AND r.status = 'pending' AND (r.lease_owner IS NULL OR r.lease_expires_at <= p_now) AND NOT EXISTS (SELECT 1 FROM :DISPARO_SCHEMA.in_flight f WHERE f.recipient_id = r.id)
          RETURNING r.id
        )
        SELECT v_taken || coalesce(array_agg(u.id), '{}'), v_got + count(*) INTO v_taken, v_got FROM u;
      END IF;
      EXIT WHEN v_found < v_need;
      v_low := v_max;
    END LOOP;
  END LOOP;
  PERFORM :DISPARO_SCHEMA._count_moves(v_moves);
  RETURN QUERY SELECT w.* FROM :DISPARO_SCHEMA.recipients r CROSS JOIN LATERAL :DISPARO_SCHEMA._shown(r) w
    WHERE r.id = ANY (v_taken);
END
$$;
