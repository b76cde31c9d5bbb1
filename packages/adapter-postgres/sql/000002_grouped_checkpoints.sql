-- Disparo store schema, version 2: grouped checkpoints, lighter imports.
--
-- `advance_group` is `advance` for a group of sends through one account, set-based: one statement
-- records all outcomes, one writes all items ahead, whatever the group's size (StateStore.advanceGroup).
-- Arguments are parallel arrays (one element per outcome, one per item), cheaper to pass and read
-- than JSON.
--
-- `recipients_sending_idx` goes: every status change paid for it, and the rows it found (in-doubt
-- sends) always hold a lease, so `recipients_lease_idx` finds them too.

DROP INDEX :DISPARO_SCHEMA.recipients_sending_idx;

-- Counting status moves: the set-based version (many moves, several batches) moves to
-- `_count_moves_set`; `_count_moves` adds up the one or two moves of a per-message step in PL/pgSQL
-- and writes the two counter rows directly, which is most of the cost it had per message.
CREATE FUNCTION :DISPARO_SCHEMA._count_moves_set(p_moves :DISPARO_SCHEMA.move[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_shard smallint := (pg_backend_pid() % 16)::smallint;
BEGIN
  IF p_moves IS NULL OR cardinality(p_moves) = 0 THEN
    RETURN;
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

CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA._count_moves(p_moves :DISPARO_SCHEMA.move[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_shard smallint := (pg_backend_pid() % 16)::smallint;
  m :DISPARO_SCHEMA.move;
  v_campaign text;
  v_batch integer;
  -- Deltas: total, pending, sending, sent, delivered, read, failed, skipped, unknown.
  d integer[] := '{0,0,0,0,0,0,0,0,0}';
  v_from integer;
  v_to integer;
BEGIN
  IF p_moves IS NULL OR cardinality(p_moves) = 0 THEN
    RETURN;
  END IF;
  -- The per-message step moves one or two rows of one batch: add them up here, without a query.
  IF cardinality(p_moves) > 4 THEN
    PERFORM :DISPARO_SCHEMA._count_moves_set(p_moves);
    RETURN;
  END IF;
  v_campaign := p_moves[1].campaign_id;
  v_batch := p_moves[1].batch;
  FOREACH m IN ARRAY p_moves LOOP
    IF m.campaign_id IS DISTINCT FROM v_campaign OR m.batch IS DISTINCT FROM v_batch THEN
      PERFORM :DISPARO_SCHEMA._count_moves_set(p_moves);
      RETURN;
    END IF;
    CONTINUE WHEN m.from_status IS NOT DISTINCT FROM m.to_status;
    v_from := array_position(ARRAY['pending', 'sending', 'sent', 'delivered', 'read', 'failed', 'skipped', 'unknown'], m.from_status) + 1;
    v_to := array_position(ARRAY['pending', 'sending', 'sent', 'delivered', 'read', 'failed', 'skipped', 'unknown'], m.to_status) + 1;
    IF m.from_status IS NULL THEN d[1] := d[1] + 1; ELSE d[v_from] := d[v_from] - 1; END IF;
    IF m.to_status IS NULL THEN d[1] := d[1] - 1; ELSE d[v_to] := d[v_to] + 1; END IF;
  END LOOP;
  IF d = '{0,0,0,0,0,0,0,0,0}'::integer[] THEN
    RETURN;
  END IF;
  INSERT INTO :DISPARO_SCHEMA.batch_counts AS k
    (campaign_id, batch, shard, n_total, n_pending, n_sending, n_sent, n_delivered, n_read, n_failed, n_skipped, n_unknown)
  VALUES (v_campaign, v_batch, v_shard, d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9])
  ON CONFLICT (campaign_id, batch, shard) DO UPDATE SET
    n_total = k.n_total + excluded.n_total, n_pending = k.n_pending + excluded.n_pending,
    n_sending = k.n_sending + excluded.n_sending, n_sent = k.n_sent + excluded.n_sent,
    n_delivered = k.n_delivered + excluded.n_delivered, n_read = k.n_read + excluded.n_read,
    n_failed = k.n_failed + excluded.n_failed, n_skipped = k.n_skipped + excluded.n_skipped,
    n_unknown = k.n_unknown + excluded.n_unknown;
  INSERT INTO :DISPARO_SCHEMA.campaign_counts AS k
    (campaign_id, shard, n_total, n_pending, n_sending, n_sent, n_delivered, n_read, n_failed, n_skipped, n_unknown)
  VALUES (v_campaign, v_shard, d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9])
  ON CONFLICT (campaign_id, shard) DO UPDATE SET
    n_total = k.n_total + excluded.n_total, n_pending = k.n_pending + excluded.n_pending,
    n_sending = k.n_sending + excluded.n_sending, n_sent = k.n_sent + excluded.n_sent,
    n_delivered = k.n_delivered + excluded.n_delivered, n_read = k.n_read + excluded.n_read,
    n_failed = k.n_failed + excluded.n_failed, n_skipped = k.n_skipped + excluded.n_skipped,
    n_unknown = k.n_unknown + excluded.n_unknown;
END
$$;

-- The write-ahead (pending -> sending, by the row's lease owner) changes no indexed column, so it can
-- be a HOT update (no index entries, no index bloat) when the row's page has room: the claim index
-- holds rows not yet processed (pending or sending) instead of naming the status, and pages keep
-- 20% free for the text each write-ahead adds. Claims read `status = 'pending'` from the heap.
ALTER TABLE :DISPARO_SCHEMA.recipients SET (fillfactor = 80);
DROP INDEX :DISPARO_SCHEMA.recipients_pending_idx;
CREATE INDEX recipients_open_idx ON :DISPARO_SCHEMA.recipients (campaign_id, batch, seq) WHERE processed_at IS NULL;

CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.claim(p_campaign text, p_batch integer, p_owner text, p_limit integer,
  p_now bigint, p_lease_ms bigint, p_after integer)
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
  v_m :DISPARO_SCHEMA.move[];
BEGIN
  UPDATE :DISPARO_SCHEMA.batches SET started_at = p_now
    WHERE campaign_id = p_campaign AND batch = p_batch AND started_at IS NULL;
  FOR v_pass IN 1..2 LOOP
    EXIT WHEN v_pass = 2 AND coalesce(p_after, 0) <= 0;
    IF v_pass = 1 THEN
      v_low := greatest(coalesce(p_after, 0), 0);
      v_high := NULL;
    ELSE
      v_low := 0;
      v_high := p_after;
    END IF;
    LOOP
      v_need := p_limit - v_got;
      EXIT WHEN v_need <= 0;
      WITH cand AS (
        SELECT r.id, r.seq, r.phone FROM :DISPARO_SCHEMA.recipients r
        WHERE r.campaign_id = p_campaign AND r.batch = p_batch AND r.processed_at IS NULL AND r.status = 'pending'
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
        WITH u AS (
          UPDATE :DISPARO_SCHEMA.recipients SET status = 'skipped', skip_reason = 'opted_out', last_error = 'contact opted out',
            lease_owner = NULL, lease_expires_at = NULL, processed_at = p_now, updated_at = p_now
          WHERE id = ANY (v_skip) RETURNING campaign_id, batch
        )
        SELECT array_agg(CAST(ROW(u.campaign_id, u.batch, 'pending', 'skipped') AS :DISPARO_SCHEMA.move)) INTO v_m FROM u;
        v_moves := v_moves || v_m;
      END IF;
      EXIT WHEN v_found < v_need;
      v_low := v_max;
    END LOOP;
  END LOOP;
  PERFORM :DISPARO_SCHEMA._count_moves(v_moves);
END
$$;

-- Imports count their new rows per batch rather than as one status move per row.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA._import_staged(p_campaign text, p_now bigint,
  OUT inserted integer, OUT duplicates integer, OUT opted_out integer)
LANGUAGE plpgsql AS $$
DECLARE
  v_last integer;
  v_current integer;
  v_size integer;
  v_total integer;
  v_batches integer[];
  v_counts integer[];
  v_shard smallint := (pg_backend_pid() % 16)::smallint;
BEGIN
  SELECT c.last_seq, c.current_batch, greatest(1, coalesce((c.settings ->> 'batchSize')::integer, 1))
    INTO v_last, v_current, v_size
    FROM :DISPARO_SCHEMA.campaigns c WHERE c.id = p_campaign FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'campaign % not found', p_campaign USING ERRCODE = 'P0002';
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
    LEFT JOIN LATERAL (SELECT 1 AS hit FROM :DISPARO_SCHEMA.recipients r WHERE r.phone = f.phone AND r.campaign_id = p_campaign LIMIT 1) d ON true
    WHERE d.hit IS NULL
  ), numbered AS (
    SELECT f.phone, f.vars, (v_last + row_number() OVER (ORDER BY f.ord))::integer AS seq
    FROM fresh f WHERE NOT f.opted
  ), ins AS (
    INSERT INTO :DISPARO_SCHEMA.recipients (campaign_id, seq, batch, phone, vars, status, updated_at)
    SELECT p_campaign, n.seq, greatest((n.seq + v_size - 1) / v_size, v_current), n.phone, n.vars, 'pending', p_now
    FROM numbered n ORDER BY n.seq
    RETURNING batch
  ), per_batch AS (
    SELECT i.batch, count(*)::integer AS n FROM ins i GROUP BY i.batch
  ), new_batches AS (
    INSERT INTO :DISPARO_SCHEMA.batches (campaign_id, batch)
    SELECT p_campaign, pb.batch FROM per_batch pb ORDER BY pb.batch
    ON CONFLICT (campaign_id, batch) DO NOTHING
  )
  SELECT coalesce((SELECT sum(pb.n) FROM per_batch pb), 0)::integer,
    (SELECT count(*) FROM fresh f WHERE f.opted)::integer,
    (SELECT array_agg(pb.batch ORDER BY pb.batch) FROM per_batch pb),
    (SELECT array_agg(pb.n ORDER BY pb.batch) FROM per_batch pb)
    INTO inserted, opted_out, v_batches, v_counts;

  duplicates := v_total - inserted - opted_out;
  IF inserted > 0 THEN
    UPDATE :DISPARO_SCHEMA.campaigns SET last_seq = last_seq + inserted WHERE id = p_campaign;
    -- The new rows' counts, per batch (one delta per batch, not one move per row), as _count_moves does.
    INSERT INTO :DISPARO_SCHEMA.batch_counts AS k (campaign_id, batch, shard, n_total, n_pending)
      SELECT p_campaign, x.batch, v_shard, x.n, x.n FROM unnest(v_batches, v_counts) AS x(batch, n) ORDER BY x.batch
      ON CONFLICT (campaign_id, batch, shard) DO UPDATE SET n_total = k.n_total + excluded.n_total, n_pending = k.n_pending + excluded.n_pending;
    INSERT INTO :DISPARO_SCHEMA.campaign_counts AS k (campaign_id, shard, n_total, n_pending) VALUES (p_campaign, v_shard, inserted, inserted)
      ON CONFLICT (campaign_id, shard) DO UPDATE SET n_total = k.n_total + excluded.n_total, n_pending = k.n_pending + excluded.n_pending;
  END IF;
END
$$;

CREATE FUNCTION :DISPARO_SCHEMA.advance_group(p_owner text, p_now bigint, p_lease_ms bigint,
  o_r bigint[], o_c text[], o_s text[], o_k boolean[], o_n integer[], o_t bigint[], o_a text[], o_p text[], o_e text[],
  o_he boolean[], o_sr text[], o_fx text[],
  p_account text, p_hk text, p_hl integer, p_hx bigint, p_dk text, p_dl integer, p_dx bigint,
  b_r bigint[], b_c text[], b_tx text[], b_n integer[], b_p text[], b_gap bigint[], b_lead bigint[],
  OUT ok boolean[], OUT cf integer[], OUT granted boolean[], OUT slot_at bigint[], OUT why text[])
LANGUAGE plpgsql AS $$
-- Loops here only walk fixed-width arrays (codes, ids, times): element access is O(1) there, while
-- an element of a text array is found by walking the array. Text goes in and out set-based.
DECLARE
  v_moves :DISPARO_SCHEMA.move[] := '{}';
  v_m :DISPARO_SCHEMA.move[];
  v_no integer := coalesce(cardinality(o_r), 0);
  v_nb integer := coalesce(cardinality(b_r), 0);
  v_step record;
  i integer;
  j integer;
  -- outcomes
  v_from smallint[];   -- 0: not applied, 1: was pending, 2: was sending
  v_fx smallint[];     -- 0: none, 1: success, 2: failure
  v_ui integer[];      -- applied outcomes (positions)
  v_uacc integer[];    -- their account, as a position in v_accs
  v_accs text[];
  v_cfs integer[];
  v_cf integer[];
  -- write-aheads
  a :DISPARO_SCHEMA.accounts%ROWTYPE;
  v_usable boolean;
  v_kind smallint[];   -- 0: not ours (lease lost), 1: new, 2: repeated write-ahead
  v_new boolean[];
  v_why smallint[];    -- 0: granted, 1: lease_lost, 2: account_unavailable, 3: daily_cap, 4: hourly_cap, 5: pacing
  v_at bigint;
  v_slot bigint;
  v_next bigint;
  v_day_left bigint;
  v_hour_left bigint;
  v_taken integer := 0;
BEGIN
  -- ---- outcomes ----
  IF v_no = 0 THEN
    ok := '{}';
    cf := '{}';
  ELSIF (SELECT count(DISTINCT x) FROM unnest(o_r) x) < v_no THEN
    -- The same recipient twice: apply one by one, in order, as `advance` does.
    ok := array_fill(false, ARRAY[v_no]);
    cf := array_fill(NULL::integer, ARRAY[v_no]);
    FOR i IN 1..v_no LOOP
      SELECT s.result, s.moves INTO v_step FROM :DISPARO_SCHEMA._advance(p_owner, p_now, p_lease_ms,
        jsonb_build_array(jsonb_build_object('r', o_r[i], 'c', o_c[i], 's', o_s[i], 'k', o_k[i], 'n', o_n[i], 't', o_t[i], 'a', o_a[i],
          'p', o_p[i], 'e', o_e[i], 'he', o_he[i], 'sr', o_sr[i], 'fx', o_fx[i])), NULL) s;
      ok[i] := (v_step.result -> 'o' -> 0 ->> 'ok')::boolean;
      cf[i] := (v_step.result -> 'o' -> 0 ->> 'cf')::integer;
      v_moves := v_moves || v_step.moves;
    END LOOP;
  ELSE
    -- The rows still leased by the owner and open: locked in id order first, then read by primary key
    -- (joining the locking subquery directly gets a nested loop over all its rows: quadratic in the group).
    PERFORM 1 FROM :DISPARO_SCHEMA.recipients x
      WHERE x.id = ANY (o_r) AND x.lease_owner = p_owner AND x.status IN ('pending', 'sending')
      ORDER BY x.id FOR UPDATE;
    -- (The join is on the key alone so that it is planned as key lookups; the rest is tested per row.)
    SELECT array_agg(CASE WHEN l.mine THEN CASE l.status WHEN 'pending' THEN 1 ELSE 2 END ELSE 0 END::smallint ORDER BY o.i),
        array_agg(CASE o.fx WHEN 'success' THEN 1 WHEN 'failure' THEN 2 ELSE 0 END::smallint ORDER BY o.i),
        array_agg(CAST(ROW(o.c, l.batch, l.status, o.s) AS :DISPARO_SCHEMA.move)) FILTER (WHERE l.mine)
      INTO v_from, v_fx, v_m
      FROM unnest(o_r, o_c, o_s, o_fx) WITH ORDINALITY AS o(r, c, s, fx, i)
      LEFT JOIN LATERAL (SELECT x.status, x.batch,
                                coalesce(x.campaign_id = o.c AND x.lease_owner = p_owner AND x.status IN ('pending', 'sending'), false) AS mine
                           FROM :DISPARO_SCHEMA.recipients x WHERE x.id = o.r) l ON true;
    v_moves := v_moves || coalesce(v_m, '{}');
    WITH u AS (
      UPDATE :DISPARO_SCHEMA.recipients rc SET
        attempts = o.n,
        updated_at = p_now,
        account_id = CASE WHEN o.a IS NOT NULL AND o.a <> '' THEN o.a ELSE rc.account_id END,
        provider_message_id = CASE WHEN o.p IS NOT NULL AND o.p <> '' THEN o.p ELSE rc.provider_message_id END,
        last_error = CASE WHEN coalesce(o.he, false) THEN o.e ELSE rc.last_error END,
        lease_owner = CASE WHEN o.s = 'pending' AND coalesce(o.k, false) THEN p_owner ELSE NULL END,
        lease_expires_at = CASE WHEN o.s = 'pending' AND coalesce(o.k, false) THEN p_now + p_lease_ms ELSE NULL END,
        status = o.s,
        skip_reason = CASE WHEN o.s = 'pending' THEN rc.skip_reason WHEN o.s = 'skipped' THEN o.sr ELSE NULL END,
        sent_at = CASE WHEN o.s = 'sent' THEN o.t ELSE rc.sent_at END,
        processed_at = CASE WHEN o.s = 'pending' THEN rc.processed_at ELSE o.t END
      FROM unnest(o_r, o_s, o_k, o_n, o_t, o_a, o_p, o_e, o_he, o_sr, v_from) WITH ORDINALITY AS o(r, s, k, n, t, a, p, e, he, sr, f, i)
      WHERE o.f > 0 AND rc.id = o.r
      RETURNING o.i::integer AS i, rc.account_id AS acc
    ), accs AS (
      SELECT array_agg(DISTINCT u.acc ORDER BY u.acc) FILTER (WHERE u.acc IS NOT NULL) AS ids FROM u
    )
    SELECT array_agg(u.i ORDER BY u.i), array_agg(coalesce(array_position(accs.ids, u.acc), 0) ORDER BY u.i), min(accs.ids)
      INTO v_ui, v_uacc, v_accs
      FROM u, accs;
    ok := array_fill(false, ARRAY[v_no]);
    v_cf := array_fill(NULL::integer, ARRAY[v_no]);
    IF v_ui IS NOT NULL THEN
      -- Runs of consecutive failures per account, in outcome order (accounts locked in id order).
      SELECT coalesce(array_agg(x.consecutive_failures ORDER BY k.k), '{}') INTO v_cfs
        FROM unnest(v_accs) WITH ORDINALITY AS k(id, k)
        LEFT JOIN (SELECT ac.id, ac.consecutive_failures FROM :DISPARO_SCHEMA.accounts ac WHERE ac.id = ANY (v_accs)
                   ORDER BY ac.id FOR UPDATE) x ON x.id = k.id;
      FOR j IN 1..cardinality(v_ui) LOOP
        i := v_ui[j];
        ok[i] := true;
        CONTINUE WHEN v_uacc[j] = 0 OR v_cfs[v_uacc[j]] IS NULL;
        IF v_fx[i] = 2 THEN
          v_cfs[v_uacc[j]] := v_cfs[v_uacc[j]] + 1;
        ELSIF v_fx[i] = 1 THEN
          v_cfs[v_uacc[j]] := 0;
        END IF;
        v_cf[i] := v_cfs[v_uacc[j]];
      END LOOP;
      UPDATE :DISPARO_SCHEMA.accounts ac SET consecutive_failures = x.cf, updated_at = p_now
        FROM unnest(v_accs, v_cfs) AS x(id, cf)
        WHERE ac.id = x.id AND ac.consecutive_failures <> x.cf;
    END IF;
    cf := v_cf;
  END IF;

  -- ---- write-aheads ----
  IF v_nb = 0 THEN
    granted := '{}';
    slot_at := '{}';
    why := '{}';
  ELSE
    -- Each item against its row (locked in id order, then read by key): new (pending), a repeat of its
    -- write-ahead, or not ours.
    PERFORM 1 FROM :DISPARO_SCHEMA.recipients x
      WHERE x.id = ANY (b_r) AND x.lease_owner = p_owner AND x.status IN ('pending', 'sending')
      ORDER BY x.id FOR UPDATE;
    SELECT array_agg(CASE WHEN l.id IS NULL OR l.campaign_id <> b.c OR l.lease_owner IS DISTINCT FROM p_owner THEN 0
                          WHEN l.status = 'pending' THEN 1
                          WHEN l.status = 'sending' AND l.attempts = b.n AND l.lease_expires_at IS NOT NULL
                               AND l.lease_expires_at > p_now THEN 2
                          ELSE 0 END::smallint ORDER BY b.i)
      INTO v_kind
      FROM unnest(b_r, b_c, b_n) WITH ORDINALITY AS b(r, c, n, i)
      LEFT JOIN LATERAL (SELECT x.id, x.campaign_id, x.lease_owner, x.status, x.attempts, x.lease_expires_at
                           FROM :DISPARO_SCHEMA.recipients x WHERE x.id = b.r) l ON true;
    SELECT * INTO a FROM :DISPARO_SCHEMA.accounts ac WHERE ac.id = p_account FOR UPDATE;
    v_usable := FOUND AND a.state <> 'stopped' AND NOT (a.state = 'disabled' AND a.disabled_until IS NOT NULL AND a.disabled_until > p_now)
      AND a.connection <> 'close';
    v_day_left := CASE WHEN p_dk IS NULL THEN NULL WHEN a.day_key = p_dk THEN p_dl - a.sent_today ELSE p_dl END;
    v_hour_left := CASE WHEN p_hk IS NULL THEN NULL WHEN a.hour_key = p_hk THEN p_hl - a.sent_this_hour ELSE p_hl END;
    v_next := a.next_send_at;
    -- A repeated group continues after its reservation; otherwise the first new item needs the slot free now.
    v_at := CASE WHEN 2 = ANY (v_kind) THEN greatest(p_now, coalesce(v_next, p_now)) ELSE p_now END;
    granted := array_fill(false, ARRAY[v_nb]);
    slot_at := array_fill(p_now, ARRAY[v_nb]);
    v_new := array_fill(false, ARRAY[v_nb]);
    v_why := array_fill(0::smallint, ARRAY[v_nb]);
    FOR i IN 1..v_nb LOOP
      IF v_kind[i] = 0 THEN
        v_why[i] := 1;
      ELSIF v_kind[i] = 2 THEN
        granted[i] := true;
      ELSIF NOT coalesce(v_usable, false) THEN
        v_why[i] := 2;
      ELSIF v_day_left IS NOT NULL AND v_taken >= v_day_left THEN
        v_why[i] := 3;
        slot_at[i] := p_dx;
      ELSIF v_hour_left IS NOT NULL AND v_taken >= v_hour_left THEN
        v_why[i] := 4;
        slot_at[i] := p_hx;
      ELSIF v_next > v_at THEN
        v_why[i] := 5;
        slot_at[i] := v_next;
      ELSE
        v_slot := v_at + b_lead[i];
        v_next := v_slot + b_gap[i];
        v_at := v_next;
        v_taken := v_taken + 1;
        granted[i] := true;
        v_new[i] := true;
        slot_at[i] := v_slot;
      END IF;
    END LOOP;
    SELECT array_agg(CASE w WHEN 1 THEN 'lease_lost' WHEN 2 THEN 'account_unavailable' WHEN 3 THEN 'daily_cap'
                            WHEN 4 THEN 'hourly_cap' WHEN 5 THEN 'pacing' END ORDER BY k)
      INTO why FROM unnest(v_why) WITH ORDINALITY AS x(w, k);
    IF v_taken > 0 THEN
      UPDATE :DISPARO_SCHEMA.accounts SET next_send_at = v_next,
        sent_this_hour = CASE WHEN p_hk IS NULL THEN sent_this_hour WHEN hour_key = p_hk THEN sent_this_hour + v_taken ELSE v_taken END,
        hour_key = coalesce(p_hk, hour_key),
        sent_today = CASE WHEN p_dk IS NULL THEN sent_today WHEN day_key = p_dk THEN sent_today + v_taken ELSE v_taken END,
        day_key = coalesce(p_dk, day_key),
        updated_at = p_now
      WHERE id = p_account;
      WITH u AS (
        UPDATE :DISPARO_SCHEMA.recipients rc SET
          status = 'sending',
          text = g.tx,
          account_id = p_account,
          attempts = g.n,
          provider_message_id = CASE WHEN g.p IS NOT NULL AND g.p <> '' THEN g.p ELSE rc.provider_message_id END,
          lease_owner = p_owner,
          lease_expires_at = p_now + p_lease_ms,
          updated_at = p_now
        FROM unnest(b_r, b_tx, b_n, b_p, v_new) AS g(r, tx, n, p, fresh)
        WHERE g.fresh AND rc.id = g.r
        RETURNING CAST(ROW(rc.campaign_id, rc.batch, 'pending', 'sending') AS :DISPARO_SCHEMA.move) AS m
      )
      SELECT array_agg(u.m) INTO v_m FROM u;
      v_moves := v_moves || coalesce(v_m, '{}');
    END IF;
  END IF;

  PERFORM :DISPARO_SCHEMA._count_moves(v_moves);
END
$$;
