-- A recipient row as the contract shows it: the one rule for reads and for every check of the write
-- path. Two things are not on the row itself:
-- - its send, while it is in flight (000006_in_flight.sql): the row is `sending`, with the send's
--   attempt, text, account, provider id and lease, and its time is the write-ahead's;
-- - otherwise its lease (000005_range_leases.sql): a row carrying a lease of its own shows it (the
--   "not leased" mark, no owner, shows as no lease); a pending row with none shows the range over
--   its seq, if any.
-- Use it as `CROSS JOIN LATERAL _shown(r) w`: a SQL function of one SELECT, so PostgreSQL inlines it
-- into the caller's plan (no call per row): a key lookup in `in_flight`, and a range lookup only for a
-- pending row not in flight with no lease of its own. The write path asks it whether `p_owner` holds a row
-- (`(SELECT w.lease_owner FROM _shown(rc) w) = p_owner`): an expired lease nobody has taken over is
-- still held, as before ranges.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA._shown(r :DISPARO_SCHEMA.recipients)
RETURNS SETOF :DISPARO_SCHEMA.recipients
LANGUAGE sql STABLE AS $$
  SELECT r.id, r.campaign_id, r.seq, r.batch, r.phone, r.vars,
    CASE WHEN f.recipient_id IS NULL THEN r.status ELSE 'sending' END,
    r.skip_reason,
    CASE WHEN f.recipient_id IS NULL THEN r.text ELSE f.text END,
    CASE WHEN f.recipient_id IS NULL THEN r.attempts ELSE f.attempt END,
    r.last_error,
    CASE WHEN f.recipient_id IS NULL THEN r.provider_message_id ELSE coalesce(f.provider_message_id, r.provider_message_id) END,
    CASE WHEN f.recipient_id IS NULL THEN r.account_id ELSE f.account_id END,
    CASE WHEN f.recipient_id IS NOT NULL THEN f.owner WHEN r.lease_expires_at IS NULL THEN l.owner ELSE r.lease_owner END,
    CASE WHEN f.recipient_id IS NOT NULL THEN f.expires_at WHEN r.lease_expires_at IS NULL THEN l.expires_at
         WHEN r.lease_owner IS NULL THEN NULL ELSE r.lease_expires_at END,
    r.sent_at, r.delivered_at, r.read_at, r.processed_at,
    CASE WHEN f.recipient_id IS NULL THEN r.updated_at ELSE f.started_at END
  FROM (SELECT 1) one
  LEFT JOIN :DISPARO_SCHEMA.in_flight f ON f.recipient_id = r.id
  LEFT JOIN LATERAL (
    SELECT c.owner, c.expires_at FROM (
      SELECT x.owner, x.expires_at, x.hi FROM :DISPARO_SCHEMA.leases x
      WHERE f.recipient_id IS NULL AND r.lease_expires_at IS NULL AND r.status = 'pending'
        AND x.campaign_id = r.campaign_id AND x.batch = r.batch AND x.lo <= r.seq
      ORDER BY x.lo DESC LIMIT 1
    ) c WHERE c.hi >= r.seq
  ) l ON true
$$;
