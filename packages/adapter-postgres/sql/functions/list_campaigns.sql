-- StateStore.listCampaigns: a JSON array of campaigns, oldest first (created_at, then id), with one of
-- the statuses in `p_statuses` (a JSON array; null for all), at most `p_limit` (null for all).
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.list_campaigns(p_statuses jsonb DEFAULT NULL, p_limit integer DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT coalesce(jsonb_agg(:DISPARO_SCHEMA._campaign_json(c) ORDER BY c.created_at, c.id), '[]')
  FROM (
    SELECT c.* FROM :DISPARO_SCHEMA.campaigns c
    WHERE p_statuses IS NULL OR c.status IN (SELECT jsonb_array_elements_text(p_statuses))
    ORDER BY c.created_at, c.id
    LIMIT CASE WHEN p_limit < 0 THEN 0 ELSE p_limit END
  ) c
$$;
