-- StateStore.applyStatusUpdates: provider receipts, `p_updates` an array of `StatusUpdate`
-- ({"providerMessageId", "status": sent|delivered|read|failed, "at", "error", "idempotencyKey"}),
-- applied in order (a repeat inside one call is a repeat). A receipt no row's provider id matches, but
-- carrying an idempotency key `campaignId:phone`, matches that recipient (its send's answer was lost);
-- a row in doubt (sending or unknown) then learns the provider id. What a receipt does is core's
-- DELIVERY_TRANSITIONS: forward
-- only (sent < delivered < read), failed only before delivered, an unknown row settled forward by any
-- receipt, pending and sending rows left to their worker. Returns
-- {"applied", "ignored", "unmatched", "changed": [{"recipientId", "campaignId", "from", "to"}]}.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.apply_status_updates(p_updates jsonb, p_now bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  u record;
  v_id bigint;
  v_campaign text;
  v_batch integer;
  v_from text;
  v_to text;
  v_applied integer := 0;
  v_ignored integer := 0;
  v_unmatched integer := 0;
  v_changed jsonb := '[]'::jsonb;
  v_moves :DISPARO_SCHEMA.move[] := '{}';
  v_known text;
BEGIN
  -- The rows first, in key order, so two calls with the same ids in another order never deadlock.
  PERFORM 1 FROM :DISPARO_SCHEMA.recipients r
    WHERE r.provider_message_id = ANY (ARRAY(SELECT e ->> 'providerMessageId' FROM jsonb_array_elements(coalesce(p_updates, '[]')) e))
    ORDER BY r.id FOR UPDATE;
  FOR u IN
    SELECT e ->> 'providerMessageId' AS pid, e ->> 'status' AS status, (e ->> 'at')::bigint AS at, e ->> 'error' AS error,
      e ->> 'idempotencyKey' AS idem
    FROM jsonb_array_elements(coalesce(p_updates, '[]')) WITH ORDINALITY AS x(e, i) ORDER BY x.i
  LOOP
    SELECT r.id, r.campaign_id, r.batch, r.status, r.provider_message_id INTO v_id, v_campaign, v_batch, v_from, v_known
      FROM :DISPARO_SCHEMA.recipients r WHERE r.provider_message_id = u.pid
      ORDER BY r.updated_at DESC, r.id DESC LIMIT 1;
    IF NOT FOUND AND u.idem LIKE '%:%' THEN
      -- The key is `campaignId:phone`; campaign ids may hold ':', phones never do.
      SELECT r.id, r.campaign_id, r.batch, r.status, r.provider_message_id INTO v_id, v_campaign, v_batch, v_from, v_known
        FROM :DISPARO_SCHEMA.recipients r
        WHERE r.phone = substring(u.idem from '[^:]*$') AND r.campaign_id = left(u.idem, length(u.idem) - length(substring(u.idem from '[^:]*$')) - 1)
        FOR UPDATE;
    END IF;
    IF NOT FOUND THEN
      v_unmatched := v_unmatched + 1;
      CONTINUE;
    END IF;
    IF v_known IS NULL AND v_from IN ('sending', 'unknown') THEN
      UPDATE :DISPARO_SCHEMA.recipients SET provider_message_id = u.pid WHERE id = v_id;
    END IF;
    v_to := CASE
      WHEN v_from = 'unknown' AND u.status IN ('sent', 'delivered', 'read', 'failed') THEN u.status
      WHEN v_from = 'sent' AND u.status IN ('delivered', 'read', 'failed') THEN u.status
      WHEN v_from = 'delivered' AND u.status = 'read' THEN 'read'
    END;
    IF v_to IS NULL THEN
      v_ignored := v_ignored + 1;
      CONTINUE;
    END IF;
    UPDATE :DISPARO_SCHEMA.recipients SET
      status = v_to,
      last_error = CASE WHEN v_to = 'failed' THEN coalesce(u.error, 'the provider reported the message failed') ELSE last_error END,
      sent_at = CASE WHEN v_to = 'failed' THEN sent_at ELSE coalesce(sent_at, u.at) END,
      delivered_at = CASE WHEN v_to IN ('delivered', 'read') THEN coalesce(delivered_at, u.at) ELSE delivered_at END,
      read_at = CASE WHEN v_to = 'read' THEN u.at ELSE read_at END,
      updated_at = p_now
    WHERE id = v_id;
    v_applied := v_applied + 1;
    v_changed := v_changed || jsonb_build_array(jsonb_build_object('recipientId', v_id::text, 'campaignId', v_campaign, 'from', v_from, 'to', v_to));
    v_moves := v_moves || CAST(ROW(v_campaign, v_batch, v_from, v_to) AS :DISPARO_SCHEMA.move);
  END LOOP;
  PERFORM :DISPARO_SCHEMA._count_moves(v_moves);
  RETURN jsonb_build_object('applied', v_applied, 'ignored', v_ignored, 'unmatched', v_unmatched, 'changed', v_changed);
END
$$;
