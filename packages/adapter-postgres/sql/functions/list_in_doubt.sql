-- StateStore.listInDoubt: sends that may or may not have happened: sends in flight
-- (000006_in_flight.sql) whose lease expired at or before `p_now`, oldest expiry first, of one
-- campaign or all (`p_campaign_id` null), as their rows show them (_shown).
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.list_in_doubt(p_now bigint, p_limit integer, p_campaign_id text DEFAULT NULL)
RETURNS SETOF :DISPARO_SCHEMA.recipients
LANGUAGE sql STABLE AS $$
  SELECT w.* FROM :DISPARO_SCHEMA.in_flight f
  JOIN :DISPARO_SCHEMA.recipients r ON r.id = f.recipient_id
  CROSS JOIN LATERAL :DISPARO_SCHEMA._shown(r) w
  WHERE (f.expires_at IS NULL OR f.expires_at <= p_now)
    AND (p_campaign_id IS NULL OR f.campaign_id = p_campaign_id)
  ORDER BY f.expires_at NULLS FIRST, r.seq
  LIMIT CASE WHEN p_limit < 0 THEN 0 ELSE p_limit END
$$;
