-- StateStore.transitionCampaign, compare-and-set: when the campaign's status is one of
-- `p_change.from`, set `to` and the rest of the change, and return the campaign; else null.
-- `p_change` is a `CampaignTransition`, with `from` already narrowed by the caller to the statuses
-- that may go to `to` (core's CAMPAIGN_TRANSITIONS, the one source of that table) and `finished`
-- saying whether `to` ends the campaign. A key absent from the change leaves its column as it is.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.transition_campaign(p_id text, p_change jsonb)
RETURNS jsonb
LANGUAGE sql AS $$
  UPDATE :DISPARO_SCHEMA.campaigns c SET
    status = p_change ->> 'to',
    updated_at = (p_change ->> 'now')::bigint,
    pause_reason = CASE WHEN p_change ->> 'to' = 'paused' THEN p_change ->> 'pauseReason' END,
    scheduled_at = CASE WHEN p_change ? 'scheduledAt' THEN (p_change ->> 'scheduledAt')::bigint ELSE c.scheduled_at END,
    last_error = CASE WHEN p_change ? 'lastError' THEN p_change ->> 'lastError' ELSE c.last_error END,
    started_at = CASE WHEN p_change ->> 'to' = 'running' THEN coalesce(c.started_at, (p_change ->> 'now')::bigint) ELSE c.started_at END,
    finished_at = CASE WHEN (p_change ->> 'finished')::boolean THEN (p_change ->> 'now')::bigint ELSE c.finished_at END
  WHERE c.id = p_id AND c.status IN (SELECT jsonb_array_elements_text(p_change -> 'from'))
  RETURNING :DISPARO_SCHEMA._campaign_json(c)
$$;
