-- Disparo store schema, version 1.
--
-- Times are epoch milliseconds in bigint columns: the engine's clock (real or virtual) is the only
-- clock, so the database never stamps a time of its own.
--
-- Counters are never a column of the campaign row: every worker would then queue on that one row
-- for each message it records. They live in `campaign_counts` and `batch_counts` as per-status deltas,
-- spread over 16 shards (one per backend, `pg_backend_pid() % 16`); a campaign's counters are the sum
-- of its shards. Every statement that changes a recipient's status adds its deltas in the same
-- transaction (`_count_moves`), so the sums always equal the rows (I2).

CREATE TABLE :DISPARO_SCHEMA.campaigns (
  id text PRIMARY KEY,
  name text NOT NULL,
  templates jsonb NOT NULL,
  media jsonb,
  account_ids jsonb NOT NULL,
  status text NOT NULL,
  pause_reason text,
  settings jsonb NOT NULL,
  scheduled_at bigint,
  current_batch integer NOT NULL DEFAULT 0,
  next_batch_at bigint,
  last_seq integer NOT NULL DEFAULT 0,
  last_error text,
  metadata jsonb NOT NULL,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  started_at bigint,
  finished_at bigint
);
CREATE INDEX campaigns_status_idx ON :DISPARO_SCHEMA.campaigns (status, created_at, id);

-- No foreign keys: a per-row referential check would slow bulk imports, and `cleanup` deletes a
-- campaign's rows itself.
CREATE TABLE :DISPARO_SCHEMA.recipients (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  campaign_id text NOT NULL,
  seq integer NOT NULL,
  batch integer NOT NULL,
  phone text NOT NULL,
  vars jsonb NOT NULL,
  status text NOT NULL,
  skip_reason text,
  text text,
  attempts integer NOT NULL DEFAULT 0,
  last_error text,
  provider_message_id text,
  account_id text,
  lease_owner text,
  lease_expires_at bigint,
  sent_at bigint,
  delivered_at bigint,
  read_at bigint,
  processed_at bigint,
  updated_at bigint NOT NULL
);
-- (phone, campaign_id) rather than (campaign_id, phone): the same index dedupes imports and finds a
-- phone in every campaign (opt-outs, contact history).
CREATE UNIQUE INDEX recipients_phone_idx ON :DISPARO_SCHEMA.recipients (phone, campaign_id);
CREATE UNIQUE INDEX recipients_seq_idx ON :DISPARO_SCHEMA.recipients (campaign_id, seq);
-- The claim index. Claims read it from a keyset lower bound (see `claim`), not from the start.
CREATE INDEX recipients_pending_idx ON :DISPARO_SCHEMA.recipients (campaign_id, batch, seq) WHERE status = 'pending';
CREATE INDEX recipients_provider_idx ON :DISPARO_SCHEMA.recipients (provider_message_id) WHERE provider_message_id IS NOT NULL;
CREATE INDEX recipients_lease_idx ON :DISPARO_SCHEMA.recipients (lease_owner) WHERE lease_owner IS NOT NULL;
-- lease_expires_at is deliberately in no index, so heartbeats stay HOT updates.
CREATE INDEX recipients_sending_idx ON :DISPARO_SCHEMA.recipients (campaign_id) WHERE status = 'sending';
CREATE INDEX recipients_processed_idx ON :DISPARO_SCHEMA.recipients (campaign_id, processed_at) WHERE processed_at IS NOT NULL;

CREATE TABLE :DISPARO_SCHEMA.batches (
  campaign_id text NOT NULL,
  batch integer NOT NULL,
  started_at bigint,
  finished_at bigint,
  error text,
  PRIMARY KEY (campaign_id, batch)
);

CREATE TABLE :DISPARO_SCHEMA.campaign_counts (
  campaign_id text NOT NULL,
  shard smallint NOT NULL,
  n_total integer NOT NULL DEFAULT 0,
  n_pending integer NOT NULL DEFAULT 0,
  n_sending integer NOT NULL DEFAULT 0,
  n_sent integer NOT NULL DEFAULT 0,
  n_delivered integer NOT NULL DEFAULT 0,
  n_read integer NOT NULL DEFAULT 0,
  n_failed integer NOT NULL DEFAULT 0,
  n_skipped integer NOT NULL DEFAULT 0,
  n_unknown integer NOT NULL DEFAULT 0,
  PRIMARY KEY (campaign_id, shard)
);

CREATE TABLE :DISPARO_SCHEMA.batch_counts (
  campaign_id text NOT NULL,
  batch integer NOT NULL,
  shard smallint NOT NULL,
  n_total integer NOT NULL DEFAULT 0,
  n_pending integer NOT NULL DEFAULT 0,
  n_sending integer NOT NULL DEFAULT 0,
  n_sent integer NOT NULL DEFAULT 0,
  n_delivered integer NOT NULL DEFAULT 0,
  n_read integer NOT NULL DEFAULT 0,
  n_failed integer NOT NULL DEFAULT 0,
  n_skipped integer NOT NULL DEFAULT 0,
  n_unknown integer NOT NULL DEFAULT 0,
  PRIMARY KEY (campaign_id, batch, shard)
);

CREATE TABLE :DISPARO_SCHEMA.accounts (
  id text PRIMARY KEY,
  pacing jsonb NOT NULL,
  state text NOT NULL DEFAULT 'active',
  connection text NOT NULL DEFAULT 'unknown',
  consecutive_failures integer NOT NULL DEFAULT 0,
  disabled_until bigint,
  disabled_reason text,
  next_send_at bigint NOT NULL,
  hour_key text,
  sent_this_hour integer NOT NULL DEFAULT 0,
  day_key text,
  sent_today integer NOT NULL DEFAULT 0,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL
);

CREATE TABLE :DISPARO_SCHEMA.opt_outs (
  phone text PRIMARY KEY,
  reason text NOT NULL,
  source text NOT NULL,
  at bigint NOT NULL
);

-- A campaign with its counters (the sum of its shards).
CREATE VIEW :DISPARO_SCHEMA.campaign_view AS
SELECT c.*,
  coalesce(k.n_total, 0) AS n_total, coalesce(k.n_pending, 0) AS n_pending, coalesce(k.n_sending, 0) AS n_sending,
  coalesce(k.n_sent, 0) AS n_sent, coalesce(k.n_delivered, 0) AS n_delivered, coalesce(k.n_read, 0) AS n_read,
  coalesce(k.n_failed, 0) AS n_failed, coalesce(k.n_skipped, 0) AS n_skipped, coalesce(k.n_unknown, 0) AS n_unknown
FROM :DISPARO_SCHEMA.campaigns c
LEFT JOIN LATERAL (
  SELECT sum(n_total) AS n_total, sum(n_pending) AS n_pending, sum(n_sending) AS n_sending, sum(n_sent) AS n_sent,
    sum(n_delivered) AS n_delivered, sum(n_read) AS n_read, sum(n_failed) AS n_failed, sum(n_skipped) AS n_skipped,
    sum(n_unknown) AS n_unknown
  FROM :DISPARO_SCHEMA.campaign_counts s WHERE s.campaign_id = c.id
) k ON true;

-- A batch record with its counts.
CREATE VIEW :DISPARO_SCHEMA.batch_view AS
SELECT b.campaign_id, b.batch, b.started_at, b.finished_at, b.error,
  coalesce(k.n_total, 0) AS size, coalesce(k.n_sent, 0) AS sent, coalesce(k.n_failed, 0) AS failed,
  coalesce(k.n_skipped, 0) AS skipped, coalesce(k.n_unknown, 0) AS unknown, coalesce(k.n_open, 0) AS open
FROM :DISPARO_SCHEMA.batches b
LEFT JOIN LATERAL (
  SELECT sum(n_total) AS n_total, sum(n_sent + n_delivered + n_read) AS n_sent, sum(n_failed) AS n_failed,
    sum(n_skipped) AS n_skipped, sum(n_unknown) AS n_unknown, sum(n_pending + n_sending) AS n_open
  FROM :DISPARO_SCHEMA.batch_counts s WHERE s.campaign_id = b.campaign_id AND s.batch = b.batch
) k ON true;

-- One status change of one recipient; `from_status` null for an insert.
CREATE TYPE :DISPARO_SCHEMA.move AS (campaign_id text, batch integer, from_status text, to_status text);

-- Add the deltas of `p_moves` to this backend's counter shards. Callers run it last in their
-- transaction, once, so its row locks (taken in key order) never wait behind a recipient lock.
CREATE FUNCTION :DISPARO_SCHEMA._count_moves(p_moves :DISPARO_SCHEMA.move[]) RETURNS void
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

-- Import the rows staged in the session's `pg_temp.disparo_import` (ord, phone, vars) into a campaign.
-- The campaign row is locked first, so concurrent imports into one campaign take turns: each sees
-- the phones the previous one committed, and seq stays gapless. The first occurrence of a phone
-- wins; a phone already in the campaign, or repeated, is a duplicate; a phone on the suppression
-- list is counted once as opted out (its repeats are duplicates). A row whose batch the campaign
-- has already left joins the current batch, so it is still sent.
CREATE FUNCTION :DISPARO_SCHEMA._import_staged(p_campaign text, p_now bigint,
  OUT inserted integer, OUT duplicates integer, OUT opted_out integer)
LANGUAGE plpgsql AS $$
DECLARE
  v_last integer;
  v_current integer;
  v_size integer;
  v_total integer;
  v_moves :DISPARO_SCHEMA.move[];
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
    SELECT f.ord, f.phone, f.vars,
      EXISTS (SELECT 1 FROM :DISPARO_SCHEMA.opt_outs o WHERE o.phone = f.phone) AS opted
    FROM firsts f
    WHERE NOT EXISTS (SELECT 1 FROM :DISPARO_SCHEMA.recipients r WHERE r.phone = f.phone AND r.campaign_id = p_campaign)
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
    (SELECT array_agg(CAST(ROW(p_campaign, pb.batch, NULL, 'pending') AS :DISPARO_SCHEMA.move))
       FROM per_batch pb, generate_series(1, pb.n))
    INTO inserted, opted_out, v_moves;

  duplicates := v_total - inserted - opted_out;
  IF inserted > 0 THEN
    UPDATE :DISPARO_SCHEMA.campaigns SET last_seq = last_seq + inserted WHERE id = p_campaign;
    PERFORM :DISPARO_SCHEMA._count_moves(v_moves);
  END IF;
END
$$;

-- Import rows given as a JSON array of {phone, vars} (PGlite, single connections, small imports):
-- the same path as COPY, staged in the session's temporary table.
CREATE FUNCTION :DISPARO_SCHEMA.import_json(p_campaign text, p_rows jsonb, p_now bigint,
  OUT inserted integer, OUT duplicates integer, OUT opted_out integer)
LANGUAGE plpgsql AS $$
BEGIN
  IF to_regclass('pg_temp.disparo_import') IS NULL THEN
    CREATE TEMPORARY TABLE disparo_import (ord integer NOT NULL, phone text NOT NULL, vars jsonb NOT NULL) ON COMMIT DELETE ROWS;
  END IF;
  INSERT INTO pg_temp.disparo_import (ord, phone, vars)
  SELECT e.ord::integer, e.value ->> 'phone', coalesce(e.value -> 'vars', '{}'::jsonb)
  FROM jsonb_array_elements(p_rows) WITH ORDINALITY AS e(value, ord);
  SELECT s.inserted, s.duplicates, s.opted_out INTO inserted, duplicates, opted_out
  FROM :DISPARO_SCHEMA._import_staged(p_campaign, p_now) s;
  -- The table is emptied at commit; empty it now too, for callers inside a longer transaction.
  DELETE FROM pg_temp.disparo_import;
END
$$;

-- Lease up to p_limit pending rows of one batch, lowest seq first.
--
-- Why a keyset lower bound (p_after): the pending index keeps the entries of rows already claimed
-- and finished until a vacuum removes them, so a claim that scans the batch from its start walks
-- more dead entries at every claim. The caller passes the highest seq it last claimed in this batch;
-- when a claim comes back short it passes 0 next time. When the range above p_after runs out, the
-- same call fills up from below it, so rows handed back below the cursor (retries, recovery) are
-- still found, lowest first among those.
--
-- SKIP LOCKED: two callers never wait on, or get, the same row. Rows whose phone opted out after
-- the import become skipped/opted_out here and do not count toward the limit.
CREATE FUNCTION :DISPARO_SCHEMA.claim(p_campaign text, p_batch integer, p_owner text, p_limit integer,
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
        WHERE r.campaign_id = p_campaign AND r.batch = p_batch AND r.status = 'pending'
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

-- The per-message step (see StateStore.advance): outcomes, then the slot reservation and the
-- write-ahead. Returns {"o": [{"ok": bool, "cf": int|null}, ...], "b": {"g": bool, "at": ms, "why": text}|null}
-- and the status moves, which the caller counts once at the end of its transaction.
--
-- Outcome items: r id, c campaign, s status, k keepLease, n attempts, t at, a accountId,
-- p providerMessageId, e error, he error given, sr skipReason, fx accountEffect.
-- Begin: r id, c campaign, tx text, n attempt, p providerMessageId, acc accountId, gap, lead,
-- hk/hl/hx hourly key/limit/endsAt, dk/dl/dx daily key/limit/endsAt.
CREATE FUNCTION :DISPARO_SCHEMA._advance(p_owner text, p_now bigint, p_lease_ms bigint, p_outcomes jsonb, p_begin jsonb,
  OUT result jsonb, OUT moves :DISPARO_SCHEMA.move[])
LANGUAGE plpgsql AS $$
DECLARE
  o record;
  b record;
  a :DISPARO_SCHEMA.accounts%ROWTYPE;
  v_status text;
  v_batch integer;
  v_account text;
  v_effect_account text;
  v_cf integer;
  v_outs jsonb := '[]'::jsonb;
  v_begin jsonb := NULL;
  v_keep boolean;
  v_slot bigint;
  v_attempts integer;
  v_expires bigint;
BEGIN
  moves := '{}';
  IF p_outcomes IS NOT NULL THEN
    FOR o IN
      SELECT * FROM jsonb_to_recordset(p_outcomes) AS x(r bigint, c text, s text, k boolean, n integer, t bigint, a text,
        p text, e text, he boolean, sr text, fx text)
    LOOP
      SELECT rc.status, rc.batch INTO v_status, v_batch FROM :DISPARO_SCHEMA.recipients rc
        WHERE rc.id = o.r AND rc.campaign_id = o.c AND rc.lease_owner = p_owner AND rc.status IN ('pending', 'sending')
        FOR UPDATE;
      IF NOT FOUND THEN
        v_outs := v_outs || jsonb_build_array(jsonb_build_object('ok', false));
        CONTINUE;
      END IF;
      v_keep := o.s = 'pending' AND coalesce(o.k, false);
      UPDATE :DISPARO_SCHEMA.recipients SET
        attempts = o.n,
        updated_at = p_now,
        account_id = CASE WHEN o.a IS NOT NULL AND o.a <> '' THEN o.a ELSE account_id END,
        provider_message_id = CASE WHEN o.p IS NOT NULL AND o.p <> '' THEN o.p ELSE provider_message_id END,
        last_error = CASE WHEN coalesce(o.he, false) THEN o.e ELSE last_error END,
        lease_owner = CASE WHEN v_keep THEN p_owner ELSE NULL END,
        lease_expires_at = CASE WHEN v_keep THEN p_now + p_lease_ms ELSE NULL END,
        status = o.s,
        skip_reason = CASE WHEN o.s = 'pending' THEN skip_reason WHEN o.s = 'skipped' THEN o.sr ELSE NULL END,
        sent_at = CASE WHEN o.s = 'sent' THEN o.t ELSE sent_at END,
        processed_at = CASE WHEN o.s = 'pending' THEN processed_at ELSE o.t END
      WHERE id = o.r
      RETURNING account_id INTO v_account;
      moves := moves || CAST(ROW(o.c, v_batch, v_status, o.s) AS :DISPARO_SCHEMA.move);

      v_effect_account := coalesce(o.a, v_account);
      v_cf := NULL;
      IF v_effect_account IS NOT NULL THEN
        UPDATE :DISPARO_SCHEMA.accounts SET
          consecutive_failures = CASE WHEN o.fx = 'failure' THEN consecutive_failures + 1 ELSE 0 END,
          updated_at = p_now
        WHERE id = v_effect_account AND (o.fx = 'failure' OR (o.fx = 'success' AND consecutive_failures <> 0))
        RETURNING consecutive_failures INTO v_cf;
        IF NOT FOUND THEN
          SELECT ac.consecutive_failures INTO v_cf FROM :DISPARO_SCHEMA.accounts ac WHERE ac.id = v_effect_account;
        END IF;
      END IF;
      v_outs := v_outs || jsonb_build_array(jsonb_build_object('ok', true, 'cf', v_cf));
    END LOOP;
  END IF;

  IF p_begin IS NOT NULL THEN
    SELECT * INTO b FROM jsonb_to_record(p_begin) AS x(r bigint, c text, tx text, n integer, p text, acc text, gap bigint,
      lead bigint, hk text, hl integer, hx bigint, dk text, dl integer, dx bigint);
    SELECT rc.batch, rc.status, rc.attempts, rc.lease_expires_at INTO v_batch, v_status, v_attempts, v_expires
      FROM :DISPARO_SCHEMA.recipients rc
      WHERE rc.id = b.r AND rc.campaign_id = b.c AND rc.status IN ('pending', 'sending') AND rc.lease_owner = p_owner
      FOR UPDATE;
    IF NOT FOUND OR (v_status = 'sending' AND (v_attempts <> b.n OR v_expires IS NULL OR v_expires <= p_now)) THEN
      v_begin := jsonb_build_object('g', false, 'why', 'lease_lost', 'at', p_now);
    ELSIF v_status = 'sending' THEN
      -- The same write-ahead again (a retried call whose first commit was not heard): granted, no new slot.
      v_begin := jsonb_build_object('g', true, 'at', p_now);
    ELSE
      SELECT * INTO a FROM :DISPARO_SCHEMA.accounts ac WHERE ac.id = b.acc FOR UPDATE;
      IF NOT FOUND OR a.state = 'stopped' OR (a.state = 'disabled' AND a.disabled_until IS NOT NULL AND a.disabled_until > p_now)
          OR a.connection = 'close' THEN
        v_begin := jsonb_build_object('g', false, 'why', 'account_unavailable', 'at', p_now);
      ELSIF b.dk IS NOT NULL AND a.day_key = b.dk AND a.sent_today >= b.dl THEN
        v_begin := jsonb_build_object('g', false, 'why', 'daily_cap', 'at', b.dx);
      ELSIF b.hk IS NOT NULL AND a.hour_key = b.hk AND a.sent_this_hour >= b.hl THEN
        v_begin := jsonb_build_object('g', false, 'why', 'hourly_cap', 'at', b.hx);
      ELSIF a.next_send_at > p_now THEN
        v_begin := jsonb_build_object('g', false, 'why', 'pacing', 'at', a.next_send_at);
      ELSE
        v_slot := p_now + b.lead;
        UPDATE :DISPARO_SCHEMA.accounts SET
          next_send_at = v_slot + b.gap,
          sent_this_hour = CASE WHEN b.hk IS NULL THEN sent_this_hour WHEN hour_key = b.hk THEN sent_this_hour + 1 ELSE 1 END,
          hour_key = coalesce(b.hk, hour_key),
          sent_today = CASE WHEN b.dk IS NULL THEN sent_today WHEN day_key = b.dk THEN sent_today + 1 ELSE 1 END,
          day_key = coalesce(b.dk, day_key),
          updated_at = p_now
        WHERE id = b.acc;
        UPDATE :DISPARO_SCHEMA.recipients SET
          status = 'sending',
          text = b.tx,
          account_id = b.acc,
          attempts = b.n,
          provider_message_id = CASE WHEN b.p IS NOT NULL AND b.p <> '' THEN b.p ELSE provider_message_id END,
          lease_owner = p_owner,
          lease_expires_at = p_now + p_lease_ms,
          updated_at = p_now
        WHERE id = b.r;
        moves := moves || CAST(ROW(b.c, v_batch, 'pending', 'sending') AS :DISPARO_SCHEMA.move);
        v_begin := jsonb_build_object('g', true, 'at', v_slot);
      END IF;
    END IF;
  END IF;

  result := jsonb_build_object('o', v_outs, 'b', v_begin);
END
$$;

CREATE FUNCTION :DISPARO_SCHEMA.advance(p_owner text, p_now bigint, p_lease_ms bigint, p_outcomes jsonb, p_begin jsonb)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_result jsonb;
  v_moves :DISPARO_SCHEMA.move[];
BEGIN
  SELECT s.result, s.moves INTO v_result, v_moves FROM :DISPARO_SCHEMA._advance(p_owner, p_now, p_lease_ms, p_outcomes, p_begin) s;
  PERFORM :DISPARO_SCHEMA._count_moves(v_moves);
  RETURN v_result;
END
$$;

-- Several advance steps in one transaction and one commit, applied in order, as if called one after
-- the other. Items: {"w": owner, "t": now, "l": leaseMs, "o": outcomes|null, "b": begin|null}.
CREATE FUNCTION :DISPARO_SCHEMA.advance_many(p_items jsonb)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  i record;
  v_result jsonb;
  v_step :DISPARO_SCHEMA.move[];
  v_moves :DISPARO_SCHEMA.move[] := '{}';
  v_results jsonb := '[]'::jsonb;
BEGIN
  FOR i IN SELECT * FROM jsonb_to_recordset(p_items) AS x(w text, t bigint, l bigint, o jsonb, b jsonb) LOOP
    SELECT s.result, s.moves INTO v_result, v_step FROM :DISPARO_SCHEMA._advance(i.w, i.t, i.l, i.o, i.b) s;
    v_moves := v_moves || v_step;
    v_results := v_results || jsonb_build_array(v_result);
  END LOOP;
  PERFORM :DISPARO_SCHEMA._count_moves(v_moves);
  RETURN v_results;
END
$$;

-- Settle in-doubt rows: each applies only while the row is still `sending` with an expired lease, so
-- of two recovering workers exactly one settles it (the other re-reads the row after the first
-- commits and finds it no longer sending). Items: {"r": id, "s": status, "p": providerMessageId, "t": sentAt}.
CREATE FUNCTION :DISPARO_SCHEMA.settle(p_items jsonb, p_now bigint)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  st record;
  v_campaign text;
  v_batch integer;
  v_applied integer := 0;
  v_moves :DISPARO_SCHEMA.move[] := '{}';
BEGIN
  FOR st IN SELECT * FROM jsonb_to_recordset(p_items) AS x(r bigint, s text, p text, t bigint) LOOP
    UPDATE :DISPARO_SCHEMA.recipients SET
      status = st.s,
      lease_owner = NULL,
      lease_expires_at = NULL,
      updated_at = p_now,
      provider_message_id = CASE WHEN st.s = 'sent' AND st.p IS NOT NULL AND st.p <> '' THEN st.p ELSE provider_message_id END,
      sent_at = CASE WHEN st.s = 'sent' THEN coalesce(st.t, p_now) ELSE sent_at END,
      processed_at = CASE WHEN st.s = 'pending' THEN processed_at ELSE p_now END
    WHERE id = st.r AND status = 'sending' AND (lease_expires_at IS NULL OR lease_expires_at <= p_now)
    RETURNING campaign_id, batch INTO v_campaign, v_batch;
    IF FOUND THEN
      v_applied := v_applied + 1;
      v_moves := v_moves || CAST(ROW(v_campaign, v_batch, 'sending', st.s) AS :DISPARO_SCHEMA.move);
    END IF;
  END LOOP;
  PERFORM :DISPARO_SCHEMA._count_moves(v_moves);
  RETURN v_applied;
END
$$;

-- Provider receipts, applied in order (a repeat inside one call is a repeat). Monotonic:
-- sent < delivered < read; failed only from sent or unknown; an unknown row settles forward;
-- rows still pending or sending belong to their worker. Items: {"p": id, "s": status, "t": at, "e": error}.
-- Returns {"applied", "ignored", "unmatched", "changed": [{"r", "c", "f", "to"}]}.
CREATE FUNCTION :DISPARO_SCHEMA.apply_receipts(p_items jsonb, p_now bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  u record;
  v_id bigint;
  v_campaign text;
  v_batch integer;
  v_from text;
  v_to text;
  v_applied integer := 0;
  v_ignored integer := 0;
  v_unmatched integer := 0;
  v_changed jsonb := '[]'::jsonb;
  v_moves :DISPARO_SCHEMA.move[] := '{}';
BEGIN
  FOR u IN SELECT * FROM jsonb_to_recordset(p_items) AS x(p text, s text, t bigint, e text) LOOP
    SELECT rc.id, rc.campaign_id, rc.batch, rc.status INTO v_id, v_campaign, v_batch, v_from
      FROM :DISPARO_SCHEMA.recipients rc WHERE rc.provider_message_id = u.p
      ORDER BY rc.updated_at DESC, rc.id DESC LIMIT 1
      FOR UPDATE;
    IF NOT FOUND THEN
      v_unmatched := v_unmatched + 1;
      CONTINUE;
    END IF;
    v_to := NULL;
    IF u.s = 'failed' THEN
      IF v_from IN ('sent', 'unknown') THEN v_to := 'failed'; END IF;
    ELSIF v_from = 'unknown' THEN
      v_to := u.s;
    ELSIF (v_from = 'sent' AND u.s IN ('delivered', 'read')) OR (v_from = 'delivered' AND u.s = 'read') THEN
      v_to := u.s;
    END IF;
    IF v_to IS NULL THEN
      v_ignored := v_ignored + 1;
      CONTINUE;
    END IF;
    UPDATE :DISPARO_SCHEMA.recipients SET
      status = v_to,
      last_error = CASE WHEN v_to = 'failed' THEN coalesce(u.e, 'the provider reported the message failed') ELSE last_error END,
      sent_at = CASE WHEN v_to = 'failed' THEN sent_at ELSE coalesce(sent_at, u.t) END,
      delivered_at = CASE WHEN v_to IN ('delivered', 'read') THEN coalesce(delivered_at, u.t) ELSE delivered_at END,
      read_at = CASE WHEN v_to = 'read' THEN u.t ELSE read_at END,
      updated_at = p_now
    WHERE id = v_id;
    v_applied := v_applied + 1;
    v_changed := v_changed || jsonb_build_array(jsonb_build_object('r', v_id, 'c', v_campaign, 'f', v_from, 'to', v_to));
    v_moves := v_moves || CAST(ROW(v_campaign, v_batch, v_from, v_to) AS :DISPARO_SCHEMA.move);
  END LOOP;
  PERFORM :DISPARO_SCHEMA._count_moves(v_moves);
  RETURN jsonb_build_object('applied', v_applied, 'ignored', v_ignored, 'unmatched', v_unmatched, 'changed', v_changed);
END
$$;

-- Add phones to the suppression list (the first entry of a phone wins; one already listed is kept)
-- and skip their pending sends, leased or not, in every campaign. Rows on the wire are left to
-- their worker; the next claim catches them if they come back. Items: {"p", "r", "s", "t"}.
CREATE FUNCTION :DISPARO_SCHEMA.add_opt_outs(p_items jsonb, p_now bigint, OUT added integer, OUT cancelled integer)
LANGUAGE plpgsql AS $$
DECLARE
  v_moves :DISPARO_SCHEMA.move[];
BEGIN
  WITH e AS (
    SELECT DISTINCT ON (x.p) x.p, x.r, x.s, x.t
    FROM ROWS FROM (jsonb_to_recordset(p_items) AS (p text, r text, s text, t bigint)) WITH ORDINALITY AS x(p, r, s, t, ord)
    ORDER BY x.p, x.ord
  ), ins AS (
    INSERT INTO :DISPARO_SCHEMA.opt_outs (phone, reason, source, at)
    SELECT e.p, e.r, e.s, e.t FROM e ORDER BY e.p
    ON CONFLICT (phone) DO NOTHING
    RETURNING 1
  )
  SELECT count(*) INTO added FROM ins;

  WITH u AS (
    UPDATE :DISPARO_SCHEMA.recipients SET status = 'skipped', skip_reason = 'opted_out', last_error = 'contact opted out',
      lease_owner = NULL, lease_expires_at = NULL, processed_at = p_now, updated_at = p_now
    WHERE phone IN (SELECT x.p FROM jsonb_to_recordset(p_items) AS x(p text)) AND status = 'pending'
    RETURNING campaign_id, batch
  )
  SELECT count(*), array_agg(CAST(ROW(u.campaign_id, u.batch, 'pending', 'skipped') AS :DISPARO_SCHEMA.move))
    INTO cancelled, v_moves FROM u;
  PERFORM :DISPARO_SCHEMA._count_moves(v_moves);
END
$$;

-- Move a campaign past a finished batch. The campaign row is locked first, so an import into the
-- current batch either commits before (and its rows block the move) or waits and sees the new one.
CREATE FUNCTION :DISPARO_SCHEMA.advance_batch(p_campaign text, p_expected integer, p_next integer, p_next_at bigint, p_now bigint)
RETURNS SETOF :DISPARO_SCHEMA.campaign_view
LANGUAGE plpgsql AS $$
DECLARE
  v_current integer;
BEGIN
  SELECT c.current_batch INTO v_current FROM :DISPARO_SCHEMA.campaigns c WHERE c.id = p_campaign FOR UPDATE;
  IF NOT FOUND OR v_current <> p_expected THEN
    RETURN;
  END IF;
  IF EXISTS (SELECT 1 FROM :DISPARO_SCHEMA.batch_view bv WHERE bv.campaign_id = p_campaign AND bv.batch = p_expected AND bv.open > 0) THEN
    RETURN;
  END IF;
  UPDATE :DISPARO_SCHEMA.batches SET finished_at = p_now WHERE campaign_id = p_campaign AND batch = p_expected;
  UPDATE :DISPARO_SCHEMA.campaigns SET current_batch = p_next, next_batch_at = p_next_at, updated_at = p_now WHERE id = p_campaign;
  RETURN QUERY SELECT * FROM :DISPARO_SCHEMA.campaign_view cv WHERE cv.id = p_campaign;
END
$$;
