-- StateStore.getCampaign: the campaign (see _campaign_json), or null.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.get_campaign(p_id text)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT :DISPARO_SCHEMA._campaign_json(c) FROM :DISPARO_SCHEMA.campaigns c WHERE c.id = p_id
$$;
