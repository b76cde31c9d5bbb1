-- Disparo store schema, version 6: sends in flight live in a table of their own.
--
-- A write-ahead no longer writes the recipient row. It inserts one narrow row here: the send on the
-- wire (its account, owner and lease, attempt, text, and the provider's id when known before the
-- send). The row stays `pending` on disk until its outcome, which is then the only write to it: the
-- outcome deletes the send and writes the row once, with the send's text, account and id.
-- (Measured, bench/floor.ts: a write-ahead as an UPDATE of the wide recipient row, which is never HOT
-- and adds an entry to every index, cost more than this INSERT and the DELETE with the outcome.)
--
-- A recipient is `sending` exactly while it has a row here, whoever wrote it, on the wire or in doubt
-- (its lease expired), until its outcome is recorded or it is settled. The row's lease while in flight
-- is the send's. functions/_shown.sql is that rule, for every read and every check of the write path.
-- The primary key is what makes a write-ahead exclusive: a second one of the same recipient finds the
-- first and is refused.
CREATE TABLE :DISPARO_SCHEMA.in_flight (
  recipient_id bigint PRIMARY KEY,
  campaign_id text NOT NULL,
  batch integer NOT NULL,
  account_id text NOT NULL,
  owner text,
  expires_at bigint,
  attempt integer NOT NULL,
  text text,
  provider_message_id text,
  started_at bigint NOT NULL
);
-- The account's window: its sends in flight, counted under the account's lock.
CREATE INDEX in_flight_account_idx ON :DISPARO_SCHEMA.in_flight (account_id);
-- A receipt for an id known before the send (Cloud API, Baileys) finds its send here.
CREATE INDEX in_flight_provider_idx ON :DISPARO_SCHEMA.in_flight (provider_message_id) WHERE provider_message_id IS NOT NULL;

-- Sends in flight at the upgrade move here; their rows go back to `pending` on disk with the "not
-- leased" mark (000005_range_leases.sql), so no range takes them while they are in flight. The
-- attempt is the send's; the row's own count is rewritten by the outcome.
INSERT INTO :DISPARO_SCHEMA.in_flight (recipient_id, campaign_id, batch, account_id, owner, expires_at, attempt, text, provider_message_id, started_at)
  SELECT r.id, r.campaign_id, r.batch, coalesce(r.account_id, ''), r.lease_owner, r.lease_expires_at, r.attempts, r.text, r.provider_message_id, r.updated_at
  FROM :DISPARO_SCHEMA.recipients r WHERE r.status = 'sending';
UPDATE :DISPARO_SCHEMA.recipients SET status = 'pending', lease_owner = NULL, lease_expires_at = 0 WHERE status = 'sending';
DROP INDEX :DISPARO_SCHEMA.recipients_in_flight_idx;
