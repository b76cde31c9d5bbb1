-- Disparo store schema, version 2: cheaper write-aheads.
--
-- `recipients_sending_idx` goes: every status change paid for it, and the rows it found (in-doubt
-- sends) always hold a lease, so `recipients_lease_idx` finds them too.
--
-- The claim index holds rows not yet processed (pending or sending) instead of naming the status,
-- and pages keep 20% free for the text each write-ahead adds, so that marking a row `sending` could
-- be a HOT update (no new index entries). Claims read `status = 'pending'` from the heap.
--
-- (Until version 3 this file also redefined functions; they now live in sql/functions.)

DROP INDEX :DISPARO_SCHEMA.recipients_sending_idx;
ALTER TABLE :DISPARO_SCHEMA.recipients SET (fillfactor = 80);
DROP INDEX :DISPARO_SCHEMA.recipients_pending_idx;
CREATE INDEX recipients_open_idx ON :DISPARO_SCHEMA.recipients (campaign_id, batch, seq) WHERE processed_at IS NULL;
