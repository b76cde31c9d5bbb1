-- Disparo store schema, version 5: range leases.
--
-- A claim no longer writes each row it hands out: it writes one row here per contiguous stretch of
-- seqs it takes, `[lo, hi]` of one campaign's batch, owned by `owner` until `expires_at`. A pending
-- row's lease is:
-- - its own, when the row carries one: `lease_expires_at` set (an owner and its expiry, or, with no
--   owner, "not leased": `lease_expires_at = 0`, the mark a hand-back leaves, so a live range over
--   the row cannot take it back);
-- - otherwise (`lease_expires_at` null, as an import leaves it) the range that covers its seq, if any.
-- A row written ahead (`sending`) always carries its own. Ranges of one batch never overlap: they are
-- made, trimmed and dropped by claims under the batch row's lock (functions/claim_recipients.sql),
-- dropped by release, and dropped by the heartbeat once they cover no row that needs them.
-- (functions/_with_lease.sql is the rule, for reads and for the checks of the write path alike.)
CREATE TABLE :DISPARO_SCHEMA.leases (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  campaign_id text NOT NULL,
  batch integer NOT NULL,
  lo integer NOT NULL,
  hi integer NOT NULL,
  owner text NOT NULL,
  expires_at bigint NOT NULL,
  CHECK (lo <= hi)
);
-- The range that covers a seq: the one with the greatest `lo` at or below it (ranges never overlap).
CREATE INDEX leases_range_idx ON :DISPARO_SCHEMA.leases (campaign_id, batch, lo);
CREATE INDEX leases_owner_idx ON :DISPARO_SCHEMA.leases (owner);

-- A write-ahead no longer adds index entries for the claim and lease indexes: both now hold pending
-- rows only. Since version 3 a write-ahead changes an indexed column (`status`, in the predicate of
-- `recipients_in_flight_idx`), so it is never a HOT update and adds an entry to every index whose
-- predicate the `sending` row still meets; with range leases it also sets `lease_owner`. A claim
-- only wants pending rows, and the lease index is only searched for pending rows (release) or beside
-- `recipients_in_flight_idx`, which holds every `sending` row (heartbeat).
DROP INDEX :DISPARO_SCHEMA.recipients_open_idx;
CREATE INDEX recipients_pending_idx ON :DISPARO_SCHEMA.recipients (campaign_id, batch, seq) WHERE status = 'pending';
DROP INDEX :DISPARO_SCHEMA.recipients_lease_idx;
CREATE INDEX recipients_lease_idx ON :DISPARO_SCHEMA.recipients (lease_owner) WHERE status = 'pending' AND lease_owner IS NOT NULL;
