-- StateStore.release: drop `p_owner`'s leases on pending rows: all of them (its ranges, and the rows
-- leased on the row), or those of the rows whose ids are in `p_recipient_ids` (a JSON array). Sends
-- in flight (000006_in_flight.sql) are left to recovery. Returns how many rows that frees.
-- A row freed on its own is marked "not leased" (`lease_expires_at = 0`, no owner), so that no live
-- range over it takes it back (000005_range_leases.sql). Ranges, then rows, are locked in key order.
-- Claims and heartbeats take ranges and rows with SKIP LOCKED, never waiting, so a release waits at most
-- for one of them to finish, and never in a cycle.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.release(p_owner text, p_recipient_ids jsonb DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_ranged integer := 0;
  v_rows integer;
BEGIN
  IF p_recipient_ids IS NULL THEN
    WITH l AS MATERIALIZED (
      SELECT l.id, :DISPARO_SCHEMA._range_count(l) AS n
      FROM :DISPARO_SCHEMA.leases l WHERE l.owner = p_owner ORDER BY l.id FOR UPDATE
    ), gone AS (
      DELETE FROM :DISPARO_SCHEMA.leases x USING l WHERE x.id = l.id
    )
    SELECT coalesce(sum(l.n), 0)::integer INTO v_ranged FROM l;
    WITH l AS (
      SELECT r.id FROM :DISPARO_SCHEMA.recipients r WHERE r.lease_owner = p_owner AND r.status = 'pending'
        AND NOT EXISTS (SELECT 1 FROM :DISPARO_SCHEMA.in_flight f WHERE f.recipient_id = r.id) ORDER BY r.id FOR UPDATE OF r
    ), u AS (
      UPDATE :DISPARO_SCHEMA.recipients r SET lease_owner = NULL, lease_expires_at = 0 FROM l
      WHERE r.id = l.id AND r.lease_owner = p_owner AND r.status = 'pending' RETURNING 1
    )
    SELECT count(*)::integer INTO v_rows FROM u;
  ELSE
    WITH l AS (
      SELECT r.id FROM :DISPARO_SCHEMA.recipients r CROSS JOIN LATERAL :DISPARO_SCHEMA._shown(r) w
      WHERE r.id = ANY (ARRAY(SELECT :DISPARO_SCHEMA._row_id(x) FROM jsonb_array_elements_text(p_recipient_ids) x))
        AND w.status = 'pending' AND w.lease_owner = p_owner
      ORDER BY r.id FOR UPDATE OF r
    ), u AS (
      UPDATE :DISPARO_SCHEMA.recipients r SET lease_owner = NULL, lease_expires_at = 0 FROM l
      WHERE r.id = l.id AND r.status = 'pending' AND (r.lease_owner = p_owner OR r.lease_expires_at IS NULL) RETURNING 1
    )
    SELECT count(*)::integer INTO v_rows FROM u;
  END IF;
  RETURN v_ranged + v_rows;
END
$$;
