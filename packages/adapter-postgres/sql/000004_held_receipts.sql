-- Disparo store schema, version 4: receipts held until their send's outcome is recorded.
--
-- A receipt that finds no row, or a `sending` one, is kept here and tried again by every later
-- apply_status_updates call, oldest first (core's holdsReceipt), until it applies, its row ignores
-- it, or it is older than core's HELD_RECEIPT_MS. Usually empty: a receipt rarely beats its outcome.
CREATE TABLE :DISPARO_SCHEMA.held_receipts (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  provider_message_id text NOT NULL,
  idempotency_key text,
  status text NOT NULL,
  at bigint NOT NULL,
  error text,
  held_at bigint NOT NULL
);
CREATE INDEX held_receipts_held_at_idx ON :DISPARO_SCHEMA.held_receipts (held_at);
