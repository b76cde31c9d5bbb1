-- StateStore.heartbeat: extend every lease `p_owner` holds (pending or sending rows) to now + lease:
-- its ranges (000005_range_leases.sql), the rows leased on the row, and its sends in flight
-- (000006_in_flight.sql). Returns how many rows that extends. A range that no longer covers a row it
-- leases (each one done, in flight, or handed back) is dropped instead, so ranges do not pile up
-- behind a long campaign.
-- A heartbeat never waits (SKIP LOCKED), so a checkpoint or a settlement deleting a send waits for it
-- at most briefly, never in a cycle. A range a claim holds is expired and being taken over (see
-- claim_recipients), or one the owner's own release is dropping. A row another statement of this owner
-- holds (its checkpoint) is skipped, not waited for; waiting, in whatever order the scan meets rows,
-- could deadlock with that checkpoint.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.heartbeat(p_owner text, p_now bigint, p_lease_ms bigint)
RETURNS integer
LANGUAGE sql AS $$
  WITH l AS MATERIALIZED (
    SELECT l.id, :DISPARO_SCHEMA._range_count(l) AS n
    FROM :DISPARO_SCHEMA.leases l WHERE l.owner = p_owner ORDER BY l.id FOR UPDATE SKIP LOCKED
  ), gone AS (
    DELETE FROM :DISPARO_SCHEMA.leases x USING l WHERE x.id = l.id AND l.n = 0
  ), kept AS (
    UPDATE :DISPARO_SCHEMA.leases x SET expires_at = p_now + p_lease_ms FROM l WHERE x.id = l.id AND l.n > 0 RETURNING l.n
  ), own_pending AS (
    -- (A row in flight is the send's: counted below, once.)
    SELECT r.id FROM :DISPARO_SCHEMA.recipients r WHERE r.status = 'pending' AND r.lease_owner = p_owner
      AND NOT EXISTS (SELECT 1 FROM :DISPARO_SCHEMA.in_flight f WHERE f.recipient_id = r.id) FOR UPDATE OF r SKIP LOCKED
  ), u AS (
    UPDATE :DISPARO_SCHEMA.recipients r SET lease_expires_at = p_now + p_lease_ms
    FROM own_pending own WHERE r.id = own.id AND r.lease_owner = p_owner RETURNING 1
  ), sends AS (
    UPDATE :DISPARO_SCHEMA.in_flight x SET expires_at = p_now + p_lease_ms
    WHERE x.recipient_id IN (SELECT f.recipient_id FROM :DISPARO_SCHEMA.in_flight f WHERE f.owner = p_owner FOR UPDATE SKIP LOCKED)
    RETURNING 1
  )
  SELECT (coalesce((SELECT sum(kept.n) FROM kept), 0) + (SELECT count(*) FROM u) + (SELECT count(*) FROM sends))::integer
$$;
