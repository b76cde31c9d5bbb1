-- StateStore.countProcessedSince: rows of the campaign that reached a terminal status at or after `p_since`.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.count_processed_since(p_campaign_id text, p_since bigint)
RETURNS integer
LANGUAGE sql STABLE AS $$
  SELECT count(*)::integer FROM :DISPARO_SCHEMA.recipients r WHERE r.campaign_id = p_campaign_id AND r.processed_at >= p_since
$$;
