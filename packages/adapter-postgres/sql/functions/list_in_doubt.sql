-- StateStore.listInDoubt: sends that may or may not have happened: `sending` rows whose lease expired
-- at or before `p_now`, oldest expiry first, of one campaign or all (`p_campaign_id` null).
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.list_in_doubt(p_now bigint, p_limit integer, p_campaign_id text DEFAULT NULL)
RETURNS SETOF :DISPARO_SCHEMA.recipients
LANGUAGE sql STABLE AS $$
  SELECT r.* FROM :DISPARO_SCHEMA.recipients r
  WHERE r.status = 'sending' AND (r.lease_expires_at IS NULL OR r.lease_expires_at <= p_now)
    AND (p_campaign_id IS NULL OR r.campaign_id = p_campaign_id)
  ORDER BY r.lease_expires_at NULLS FIRST, r.seq
  LIMIT CASE WHEN p_limit < 0 THEN 0 ELSE p_limit END
$$;
