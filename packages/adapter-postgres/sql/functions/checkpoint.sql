-- StateStore.checkpoint, the one write of the send path, atomic: first record `p_outcomes` (an array
-- of `Outcome`, see _outcome_rows) in order, then, when `p_write_ahead` (a `WriteAhead`, see
-- _write_ahead_rows) is given, reserve the account's slots for its items and write each granted item
-- ahead as `sending`. A single send is a group of one. Returns the contract's `CheckpointResult`:
--   {"outcomes": [{"recipientId", "applied", "consecutiveFailures"}], "grants": [{"granted": true, "slotAt"} |
--    {"granted": false, "reason", "retryAt"}]}
--
-- The rules are core's (@disparo/core/store), checked against this function by the conformance suite:
-- - an outcome applies only while its row is open and leased by `p_owner` (outcomeApplies); it moves
--   the account's run of real failures (failuresAfter) and its next slot to `accountNextSendAt` when
--   that is later, never earlier;
-- - the reservation is reserveSlots: checks in SLOT_CHECKS order (lease_lost, account_unavailable,
--   daily_cap, hourly_cap, in_flight, pacing), the first that applies refusing the item with nothing
--   reserved; consecutive slots (the first needs next_send_at <= now; item i's slot is the previous
--   slot + its gap + item i's lead); every grant counts toward the caps and the window; a repeat (our
--   own live write-ahead of this very attempt: a retried call whose commit was not heard) is granted
--   again without a slot. Account usability is ACCOUNT_USABILITY_RULES.
--
-- The in-flight window: the account's sends written ahead without an outcome are its `sending` rows,
-- whoever wrote them, on the wire or in doubt (lease expired), until their outcome is recorded or they
-- are settled. They are counted after the account's row is locked: a worker reserving the same account
-- waits for that lock, and its count, a statement of its own (READ COMMITTED: a fresh snapshot), then
-- sees the sends the other one committed. So across every worker at most `maxInFlight` sends of an
-- account are ever on the wire.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.checkpoint(p_owner text, p_now bigint, p_lease_ms bigint,
  p_outcomes jsonb DEFAULT NULL, p_write_ahead jsonb DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_moves :DISPARO_SCHEMA.move[] := '{}';
  v_ids bigint[];
  i integer;
  r record;
  -- outcomes
  v_no integer := coalesce(jsonb_array_length(p_outcomes), 0);
  v_round integer;
  v_rounds integer;
  v_applied integer[] := '{}';   -- positions of the outcomes that applied
  v_cf integer[];                -- per outcome: its account's run of failures after it
  v_accs text[] := '{}';         -- accounts the outcomes touch, with their run and next slot
  v_cfs integer[] := '{}';
  v_nexts bigint[] := '{}';
  v_pos integer;
  v_start_cf integer;
  v_start_next bigint;
  v_outcomes jsonb;
  -- write-ahead
  v_account text := p_write_ahead ->> 'accountId';
  v_n integer := coalesce(jsonb_array_length(p_write_ahead -> 'items'), 0);
  a :DISPARO_SCHEMA.accounts%ROWTYPE;
  v_found boolean := false;
  v_usable boolean;
  v_kind smallint[];             -- per item: 0 lost, 1 leased (pending, ours), 2 repeat
  v_gap bigint[];
  v_lead bigint[];
  v_granted boolean[];
  v_slot bigint[];
  v_why text[];
  v_new integer[] := '{}';       -- positions written ahead by this call
  v_max integer := coalesce((p_write_ahead ->> 'maxInFlight')::integer, 1);
  v_in_flight integer := 0;
  v_hk text := p_write_ahead -> 'hourly' ->> 'key';
  v_hl integer := (p_write_ahead -> 'hourly' ->> 'limit')::integer;
  v_hx bigint := (p_write_ahead -> 'hourly' ->> 'endsAt')::bigint;
  v_dk text := p_write_ahead -> 'daily' ->> 'key';
  v_dl integer := (p_write_ahead -> 'daily' ->> 'limit')::integer;
  v_dx bigint := (p_write_ahead -> 'daily' ->> 'endsAt')::bigint;
  v_at bigint;
  v_next bigint;
  v_hour_key text;
  v_this_hour integer;
  v_day_key text;
  v_today integer;
  v_grants jsonb;
BEGIN
  IF EXISTS (SELECT 1 FROM :DISPARO_SCHEMA._outcome_rows(p_outcomes) o WHERE o.status IS NULL OR o.status NOT IN ('sent', 'failed', 'skipped', 'unknown', 'pending')) THEN
    RAISE EXCEPTION 'checkpoint: an outcome''s status must be sent, failed, skipped, unknown or pending' USING ERRCODE = '22023';
  END IF;

  -- Locks: the rows this call may change, in key order, then the accounts, in key order. Every
  -- function locks recipients before accounts, so two calls never wait on each other in a cycle.
  SELECT array_agg(x.id ORDER BY x.id) INTO v_ids FROM (
    SELECT o.id FROM :DISPARO_SCHEMA._outcome_rows(p_outcomes) o
    UNION SELECT w.id FROM :DISPARO_SCHEMA._write_ahead_rows(p_write_ahead) w
  ) x WHERE x.id IS NOT NULL;
  PERFORM 1 FROM :DISPARO_SCHEMA.recipients rc
    WHERE rc.id = ANY (v_ids) AND rc.lease_owner = p_owner AND rc.status IN ('pending', 'sending')
    ORDER BY rc.id FOR UPDATE;
  PERFORM 1 FROM :DISPARO_SCHEMA.accounts ac
    WHERE ac.id IN (
      SELECT CASE WHEN o.account_id IS NULL THEN x.account_id ELSE nullif(o.account_id, '') END
      FROM :DISPARO_SCHEMA._outcome_rows(p_outcomes) o
      LEFT JOIN LATERAL (SELECT rc.account_id FROM :DISPARO_SCHEMA.recipients rc WHERE rc.id = o.id) x ON true
      UNION SELECT v_account)
    ORDER BY ac.id FOR UPDATE;

  -- ---- outcomes, in order: the k-th outcome of each recipient in round k (one round, unless a
  -- recipient comes twice) ----
  SELECT coalesce(max(o.k), 0) INTO v_rounds FROM :DISPARO_SCHEMA._outcome_rows(p_outcomes) o;
  FOR v_round IN 1..v_rounds LOOP
    WITH o AS (
      SELECT o.*, x.status AS was, x.batch
      FROM :DISPARO_SCHEMA._outcome_rows(p_outcomes) o
      JOIN LATERAL (SELECT rc.status, rc.batch, rc.campaign_id, rc.lease_owner FROM :DISPARO_SCHEMA.recipients rc WHERE rc.id = o.id) x ON true
      WHERE o.k = v_round AND x.campaign_id = o.campaign_id AND x.lease_owner = p_owner AND x.status IN ('pending', 'sending')
    ), u AS (
      UPDATE :DISPARO_SCHEMA.recipients rc SET
        attempts = o.attempts,
        updated_at = p_now,
        -- Absent or null keeps what the row knows (the write-ahead set the account).
        account_id = CASE WHEN o.account_id <> '' THEN o.account_id ELSE rc.account_id END,
        provider_message_id = CASE WHEN o.provider_message_id <> '' THEN o.provider_message_id ELSE rc.provider_message_id END,
        last_error = CASE WHEN o.has_error THEN o.error ELSE rc.last_error END,
        -- A retry by the same owner follows (often in this very call): keep the row, renewed like a heartbeat.
        lease_owner = CASE WHEN o.status = 'pending' AND o.keep_lease THEN p_owner END,
        lease_expires_at = CASE WHEN o.status = 'pending' AND o.keep_lease THEN p_now + p_lease_ms END,
        status = o.status,
        skip_reason = CASE WHEN o.status = 'pending' THEN rc.skip_reason WHEN o.status = 'skipped' THEN o.skip_reason END,
        sent_at = CASE WHEN o.status = 'sent' THEN o.at ELSE rc.sent_at END,
        processed_at = CASE WHEN o.status = 'pending' THEN rc.processed_at ELSE o.at END
      FROM o
      WHERE rc.id = o.id
      RETURNING o.i, CAST(ROW(o.campaign_id, o.batch, o.was, o.status) AS :DISPARO_SCHEMA.move) AS m
    )
    SELECT v_applied || coalesce(array_agg(u.i), '{}'), v_moves || coalesce(array_agg(u.m), '{}') INTO v_applied, v_moves FROM u;
  END LOOP;

  -- What each applied outcome does to its account (the outcome's account, else the row's), in order.
  v_cf := array_fill(NULL::integer, ARRAY[v_no]);
  IF cardinality(v_applied) > 0 THEN
    FOR r IN
      SELECT o.i, o.effect, o.next_send_at, CASE WHEN o.account_id IS NULL THEN x.account_id ELSE nullif(o.account_id, '') END AS acc
      FROM :DISPARO_SCHEMA._outcome_rows(p_outcomes) o
      LEFT JOIN LATERAL (SELECT rc.account_id FROM :DISPARO_SCHEMA.recipients rc WHERE rc.id = o.id) x ON true
      WHERE o.i = ANY (v_applied)
      ORDER BY o.i
    LOOP
      CONTINUE WHEN r.acc IS NULL;
      v_pos := array_position(v_accs, r.acc);
      IF v_pos IS NULL THEN
        SELECT ac.consecutive_failures, ac.next_send_at INTO v_start_cf, v_start_next FROM :DISPARO_SCHEMA.accounts ac WHERE ac.id = r.acc;
        CONTINUE WHEN NOT FOUND;
        v_accs := v_accs || r.acc;
        v_cfs := v_cfs || v_start_cf;
        v_nexts := v_nexts || v_start_next;
        v_pos := cardinality(v_accs);
      END IF;
      v_cfs[v_pos] := CASE r.effect WHEN 'success' THEN 0 WHEN 'failure' THEN v_cfs[v_pos] + 1 ELSE v_cfs[v_pos] END;
      IF r.next_send_at > v_nexts[v_pos] THEN
        v_nexts[v_pos] := r.next_send_at;
      END IF;
      v_cf[r.i] := v_cfs[v_pos];
    END LOOP;
    UPDATE :DISPARO_SCHEMA.accounts ac SET consecutive_failures = x.cf, next_send_at = x.next, updated_at = p_now
      FROM unnest(v_accs, v_cfs, v_nexts) AS x(id, cf, next)
      WHERE ac.id = x.id AND (ac.consecutive_failures <> x.cf OR ac.next_send_at <> x.next);
  END IF;
  SELECT coalesce(jsonb_agg(jsonb_build_object('recipientId', x.e ->> 'recipientId', 'applied', x.i = ANY (v_applied),
      'consecutiveFailures', v_cf[x.i]) ORDER BY x.i), '[]')
    INTO v_outcomes FROM jsonb_array_elements(coalesce(p_outcomes, '[]')) WITH ORDINALITY AS x(e, i);

  -- ---- the write-ahead ----
  IF v_n > 0 THEN
    SELECT * INTO a FROM :DISPARO_SCHEMA.accounts ac WHERE ac.id = v_account;
    v_found := FOUND;
    -- Each item against its row: 1 leased (pending, ours), 2 a repeat of our live write-ahead of this
    -- very attempt, 0 lost (anyone else's, gone, or already past this attempt).
    SELECT array_agg(CASE
          WHEN x.id IS NULL OR x.campaign_id IS DISTINCT FROM w.campaign_id OR x.lease_owner IS DISTINCT FROM p_owner THEN 0
          WHEN x.status = 'pending' THEN 1
          WHEN x.status = 'sending' AND x.attempts = w.attempt AND x.lease_expires_at > p_now THEN 2
          ELSE 0 END::smallint ORDER BY w.i),
        array_agg(w.gap_ms ORDER BY w.i), array_agg(w.lead_ms ORDER BY w.i)
      INTO v_kind, v_gap, v_lead
      FROM :DISPARO_SCHEMA._write_ahead_rows(p_write_ahead) w
      LEFT JOIN LATERAL (SELECT rc.id, rc.campaign_id, rc.lease_owner, rc.status, rc.attempts, rc.lease_expires_at
                           FROM :DISPARO_SCHEMA.recipients rc WHERE rc.id = w.id) x ON true;
    IF v_found THEN
      v_usable := a.state <> 'stopped' AND a.connection <> 'close' AND NOT (a.state = 'disabled' AND coalesce(a.disabled_until > p_now, false));
      -- Under the account's lock (above): every `sending` row of the account, whoever wrote it ahead.
      SELECT count(*)::integer INTO v_in_flight FROM :DISPARO_SCHEMA.recipients rc WHERE rc.account_id = v_account AND rc.status = 'sending';
    ELSE
      v_usable := false;
    END IF;
    v_at := p_now;
    v_next := a.next_send_at;
    v_hour_key := a.hour_key;
    v_this_hour := a.sent_this_hour;
    v_day_key := a.day_key;
    v_today := a.sent_today;
    v_granted := array_fill(false, ARRAY[v_n]);
    v_slot := array_fill(p_now, ARRAY[v_n]);
    v_why := array_fill(NULL::text, ARRAY[v_n]);
    FOR i IN 1..v_n LOOP
      IF v_kind[i] = 2 AND v_found THEN
        v_granted[i] := true;
      ELSIF v_kind[i] = 0 THEN
        v_why[i] := 'lease_lost';
      ELSIF NOT v_usable THEN
        v_why[i] := 'account_unavailable';
      ELSIF v_dk IS NOT NULL AND v_day_key = v_dk AND v_today >= v_dl THEN
        v_why[i] := 'daily_cap';
        v_slot[i] := v_dx;
      ELSIF v_hk IS NOT NULL AND v_hour_key = v_hk AND v_this_hour >= v_hl THEN
        v_why[i] := 'hourly_cap';
        v_slot[i] := v_hx;
      ELSIF v_in_flight >= v_max THEN
        v_why[i] := 'in_flight';
      ELSIF v_next > v_at THEN
        v_why[i] := 'pacing';
        v_slot[i] := v_next;
      ELSE
        v_granted[i] := true;
        v_slot[i] := v_at + v_lead[i];
        v_next := v_slot[i] + v_gap[i];
        v_at := greatest(v_at, v_next);
        v_in_flight := v_in_flight + 1;
        IF v_hk IS NOT NULL THEN
          v_this_hour := CASE WHEN v_hour_key = v_hk THEN v_this_hour + 1 ELSE 1 END;
          v_hour_key := v_hk;
        END IF;
        IF v_dk IS NOT NULL THEN
          v_today := CASE WHEN v_day_key = v_dk THEN v_today + 1 ELSE 1 END;
          v_day_key := v_dk;
        END IF;
        v_new := v_new || i;
      END IF;
    END LOOP;

    IF cardinality(v_new) > 0 THEN
      UPDATE :DISPARO_SCHEMA.accounts SET next_send_at = v_next, hour_key = v_hour_key, sent_this_hour = v_this_hour,
        day_key = v_day_key, sent_today = v_today, updated_at = p_now
        WHERE id = v_account;
      WITH u AS (
        UPDATE :DISPARO_SCHEMA.recipients rc SET
          status = 'sending',
          text = w.text,
          account_id = v_account,
          attempts = w.attempt,
          provider_message_id = CASE WHEN w.provider_message_id <> '' THEN w.provider_message_id ELSE rc.provider_message_id END,
          lease_owner = p_owner,
          lease_expires_at = p_now + p_lease_ms,
          updated_at = p_now
        FROM :DISPARO_SCHEMA._write_ahead_rows(p_write_ahead) w
        WHERE w.i = ANY (v_new) AND rc.id = w.id AND rc.status = 'pending'
        RETURNING CAST(ROW(rc.campaign_id, rc.batch, 'pending', 'sending') AS :DISPARO_SCHEMA.move) AS m
      )
      SELECT v_moves || coalesce(array_agg(u.m), '{}') INTO v_moves FROM u;
    END IF;
    SELECT jsonb_agg(CASE WHEN t.g THEN jsonb_build_object('granted', true, 'slotAt', t.s)
                          ELSE jsonb_build_object('granted', false, 'reason', t.y, 'retryAt', t.s) END ORDER BY t.k)
      INTO v_grants FROM unnest(v_granted, v_slot, v_why) WITH ORDINALITY AS t(g, s, y, k);
  END IF;

  PERFORM :DISPARO_SCHEMA._count_moves(v_moves);
  RETURN jsonb_build_object('outcomes', v_outcomes, 'grants', coalesce(v_grants, '[]'));
END
$$;
