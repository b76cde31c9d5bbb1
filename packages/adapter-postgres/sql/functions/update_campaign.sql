-- StateStore.updateCampaign: `p_patch` is a `CampaignPatch`; a key absent from it leaves its column
-- as it is. Returns the campaign, or null when there is none.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.update_campaign(p_id text, p_patch jsonb, p_now bigint)
RETURNS jsonb
LANGUAGE sql AS $$
  UPDATE :DISPARO_SCHEMA.campaigns c SET
    name = CASE WHEN p_patch ? 'name' THEN p_patch ->> 'name' ELSE c.name END,
    templates = CASE WHEN p_patch ? 'templates' THEN p_patch -> 'templates' ELSE c.templates END,
    media = CASE WHEN p_patch ? 'media' THEN nullif(p_patch -> 'media', 'null') ELSE c.media END,
    account_ids = CASE WHEN p_patch ? 'accountIds' THEN p_patch -> 'accountIds' ELSE c.account_ids END,
    settings = CASE WHEN p_patch ? 'settings' THEN p_patch -> 'settings' ELSE c.settings END,
    metadata = CASE WHEN p_patch ? 'metadata' THEN p_patch -> 'metadata' ELSE c.metadata END,
    scheduled_at = CASE WHEN p_patch ? 'scheduledAt' THEN (p_patch ->> 'scheduledAt')::bigint ELSE c.scheduled_at END,
    updated_at = p_now
  WHERE c.id = p_id
  RETURNING :DISPARO_SCHEMA._campaign_json(c)
$$;
