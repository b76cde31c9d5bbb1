-- StateStore.listRecipients: the campaign's rows with `seq` above `p_after_seq` (keyset paging), with
-- one of the statuses in `p_statuses` (a JSON array; null for all), by seq, at most `p_limit` (null for all).
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.list_recipients(p_campaign_id text, p_statuses jsonb DEFAULT NULL,
  p_after_seq integer DEFAULT NULL, p_limit integer DEFAULT NULL)
RETURNS SETOF :DISPARO_SCHEMA.recipients
LANGUAGE sql STABLE AS $$
  SELECT w.* FROM :DISPARO_SCHEMA.recipients r CROSS JOIN LATERAL :DISPARO_SCHEMA._shown(r) w
  WHERE r.campaign_id = p_campaign_id AND r.seq > greatest(coalesce(p_after_seq, 0), 0)
    AND (p_statuses IS NULL OR w.status = ANY (ARRAY(SELECT jsonb_array_elements_text(p_statuses))))
  ORDER BY r.seq
  LIMIT CASE WHEN p_limit < 0 THEN 0 ELSE p_limit END
$$;
