-- How many rows a range leases (000005_range_leases.sql): the pending rows of its batch, within its
-- seqs, that carry no lease of their own and are not in flight (a send carries its own lease). The heartbeat keeps a range while this is above 0 and
-- returns it as the rows extended; release returns it as the rows freed.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA._range_count(l :DISPARO_SCHEMA.leases)
RETURNS integer
LANGUAGE sql STABLE AS $$
  SELECT count(*)::integer FROM :DISPARO_SCHEMA.recipients r
  WHERE r.campaign_id = l.campaign_id AND r.batch = l.batch AND r.seq BETWEEN l.lo AND l.hi
    AND r.status = 'pending' AND r.lease_expires_at IS NULL AND NOT EXISTS (SELECT 1 FROM :DISPARO_SCHEMA.in_flight f WHERE f.recipient_id = r.id)
$$;
