-- Skip pending rows whose contact opted out: `skipped`, reason `opted_out`, lease dropped (core's
-- OPT_OUT_CANCELS: only `pending` rows; a `sending` one, in flight, is already on the wire). The one home of the
-- opt-out skip, for claim_recipients and add_opt_outs. Callers hold the rows' locks. Returns the
-- status moves, for the caller to count.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA._skip_opted_out(p_ids bigint[], p_now bigint)
RETURNS :DISPARO_SCHEMA.move[]
LANGUAGE sql AS $$
  WITH u AS (
    UPDATE :DISPARO_SCHEMA.recipients SET status = 'skipped', skip_reason = 'opted_out', last_error = 'contact opted out',
      lease_owner = NULL, lease_expires_at = NULL, processed_at = p_now, updated_at = p_now
    WHERE id = ANY (p_ids) AND status = 'pending' AND NOT EXISTS (SELECT 1 FROM :DISPARO_SCHEMA.in_flight f WHERE f.recipient_id = :DISPARO_SCHEMA.recipients.id)
    RETURNING campaign_id, batch
  )
  SELECT coalesce(array_agg(CAST(ROW(u.campaign_id, u.batch, 'pending', 'skipped') AS :DISPARO_SCHEMA.move)), '{}') FROM u
$$;
