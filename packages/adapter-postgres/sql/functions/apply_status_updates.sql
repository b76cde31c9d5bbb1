-- StateStore.applyStatusUpdates: provider receipts, `p_updates` an array of `StatusUpdate`
-- ({"providerMessageId", "status": sent|delivered|read|failed, "at", "error", "idempotencyKey"}),
-- applied in order (a repeat inside one call is a repeat), after the receipts held by earlier calls
-- (oldest first). A receipt no row's provider id matches, but carrying an idempotency key
-- `campaignId:phone`, matches that recipient (its send's answer was lost); a row in doubt (sending or
-- unknown) then learns the provider id. What a receipt does is core's DELIVERY_TRANSITIONS: forward
-- only (sent < delivered < read), failed only before delivered, an unknown row settled forward by any
-- receipt. One that finds no row, or a `sending` row (its outcome not recorded yet), is held in
-- `held_receipts` (core's holdsReceipt) until it applies, its row ignores it, or it is older than
-- `p_held_ms` (core's HELD_RECEIPT_MS). A call with no updates (the engine's housekeeping) tries again
-- the held receipts whose row can now take them, oldest first: found by the provider index, so
-- receipts that never find a row (messages sent outside the campaigns) cost an index probe each.
-- Returns {"applied", "ignored", "unmatched", "held", "changed": [{"recipientId", "campaignId", "from", "to"}]}.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.apply_status_updates(p_updates jsonb, p_now bigint, p_held_ms bigint DEFAULT 600000)
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
  v_held integer := 0;
  v_changed jsonb := '[]'::jsonb;
  v_moves :DISPARO_SCHEMA.move[] := '{}';
  v_known text;
  v_retry bigint[];
  v_found boolean;
  v_pids text[];
  v_keys text[];
  v_locked bigint[];
BEGIN
  -- Expired ones go (one a concurrent call holds is left to it: no call waits on another here).
  DELETE FROM :DISPARO_SCHEMA.held_receipts WHERE id IN (
    SELECT h.id FROM :DISPARO_SCHEMA.held_receipts h WHERE h.held_at <= p_now - p_held_ms FOR UPDATE SKIP LOCKED);
  -- The held receipts this call tries (a call with no updates: those whose row, by provider id or by
  -- key, is no longer `sending`; one taken by a concurrent call is left to it), then the rows, in key
  -- order, so two calls with the same ids in another order never deadlock (nor one with a checkpoint,
  -- which locks its rows in key order too).
  IF coalesce(jsonb_array_length(p_updates), 0) = 0 THEN
    SELECT coalesce(array_agg(h.id ORDER BY h.id), '{}') INTO v_retry
      FROM (SELECT h.id FROM :DISPARO_SCHEMA.held_receipts h
            WHERE EXISTS (SELECT 1 FROM :DISPARO_SCHEMA.recipients r WHERE r.provider_message_id = h.provider_message_id
                            AND NOT EXISTS (SELECT 1 FROM :DISPARO_SCHEMA.in_flight f WHERE f.recipient_id = r.id))
               OR (h.idempotency_key LIKE '%:%' AND EXISTS (SELECT 1 FROM :DISPARO_SCHEMA.recipients r
                     WHERE r.phone = substring(h.idempotency_key from '[^:]*$')
                       AND r.campaign_id = left(h.idempotency_key, length(h.idempotency_key) - length(substring(h.idempotency_key from '[^:]*$')) - 1)
                       AND NOT EXISTS (SELECT 1 FROM :DISPARO_SCHEMA.in_flight f WHERE f.recipient_id = r.id)))
            ORDER BY h.id FOR UPDATE SKIP LOCKED) h;
  ELSE
    v_retry := '{}';
  END IF;
  SELECT coalesce(array_agg(q.pid), '{}'), coalesce(array_agg(q.idem), '{}') INTO v_pids, v_keys FROM (
    SELECT e ->> 'providerMessageId' AS pid, e ->> 'idempotencyKey' AS idem FROM jsonb_array_elements(coalesce(p_updates, '[]')) e
    UNION ALL
    SELECT h.provider_message_id, h.idempotency_key FROM :DISPARO_SCHEMA.held_receipts h WHERE h.id = ANY (v_retry)) q;
  -- Every row the loop may write, locked here in key order before any is written (a checkpoint locks
  -- its rows in key order too: the two never wait on each other in a cycle): the rows carrying one of
  -- the provider ids (on the row or on its send in flight), and the recipient each idempotency key
  -- names, the loop's fallback (whether or not the id finds a row: checking would cost a probe too).
  SELECT coalesce(array_agg(r.id ORDER BY r.id), '{}') INTO v_locked
    FROM (SELECT r.id FROM :DISPARO_SCHEMA.recipients r
          WHERE r.id IN (SELECT x.id FROM :DISPARO_SCHEMA.recipients x WHERE x.provider_message_id = ANY (v_pids)
                         UNION ALL
                         SELECT f.recipient_id FROM :DISPARO_SCHEMA.in_flight f WHERE f.provider_message_id = ANY (v_pids)
                         UNION ALL
                         SELECT x.id FROM unnest(v_keys) k(idem) JOIN :DISPARO_SCHEMA.recipients x
                           ON x.phone = substring(k.idem from '[^:]*$')
                          AND x.campaign_id = left(k.idem, length(k.idem) - length(substring(k.idem from '[^:]*$')) - 1)
                         WHERE k.idem LIKE '%:%')
          ORDER BY r.id FOR UPDATE) r;
  FOR u IN
    SELECT q.held_id, q.pid, q.status, q.at, q.error, q.idem FROM (
      SELECT h.id AS held_id, 0 AS part, h.id AS i, h.provider_message_id AS pid, h.status, h.at, h.error, h.idempotency_key AS idem
        FROM :DISPARO_SCHEMA.held_receipts h WHERE h.id = ANY (v_retry)
      UNION ALL
      SELECT NULL, 1, x.i, e ->> 'providerMessageId', e ->> 'status', (e ->> 'at')::bigint, e ->> 'error', e ->> 'idempotencyKey'
        FROM jsonb_array_elements(coalesce(p_updates, '[]')) WITH ORDINALITY AS x(e, i)
    ) q ORDER BY q.part, q.i
  LOOP
    -- The receipt's row, read under its lock: a status read without it may be moved on by a
    -- concurrent receipt before this one writes, and written over (backwards, and counted twice).
    LOOP
      SELECT w.id, w.campaign_id, w.batch, w.status, w.provider_message_id INTO v_id, v_campaign, v_batch, v_from, v_known
        FROM :DISPARO_SCHEMA.get_recipient_by_provider_id(u.pid) w;
      IF NOT FOUND AND u.idem LIKE '%:%' THEN
        -- The key is `campaignId:phone`; campaign ids may hold ':', phones never do.
        SELECT r.id, r.campaign_id, r.batch, w.status, w.provider_message_id INTO v_id, v_campaign, v_batch, v_from, v_known
          FROM :DISPARO_SCHEMA.recipients r CROSS JOIN LATERAL :DISPARO_SCHEMA._shown(r) w
          WHERE r.phone = substring(u.idem from '[^:]*$') AND r.campaign_id = left(u.idem, length(u.idem) - length(substring(u.idem from '[^:]*$')) - 1);
      END IF;
      v_found := FOUND;
      EXIT WHEN NOT v_found OR v_id = ANY (v_locked);
      -- A row not locked above: it took the provider id since (its outcome committed meanwhile). Lock
      -- it, then read again, as it is now. (Out of key order: the one exception, a row that took its
      -- id while this call ran.)
      PERFORM 1 FROM :DISPARO_SCHEMA.recipients r WHERE r.id = v_id FOR UPDATE;
      v_locked := v_locked || v_id;
    END LOOP;
    IF NOT v_found OR v_from = 'sending' THEN
      -- Not yet (holdsReceipt): a row in doubt learns the provider id; a new receipt is held.
      IF v_found AND v_known IS NULL THEN
        -- (A row `sending` is in flight: the id goes with its send, 000006_in_flight.sql.)
        UPDATE :DISPARO_SCHEMA.in_flight SET provider_message_id = u.pid WHERE recipient_id = v_id;
        IF NOT FOUND THEN
          UPDATE :DISPARO_SCHEMA.recipients SET provider_message_id = u.pid WHERE id = v_id;
        END IF;
      END IF;
      IF u.held_id IS NULL THEN
        INSERT INTO :DISPARO_SCHEMA.held_receipts (provider_message_id, idempotency_key, status, at, error, held_at)
          VALUES (u.pid, u.idem, u.status, u.at, u.error, p_now);
        v_held := v_held + 1;
        IF v_found THEN v_ignored := v_ignored + 1; ELSE v_unmatched := v_unmatched + 1; END IF;
      END IF;
      CONTINUE;
    END IF;
    IF u.held_id IS NOT NULL THEN
      DELETE FROM :DISPARO_SCHEMA.held_receipts WHERE id = u.held_id;
    END IF;
    IF v_known IS NULL AND v_from = 'unknown' THEN
      UPDATE :DISPARO_SCHEMA.recipients SET provider_message_id = u.pid WHERE id = v_id;
    END IF;
    v_to := CASE
      WHEN v_from = 'unknown' AND u.status IN ('sent', 'delivered', 'read', 'failed') THEN u.status
      WHEN v_from = 'sent' AND u.status IN ('delivered', 'read', 'failed') THEN u.status
      WHEN v_from = 'delivered' AND u.status = 'read' THEN 'read'
    END;
    IF v_to IS NULL THEN
      IF u.held_id IS NULL THEN v_ignored := v_ignored + 1; END IF;
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
  RETURN jsonb_build_object('applied', v_applied, 'ignored', v_ignored, 'unmatched', v_unmatched, 'held', v_held, 'changed', v_changed);
END
$$;
