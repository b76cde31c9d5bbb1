-- StateStore.createCampaign. `p_campaign` is a `NewCampaign` record. A campaign id already taken
-- raises unique_violation (23505), which the store reports as a ConflictError.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.create_campaign(p_campaign jsonb)
RETURNS jsonb
LANGUAGE sql AS $$
  INSERT INTO :DISPARO_SCHEMA.campaigns AS c (id, name, templates, media, account_ids, status, settings, scheduled_at,
    metadata, created_at, updated_at)
  VALUES (p_campaign ->> 'id', p_campaign ->> 'name', p_campaign -> 'templates', nullif(p_campaign -> 'media', 'null'),
    p_campaign -> 'accountIds', p_campaign ->> 'status', p_campaign -> 'settings', (p_campaign ->> 'scheduledAt')::bigint,
    coalesce(p_campaign -> 'metadata', '{}'), (p_campaign ->> 'now')::bigint, (p_campaign ->> 'now')::bigint)
  RETURNING :DISPARO_SCHEMA._campaign_json(c)
$$;
