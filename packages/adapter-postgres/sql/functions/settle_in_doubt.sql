-- StateStore.settleInDoubt: `p_settlements` is an array of `InDoubtSettlement`
-- ({"recipientId", "status": sent|pending|unknown, "providerMessageId", "sentAt"}). Each applies only
-- while its row is still `sending` (in flight, 000006_in_flight.sql) with an expired lease, so of two
-- recovering workers exactly one settles it (the other re-reads the row after the first commits and
-- finds it settled); the first settlement of a row wins. The row is written once, with its send's
-- text, attempt and account, and the send deleted, so it leaves its account's in-flight window. The
-- account is paced from now (core's nextSendAfterSettling: max(next_send_at, now +
-- pacing.intervalMs.min)), since the provider may have taken the message as late as the dead worker's
-- last moment. Returns how many applied.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.settle_in_doubt(p_settlements jsonb, p_now bigint)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_ids bigint[];
  v_applied integer;
  v_accounts text[];
  v_moves :DISPARO_SCHEMA.move[];
BEGIN
  SELECT array_agg(DISTINCT :DISPARO_SCHEMA._row_id(e ->> 'recipientId')) INTO v_ids
    FROM jsonb_array_elements(coalesce(p_settlements, '[]')) e;
  -- Recipients first, then accounts, each in key order (as every function locks them). A send in
  -- flight (000006_in_flight.sql) changes only under its row's lock, so the statement after this one
  -- sees each send as it stands.
  PERFORM 1 FROM :DISPARO_SCHEMA.recipients r WHERE r.id = ANY (v_ids) ORDER BY r.id FOR UPDATE;
  WITH s AS (
    SELECT DISTINCT ON (x.id) x.id, x.status, x.pid, x.sent_at
    FROM (
      SELECT :DISPARO_SCHEMA._row_id(e ->> 'recipientId') AS id, e ->> 'status' AS status, e ->> 'providerMessageId' AS pid,
        (e ->> 'sentAt')::bigint AS sent_at, i
      FROM jsonb_array_elements(p_settlements) WITH ORDINALITY AS x(e, i)
    ) x
    WHERE x.status IN ('sent', 'pending', 'unknown')
    ORDER BY x.id, x.i
  ), old AS (
    -- The sends settled: in flight, their lease expired; deleted here, their row written once below.
    DELETE FROM :DISPARO_SCHEMA.in_flight f USING s
    WHERE f.recipient_id = s.id AND (f.expires_at IS NULL OR f.expires_at <= p_now)
    RETURNING f.*
  ), u AS (
    UPDATE :DISPARO_SCHEMA.recipients r SET
      status = s.status,
      text = old.text,
      attempts = old.attempt,
      account_id = old.account_id,
      lease_owner = NULL,
      -- Back to pending: the "not leased" mark, so no range over the row takes it (000005_range_leases.sql).
      lease_expires_at = CASE WHEN s.status = 'pending' THEN 0 END,
      updated_at = p_now,
      provider_message_id = CASE WHEN s.status = 'sent' AND s.pid <> '' THEN s.pid ELSE coalesce(old.provider_message_id, r.provider_message_id) END,
      sent_at = CASE WHEN s.status = 'sent' THEN coalesce(s.sent_at, p_now) ELSE r.sent_at END,
      processed_at = CASE WHEN s.status = 'pending' THEN r.processed_at ELSE p_now END
    FROM s JOIN old ON old.recipient_id = s.id
    WHERE r.id = s.id
    RETURNING old.account_id, CAST(ROW(old.campaign_id, old.batch, 'sending', s.status) AS :DISPARO_SCHEMA.move) AS m
  )
  SELECT count(*), array_agg(DISTINCT u.account_id) FILTER (WHERE u.account_id IS NOT NULL AND u.account_id <> ''), array_agg(u.m)
    INTO v_applied, v_accounts, v_moves FROM u;

  IF v_accounts IS NOT NULL THEN
    WITH l AS (
      SELECT a.id FROM :DISPARO_SCHEMA.accounts a WHERE a.id = ANY (v_accounts) ORDER BY a.id FOR UPDATE
    )
    UPDATE :DISPARO_SCHEMA.accounts a SET
      next_send_at = greatest(a.next_send_at, p_now + coalesce((a.pacing -> 'intervalMs' ->> 'min')::bigint, 0)),
      updated_at = p_now
    FROM l WHERE a.id = l.id;
  END IF;
  PERFORM :DISPARO_SCHEMA._count_moves(v_moves);
  RETURN v_applied;
END
$$;
