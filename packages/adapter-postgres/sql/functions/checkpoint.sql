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
--   reserved; consecutive slots (the first needs next_send_at <= now + aheadMs and starts at
--   max(now, next_send_at); item i's slot is the previous slot + its gap + item i's lead); every grant
--   counts toward the caps and the window; a repeat (our
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
LANGUAGE plpgsql
-- Every statement here reads rows by key: one plan fits every call, and planning each call anew
-- (custom plans) cost more than the rest of the checkpoint.
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  v_moves :DISPARO_SCHEMA.move[] := '{}';
  v_ids bigint[];
  v_bad boolean;
  i integer;
  -- outcomes
  v_no integer := coalesce(jsonb_array_length(p_outcomes), 0);
  v_twice boolean;               -- a recipient has two outcomes: apply them one at a time
  v_one integer;
  v_outcomes jsonb := '[]';
  -- write-ahead
  v_account text := p_write_ahead ->> 'accountId';
  v_n integer := coalesce(jsonb_array_length(p_write_ahead -> 'items'), 0);
  v_found boolean;
  v_usable boolean;
  v_kind smallint[];             -- per item: 0 lost, 1 leased (pending, ours), 2 repeat
  v_gap bigint[];
  v_lead bigint[];
  v_item_ids bigint[];
  v_texts text[];
  v_attempts integer[];
  v_pids text[];
  v_fresh boolean[];             -- per item: written ahead by this call
  v_slot bigint;
  v_taken integer := 0;
  v_max integer := coalesce((p_write_ahead ->> 'maxInFlight')::integer, 1);
  v_ahead bigint := coalesce((p_write_ahead ->> 'aheadMs')::bigint, 0);
  v_in_flight integer;
  v_hk text := p_write_ahead -> 'hourly' ->> 'key';
  v_hl integer := (p_write_ahead -> 'hourly' ->> 'limit')::integer;
  v_hx bigint := (p_write_ahead -> 'hourly' ->> 'endsAt')::bigint;
  v_dk text := p_write_ahead -> 'daily' ->> 'key';
  v_dl integer := (p_write_ahead -> 'daily' ->> 'limit')::integer;
  v_dx bigint := (p_write_ahead -> 'daily' ->> 'endsAt')::bigint;
  v_state text;
  v_connection text;
  v_disabled_until bigint;
  v_at bigint;
  v_next bigint;
  v_hour_key text;
  v_this_hour integer;
  v_day_key text;
  v_today integer;
  v_grants jsonb[] := '{}';
BEGIN
  -- Locks: the rows this call may change, in key order, then the accounts, in key order. Every
  -- function locks recipients before accounts, so two calls never wait on each other in a cycle.
  -- (Rows are read by key through LATERAL subqueries that cannot be flattened: planned as joins, a
  -- hash join over the whole table can look cheaper than a hundred key lookups.)
  SELECT (SELECT array_agg(x.id ORDER BY x.id)
            FROM (SELECT o.id FROM :DISPARO_SCHEMA._outcome_rows(p_outcomes) o
                  UNION SELECT w.id FROM :DISPARO_SCHEMA._write_ahead_rows(p_write_ahead) w ORDER BY 1) k
            CROSS JOIN LATERAL (SELECT rc.id FROM :DISPARO_SCHEMA.recipients rc
                                WHERE rc.id = k.id AND rc.lease_owner = p_owner AND rc.status IN ('pending', 'sending') FOR UPDATE) x),
      coalesce(bool_or(o.status IS NULL OR o.status NOT IN ('sent', 'failed', 'skipped', 'unknown', 'pending')), false),
      count(o.recipient_id) > count(DISTINCT o.recipient_id)
    INTO v_ids, v_bad, v_twice
    FROM :DISPARO_SCHEMA._outcome_rows(p_outcomes) o;
  IF v_bad THEN
    RAISE EXCEPTION 'checkpoint: an outcome''s status must be sent, failed, skipped, unknown or pending' USING ERRCODE = '22023';
  END IF;
  PERFORM 1 FROM :DISPARO_SCHEMA.accounts ac
    WHERE ac.id IN (
      SELECT CASE WHEN o.account_id IS NULL THEN x.account_id ELSE nullif(o.account_id, '') END
      FROM :DISPARO_SCHEMA._outcome_rows(p_outcomes) o
      LEFT JOIN LATERAL (SELECT rc.account_id FROM :DISPARO_SCHEMA.recipients rc WHERE rc.id = o.id OFFSET 0) x ON true
      UNION SELECT v_account)
    ORDER BY ac.id FOR UPDATE;

  -- ---- outcomes, in order: all at once, or one at a time when a recipient has two ----
  -- Each outcome that applies moves its account (the outcome's account, else the row's): failuresAfter
  -- as a running fold (`run` counts the account's successes so far: each starts a new run of failures
  -- from 0), and the next slot to the latest accountNextSendAt, never earlier.
  v_one := CASE WHEN v_twice THEN 1 END;
  WHILE v_no > 0 AND (v_one IS NULL OR v_one <= v_no) LOOP
    WITH o AS MATERIALIZED (
      SELECT o.*, x.status AS was, x.batch
      FROM :DISPARO_SCHEMA._outcome_rows(p_outcomes) o
      JOIN LATERAL (SELECT rc.status, rc.batch, rc.campaign_id, rc.lease_owner FROM :DISPARO_SCHEMA.recipients rc WHERE rc.id = o.id OFFSET 0) x ON true
      WHERE (v_one IS NULL OR o.i = v_one) AND x.campaign_id = o.campaign_id AND x.lease_owner = p_owner AND x.status IN ('pending', 'sending')
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
      RETURNING o.i, o.effect, o.next_send_at, CASE WHEN o.account_id IS NULL THEN rc.account_id ELSE nullif(o.account_id, '') END AS acc,
        CAST(ROW(o.campaign_id, o.batch, o.was, o.status) AS :DISPARO_SCHEMA.move) AS m
    ), e AS (
      SELECT u.*, ac.consecutive_failures AS cf0, ac.next_send_at AS next0,
        count(*) FILTER (WHERE u.effect = 'success') OVER (PARTITION BY u.acc ORDER BY u.i) AS run
      FROM u LEFT JOIN :DISPARO_SCHEMA.accounts ac ON ac.id = u.acc
    ), f AS (
      SELECT e.*,
        CASE WHEN e.cf0 IS NOT NULL THEN
          (CASE WHEN e.run = 0 THEN e.cf0 ELSE 0 END) + count(*) FILTER (WHERE e.effect = 'failure') OVER (PARTITION BY e.acc, e.run ORDER BY e.i)
        END::integer AS cf,
        greatest(e.next0, max(e.next_send_at) OVER (PARTITION BY e.acc)) AS next
      FROM e
    ), upd AS (
      UPDATE :DISPARO_SCHEMA.accounts ac SET consecutive_failures = t.cf, next_send_at = t.next, updated_at = p_now
      FROM (SELECT DISTINCT ON (f.acc) f.acc, f.cf, f.next FROM f WHERE f.cf IS NOT NULL ORDER BY f.acc, f.i DESC) t
      WHERE ac.id = t.acc AND (ac.consecutive_failures <> t.cf OR ac.next_send_at <> t.next)
    )
    SELECT v_outcomes || (SELECT jsonb_agg(jsonb_build_object('recipientId', o.recipient_id, 'applied', f.i IS NOT NULL, 'consecutiveFailures', f.cf) ORDER BY o.i)
                          FROM :DISPARO_SCHEMA._outcome_rows(p_outcomes) o LEFT JOIN f ON f.i = o.i
                          WHERE v_one IS NULL OR o.i = v_one),
        v_moves || coalesce((SELECT array_agg(f.m) FROM f), '{}')
      INTO v_outcomes, v_moves;
    EXIT WHEN v_one IS NULL;
    v_one := v_one + 1;
  END LOOP;

  -- ---- the write-ahead ----
  IF v_n > 0 THEN
    -- The account, its sends in flight (under its lock, taken above: every `sending` row of the
    -- account, whoever wrote it ahead), and each item against its row: 1 leased (pending, ours), 2 a
    -- repeat of our live write-ahead of this very attempt, 0 lost (anyone else's, gone, or past this attempt).
    SELECT ac.id IS NOT NULL, ac.state, ac.connection, ac.disabled_until, ac.next_send_at, ac.hour_key, ac.sent_this_hour,
        ac.day_key, ac.sent_today,
        (SELECT count(*)::integer FROM :DISPARO_SCHEMA.recipients rc WHERE rc.account_id = v_account AND rc.status = 'sending'),
        w.kinds, w.gaps, w.leads, w.ids, w.texts, w.attempts, w.pids
      INTO v_found, v_state, v_connection, v_disabled_until, v_next, v_hour_key, v_this_hour, v_day_key, v_today,
        v_in_flight, v_kind, v_gap, v_lead, v_item_ids, v_texts, v_attempts, v_pids
      FROM (
        SELECT array_agg(CASE
              WHEN x.id IS NULL OR x.campaign_id IS DISTINCT FROM w.campaign_id OR x.lease_owner IS DISTINCT FROM p_owner THEN 0
              WHEN x.status = 'pending' THEN 1
              WHEN x.status = 'sending' AND x.attempts = w.attempt AND x.lease_expires_at > p_now THEN 2
              ELSE 0 END::smallint ORDER BY w.i) AS kinds,
          array_agg(w.gap_ms ORDER BY w.i) AS gaps, array_agg(w.lead_ms ORDER BY w.i) AS leads,
          array_agg(w.id ORDER BY w.i) AS ids, array_agg(w.text ORDER BY w.i) AS texts,
          array_agg(w.attempt ORDER BY w.i) AS attempts, array_agg(w.provider_message_id ORDER BY w.i) AS pids
        FROM :DISPARO_SCHEMA._write_ahead_rows(p_write_ahead) w
        LEFT JOIN LATERAL (SELECT rc.id, rc.campaign_id, rc.lease_owner, rc.status, rc.attempts, rc.lease_expires_at
                             FROM :DISPARO_SCHEMA.recipients rc WHERE rc.id = w.id OFFSET 0) x ON true
      ) w
      LEFT JOIN :DISPARO_SCHEMA.accounts ac ON ac.id = v_account;
    -- ACCOUNT_USABILITY_RULES: stopped, disconnected, or disabled and still cooling down.
    v_usable := v_found AND v_state <> 'stopped' AND v_connection <> 'close' AND NOT (v_state = 'disabled' AND coalesce(v_disabled_until > p_now, false));

    -- reserveSlots, item by item, checks in SLOT_CHECKS order; a refusal reserves nothing.
    v_at := p_now;
    v_fresh := array_fill(false, ARRAY[v_n]);
    FOR i IN 1..v_n LOOP
      IF v_kind[i] = 2 AND v_found THEN
        v_grants := v_grants || jsonb_build_object('granted', true, 'slotAt', p_now);
      ELSIF v_kind[i] = 0 THEN
        v_grants := v_grants || jsonb_build_object('granted', false, 'reason', 'lease_lost', 'retryAt', p_now);
      ELSIF NOT v_usable THEN
        v_grants := v_grants || jsonb_build_object('granted', false, 'reason', 'account_unavailable', 'retryAt', p_now);
      ELSIF v_dk IS NOT NULL AND v_day_key = v_dk AND v_today >= v_dl THEN
        v_grants := v_grants || jsonb_build_object('granted', false, 'reason', 'daily_cap', 'retryAt', v_dx);
      ELSIF v_hk IS NOT NULL AND v_hour_key = v_hk AND v_this_hour >= v_hl THEN
        v_grants := v_grants || jsonb_build_object('granted', false, 'reason', 'hourly_cap', 'retryAt', v_hx);
      ELSIF v_in_flight >= v_max THEN
        v_grants := v_grants || jsonb_build_object('granted', false, 'reason', 'in_flight', 'retryAt', p_now);
      ELSIF v_next > v_at + v_ahead THEN
        v_grants := v_grants || jsonb_build_object('granted', false, 'reason', 'pacing', 'retryAt', v_next - v_ahead);
      ELSE
        v_slot := greatest(v_at, v_next) + v_lead[i];
        v_grants := v_grants || jsonb_build_object('granted', true, 'slotAt', v_slot);
        v_next := v_slot + v_gap[i];
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
        v_fresh[i] := true;
        v_taken := v_taken + 1;
      END IF;
    END LOOP;

    IF v_taken > 0 THEN
      WITH acc AS (
        UPDATE :DISPARO_SCHEMA.accounts SET next_send_at = v_next, hour_key = v_hour_key, sent_this_hour = v_this_hour,
          day_key = v_day_key, sent_today = v_today, updated_at = p_now
        WHERE id = v_account
      ), u AS (
        UPDATE :DISPARO_SCHEMA.recipients rc SET
          status = 'sending',
          text = g.text,
          account_id = v_account,
          attempts = g.attempt,
          provider_message_id = CASE WHEN g.pid <> '' THEN g.pid ELSE rc.provider_message_id END,
          lease_owner = p_owner,
          lease_expires_at = p_now + p_lease_ms,
          updated_at = p_now
        FROM unnest(v_item_ids, v_texts, v_attempts, v_pids, v_fresh) AS g(id, text, attempt, pid, fresh)
        WHERE g.fresh AND rc.id = g.id AND rc.status = 'pending'
        RETURNING CAST(ROW(rc.campaign_id, rc.batch, 'pending', 'sending') AS :DISPARO_SCHEMA.move) AS m
      )
      SELECT v_moves || coalesce(array_agg(u.m), '{}') INTO v_moves FROM u;
    END IF;
  END IF;

  PERFORM :DISPARO_SCHEMA._count_moves(v_moves);
  RETURN jsonb_build_object('outcomes', v_outcomes, 'grants', to_jsonb(v_grants));
END
$$;
