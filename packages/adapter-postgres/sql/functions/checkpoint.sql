-- StateStore.checkpoint, the one write of the send path, atomic: first record `p_outcomes` (the
-- contract's `Outcome` records as columns: one JSON array per field, checkpoint-codec.ts) in order,
-- then, when `p_write_ahead` (a `WriteAhead`, its `items` as columns too) is given,
-- reserve the account's slots for its items and write each granted item ahead as `sending`: a send in
-- flight, one narrow row in `in_flight` (000006_in_flight.sql); the recipient row is written once, by
-- its outcome, which deletes the send. A single send is a group of one. Returns, one entry per outcome and per item, in order:
--   {"applied": [bool], "failures": [int | null], "granted": [bool], "at": [slotAt | retryAt], "reason": [null | refusal]}
-- (checkpoint-codec.ts turns it into the contract's `CheckpointResult`).
--
-- The rules are core's (@disparo/core/store), checked against this function by the conformance suite:
-- - an outcome applies only while its row is open and leased by `p_owner`, on the row or by a range
--   (outcomeApplies; _shown, as every lease check here); it moves
--   the account's run of real failures (failuresAfter) and its next slot to `accountNextSendAt` when
--   that is later, never earlier;
-- - the reservation is reserveSlots: checks in SLOT_CHECKS order (lease_lost, account_unavailable,
--   daily_cap, hourly_cap, in_flight, pacing), the first that applies refusing the item with nothing
--   reserved; consecutive slots (the first needs next_send_at <= now + aheadMs and starts at
--   max(now, next_send_at); item i's slot is the previous slot + its gap + item i's lead); every grant
--   counts toward the caps and the window; a repeat (our own live write-ahead of this very attempt: a
--   retried call whose commit was not heard) is granted again without a slot. Account usability is
--   ACCOUNT_USABILITY_RULES.
--
-- Why the reservation needs no loop: a grant moves the account's next slot to that slot plus its gap,
-- so after the first grant the pacing check never refuses again, and a refusal changes nothing, so
-- every item after it meets the same refusal. With j grants made so far, each check is a function of j
-- alone; the first j at which one fails (`v_k`) is how many leased items are granted, and every leased
-- item after those gets the refusal of the first check that fails at j = v_k. Slots are running sums.
--
-- The in-flight window: the account's sends written ahead without an outcome are its rows in
-- `in_flight`, whoever wrote them, on the wire or in doubt (lease expired), until their outcome is
-- recorded or they are settled. They are counted after the account's row is locked: a worker reserving the same account
-- waits for that lock, and its count, a statement of its own (READ COMMITTED: a fresh snapshot), then
-- sees the sends the other one committed. So across every worker at most `maxInFlight` sends of an
-- account are ever on the wire.
--
-- Cost: a group's inputs are parsed once into arrays, and every step is one set-based statement,
-- whatever the group's size. A single send (at most one outcome and one item: W = 1, one checkpoint
-- per message) has a path of its own, first below: scalar statements by key (measured, a set-based
-- statement's plan costs more to start than a key lookup costs to run, and a per-message checkpoint
-- is a dozen of them: 0.9 ms against 0.3 ms in all), as few of them and as few PL/pgSQL expressions as
-- the rules allow, since each is prepared again in every transaction. The two paths apply the same
-- rules, and the conformance suite runs each (single sends and groups). The account row is written
-- once per call, with the outcomes' effects and the reservation together.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.checkpoint(p_owner text, p_now bigint, p_lease_ms bigint,
  p_outcomes jsonb DEFAULT NULL, p_write_ahead jsonb DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql
-- Every statement here reads rows by key: one plan fits every call, and planning each call anew
-- (custom plans) cost more than the rest of the checkpoint. That plan is made at a session's first
-- call, from the statistics of that moment (an empty table, before a big import): no statement here
-- ever wants a scan of a whole table, so none is planned.
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $$
DECLARE
  v_no integer;
  v_n integer;
BEGIN
  -- Outcomes and items come as columns (checkpoint-codec.ts). A worker still on an older version of
  -- the package sends records: they are turned into columns first, so a rolling upgrade keeps working.
  IF jsonb_typeof(p_outcomes) = 'array' OR jsonb_typeof(p_write_ahead -> 'items') = 'array' THEN
    SELECT c.outcomes, c.write_ahead INTO p_outcomes, p_write_ahead FROM :DISPARO_SCHEMA._checkpoint_columns(p_outcomes, p_write_ahead) c;
  END IF;
  v_no := coalesce(jsonb_array_length(p_outcomes -> 'recipientId'), 0);
  v_n := coalesce(jsonb_array_length(p_write_ahead -> 'items' -> 'recipientId'), 0);
  -- ---- a single send: at most one outcome and one item ----
  -- The same rules as the group's path below, as scalar statements by key: measured, a set-based
  -- statement's plan costs more to start than a key lookup costs to run. And every PL/pgSQL
  -- expression is prepared anew in each transaction (a checkpoint is one), so this path keeps them
  -- few: the arithmetic of the reservation is done by the statements that read what it needs.
  IF v_no <= 1 AND v_n <= 1 THEN
    DECLARE
      -- Its columns (checkpoint-codec.ts): entry 0 of each; columns without entries are none.
      s jsonb := CASE WHEN v_no = 1 THEN p_outcomes END;
      t jsonb := CASE WHEN v_n = 1 THEN p_write_ahead -> 'items' END;
      v_account text := p_write_ahead ->> 'accountId';
      s_status text; s_applied boolean; s_was text; s_campaign text; s_batch integer; s_acc text;
      s_failures integer;                  -- the outcome's account's run of failures after it
      o_acc text; o_next bigint;           -- that account (found), and its next slot after the outcome
      c_failures integer; c_next bigint;   -- the same, read with the write-ahead's account
      t_id bigint; t_campaign text; t_batch integer; t_status text; t_attempts integer; t_expires bigint; t_kind smallint;
      v_found boolean; v_usable boolean; v_next bigint;
      v_hour_key text; v_this_hour integer; v_day_key text; v_today integer;
      v_reason text; v_retry bigint; v_granted boolean; v_at bigint; v_span bigint;
    BEGIN
      IF s IS NOT NULL THEN
        s_status := s -> 'status' ->> 0;
        IF s_status IS NULL OR s_status NOT IN ('sent', 'failed', 'skipped', 'unknown', 'pending') THEN
          RAISE EXCEPTION 'checkpoint: an outcome''s status must be sent, failed, skipped, unknown or pending' USING ERRCODE = '22023';
        END IF;
      END IF;
      t_id := :DISPARO_SCHEMA._row_id(t -> 'recipientId' ->> 0);
      -- The rows, locked in key order before anything reads them: a send in flight is written and
      -- deleted only under its row's lock, so each statement after this one sees it as it stands.
      PERFORM 1 FROM :DISPARO_SCHEMA.recipients rc WHERE rc.id IN (:DISPARO_SCHEMA._row_id(s -> 'recipientId' ->> 0), t_id) ORDER BY rc.id FOR UPDATE;
      IF s IS NOT NULL THEN
        -- outcomeApplies: the row open and leased by p_owner, as shown (_shown). One statement writes
        -- the outcome, with its send's text, account and id when it was in flight (the send is deleted:
        -- 000006_in_flight.sql), and returns what the row held before.
        WITH x AS (
          SELECT r.id, w.status, w.account_id, w.text, w.provider_message_id
          FROM :DISPARO_SCHEMA.recipients r CROSS JOIN LATERAL :DISPARO_SCHEMA._shown(r) w
          WHERE r.id = :DISPARO_SCHEMA._row_id(s -> 'recipientId' ->> 0) AND r.campaign_id = s -> 'campaignId' ->> 0
            AND w.status IN ('pending', 'sending') AND w.lease_owner = p_owner
        ), gone AS (
          DELETE FROM :DISPARO_SCHEMA.in_flight f USING x WHERE f.recipient_id = x.id AND x.status = 'sending'
        )
        UPDATE :DISPARO_SCHEMA.recipients rc SET
          attempts = (s -> 'attempts' ->> 0)::integer,
          updated_at = p_now,
          text = x.text,
          -- Absent or null keeps what the row knows (the write-ahead set the account).
          account_id = CASE WHEN s -> 'accountId' ->> 0 <> '' THEN s -> 'accountId' ->> 0 ELSE x.account_id END,
          provider_message_id = CASE WHEN s -> 'providerMessageId' ->> 0 <> '' THEN s -> 'providerMessageId' ->> 0 ELSE x.provider_message_id END,
          last_error = CASE WHEN (s -> 'hasError' ->> 0)::boolean THEN s -> 'error' ->> 0 ELSE rc.last_error END,
          -- A retry by the same owner follows (often in this very call): keep the row, renewed like a heartbeat.
          lease_owner = CASE WHEN s_status = 'pending' AND coalesce((s -> 'keepLease' ->> 0)::boolean, false) THEN p_owner END,
          lease_expires_at = CASE WHEN s_status = 'pending' AND coalesce((s -> 'keepLease' ->> 0)::boolean, false) THEN p_now + p_lease_ms
                                  WHEN s_status = 'pending' THEN 0 END,
          status = s_status,
          skip_reason = CASE WHEN s_status = 'pending' THEN rc.skip_reason WHEN s_status = 'skipped' THEN s -> 'skipReason' ->> 0 END,
          sent_at = CASE WHEN s_status = 'sent' THEN (s -> 'at' ->> 0)::bigint ELSE rc.sent_at END,
          processed_at = CASE WHEN s_status = 'pending' THEN rc.processed_at ELSE (s -> 'at' ->> 0)::bigint END
        FROM x
        WHERE rc.id = x.id
        RETURNING true, x.status, rc.campaign_id, rc.batch,
          CASE WHEN s -> 'accountId' ->> 0 IS NULL THEN x.account_id ELSE nullif(s -> 'accountId' ->> 0, '') END
        INTO s_applied, s_was, s_campaign, s_batch, s_acc;
        -- The outcome's account, unless it is the write-ahead's (read with it below): locked (both, in
        -- key order, when they differ), failuresAfter, and the next slot to accountNextSendAt, never earlier.
        IF s_acc IS NOT NULL AND (t IS NULL OR v_account IS DISTINCT FROM s_acc) THEN
          IF t IS NOT NULL AND v_account IS NOT NULL THEN
            PERFORM 1 FROM :DISPARO_SCHEMA.accounts ac WHERE ac.id IN (s_acc, v_account) ORDER BY ac.id FOR UPDATE;
          END IF;
          SELECT ac.id, CASE coalesce(s -> 'accountEffect' ->> 0, 'none') WHEN 'success' THEN 0 WHEN 'failure' THEN ac.consecutive_failures + 1 ELSE ac.consecutive_failures END,
              greatest(ac.next_send_at, (s -> 'accountNextSendAt' ->> 0)::bigint)
            INTO o_acc, s_failures, o_next FROM :DISPARO_SCHEMA.accounts ac WHERE ac.id = s_acc FOR UPDATE;
        END IF;
      END IF;

      IF t IS NOT NULL THEN
        -- The account, locked (with the outcome's effects when the outcome moved it: the values the
        -- reservation starts from), and whether it is usable (ACCOUNT_USABILITY_RULES: stopped,
        -- disconnected, or disabled and still cooling down).
        SELECT true, ac.next_send_at, ac.hour_key, ac.sent_this_hour, ac.day_key, ac.sent_today,
            ac.state <> 'stopped' AND ac.connection <> 'close' AND NOT (ac.state = 'disabled' AND coalesce(ac.disabled_until > p_now, false)),
            CASE WHEN ac.id = s_acc THEN CASE coalesce(s -> 'accountEffect' ->> 0, 'none') WHEN 'success' THEN 0 WHEN 'failure' THEN ac.consecutive_failures + 1 ELSE ac.consecutive_failures END END,
            CASE WHEN ac.id = s_acc THEN greatest(ac.next_send_at, (s -> 'accountNextSendAt' ->> 0)::bigint) END
          INTO v_found, v_next, v_hour_key, v_this_hour, v_day_key, v_today, v_usable, c_failures, c_next
          FROM :DISPARO_SCHEMA.accounts ac WHERE ac.id = v_account FOR UPDATE;
        IF v_account = s_acc AND v_found THEN
          o_acc := v_account;
          s_failures := c_failures;
          o_next := c_next;
          v_next := c_next;
        END IF;
        -- The account's sends in flight (000006_in_flight.sql, whoever wrote them ahead), counted by a
        -- statement that starts after the lock is held (its snapshot holds what the last holder
        -- committed), and the refusal, if any: the first check of SLOT_CHECKS that fails for one more
        -- send (a cap counts from 0 under a new key, so it refuses only under the account's key).
        SELECT CASE
              WHEN NOT coalesce(v_usable, false) THEN 'account_unavailable'
              WHEN w.dk IS NOT NULL AND v_day_key = w.dk AND greatest(0, w.dl - v_today) = 0 THEN 'daily_cap'
              WHEN w.hk IS NOT NULL AND v_hour_key = w.hk AND greatest(0, w.hl - v_this_hour) = 0 THEN 'hourly_cap'
              WHEN greatest(0, w.max - f.n) = 0 THEN 'in_flight'
              WHEN v_next > p_now + w.ahead THEN 'pacing'
            END,
            CASE
              WHEN NOT coalesce(v_usable, false) THEN p_now
              WHEN w.dk IS NOT NULL AND v_day_key = w.dk AND greatest(0, w.dl - v_today) = 0 THEN w.dx
              WHEN w.hk IS NOT NULL AND v_hour_key = w.hk AND greatest(0, w.hl - v_this_hour) = 0 THEN w.hx
              WHEN greatest(0, w.max - f.n) = 0 THEN p_now
              WHEN v_next > p_now + w.ahead THEN v_next - w.ahead
            END
          INTO v_reason, v_retry
          FROM (SELECT count(*)::integer AS n FROM (SELECT 1 FROM :DISPARO_SCHEMA.in_flight f WHERE f.account_id = v_account
                                                    LIMIT greatest(coalesce((p_write_ahead ->> 'maxInFlight')::integer, 1), 0)) s) f,
            (SELECT coalesce((p_write_ahead ->> 'maxInFlight')::integer, 1) AS max, coalesce((p_write_ahead ->> 'aheadMs')::bigint, 0) AS ahead,
                p_write_ahead -> 'daily' ->> 'key' AS dk, (p_write_ahead -> 'daily' ->> 'limit')::integer AS dl, (p_write_ahead -> 'daily' ->> 'endsAt')::bigint AS dx,
                p_write_ahead -> 'hourly' ->> 'key' AS hk, (p_write_ahead -> 'hourly' ->> 'limit')::integer AS hl, (p_write_ahead -> 'hourly' ->> 'endsAt')::bigint AS hx) w;
        IF v_reason IS NULL THEN
          -- Granted, when the row is leased to us and pending: written ahead at once, as a send in flight.
          INSERT INTO :DISPARO_SCHEMA.in_flight (recipient_id, campaign_id, batch, account_id, owner, expires_at, attempt, text, provider_message_id, started_at)
            SELECT rc.id, rc.campaign_id, rc.batch, v_account, p_owner, p_now + p_lease_ms, (t -> 'attempt' ->> 0)::integer, t -> 'text' ->> 0,
              nullif(t -> 'providerMessageId' ->> 0, ''), p_now
            FROM :DISPARO_SCHEMA.recipients rc CROSS JOIN LATERAL :DISPARO_SCHEMA._shown(rc) w
            WHERE rc.id = t_id AND rc.campaign_id = t -> 'campaignId' ->> 0 AND w.status = 'pending' AND w.lease_owner = p_owner
          RETURNING campaign_id, batch INTO t_campaign, t_batch;
        END IF;
        IF t_batch IS NULL THEN
          -- Otherwise the item against its row: a repeat of our live write-ahead of this very attempt
          -- (granted again, without a slot), lost (anyone else's, gone, or past this attempt), or
          -- leased and refused.
          SELECT w.status, w.attempts, w.lease_expires_at INTO t_status, t_attempts, t_expires
            FROM :DISPARO_SCHEMA.recipients rc CROSS JOIN LATERAL :DISPARO_SCHEMA._shown(rc) w
            WHERE rc.id = t_id AND rc.campaign_id = t -> 'campaignId' ->> 0 AND w.status IN ('pending', 'sending') AND w.lease_owner = p_owner;
          t_kind := CASE WHEN t_status = 'pending' THEN 1
                         WHEN t_status = 'sending' AND t_attempts = (t -> 'attempt' ->> 0)::integer AND t_expires > p_now THEN 2
                         ELSE 0 END;
          IF t_kind = 2 AND v_found THEN
            v_granted := true; v_at := p_now;
          ELSE
            -- (Leased and pending, yet not written above: refused. The row is locked, so it cannot have
            -- become pending since.)
            v_granted := false;
            v_at := CASE WHEN t_kind = 0 OR v_reason IS NULL THEN p_now ELSE v_retry END;
            v_reason := CASE WHEN t_kind = 0 OR v_reason IS NULL THEN 'lease_lost' ELSE v_reason END;
          END IF;
        END IF;
        IF t_batch IS NOT NULL THEN
          -- The slot: from max(now, next slot), after the item's lead; the next slot after its gap.
          v_granted := true;
          v_at := greatest(p_now, v_next) + coalesce((t -> 'leadMs' ->> 0)::bigint, 0);
          v_next := v_at + coalesce((t -> 'gapMs' ->> 0)::bigint, 0);
          SELECT coalesce(w.hk, v_hour_key), CASE WHEN w.hk IS NULL THEN v_this_hour WHEN v_hour_key = w.hk THEN v_this_hour + 1 ELSE 1 END,
              coalesce(w.dk, v_day_key), CASE WHEN w.dk IS NULL THEN v_today WHEN v_day_key = w.dk THEN v_today + 1 ELSE 1 END
            INTO v_hour_key, v_this_hour, v_day_key, v_today
            FROM (SELECT p_write_ahead -> 'hourly' ->> 'key' AS hk, p_write_ahead -> 'daily' ->> 'key' AS dk) w;
        END IF;
      END IF;

      -- The accounts moved, each once: the outcome's (its run of failures and next slot) and the
      -- write-ahead's after a grant (its next slot and caps); one row when they are the same.
      IF o_acc IS NOT NULL THEN
        UPDATE :DISPARO_SCHEMA.accounts ac SET consecutive_failures = s_failures,
            next_send_at = CASE WHEN t_batch IS NOT NULL AND o_acc = v_account THEN v_next ELSE o_next END,
            hour_key = CASE WHEN t_batch IS NOT NULL AND o_acc = v_account THEN v_hour_key ELSE ac.hour_key END,
            sent_this_hour = CASE WHEN t_batch IS NOT NULL AND o_acc = v_account THEN v_this_hour ELSE ac.sent_this_hour END,
            day_key = CASE WHEN t_batch IS NOT NULL AND o_acc = v_account THEN v_day_key ELSE ac.day_key END,
            sent_today = CASE WHEN t_batch IS NOT NULL AND o_acc = v_account THEN v_today ELSE ac.sent_today END,
            updated_at = p_now
          WHERE ac.id = o_acc AND (ac.consecutive_failures <> s_failures OR ac.next_send_at <> o_next OR (t_batch IS NOT NULL AND o_acc = v_account));
      END IF;
      IF t_batch IS NOT NULL AND o_acc IS DISTINCT FROM v_account THEN
        UPDATE :DISPARO_SCHEMA.accounts ac SET next_send_at = v_next, hour_key = v_hour_key, sent_this_hour = v_this_hour,
            day_key = v_day_key, sent_today = v_today, updated_at = p_now
          WHERE ac.id = v_account;
      END IF;

      IF s_applied OR t_batch IS NOT NULL THEN
        PERFORM :DISPARO_SCHEMA._count_moves(
          CASE WHEN s_applied THEN ARRAY[CAST(ROW(s_campaign, s_batch, s_was, s_status) AS :DISPARO_SCHEMA.move)] ELSE '{}' END
          || CASE WHEN t_batch IS NOT NULL THEN ARRAY[CAST(ROW(t_campaign, t_batch, 'pending', 'sending') AS :DISPARO_SCHEMA.move)] ELSE '{}' END);
      END IF;
      RETURN jsonb_build_object(
        'applied', CASE WHEN s IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(coalesce(s_applied, false)) END,
        'failures', CASE WHEN s IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(s_failures) END,
        'granted', CASE WHEN t IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(v_granted) END,
        'at', CASE WHEN t IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(v_at) END,
        'reason', CASE WHEN t IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(CASE WHEN NOT v_granted THEN v_reason END) END);
    END;
  END IF;

  -- ---- a group ----
  DECLARE
    v_moves :DISPARO_SCHEMA.move[] := '{}';
    v_round :DISPARO_SCHEMA.move[];
    v_bad boolean;
    -- a group's outcomes, parsed (position i = array index)
    o_id bigint[]; o_campaign text[]; o_status text[]; o_keep boolean[]; o_attempts integer[]; o_at bigint[];
    o_account text[]; o_pid text[]; o_error text[]; o_has_error boolean[]; o_skip text[]; o_effect text[]; o_next bigint[];
    v_twice boolean := false;      -- a recipient has two outcomes: apply them one at a time
    v_one integer;
    a_i integer[] := '{}'; a_acc text[] := '{}'; a_effect text[] := '{}'; a_next bigint[] := '{}';   -- applied, in order
    r_i integer[]; r_acc text[]; r_effect text[]; r_next bigint[];
    -- per outcome: applied, and the account's run of failures after it
    v_applied boolean[];
    v_failures integer[];
    -- the accounts the outcomes moved: final run of failures and next slot
    u_acc text[] := '{}'; u_cf integer[] := '{}'; u_next bigint[] := '{}';
    v_locked boolean := false;     -- the write-ahead's account is locked
    v_pos integer;
    -- write-ahead
    v_account text := p_write_ahead ->> 'accountId';
    w_id bigint[]; w_campaign text[]; w_batch integer[]; w_text text[]; w_attempt integer[]; w_pid text[]; w_gap bigint[]; w_lead bigint[];
    v_max integer := coalesce((p_write_ahead ->> 'maxInFlight')::integer, 1);
    v_ahead bigint := coalesce((p_write_ahead ->> 'aheadMs')::bigint, 0);
    v_hk text := p_write_ahead -> 'hourly' ->> 'key';
    v_hl integer := (p_write_ahead -> 'hourly' ->> 'limit')::integer;
    v_hx bigint := (p_write_ahead -> 'hourly' ->> 'endsAt')::bigint;
    v_dk text := p_write_ahead -> 'daily' ->> 'key';
    v_dl integer := (p_write_ahead -> 'daily' ->> 'limit')::integer;
    v_dx bigint := (p_write_ahead -> 'daily' ->> 'endsAt')::bigint;
    v_found boolean;
    v_usable boolean;
    v_state text; v_connection text; v_disabled_until bigint; v_cf integer; v_next bigint;
    v_hour_key text; v_this_hour integer; v_day_key text; v_today integer; v_in_flight integer;
    v_h0 integer; v_d0 integer;    -- sends counted in the request's hour and day so far
    v_k bigint;                    -- how many leased items can be granted (see above)
    v_reason text;                 -- the refusal of the leased items past v_k
    v_retry bigint;
    v_base bigint;                 -- the first slot's start
    v_taken integer := 0;
    v_span bigint := 0;            -- leads and gaps of the granted items
    v_fresh boolean[];
    g_granted boolean[]; g_at bigint[]; g_reason text[];
  BEGIN
    -- Locks: the rows this call may change, in key order, then the accounts, in key order. Every
    -- function locks recipients before accounts, so two calls never wait on each other in a cycle.

    -- ---- outcomes ----
    -- The columns as arrays, each in one step (jsonb_to_record); an absent `keepLease`, `accountEffect`,
    -- `gapMs` or `leadMs` is its default.
    IF v_no > 0 THEN
      SELECT ARRAY(SELECT :DISPARO_SCHEMA._row_id(u.v) FROM unnest(c."recipientId") WITH ORDINALITY AS u(v, i) ORDER BY u.i),
          c."campaignId", c.status, array_replace(c."keepLease", NULL, false), c.attempts, c.at, c."accountId", c."providerMessageId",
          c.error, c."hasError", c."skipReason", array_replace(c."accountEffect", NULL, 'none'), c."accountNextSendAt"
        INTO o_id, o_campaign, o_status, o_keep, o_attempts, o_at, o_account, o_pid, o_error, o_has_error, o_skip, o_effect, o_next
        FROM jsonb_to_record(p_outcomes) AS c("recipientId" text[], "campaignId" text[], status text[], "keepLease" boolean[], attempts integer[],
          at bigint[], "accountId" text[], "providerMessageId" text[], error text[], "hasError" boolean[], "skipReason" text[],
          "accountEffect" text[], "accountNextSendAt" bigint[]);
      IF NOT coalesce(v_no = ALL (ARRAY[cardinality(o_campaign), cardinality(o_status), cardinality(o_keep), cardinality(o_attempts), cardinality(o_at),
                            cardinality(o_account), cardinality(o_pid), cardinality(o_error), cardinality(o_has_error), cardinality(o_skip),
                            cardinality(o_effect), cardinality(o_next)]), false) THEN
        RAISE EXCEPTION 'checkpoint: every column of the outcomes must hold one entry per outcome (%)', v_no USING ERRCODE = '22023';
      END IF;
      SELECT coalesce(bool_or(x.status IS NULL OR x.status NOT IN ('sent', 'failed', 'skipped', 'unknown', 'pending')), false),
          count(DISTINCT x.id) < count(x.id)
        INTO v_bad, v_twice FROM unnest(o_status, o_id) AS x(status, id);
      IF v_bad THEN
        RAISE EXCEPTION 'checkpoint: an outcome''s status must be sent, failed, skipped, unknown or pending' USING ERRCODE = '22023';
      END IF;
    END IF;

    IF v_n > 0 THEN
      SELECT ARRAY(SELECT :DISPARO_SCHEMA._row_id(u.v) FROM unnest(c."recipientId") WITH ORDINALITY AS u(v, i) ORDER BY u.i),
          c."campaignId", c.text, c.attempt, c."providerMessageId", array_replace(c."gapMs", NULL, 0::bigint), array_replace(c."leadMs", NULL, 0::bigint)
        INTO w_id, w_campaign, w_text, w_attempt, w_pid, w_gap, w_lead
        FROM jsonb_to_record(p_write_ahead -> 'items') AS c("recipientId" text[], "campaignId" text[], text text[], attempt integer[],
          "providerMessageId" text[], "gapMs" bigint[], "leadMs" bigint[]);
      IF NOT coalesce(v_n = ALL (ARRAY[cardinality(w_campaign), cardinality(w_text), cardinality(w_attempt), cardinality(w_pid), cardinality(w_gap), cardinality(w_lead)]), false) THEN
        RAISE EXCEPTION 'checkpoint: every column of the write-ahead''s items must hold one entry per item (%)', v_n USING ERRCODE = '22023';
      END IF;
    END IF;
    -- Every row named, locked in key order: a send in flight is written and deleted only under its
    -- row's lock (000006_in_flight.sql), so each statement after this one sees the sends of these rows
    -- as they stand. (No filter on what the row holds: a send in flight may sit on a row whose own
    -- lease fields say nothing of it, as the upgrade to version 6 leaves them.)
    -- (Rows are read by key through LATERAL subqueries that cannot be flattened: planned as a join, or
    -- as `id = ANY (...)`, another index or a hash join can look cheaper than a hundred key lookups;
    -- the lease index found every row of the owner's claim, 500, to lock one.)
    PERFORM 1 FROM (SELECT DISTINCT k.id FROM unnest(coalesce(o_id, '{}') || coalesce(w_id, '{}')) k(id) ORDER BY k.id) k
      CROSS JOIN LATERAL (SELECT 1 FROM :DISPARO_SCHEMA.recipients rc
                          WHERE rc.id = k.id FOR UPDATE) x;

    -- Outcomes in order: all at once, or one at a time when a recipient has two.
    v_one := CASE WHEN v_twice THEN 1 END;
    WHILE v_no > 0 AND (v_one IS NULL OR v_one <= v_no) LOOP
      WITH o AS MATERIALIZED (
        SELECT o.*, x.status AS was, x.batch, x.account_id AS row_account, x.text AS row_text, x.provider_message_id AS row_pid
        FROM unnest(o_id, o_campaign, o_status, o_keep, o_attempts, o_at, o_account, o_pid, o_error, o_has_error, o_skip, o_effect, o_next)
          WITH ORDINALITY AS o(id, campaign_id, status, keep, attempts, at, account_id, pid, error, has_error, skip, effect, next, i)
        JOIN LATERAL (SELECT w.status, rc.batch, w.account_id, w.text, w.provider_message_id
                      FROM :DISPARO_SCHEMA.recipients rc CROSS JOIN LATERAL :DISPARO_SCHEMA._shown(rc) w
                      WHERE rc.id = o.id AND rc.campaign_id = o.campaign_id AND w.status IN ('pending', 'sending')
                        AND w.lease_owner = p_owner OFFSET 0) x ON true
        WHERE v_one IS NULL OR o.i = v_one
      ), gone AS (
        -- The sends these outcomes end: deleted; each row is written once, below, with its send's text.
        DELETE FROM :DISPARO_SCHEMA.in_flight f USING o WHERE f.recipient_id = o.id AND o.was = 'sending'
      ), u AS (
        UPDATE :DISPARO_SCHEMA.recipients rc SET
          attempts = o.attempts,
          updated_at = p_now,
          text = o.row_text,
          account_id = CASE WHEN o.account_id <> '' THEN o.account_id ELSE o.row_account END,
          provider_message_id = CASE WHEN o.pid <> '' THEN o.pid ELSE o.row_pid END,
          last_error = CASE WHEN o.has_error THEN o.error ELSE rc.last_error END,
          lease_owner = CASE WHEN o.status = 'pending' AND o.keep THEN p_owner END,
          lease_expires_at = CASE WHEN o.status = 'pending' AND o.keep THEN p_now + p_lease_ms WHEN o.status = 'pending' THEN 0 END,
          status = o.status,
          skip_reason = CASE WHEN o.status = 'pending' THEN rc.skip_reason WHEN o.status = 'skipped' THEN o.skip END,
          sent_at = CASE WHEN o.status = 'sent' THEN o.at ELSE rc.sent_at END,
          processed_at = CASE WHEN o.status = 'pending' THEN rc.processed_at ELSE o.at END
        FROM o
        WHERE rc.id = o.id
        RETURNING o.i, CASE WHEN o.account_id IS NULL THEN o.row_account ELSE nullif(o.account_id, '') END AS acc, o.effect, o.next,
          CAST(ROW(o.campaign_id, o.batch, o.was, o.status) AS :DISPARO_SCHEMA.move) AS m
      )
      SELECT array_agg(u.i::integer ORDER BY u.i), array_agg(u.acc ORDER BY u.i), array_agg(u.effect ORDER BY u.i), array_agg(u.next ORDER BY u.i), array_agg(u.m)
        INTO r_i, r_acc, r_effect, r_next, v_round FROM u;
      IF r_i IS NOT NULL THEN
        a_i := a_i || r_i; a_acc := a_acc || r_acc; a_effect := a_effect || r_effect; a_next := a_next || r_next;
        v_moves := v_moves || v_round;
      END IF;
      EXIT WHEN v_one IS NULL;
      v_one := v_one + 1;
    END LOOP;

    -- The accounts, locked in key order, and the outcomes' effects folded per account: failuresAfter
    -- as a running fold (`run` counts the account's successes so far: each starts a new run of
    -- failures from 0), and the next slot to the latest accountNextSendAt, never earlier.
    IF cardinality(a_i) > 0 THEN
      WITH a AS MATERIALIZED (
        SELECT ac.id, ac.consecutive_failures, ac.next_send_at FROM :DISPARO_SCHEMA.accounts ac
        WHERE ac.id = ANY (array_append(a_acc, v_account)) ORDER BY ac.id FOR UPDATE
      ), e AS (
        SELECT r.i, r.acc, r.effect, r.next, a.consecutive_failures AS cf0, a.next_send_at AS next0,
          count(*) FILTER (WHERE r.effect = 'success') OVER (PARTITION BY r.acc ORDER BY r.i) AS run
        FROM unnest(a_i, a_acc, a_effect, a_next) AS r(i, acc, effect, next) LEFT JOIN a ON a.id = r.acc
      ), f AS (
        SELECT e.*,
          CASE WHEN e.cf0 IS NOT NULL THEN
            (CASE WHEN e.run = 0 THEN e.cf0 ELSE 0 END) + count(*) FILTER (WHERE e.effect = 'failure') OVER (PARTITION BY e.acc, e.run ORDER BY e.i)
          END::integer AS cf,
          greatest(e.next0, max(e.next) OVER (PARTITION BY e.acc)) AS next_final,
          row_number() OVER (PARTITION BY e.acc ORDER BY e.i DESC) AS last
        FROM e
      )
      SELECT (SELECT array_agg(f.i IS NOT NULL ORDER BY p.i) FROM generate_series(1, v_no) p(i) LEFT JOIN f ON f.i = p.i),
          (SELECT array_agg(f.cf ORDER BY p.i) FROM generate_series(1, v_no) p(i) LEFT JOIN f ON f.i = p.i),
          coalesce(array_agg(f.acc ORDER BY f.acc) FILTER (WHERE f.last = 1 AND f.cf0 IS NOT NULL), '{}'),
          coalesce(array_agg(f.cf ORDER BY f.acc) FILTER (WHERE f.last = 1 AND f.cf0 IS NOT NULL), '{}'),
          coalesce(array_agg(f.next_final ORDER BY f.acc) FILTER (WHERE f.last = 1 AND f.cf0 IS NOT NULL), '{}')
        INTO v_applied, v_failures, u_acc, u_cf, u_next
        FROM f;
      v_locked := true;
    ELSIF v_no > 0 THEN
      v_applied := array_fill(false, ARRAY[v_no]);
      v_failures := array_fill(NULL::integer, ARRAY[v_no]);
    END IF;

    -- ---- the write-ahead ----
    IF v_n > 0 THEN
      -- The account (locked above when an outcome moved it, here otherwise) and its sends in flight:
      -- every send of the account in `in_flight`, whoever wrote it ahead, counted under its lock by a
      -- statement that starts after the lock is held (its snapshot holds what the last holder committed).
      IF NOT v_locked THEN
        PERFORM 1 FROM :DISPARO_SCHEMA.accounts ac WHERE ac.id = v_account FOR UPDATE;
      END IF;
      -- (The count stops at the window: all it decides is whether the window is full. The LIMIT also
      -- makes it an index scan, which marks the dead entries of ended sends as it passes them; a bitmap
      -- scan of this churning table walked all of them on every call: 1.2 ms a call after 150 calls.)
      SELECT true, ac.state, ac.connection, ac.disabled_until, ac.consecutive_failures, ac.next_send_at, ac.hour_key, ac.sent_this_hour,
          ac.day_key, ac.sent_today,
          (SELECT count(*)::integer FROM (SELECT 1 FROM :DISPARO_SCHEMA.in_flight f WHERE f.account_id = v_account LIMIT greatest(v_max, 0)) s)
        INTO v_found, v_state, v_connection, v_disabled_until, v_cf, v_next, v_hour_key, v_this_hour, v_day_key, v_today, v_in_flight
        FROM :DISPARO_SCHEMA.accounts ac WHERE ac.id = v_account;
      v_found := coalesce(v_found, false);
      v_pos := array_position(u_acc, v_account);
      IF v_pos IS NOT NULL THEN
        v_cf := u_cf[v_pos];
        v_next := u_next[v_pos];
      END IF;
      -- ACCOUNT_USABILITY_RULES: stopped, disconnected, or disabled and still cooling down.
      v_usable := v_found AND v_state <> 'stopped' AND v_connection <> 'close' AND NOT (v_state = 'disabled' AND coalesce(v_disabled_until > p_now, false));

      -- v_k: the first number of grants j at which a check fails, and that check (SLOT_CHECKS order).
      -- A cap counts from 0 under a new key, and is checked at j = 0 only under the account's key.
      v_d0 := CASE WHEN v_day_key = v_dk THEN v_today ELSE 0 END;
      v_h0 := CASE WHEN v_hour_key = v_hk THEN v_this_hour ELSE 0 END;
      IF v_dk IS NOT NULL THEN
        v_k := CASE WHEN v_day_key = v_dk THEN greatest(0, v_dl - v_d0) ELSE greatest(1, v_dl) END;
        v_reason := 'daily_cap'; v_retry := v_dx;
      END IF;
      IF v_hk IS NOT NULL AND (v_k IS NULL OR (CASE WHEN v_hour_key = v_hk THEN greatest(0, v_hl - v_h0) ELSE greatest(1, v_hl) END) < v_k) THEN
        v_k := CASE WHEN v_hour_key = v_hk THEN greatest(0, v_hl - v_h0) ELSE greatest(1, v_hl) END;
        v_reason := 'hourly_cap'; v_retry := v_hx;
      END IF;
      IF v_k IS NULL OR greatest(0, v_max - v_in_flight) < v_k THEN
        v_k := greatest(0, v_max - v_in_flight);
        v_reason := 'in_flight'; v_retry := p_now;
      END IF;
      IF v_k > 0 AND v_next > p_now + v_ahead THEN
        v_k := 0;
        v_reason := 'pacing'; v_retry := v_next - v_ahead;
      END IF;
      v_base := greatest(p_now, v_next);

      -- Each item against its row (kind: 1 leased, 2 repeat, 0 lost, as above); `e` counts the leased
      -- items before it, `before` their leads and gaps.
      WITH w AS (
        SELECT w.i, w.lead, w.gap, k.kind, x.batch,
          count(*) FILTER (WHERE k.kind = 1) OVER (ORDER BY w.i ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS e,
          coalesce(sum(w.lead + w.gap) FILTER (WHERE k.kind = 1) OVER (ORDER BY w.i ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
        FROM unnest(w_id, w_campaign, w_attempt, w_gap, w_lead) WITH ORDINALITY AS w(id, campaign_id, attempt, gap, lead, i)
        LEFT JOIN LATERAL (SELECT rc.campaign_id, rc.batch, h.lease_owner, h.status, h.attempts, h.lease_expires_at
                             FROM :DISPARO_SCHEMA.recipients rc CROSS JOIN LATERAL :DISPARO_SCHEMA._shown(rc) h WHERE rc.id = w.id OFFSET 0) x ON true
        CROSS JOIN LATERAL (SELECT CASE
                WHEN x.campaign_id IS DISTINCT FROM w.campaign_id OR x.lease_owner IS DISTINCT FROM p_owner THEN 0
                WHEN x.status = 'pending' THEN 1
                WHEN x.status = 'sending' AND x.attempts = w.attempt AND x.lease_expires_at > p_now THEN 2
                ELSE 0 END AS kind) k
      ), g AS (
        SELECT w.i, w.lead, w.gap, w.before, w.batch,
          CASE WHEN w.kind = 2 AND v_found THEN 'repeat'
               WHEN w.kind = 0 THEN 'lease_lost'
               WHEN NOT v_usable THEN 'account_unavailable'
               WHEN w.e >= v_k THEN v_reason
          END AS refusal
        FROM w
      )
      SELECT array_agg(g.refusal IS NULL OR g.refusal = 'repeat' ORDER BY g.i),
          array_agg(CASE WHEN g.refusal IS NULL THEN v_base + g.before + g.lead
                         WHEN g.refusal IN ('daily_cap', 'hourly_cap', 'pacing') THEN v_retry
                         ELSE p_now END ORDER BY g.i),
          array_agg(CASE WHEN g.refusal <> 'repeat' THEN g.refusal END ORDER BY g.i),
          array_agg(g.refusal IS NULL ORDER BY g.i),
          array_agg(g.batch ORDER BY g.i),
          count(*) FILTER (WHERE g.refusal IS NULL),
          coalesce(sum(g.lead + g.gap) FILTER (WHERE g.refusal IS NULL), 0)
        INTO g_granted, g_at, g_reason, v_fresh, w_batch, v_taken, v_span
        FROM g;
      IF v_taken > 0 THEN
        -- Each granted item written ahead: a send in flight (000006_in_flight.sql). Its row is not written.
        WITH u AS (
          INSERT INTO :DISPARO_SCHEMA.in_flight (recipient_id, campaign_id, batch, account_id, owner, expires_at, attempt, text, provider_message_id, started_at)
          -- (An id given twice is written once: DISTINCT ON. Measured, ON CONFLICT DO NOTHING instead cost
          -- 0.5 ms a group of 200.)
          SELECT DISTINCT ON (g.id) g.id, g.campaign_id, g.batch, v_account, p_owner, p_now + p_lease_ms, g.attempt, g.text, nullif(g.pid, ''), p_now
          FROM unnest(w_id, w_campaign, w_batch, w_text, w_attempt, w_pid, v_fresh) WITH ORDINALITY AS g(id, campaign_id, batch, text, attempt, pid, fresh, i)
          WHERE g.fresh
          ORDER BY g.id, g.i
          RETURNING CAST(ROW(campaign_id, batch, 'pending', 'sending') AS :DISPARO_SCHEMA.move) AS m
        )
        SELECT v_moves || coalesce(array_agg(u.m), '{}') INTO v_moves FROM u;
      END IF;

      IF v_taken > 0 THEN
        -- The reservation joins the outcomes' effects: the account row is written once.
        v_next := v_base + v_span;
        IF v_hk IS NOT NULL THEN v_hour_key := v_hk; v_this_hour := v_h0 + v_taken; END IF;
        IF v_dk IS NOT NULL THEN v_day_key := v_dk; v_today := v_d0 + v_taken; END IF;
        IF v_pos IS NULL THEN
          u_acc := u_acc || v_account; u_cf := u_cf || v_cf; u_next := u_next || v_next;
        ELSE
          u_next[v_pos] := v_next;
        END IF;
      END IF;
    END IF;

    -- Each account moved, once: its run of failures and next slot (and, for the write-ahead's account
    -- after a grant, its caps).
    IF cardinality(u_acc) > 0 THEN
      UPDATE :DISPARO_SCHEMA.accounts ac SET consecutive_failures = u.cf, next_send_at = u.next,
          hour_key = CASE WHEN u.acc = v_account AND v_taken > 0 THEN v_hour_key ELSE ac.hour_key END,
          sent_this_hour = CASE WHEN u.acc = v_account AND v_taken > 0 THEN v_this_hour ELSE ac.sent_this_hour END,
          day_key = CASE WHEN u.acc = v_account AND v_taken > 0 THEN v_day_key ELSE ac.day_key END,
          sent_today = CASE WHEN u.acc = v_account AND v_taken > 0 THEN v_today ELSE ac.sent_today END,
          updated_at = p_now
        FROM unnest(u_acc, u_cf, u_next) AS u(acc, cf, next)
        WHERE ac.id = u.acc AND (ac.consecutive_failures <> u.cf OR ac.next_send_at <> u.next OR (u.acc = v_account AND v_taken > 0));
    END IF;

    PERFORM :DISPARO_SCHEMA._count_moves(v_moves);
    RETURN jsonb_build_object('applied', coalesce(v_applied, '{}'), 'failures', coalesce(v_failures, '{}'),
      'granted', coalesce(g_granted, '{}'), 'at', coalesce(g_at, '{}'), 'reason', coalesce(g_reason, '{}'));
  END;
END
$$;
