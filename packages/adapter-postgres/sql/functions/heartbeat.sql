-- StateStore.heartbeat: extend every lease `p_owner` holds (pending or sending rows) to now + lease.
-- SKIP LOCKED: a row another statement of this owner holds (its checkpoint) is skipped, not waited
-- for; waiting, in whatever order the scan meets rows, could deadlock with that checkpoint.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.heartbeat(p_owner text, p_now bigint, p_lease_ms bigint)
RETURNS integer
LANGUAGE sql AS $$
  WITH l AS (
    SELECT id FROM :DISPARO_SCHEMA.recipients WHERE lease_owner = p_owner FOR UPDATE SKIP LOCKED
  ), u AS (
    UPDATE :DISPARO_SCHEMA.recipients r SET lease_expires_at = p_now + p_lease_ms FROM l
    WHERE r.id = l.id AND r.lease_owner = p_owner RETURNING 1
  )
  SELECT count(*)::integer FROM u
$$;
