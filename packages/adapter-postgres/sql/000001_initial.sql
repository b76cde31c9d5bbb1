-- Disparo store schema, version 1: tables and indexes. Functions live one per file in
-- sql/functions and are created by migrate() (see src/migrate.ts).
--
-- Times are epoch milliseconds in bigint columns: the engine's clock (real or virtual) is the only
-- clock, so the database never stamps a time of its own.
--
-- Counters are never a column of the campaign row: every worker would then queue on that one row
-- for each message it records. They live in `campaign_counts` and `batch_counts` as per-status deltas,
-- spread over 16 shards (one per backend, `pg_backend_pid() % 16`); a campaign's counters are the sum
-- of its shards. Every statement that changes a recipient's status adds its deltas in the same
-- transaction (functions/_count_moves.sql), so the sums always equal the rows (I2).

CREATE TABLE :DISPARO_SCHEMA.campaigns (
  id text PRIMARY KEY,
  name text NOT NULL,
  templates jsonb NOT NULL,
  media jsonb,
  account_ids jsonb NOT NULL,
  status text NOT NULL,
  pause_reason text,
  settings jsonb NOT NULL,
  scheduled_at bigint,
  current_batch integer NOT NULL DEFAULT 0,
  next_batch_at bigint,
  last_seq integer NOT NULL DEFAULT 0,
  last_error text,
  metadata jsonb NOT NULL,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  started_at bigint,
  finished_at bigint
);
CREATE INDEX campaigns_status_idx ON :DISPARO_SCHEMA.campaigns (status, created_at, id);

-- No foreign keys: a per-row referential check would slow bulk imports, and `cleanup` deletes a
-- campaign's rows itself.
CREATE TABLE :DISPARO_SCHEMA.recipients (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  campaign_id text NOT NULL,
  seq integer NOT NULL,
  batch integer NOT NULL,
  phone text NOT NULL,
  vars jsonb NOT NULL,
  status text NOT NULL,
  skip_reason text,
  text text,
  attempts integer NOT NULL DEFAULT 0,
  last_error text,
  provider_message_id text,
  account_id text,
  lease_owner text,
  lease_expires_at bigint,
  sent_at bigint,
  delivered_at bigint,
  read_at bigint,
  processed_at bigint,
  updated_at bigint NOT NULL
);
-- (phone, campaign_id) rather than (campaign_id, phone): the same index dedupes imports and finds a
-- phone in every campaign (opt-outs, contact history).
CREATE UNIQUE INDEX recipients_phone_idx ON :DISPARO_SCHEMA.recipients (phone, campaign_id);
CREATE UNIQUE INDEX recipients_seq_idx ON :DISPARO_SCHEMA.recipients (campaign_id, seq);
-- The claim index. Claims read it from a keyset lower bound (see `claim`), not from the start.
CREATE INDEX recipients_pending_idx ON :DISPARO_SCHEMA.recipients (campaign_id, batch, seq) WHERE status = 'pending';
CREATE INDEX recipients_provider_idx ON :DISPARO_SCHEMA.recipients (provider_message_id) WHERE provider_message_id IS NOT NULL;
CREATE INDEX recipients_lease_idx ON :DISPARO_SCHEMA.recipients (lease_owner) WHERE lease_owner IS NOT NULL;
-- lease_expires_at is deliberately in no index, so heartbeats stay HOT updates.
CREATE INDEX recipients_sending_idx ON :DISPARO_SCHEMA.recipients (campaign_id) WHERE status = 'sending';
CREATE INDEX recipients_processed_idx ON :DISPARO_SCHEMA.recipients (campaign_id, processed_at) WHERE processed_at IS NOT NULL;

CREATE TABLE :DISPARO_SCHEMA.batches (
  campaign_id text NOT NULL,
  batch integer NOT NULL,
  started_at bigint,
  finished_at bigint,
  error text,
  PRIMARY KEY (campaign_id, batch)
);

CREATE TABLE :DISPARO_SCHEMA.campaign_counts (
  campaign_id text NOT NULL,
  shard smallint NOT NULL,
  n_total integer NOT NULL DEFAULT 0,
  n_pending integer NOT NULL DEFAULT 0,
  n_sending integer NOT NULL DEFAULT 0,
  n_sent integer NOT NULL DEFAULT 0,
  n_delivered integer NOT NULL DEFAULT 0,
  n_read integer NOT NULL DEFAULT 0,
  n_failed integer NOT NULL DEFAULT 0,
  n_skipped integer NOT NULL DEFAULT 0,
  n_unknown integer NOT NULL DEFAULT 0,
  PRIMARY KEY (campaign_id, shard)
);

CREATE TABLE :DISPARO_SCHEMA.batch_counts (
  campaign_id text NOT NULL,
  batch integer NOT NULL,
  shard smallint NOT NULL,
  n_total integer NOT NULL DEFAULT 0,
  n_pending integer NOT NULL DEFAULT 0,
  n_sending integer NOT NULL DEFAULT 0,
  n_sent integer NOT NULL DEFAULT 0,
  n_delivered integer NOT NULL DEFAULT 0,
  n_read integer NOT NULL DEFAULT 0,
  n_failed integer NOT NULL DEFAULT 0,
  n_skipped integer NOT NULL DEFAULT 0,
  n_unknown integer NOT NULL DEFAULT 0,
  PRIMARY KEY (campaign_id, batch, shard)
);

CREATE TABLE :DISPARO_SCHEMA.accounts (
  id text PRIMARY KEY,
  pacing jsonb NOT NULL,
  state text NOT NULL DEFAULT 'active',
  connection text NOT NULL DEFAULT 'unknown',
  consecutive_failures integer NOT NULL DEFAULT 0,
  disabled_until bigint,
  disabled_reason text,
  next_send_at bigint NOT NULL,
  hour_key text,
  sent_this_hour integer NOT NULL DEFAULT 0,
  day_key text,
  sent_today integer NOT NULL DEFAULT 0,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL
);

CREATE TABLE :DISPARO_SCHEMA.opt_outs (
  phone text PRIMARY KEY,
  reason text NOT NULL,
  source text NOT NULL,
  at bigint NOT NULL
);

-- One status change of one recipient (`from_status` null for an insert), as the functions pass them
-- to `_count_moves`.
CREATE TYPE :DISPARO_SCHEMA.move AS (campaign_id text, batch integer, from_status text, to_status text);
