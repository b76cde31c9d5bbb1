-- StateStore.release: drop `p_owner`'s leases on pending rows: all of them, or those whose ids are in
-- `p_recipient_ids` (a JSON array). Sending rows are left to recovery. Rows are locked in id order,
-- so two releases never deadlock.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.release(p_owner text, p_recipient_ids jsonb DEFAULT NULL)
RETURNS integer
LANGUAGE sql AS $$
  WITH l AS (
    SELECT id FROM :DISPARO_SCHEMA.recipients
    WHERE lease_owner = p_owner AND status = 'pending'
      AND (p_recipient_ids IS NULL OR id = ANY (ARRAY(SELECT :DISPARO_SCHEMA._row_id(x) FROM jsonb_array_elements_text(p_recipient_ids) x)))
    ORDER BY id FOR UPDATE
  ), u AS (
    UPDATE :DISPARO_SCHEMA.recipients r SET lease_owner = NULL, lease_expires_at = NULL FROM l
    WHERE r.id = l.id AND r.lease_owner = p_owner AND r.status = 'pending' RETURNING 1
  )
  SELECT count(*)::integer FROM u
$$;
