-- A recipient row with the lease that holds it, as the contract shows a row: the rule of
-- 000005_range_leases.sql in one place. A row carrying a lease of its own shows it (the "not leased"
-- mark, no owner, shows as no lease); a pending row with none shows the range over its seq, if any.
-- Use it as `CROSS JOIN LATERAL _with_lease(r) w`: a SQL function of one SELECT, so PostgreSQL
-- inlines it into the caller's plan (no call per row), and it looks for a range only for a pending
-- row with no lease of its own. The write path asks it whether `p_owner` holds a row
-- (`(SELECT w.lease_owner FROM _with_lease(rc) w) = p_owner`): an expired lease nobody has taken
-- over is still held, as before ranges.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA._with_lease(r :DISPARO_SCHEMA.recipients)
RETURNS SETOF :DISPARO_SCHEMA.recipients
LANGUAGE sql STABLE AS $$
  SELECT r.id, r.campaign_id, r.seq, r.batch, r.phone, r.vars, r.status, r.skip_reason, r.text, r.attempts, r.last_error,
    r.provider_message_id, r.account_id,
    CASE WHEN r.lease_expires_at IS NULL THEN l.owner ELSE r.lease_owner END,
    CASE WHEN r.lease_expires_at IS NULL THEN l.expires_at WHEN r.lease_owner IS NULL THEN NULL ELSE r.lease_expires_at END,
    r.sent_at, r.delivered_at, r.read_at, r.processed_at, r.updated_at
  FROM (SELECT 1) one
  LEFT JOIN LATERAL (
    SELECT c.owner, c.expires_at FROM (
      SELECT x.owner, x.expires_at, x.hi FROM :DISPARO_SCHEMA.leases x
      WHERE r.lease_expires_at IS NULL AND r.status = 'pending'
        AND x.campaign_id = r.campaign_id AND x.batch = r.batch AND x.lo <= r.seq
      ORDER BY x.lo DESC LIMIT 1
    ) c WHERE c.hi >= r.seq
  ) l ON true
$$;
