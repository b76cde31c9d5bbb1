-- StateStore.accountSendTimes: `sent_at` of the account's sends (sent, delivered or read) at or after
-- `p_since`, ascending, at most `p_limit` (a report, not the hot path: no index serves it).
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.account_send_times(p_account_id text, p_since bigint, p_limit integer)
RETURNS TABLE (sent_at bigint)
LANGUAGE sql STABLE AS $$
  SELECT r.sent_at FROM :DISPARO_SCHEMA.recipients r
  WHERE r.account_id = p_account_id AND r.status IN ('sent', 'delivered', 'read') AND r.sent_at >= p_since
  ORDER BY r.sent_at
  LIMIT CASE WHEN p_limit < 0 THEN 0 ELSE p_limit END
$$;
