-- Disparo's store on Supabase, in schema "disparo": @disparo/adapter-supabase.
-- DO NOT EDIT: generated at build time from the SQL of @disparo/adapter-postgres (sql/*.sql for the
-- tables, sql/functions/*.sql for the functions, one per file) by scripts/generate-migration.ts.
--
-- Apply with `supabase db push` (this file in supabase/migrations/) or paste it into the SQL editor.
-- Applying it again changes nothing; a newer version applied on top adds the new tables and replaces
-- the functions whose SQL changed. Tables and functions are recorded in schema_migrations and
-- schema_functions, as @disparo/adapter-postgres migrate() records them.
--
-- Access: only the service_role key reaches the store. Every function is SECURITY DEFINER with a fixed
-- search_path (pg_catalog, pg_temp); EXECUTE for service_role on the store's functions, for nobody
-- on the private helpers (_*); tables have row level security on and no policy, and no privilege for
-- anon or authenticated.
--
-- One step is yours: expose the schema to the Data API. Dashboard > Project Settings > Data API >
-- Exposed schemas: add disparo. Or in SQL (keep the schemas already listed):
--   ALTER ROLE authenticator SET pgrst.db_schemas = 'public, graphql_public, disparo';
--   NOTIFY pgrst, 'reload config';
-- Local development (supabase start): supabase/config.toml, [api] schemas = ["public", "graphql_public", "disparo"].

CREATE SCHEMA IF NOT EXISTS "disparo";
CREATE TABLE IF NOT EXISTS "disparo".schema_migrations (id integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());

-- A schema migrated by a newer version must not be touched by this one.
DO $disparo$
DECLARE v integer := (SELECT coalesce(max(id), 0) FROM "disparo".schema_migrations);
BEGIN
  IF v > 7 THEN
    RAISE EXCEPTION 'Schema % is at version %, newer than this migration (version 7).', 'disparo', v
      USING HINT = 'A newer @disparo/adapter-supabase migrated it: apply that version''s migration, and upgrade the workers.';
  END IF;
END
$disparo$;

CREATE OR REPLACE FUNCTION pg_temp.disparo_migration(p_id integer, p_name text, p_sql text) RETURNS void LANGUAGE plpgsql AS $disparo$
BEGIN
  PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('disparo.migrate:disparo'));
  IF EXISTS (SELECT FROM "disparo".schema_migrations WHERE id = p_id) THEN RETURN; END IF;
  EXECUTE p_sql;
  INSERT INTO "disparo".schema_migrations (id, name) VALUES (p_id, p_name);
END
$disparo$;

CREATE OR REPLACE FUNCTION pg_temp.disparo_function(p_name text, p_hash text, p_sql text) RETURNS void LANGUAGE plpgsql AS $disparo$
DECLARE sig regprocedure;
BEGIN
  PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('disparo.migrate:disparo'));
  IF (SELECT hash FROM "disparo".schema_functions WHERE name = p_name) IS NOT DISTINCT FROM p_hash
     AND EXISTS (SELECT FROM pg_catalog.pg_proc WHERE pronamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'disparo') AND proname = p_name) THEN
    RETURN;
  END IF;
  -- Bodies refer to each other: they are checked when called, not when created.
  PERFORM pg_catalog.set_config('check_function_bodies', 'off', true);
  FOR sig IN SELECT oid FROM pg_catalog.pg_proc WHERE pronamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'disparo') AND proname = p_name LOOP
    EXECUTE format('DROP FUNCTION %s', sig);
  END LOOP;
  EXECUTE p_sql;
  INSERT INTO "disparo".schema_functions (name, hash) VALUES (p_name, p_hash)
    ON CONFLICT (name) DO UPDATE SET hash = excluded.hash, applied_at = now();
END
$disparo$;

CREATE OR REPLACE FUNCTION pg_temp.disparo_lock_down(p_shipped text[]) RETURNS void LANGUAGE plpgsql AS $disparo$
DECLARE f record;
BEGIN
  PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('disparo.migrate:disparo'));
  -- Functions an earlier version created and this one no longer ships.
  FOR f IN SELECT p.oid::regprocedure AS sig FROM pg_catalog.pg_proc p JOIN "disparo".schema_functions k ON k.name = p.proname
           WHERE p.pronamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'disparo') AND NOT (k.name = ANY (p_shipped)) LOOP
    EXECUTE format('DROP FUNCTION %s', f.sig);
  END LOOP;
  DELETE FROM "disparo".schema_functions WHERE NOT (name = ANY (p_shipped));
  FOR f IN SELECT p.oid::regprocedure AS sig, p.proname FROM pg_catalog.pg_proc p WHERE p.pronamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'disparo') LOOP
    EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = pg_catalog, pg_temp', f.sig);
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC, anon, authenticated, service_role', f.sig);
    IF left(f.proname, 1) <> '_' THEN
      EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO service_role', f.sig);
    END IF;
  END LOOP;
  FOR f IN SELECT c.oid::regclass AS rel FROM pg_catalog.pg_class c WHERE c.relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'disparo') AND c.relkind IN ('r', 'p') LOOP
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', f.rel);
  END LOOP;
END
$disparo$;

-- 1. Tables and indexes: @disparo/adapter-postgres's migrations 1 to 7, each once.

-- sql/000001_initial.sql
SELECT pg_temp.disparo_migration(1, 'initial', $disparo_sql$
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

CREATE TABLE "disparo".campaigns (
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
CREATE INDEX campaigns_status_idx ON "disparo".campaigns (status, created_at, id);

-- No foreign keys: a per-row referential check would slow bulk imports, and `cleanup` deletes a
-- campaign's rows itself.
CREATE TABLE "disparo".recipients (
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
CREATE UNIQUE INDEX recipients_phone_idx ON "disparo".recipients (phone, campaign_id);
CREATE UNIQUE INDEX recipients_seq_idx ON "disparo".recipients (campaign_id, seq);
-- The claim index. Claims read it from a keyset lower bound (see `claim`), not from the start.
CREATE INDEX recipients_pending_idx ON "disparo".recipients (campaign_id, batch, seq) WHERE status = 'pending';
CREATE INDEX recipients_provider_idx ON "disparo".recipients (provider_message_id) WHERE provider_message_id IS NOT NULL;
CREATE INDEX recipients_lease_idx ON "disparo".recipients (lease_owner) WHERE lease_owner IS NOT NULL;
-- lease_expires_at is deliberately in no index, so heartbeats stay HOT updates.
CREATE INDEX recipients_sending_idx ON "disparo".recipients (campaign_id) WHERE status = 'sending';
CREATE INDEX recipients_processed_idx ON "disparo".recipients (campaign_id, processed_at) WHERE processed_at IS NOT NULL;

CREATE TABLE "disparo".batches (
  campaign_id text NOT NULL,
  batch integer NOT NULL,
  started_at bigint,
  finished_at bigint,
  error text,
  PRIMARY KEY (campaign_id, batch)
);

CREATE TABLE "disparo".campaign_counts (
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

CREATE TABLE "disparo".batch_counts (
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

CREATE TABLE "disparo".accounts (
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

CREATE TABLE "disparo".opt_outs (
  phone text PRIMARY KEY,
  reason text NOT NULL,
  source text NOT NULL,
  at bigint NOT NULL
);

-- One status change of one recipient (`from_status` null for an insert), as the functions pass them
-- to `_count_moves`.
CREATE TYPE "disparo".move AS (campaign_id text, batch integer, from_status text, to_status text);
$disparo_sql$);

-- sql/000002_hot_write_ahead.sql
SELECT pg_temp.disparo_migration(2, 'hot_write_ahead', $disparo_sql$
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

DROP INDEX "disparo".recipients_sending_idx;
ALTER TABLE "disparo".recipients SET (fillfactor = 80);
DROP INDEX "disparo".recipients_pending_idx;
CREATE INDEX recipients_open_idx ON "disparo".recipients (campaign_id, batch, seq) WHERE processed_at IS NULL;
$disparo_sql$);

-- sql/000003_functions_by_file.sql
SELECT pg_temp.disparo_migration(3, 'functions_by_file', $disparo_sql$
-- Disparo store schema, version 3: functions by file, an in-flight window per account.
--
-- Functions are no longer part of migrations: each lives once in sql/functions/<name>.sql and
-- migrate() creates or replaces it when its text changed, tracked by a hash in `schema_functions`.
-- A database migrated by an earlier version of this package held the functions of versions 1 and 2
-- (and two views): they go here, so only the functions of sql/functions remain.

DROP FUNCTION IF EXISTS "disparo".advance_many(jsonb);
DROP FUNCTION IF EXISTS "disparo".advance(text, bigint, bigint, jsonb, jsonb);
DROP FUNCTION IF EXISTS "disparo"._advance(text, bigint, bigint, jsonb, jsonb);
DROP FUNCTION IF EXISTS "disparo".advance_group(text, bigint, bigint,
  bigint[], text[], text[], boolean[], integer[], bigint[], text[], text[], text[], boolean[], text[], text[],
  text, text, integer, bigint, text, integer, bigint,
  bigint[], text[], text[], integer[], text[], bigint[], bigint[]);
DROP FUNCTION IF EXISTS "disparo".advance_batch(text, integer, integer, bigint, bigint);
DROP FUNCTION IF EXISTS "disparo".settle(jsonb, bigint);
DROP FUNCTION IF EXISTS "disparo".apply_receipts(jsonb, bigint);
DROP FUNCTION IF EXISTS "disparo".add_opt_outs(jsonb, bigint);
DROP FUNCTION IF EXISTS "disparo".claim(text, integer, text, integer, bigint, bigint, integer);
DROP FUNCTION IF EXISTS "disparo".import_json(text, jsonb, bigint);
DROP FUNCTION IF EXISTS "disparo"._import_staged(text, bigint);
DROP FUNCTION IF EXISTS "disparo"._count_moves_set("disparo".move[]);
DROP FUNCTION IF EXISTS "disparo"._count_moves("disparo".move[]);
DROP VIEW IF EXISTS "disparo".campaign_view;
DROP VIEW IF EXISTS "disparo".batch_view;

-- The functions migrate() created, with the hash of the text each was created from.
CREATE TABLE "disparo".schema_functions (
  name text PRIMARY KEY,
  hash text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);

-- An account's sends in flight (written ahead, no outcome yet: on the wire, or in doubt until
-- settled), counted by every write-ahead under the account's row lock (functions/checkpoint.sql).
-- `status` in its predicate means a write-ahead is no longer a HOT update (version 2): measured, a
-- few percent of a checkpoint's time, for a count that cannot drift from the rows.
CREATE INDEX recipients_in_flight_idx ON "disparo".recipients (account_id) WHERE status = 'sending';
$disparo_sql$);

-- sql/000004_held_receipts.sql
SELECT pg_temp.disparo_migration(4, 'held_receipts', $disparo_sql$
-- Disparo store schema, version 4: receipts held until their send's outcome is recorded.
--
-- A receipt that finds no row, or a `sending` one, is kept here and tried again by every later
-- apply_status_updates call, oldest first (core's holdsReceipt), until it applies, its row ignores
-- it, or it is older than core's HELD_RECEIPT_MS. Usually empty: a receipt rarely beats its outcome.
CREATE TABLE "disparo".held_receipts (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  provider_message_id text NOT NULL,
  idempotency_key text,
  status text NOT NULL,
  at bigint NOT NULL,
  error text,
  held_at bigint NOT NULL
);
CREATE INDEX held_receipts_held_at_idx ON "disparo".held_receipts (held_at);
$disparo_sql$);

-- sql/000005_range_leases.sql
SELECT pg_temp.disparo_migration(5, 'range_leases', $disparo_sql$
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
CREATE TABLE "disparo".leases (
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
CREATE INDEX leases_range_idx ON "disparo".leases (campaign_id, batch, lo);
CREATE INDEX leases_owner_idx ON "disparo".leases (owner);

-- A write-ahead no longer adds index entries for the claim and lease indexes: both now hold pending
-- rows only. Since version 3 a write-ahead changes an indexed column (`status`, in the predicate of
-- `recipients_in_flight_idx`), so it is never a HOT update and adds an entry to every index whose
-- predicate the `sending` row still meets; with range leases it also sets `lease_owner`. A claim
-- only wants pending rows, and the lease index is only searched for pending rows (release) or beside
-- `recipients_in_flight_idx`, which holds every `sending` row (heartbeat).
DROP INDEX "disparo".recipients_open_idx;
CREATE INDEX recipients_pending_idx ON "disparo".recipients (campaign_id, batch, seq) WHERE status = 'pending';
DROP INDEX "disparo".recipients_lease_idx;
CREATE INDEX recipients_lease_idx ON "disparo".recipients (lease_owner) WHERE status = 'pending' AND lease_owner IS NOT NULL;
$disparo_sql$);

-- sql/000006_in_flight.sql
SELECT pg_temp.disparo_migration(6, 'in_flight', $disparo_sql$
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
CREATE TABLE "disparo".in_flight (
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
CREATE INDEX in_flight_account_idx ON "disparo".in_flight (account_id);
-- A receipt for an id known before the send (Cloud API, Baileys) finds its send here.
CREATE INDEX in_flight_provider_idx ON "disparo".in_flight (provider_message_id) WHERE provider_message_id IS NOT NULL;

-- Sends in flight at the upgrade move here; their rows go back to `pending` on disk with the "not
-- leased" mark (000005_range_leases.sql), so no range takes them while they are in flight. The
-- attempt is the send's; the row's own count is rewritten by the outcome.
INSERT INTO "disparo".in_flight (recipient_id, campaign_id, batch, account_id, owner, expires_at, attempt, text, provider_message_id, started_at)
  SELECT r.id, r.campaign_id, r.batch, coalesce(r.account_id, ''), r.lease_owner, r.lease_expires_at, r.attempts, r.text, r.provider_message_id, r.updated_at
  FROM "disparo".recipients r WHERE r.status = 'sending';
UPDATE "disparo".recipients SET status = 'pending', lease_owner = NULL, lease_expires_at = 0 WHERE status = 'sending';
DROP INDEX "disparo".recipients_in_flight_idx;
$disparo_sql$);

-- sql/000007_checkpoint_columns.sql
SELECT pg_temp.disparo_migration(7, 'checkpoint_columns', $disparo_sql$
-- Disparo store schema, version 7: no table changes. The checkpoint's outcomes and items travel as
-- columns (functions/checkpoint.sql, checkpoint-codec.ts), which the checkpoint of version 6 cannot
-- read. The version moves so that a worker still on an older package, restarting during a rolling
-- upgrade, is refused by migrate() ("upgrade this worker") instead of putting its older functions
-- back over these. A worker of the older package that keeps running meanwhile still works: the new
-- checkpoint accepts its records (functions/_checkpoint_columns.sql).
-- (A migration names the schema: this one documents the table version 6 added, for whoever reads the
-- database without this repository.)
COMMENT ON TABLE "disparo".in_flight IS 'Disparo: one row per send written ahead and not yet recorded; its recipient shows as sending (000006_in_flight.sql).';
$disparo_sql$);

-- 2. Functions, one per file: created when new or changed since they were created here.

-- sql/functions/_campaign_json.sql
SELECT pg_temp.disparo_function('_campaign_json', '714b93e2b8138a4833437de741ed5e68', $disparo_sql$
-- A campaign as the contract's `Campaign` record (readable keys, times in epoch ms), with its
-- counters: the sum of its counter shards. Every function that returns a campaign returns this.
CREATE OR REPLACE FUNCTION "disparo"._campaign_json(c "disparo".campaigns)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
    'id', c.id, 'name', c.name, 'templates', c.templates, 'media', c.media, 'accountIds', c.account_ids,
    'status', c.status, 'pauseReason', c.pause_reason, 'settings', c.settings, 'scheduledAt', c.scheduled_at,
    'currentBatch', c.current_batch, 'nextBatchAt', c.next_batch_at,
    'counters', jsonb_build_object(
      'total', coalesce(sum(k.n_total), 0), 'pending', coalesce(sum(k.n_pending), 0), 'sending', coalesce(sum(k.n_sending), 0),
      'sent', coalesce(sum(k.n_sent), 0), 'delivered', coalesce(sum(k.n_delivered), 0), 'read', coalesce(sum(k.n_read), 0),
      'failed', coalesce(sum(k.n_failed), 0), 'skipped', coalesce(sum(k.n_skipped), 0), 'unknown', coalesce(sum(k.n_unknown), 0)),
    'lastError', c.last_error, 'metadata', c.metadata, 'createdAt', c.created_at, 'updatedAt', c.updated_at,
    'startedAt', c.started_at, 'finishedAt', c.finished_at)
  FROM "disparo".campaign_counts k
  WHERE k.campaign_id = c.id
$$;
$disparo_sql$);

-- sql/functions/_checkpoint_columns.sql
SELECT pg_temp.disparo_function('_checkpoint_columns', '6ee938f03a9a39d4139c63e78ea26b86', $disparo_sql$
-- checkpoint's inputs as records, the way versions of this package before columns sent them (an array
-- of `Outcome` objects, and a `WriteAhead` whose `items` is an array of objects), turned into the
-- columns checkpoint reads (checkpoint-codec.ts): one JSON array per field, in order, with
-- `hasError` saying whether an outcome carried an `error` key. An input already in columns, or null,
-- is returned as it is; an empty array is null. For workers still on an older version during a rolling
-- upgrade; the current codec sends columns.
CREATE OR REPLACE FUNCTION "disparo"._checkpoint_columns(p_outcomes jsonb, p_write_ahead jsonb,
  OUT outcomes jsonb, OUT write_ahead jsonb)
LANGUAGE sql IMMUTABLE AS $$
  SELECT
    CASE WHEN jsonb_typeof(p_outcomes) IS DISTINCT FROM 'array' THEN p_outcomes
         WHEN jsonb_array_length(p_outcomes) > 0 THEN (
      SELECT jsonb_build_object(
        'recipientId', jsonb_agg(e -> 'recipientId' ORDER BY i), 'campaignId', jsonb_agg(e -> 'campaignId' ORDER BY i),
        'status', jsonb_agg(e -> 'status' ORDER BY i), 'keepLease', jsonb_agg(e -> 'keepLease' ORDER BY i),
        'attempts', jsonb_agg(e -> 'attempts' ORDER BY i), 'at', jsonb_agg(e -> 'at' ORDER BY i),
        'accountId', jsonb_agg(e -> 'accountId' ORDER BY i), 'providerMessageId', jsonb_agg(e -> 'providerMessageId' ORDER BY i),
        'error', jsonb_agg(e -> 'error' ORDER BY i), 'hasError', jsonb_agg(e ? 'error' ORDER BY i),
        'skipReason', jsonb_agg(e -> 'skipReason' ORDER BY i), 'accountEffect', jsonb_agg(e -> 'accountEffect' ORDER BY i),
        'accountNextSendAt', jsonb_agg(e -> 'accountNextSendAt' ORDER BY i))
      FROM jsonb_array_elements(p_outcomes) WITH ORDINALITY AS x(e, i))
    END,
    CASE WHEN jsonb_typeof(p_write_ahead -> 'items') IS DISTINCT FROM 'array' THEN p_write_ahead
         WHEN jsonb_array_length(p_write_ahead -> 'items') = 0 THEN NULL
         ELSE jsonb_set(p_write_ahead, '{items}', (
      SELECT jsonb_build_object(
        'recipientId', jsonb_agg(e -> 'recipientId' ORDER BY i), 'campaignId', jsonb_agg(e -> 'campaignId' ORDER BY i),
        'text', jsonb_agg(e -> 'text' ORDER BY i), 'attempt', jsonb_agg(e -> 'attempt' ORDER BY i),
        'providerMessageId', jsonb_agg(e -> 'providerMessageId' ORDER BY i),
        'gapMs', jsonb_agg(e -> 'gapMs' ORDER BY i), 'leadMs', jsonb_agg(e -> 'leadMs' ORDER BY i))
      FROM jsonb_array_elements(p_write_ahead -> 'items') WITH ORDINALITY AS x(e, i)))
    END
$$;
$disparo_sql$);

-- sql/functions/_count_moves.sql
SELECT pg_temp.disparo_function('_count_moves', 'c006979ae5ac9371132002e163f1975f', $disparo_sql$
-- Add the counter deltas of `p_moves` (recipient status changes) to this backend's shards of
-- `campaign_counts` and `batch_counts`, so that counters always equal the rows (I2). Every function
-- that changes a status calls it once, last in its transaction, so its row locks (taken in key
-- order) never wait behind a recipient's or an account's lock. A move with `from_status` null is an
-- insert, with `to_status` null a delete.
--
-- A per-message checkpoint moves one or two rows of one batch: those are added up here without a
-- query and written to the shard's rows by key; anything larger (or a shard's first rows of a batch)
-- is added up and upserted set-based.
CREATE OR REPLACE FUNCTION "disparo"._count_moves(p_moves "disparo".move[])
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  v_shard smallint := (pg_backend_pid() % 16)::smallint;
  v_move "disparo".move;
  v_campaign text;
  v_batch integer;
  v_small boolean;
  -- Deltas: total, pending, sending, sent, delivered, read, failed, skipped, unknown.
  v_delta integer[] := '{0,0,0,0,0,0,0,0,0}';
  v_from integer;
  v_to integer;
BEGIN
  IF p_moves IS NULL OR cardinality(p_moves) = 0 THEN
    RETURN;
  END IF;
  v_campaign := p_moves[1].campaign_id;
  v_batch := p_moves[1].batch;
  v_small := cardinality(p_moves) <= 4;
  IF v_small THEN
    FOREACH v_move IN ARRAY p_moves LOOP
      IF v_move.campaign_id IS DISTINCT FROM v_campaign OR v_move.batch IS DISTINCT FROM v_batch THEN
        v_small := false;
        EXIT;
      END IF;
      CONTINUE WHEN v_move.from_status IS NOT DISTINCT FROM v_move.to_status;
      v_from := array_position(ARRAY['pending', 'sending', 'sent', 'delivered', 'read', 'failed', 'skipped', 'unknown'], v_move.from_status) + 1;
      v_to := array_position(ARRAY['pending', 'sending', 'sent', 'delivered', 'read', 'failed', 'skipped', 'unknown'], v_move.to_status) + 1;
      IF v_move.from_status IS NULL THEN v_delta[1] := v_delta[1] + 1; ELSE v_delta[v_from] := v_delta[v_from] - 1; END IF;
      IF v_move.to_status IS NULL THEN v_delta[1] := v_delta[1] - 1; ELSE v_delta[v_to] := v_delta[v_to] + 1; END IF;
    END LOOP;
  END IF;

  IF v_small THEN
    IF v_delta = '{0,0,0,0,0,0,0,0,0}'::integer[] THEN
      RETURN;
    END IF;
    -- The shard's rows exist but for a backend's first moves in a batch: an UPDATE by key is cheaper
    -- than an upsert that finds its conflict. (A batch's shard row never exists without its campaign's:
    -- both are written together, here and by the import, and deleted together.)
    UPDATE "disparo".batch_counts k SET
      n_total = k.n_total + v_delta[1], n_pending = k.n_pending + v_delta[2], n_sending = k.n_sending + v_delta[3],
      n_sent = k.n_sent + v_delta[4], n_delivered = k.n_delivered + v_delta[5], n_read = k.n_read + v_delta[6],
      n_failed = k.n_failed + v_delta[7], n_skipped = k.n_skipped + v_delta[8], n_unknown = k.n_unknown + v_delta[9]
    WHERE k.campaign_id = v_campaign AND k.batch = v_batch AND k.shard = v_shard;
    IF FOUND THEN
      UPDATE "disparo".campaign_counts k SET
        n_total = k.n_total + v_delta[1], n_pending = k.n_pending + v_delta[2], n_sending = k.n_sending + v_delta[3],
        n_sent = k.n_sent + v_delta[4], n_delivered = k.n_delivered + v_delta[5], n_read = k.n_read + v_delta[6],
        n_failed = k.n_failed + v_delta[7], n_skipped = k.n_skipped + v_delta[8], n_unknown = k.n_unknown + v_delta[9]
      WHERE k.campaign_id = v_campaign AND k.shard = v_shard;
      IF NOT FOUND THEN
        INSERT INTO "disparo".campaign_counts AS k
          (campaign_id, shard, n_total, n_pending, n_sending, n_sent, n_delivered, n_read, n_failed, n_skipped, n_unknown)
        VALUES (v_campaign, v_shard, v_delta[1], v_delta[2], v_delta[3], v_delta[4], v_delta[5], v_delta[6], v_delta[7], v_delta[8], v_delta[9])
        ON CONFLICT (campaign_id, shard) DO UPDATE SET
          n_total = k.n_total + excluded.n_total, n_pending = k.n_pending + excluded.n_pending,
          n_sending = k.n_sending + excluded.n_sending, n_sent = k.n_sent + excluded.n_sent,
          n_delivered = k.n_delivered + excluded.n_delivered, n_read = k.n_read + excluded.n_read,
          n_failed = k.n_failed + excluded.n_failed, n_skipped = k.n_skipped + excluded.n_skipped,
          n_unknown = k.n_unknown + excluded.n_unknown;
      END IF;
      RETURN;
    END IF;
    -- The batch's shard row is new: both rows are upserted below (nothing was written yet).
  END IF;

  WITH d AS (
    SELECT m.campaign_id, m.batch,
      (count(*) FILTER (WHERE m.from_status IS NULL) - count(*) FILTER (WHERE m.to_status IS NULL))::int AS n_total,
      (count(*) FILTER (WHERE m.to_status = 'pending') - count(*) FILTER (WHERE m.from_status = 'pending'))::int AS n_pending,
      (count(*) FILTER (WHERE m.to_status = 'sending') - count(*) FILTER (WHERE m.from_status = 'sending'))::int AS n_sending,
      (count(*) FILTER (WHERE m.to_status = 'sent') - count(*) FILTER (WHERE m.from_status = 'sent'))::int AS n_sent,
      (count(*) FILTER (WHERE m.to_status = 'delivered') - count(*) FILTER (WHERE m.from_status = 'delivered'))::int AS n_delivered,
      (count(*) FILTER (WHERE m.to_status = 'read') - count(*) FILTER (WHERE m.from_status = 'read'))::int AS n_read,
      (count(*) FILTER (WHERE m.to_status = 'failed') - count(*) FILTER (WHERE m.from_status = 'failed'))::int AS n_failed,
      (count(*) FILTER (WHERE m.to_status = 'skipped') - count(*) FILTER (WHERE m.from_status = 'skipped'))::int AS n_skipped,
      (count(*) FILTER (WHERE m.to_status = 'unknown') - count(*) FILTER (WHERE m.from_status = 'unknown'))::int AS n_unknown
    FROM unnest(p_moves) AS m
    WHERE m.from_status IS DISTINCT FROM m.to_status
    GROUP BY m.campaign_id, m.batch
  ), b AS (
    INSERT INTO "disparo".batch_counts AS k
      (campaign_id, batch, shard, n_total, n_pending, n_sending, n_sent, n_delivered, n_read, n_failed, n_skipped, n_unknown)
    SELECT d.campaign_id, d.batch, v_shard, d.n_total, d.n_pending, d.n_sending, d.n_sent, d.n_delivered, d.n_read,
      d.n_failed, d.n_skipped, d.n_unknown
    FROM d ORDER BY d.campaign_id, d.batch
    ON CONFLICT (campaign_id, batch, shard) DO UPDATE SET
      n_total = k.n_total + excluded.n_total, n_pending = k.n_pending + excluded.n_pending,
      n_sending = k.n_sending + excluded.n_sending, n_sent = k.n_sent + excluded.n_sent,
      n_delivered = k.n_delivered + excluded.n_delivered, n_read = k.n_read + excluded.n_read,
      n_failed = k.n_failed + excluded.n_failed, n_skipped = k.n_skipped + excluded.n_skipped,
      n_unknown = k.n_unknown + excluded.n_unknown
  )
  INSERT INTO "disparo".campaign_counts AS k
    (campaign_id, shard, n_total, n_pending, n_sending, n_sent, n_delivered, n_read, n_failed, n_skipped, n_unknown)
  SELECT d.campaign_id, v_shard, sum(d.n_total), sum(d.n_pending), sum(d.n_sending), sum(d.n_sent), sum(d.n_delivered),
    sum(d.n_read), sum(d.n_failed), sum(d.n_skipped), sum(d.n_unknown)
  FROM d GROUP BY d.campaign_id ORDER BY d.campaign_id
  ON CONFLICT (campaign_id, shard) DO UPDATE SET
    n_total = k.n_total + excluded.n_total, n_pending = k.n_pending + excluded.n_pending,
    n_sending = k.n_sending + excluded.n_sending, n_sent = k.n_sent + excluded.n_sent,
    n_delivered = k.n_delivered + excluded.n_delivered, n_read = k.n_read + excluded.n_read,
    n_failed = k.n_failed + excluded.n_failed, n_skipped = k.n_skipped + excluded.n_skipped,
    n_unknown = k.n_unknown + excluded.n_unknown;
END
$$;
$disparo_sql$);

-- sql/functions/_import_staged.sql
SELECT pg_temp.disparo_function('_import_staged', '28bfed1ce6911e0409cc61371030a80c', $disparo_sql$
-- Import the rows staged in the session's `pg_temp.disparo_import` (ord, phone, vars) into a campaign:
-- the one import path, behind both the COPY fast path (node-postgres pools) and add_recipients (JSON).
-- Returns {"inserted", "duplicates", "optedOut"}; raises P0002 when the campaign does not exist.
--
-- The campaign row is locked first, so concurrent imports into one campaign take turns: each sees the
-- phones the previous one committed, and seq stays gapless. The first occurrence of a phone wins; a
-- phone already in the campaign, or repeated, is a duplicate; a phone on the suppression list is
-- counted once as opted out (its repeats are duplicates). A row joins batch ceil(seq / batchSize), or
-- the current batch when the campaign has left that one (core's batchForRow), so it is still sent.
CREATE OR REPLACE FUNCTION "disparo"._import_staged(p_campaign_id text, p_now bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_last integer;
  v_current integer;
  v_size integer;
  v_total integer;
  v_inserted integer;
  v_opted_out integer;
  v_batches integer[];
  v_counts integer[];
  v_shard smallint := (pg_backend_pid() % 16)::smallint;
BEGIN
  SELECT c.last_seq, c.current_batch, greatest(1, coalesce((c.settings ->> 'batchSize')::integer, 1))
    INTO v_last, v_current, v_size
    FROM "disparo".campaigns c WHERE c.id = p_campaign_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'campaign % not found', p_campaign_id USING ERRCODE = 'P0002';
  END IF;
  SELECT count(*) INTO v_total FROM pg_temp.disparo_import;

  WITH firsts AS (
    SELECT DISTINCT ON (s.phone) s.ord, s.phone, s.vars FROM pg_temp.disparo_import s ORDER BY s.phone, s.ord
  ), fresh AS (
    -- Each phone is looked up in the unique index (the LIMIT keeps it a per-row probe): planned as an
    -- anti-join, it hashed every row the campaign already had, so each chunk of a long import read all
    -- the chunks before it.
    SELECT f.ord, f.phone, f.vars,
      EXISTS (SELECT 1 FROM "disparo".opt_outs o WHERE o.phone = f.phone) AS opted
    FROM firsts f
    LEFT JOIN LATERAL (SELECT 1 AS hit FROM "disparo".recipients r WHERE r.phone = f.phone AND r.campaign_id = p_campaign_id LIMIT 1) d ON true
    WHERE d.hit IS NULL
  ), numbered AS (
    SELECT f.phone, f.vars, (v_last + row_number() OVER (ORDER BY f.ord))::integer AS seq
    FROM fresh f WHERE NOT f.opted
  ), ins AS (
    INSERT INTO "disparo".recipients (campaign_id, seq, batch, phone, vars, status, updated_at)
    SELECT p_campaign_id, n.seq, greatest((n.seq + v_size - 1) / v_size, v_current), n.phone, n.vars, 'pending', p_now
    FROM numbered n ORDER BY n.seq
    RETURNING batch
  ), per_batch AS (
    SELECT i.batch, count(*)::integer AS n FROM ins i GROUP BY i.batch
  ), new_batches AS (
    INSERT INTO "disparo".batches (campaign_id, batch)
    SELECT p_campaign_id, pb.batch FROM per_batch pb ORDER BY pb.batch
    ON CONFLICT (campaign_id, batch) DO NOTHING
  )
  SELECT coalesce((SELECT sum(pb.n) FROM per_batch pb), 0)::integer,
    (SELECT count(*) FROM fresh f WHERE f.opted)::integer,
    (SELECT array_agg(pb.batch ORDER BY pb.batch) FROM per_batch pb),
    (SELECT array_agg(pb.n ORDER BY pb.batch) FROM per_batch pb)
    INTO v_inserted, v_opted_out, v_batches, v_counts;

  IF v_inserted > 0 THEN
    UPDATE "disparo".campaigns SET last_seq = last_seq + v_inserted WHERE id = p_campaign_id;
    -- The new rows' counts into the same shards _count_moves writes, one delta per batch rather than
    -- one move per row (an import chunk holds thousands).
    INSERT INTO "disparo".batch_counts AS k (campaign_id, batch, shard, n_total, n_pending)
      SELECT p_campaign_id, x.batch, v_shard, x.n, x.n FROM unnest(v_batches, v_counts) AS x(batch, n) ORDER BY x.batch
      ON CONFLICT (campaign_id, batch, shard) DO UPDATE SET n_total = k.n_total + excluded.n_total, n_pending = k.n_pending + excluded.n_pending;
    INSERT INTO "disparo".campaign_counts AS k (campaign_id, shard, n_total, n_pending) VALUES (p_campaign_id, v_shard, v_inserted, v_inserted)
      ON CONFLICT (campaign_id, shard) DO UPDATE SET n_total = k.n_total + excluded.n_total, n_pending = k.n_pending + excluded.n_pending;
  END IF;
  -- Emptied at commit too (ON COMMIT DELETE ROWS); emptied now for callers inside a longer transaction.
  DELETE FROM pg_temp.disparo_import;
  RETURN jsonb_build_object('inserted', v_inserted, 'duplicates', v_total - v_inserted - v_opted_out, 'optedOut', v_opted_out);
END
$$;
$disparo_sql$);

-- sql/functions/_range_count.sql
SELECT pg_temp.disparo_function('_range_count', '5caaa2ab6325118ff37a5158b79a4601', $disparo_sql$
-- How many rows a range leases (000005_range_leases.sql): the pending rows of its batch, within its
-- seqs, that carry no lease of their own and are not in flight (a send carries its own lease). The heartbeat keeps a range while this is above 0 and
-- returns it as the rows extended; release returns it as the rows freed.
CREATE OR REPLACE FUNCTION "disparo"._range_count(l "disparo".leases)
RETURNS integer
LANGUAGE sql STABLE AS $$
  SELECT count(*)::integer FROM "disparo".recipients r
  WHERE r.campaign_id = l.campaign_id AND r.batch = l.batch AND r.seq BETWEEN l.lo AND l.hi
    AND r.status = 'pending' AND r.lease_expires_at IS NULL AND NOT EXISTS (SELECT 1 FROM "disparo".in_flight f WHERE f.recipient_id = r.id)
$$;
$disparo_sql$);

-- sql/functions/_row_id.sql
SELECT pg_temp.disparo_function('_row_id', 'adffb46b85bd614d29b7fe87e43ad047', $disparo_sql$
-- A recipient id as the wire carries it (text) to the bigint key; an id that is not one matches no
-- row (null equals nothing), so a caller's bad id is "not found", never an error.
CREATE OR REPLACE FUNCTION "disparo"._row_id(p_id text)
RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN p_id ~ '^[0-9]{1,18}$' THEN p_id::bigint END
$$;
$disparo_sql$);

-- sql/functions/_shown.sql
SELECT pg_temp.disparo_function('_shown', '1916ee80678de521e707ba1d131f0886', $disparo_sql$
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
CREATE OR REPLACE FUNCTION "disparo"._shown(r "disparo".recipients)
RETURNS SETOF "disparo".recipients
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
  LEFT JOIN "disparo".in_flight f ON f.recipient_id = r.id
  LEFT JOIN LATERAL (
    SELECT c.owner, c.expires_at FROM (
      SELECT x.owner, x.expires_at, x.hi FROM "disparo".leases x
      WHERE f.recipient_id IS NULL AND r.lease_expires_at IS NULL AND r.status = 'pending'
        AND x.campaign_id = r.campaign_id AND x.batch = r.batch AND x.lo <= r.seq
      ORDER BY x.lo DESC LIMIT 1
    ) c WHERE c.hi >= r.seq
  ) l ON true
$$;
$disparo_sql$);

-- sql/functions/_skip_opted_out.sql
SELECT pg_temp.disparo_function('_skip_opted_out', 'ff82d2bb531a009546d8629bee72e38f', $disparo_sql$
-- Skip pending rows whose contact opted out: `skipped`, reason `opted_out`, lease dropped (core's
-- OPT_OUT_CANCELS: only `pending` rows; a `sending` one, in flight, is already on the wire). The one home of the
-- opt-out skip, for claim_recipients and add_opt_outs. Callers hold the rows' locks. Returns the
-- status moves, for the caller to count.
CREATE OR REPLACE FUNCTION "disparo"._skip_opted_out(p_ids bigint[], p_now bigint)
RETURNS "disparo".move[]
LANGUAGE sql AS $$
  WITH u AS (
    UPDATE "disparo".recipients SET status = 'skipped', skip_reason = 'opted_out', last_error = 'contact opted out',
      lease_owner = NULL, lease_expires_at = NULL, processed_at = p_now, updated_at = p_now
    WHERE id = ANY (p_ids) AND status = 'pending' AND NOT EXISTS (SELECT 1 FROM "disparo".in_flight f WHERE f.recipient_id = "disparo".recipients.id)
    RETURNING campaign_id, batch
  )
  SELECT coalesce(array_agg(CAST(ROW(u.campaign_id, u.batch, 'pending', 'skipped') AS "disparo".move)), '{}') FROM u
$$;
$disparo_sql$);

-- sql/functions/account_send_times.sql
SELECT pg_temp.disparo_function('account_send_times', '82fb345ffa6b7453ac9ae03193f9fd1e', $disparo_sql$
-- StateStore.accountSendTimes: `sent_at` of the account's sends (sent, delivered or read) at or after
-- `p_since`, ascending, at most `p_limit` (a report, not the hot path: no index serves it).
CREATE OR REPLACE FUNCTION "disparo".account_send_times(p_account_id text, p_since bigint, p_limit integer)
RETURNS TABLE (sent_at bigint)
LANGUAGE sql STABLE AS $$
  SELECT r.sent_at FROM "disparo".recipients r
  WHERE r.account_id = p_account_id AND r.status IN ('sent', 'delivered', 'read') AND r.sent_at >= p_since
  ORDER BY r.sent_at
  LIMIT CASE WHEN p_limit < 0 THEN 0 ELSE p_limit END
$$;
$disparo_sql$);

-- sql/functions/add_opt_outs.sql
SELECT pg_temp.disparo_function('add_opt_outs', '07a0c00b24b6aee260e183b8fb4e0002', $disparo_sql$
-- StateStore.addOptOuts: `p_entries` is an array of `OptOut` ({"phone", "reason", "source", "at"}).
-- Adds the phones to the suppression list (the first entry of a phone wins; one already listed is
-- kept) and skips their pending sends, leased or not, in every campaign (_skip_opted_out). Rows on
-- the wire are left to their worker; the next claim catches them if they come back.
-- Returns {"added", "cancelled"}.
CREATE OR REPLACE FUNCTION "disparo".add_opt_outs(p_entries jsonb, p_now bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_added integer;
  v_ids bigint[];
  v_moves "disparo".move[];
BEGIN
  WITH e AS (
    SELECT DISTINCT ON (x.e ->> 'phone') x.e ->> 'phone' AS phone, x.e ->> 'reason' AS reason, x.e ->> 'source' AS source,
      (x.e ->> 'at')::bigint AS at
    FROM jsonb_array_elements(coalesce(p_entries, '[]')) WITH ORDINALITY AS x(e, i)
    ORDER BY x.e ->> 'phone', x.i
  ), ins AS (
    INSERT INTO "disparo".opt_outs (phone, reason, source, at)
    SELECT e.phone, e.reason, e.source, e.at FROM e ORDER BY e.phone
    ON CONFLICT (phone) DO NOTHING
    RETURNING 1
  )
  SELECT count(*) INTO v_added FROM ins;

  -- The phone index finds the phone in every campaign; the rows are locked in key order.
  SELECT coalesce(array_agg(l.id), '{}') INTO v_ids FROM (
    SELECT r.id FROM "disparo".recipients r
    WHERE r.phone = ANY (ARRAY(SELECT x ->> 'phone' FROM jsonb_array_elements(coalesce(p_entries, '[]')) x)) AND r.status = 'pending'
    ORDER BY r.id FOR UPDATE
  ) l;
  v_moves := "disparo"._skip_opted_out(v_ids, p_now);
  PERFORM "disparo"._count_moves(v_moves);
  RETURN jsonb_build_object('added', v_added, 'cancelled', cardinality(v_moves));
END
$$;
$disparo_sql$);

-- sql/functions/add_recipients.sql
SELECT pg_temp.disparo_function('add_recipients', '7a2bcf2238cd39c28401c293d32270d9', $disparo_sql$
-- StateStore.addRecipients with the rows as JSON: `p_rows` is an array of `NewRecipient`
-- ({"phone", "vars"}). Stages them in the session's temporary table and imports them with
-- _import_staged, the same path as COPY (which node-postgres pools use instead). For PGlite, single
-- connections and PostgREST (Supabase).
CREATE OR REPLACE FUNCTION "disparo".add_recipients(p_campaign_id text, p_rows jsonb, p_now bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
  IF to_regclass('pg_temp.disparo_import') IS NULL THEN
    CREATE TEMPORARY TABLE disparo_import (ord integer NOT NULL, phone text NOT NULL, vars jsonb NOT NULL) ON COMMIT DELETE ROWS;
  END IF;
  INSERT INTO pg_temp.disparo_import (ord, phone, vars)
  SELECT e.ord::integer, e.value ->> 'phone', coalesce(e.value -> 'vars', '{}'::jsonb)
  FROM jsonb_array_elements(coalesce(p_rows, '[]')) WITH ORDINALITY AS e(value, ord);
  RETURN "disparo"._import_staged(p_campaign_id, p_now);
END
$$;
$disparo_sql$);

-- sql/functions/apply_status_updates.sql
SELECT pg_temp.disparo_function('apply_status_updates', '997124586ab02da346e573093ea90960', $disparo_sql$
-- StateStore.applyStatusUpdates: provider receipts, `p_updates` an array of `StatusUpdate`
-- ({"providerMessageId", "status": sent|delivered|read|failed, "at", "error", "idempotencyKey"}),
-- applied in order (a repeat inside one call is a repeat), after the receipts held by earlier calls
-- (oldest first). A receipt no row's provider id matches, but carrying an idempotency key
-- `campaignId:phone`, matches that recipient (its send's answer was lost); a row in doubt (sending or
-- unknown) then learns the provider id. What a receipt does is core's DELIVERY_TRANSITIONS: forward
-- only (sent < delivered < read), failed only before delivered, an unknown row settled forward by any
-- receipt. One that finds no row, or a `sending` row (its outcome not recorded yet), is held in
-- `held_receipts` (core's holdsReceipt) until it applies, its row ignores it, or it is older than
-- `p_held_ms` (core's HELD_RECEIPT_MS). A call with no updates (the engine's housekeeping) tries again
-- the held receipts whose row can now take them, oldest first: found by the provider index, so
-- receipts that never find a row (messages sent outside the campaigns) cost an index probe each.
-- Returns {"applied", "ignored", "unmatched", "held", "changed": [{"recipientId", "campaignId", "from", "to"}]}.
CREATE OR REPLACE FUNCTION "disparo".apply_status_updates(p_updates jsonb, p_now bigint, p_held_ms bigint DEFAULT 600000)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  u record;
  v_id bigint;
  v_campaign text;
  v_batch integer;
  v_from text;
  v_to text;
  v_applied integer := 0;
  v_ignored integer := 0;
  v_unmatched integer := 0;
  v_held integer := 0;
  v_changed jsonb := '[]'::jsonb;
  v_moves "disparo".move[] := '{}';
  v_known text;
  v_retry bigint[];
  v_found boolean;
  v_pids text[];
  v_keys text[];
  v_locked bigint[];
BEGIN
  -- Expired ones go (one a concurrent call holds is left to it: no call waits on another here).
  DELETE FROM "disparo".held_receipts WHERE id IN (
    SELECT h.id FROM "disparo".held_receipts h WHERE h.held_at <= p_now - p_held_ms FOR UPDATE SKIP LOCKED);
  -- The held receipts this call tries (a call with no updates: those whose row, by provider id or by
  -- key, is no longer `sending`; one taken by a concurrent call is left to it), then the rows, in key
  -- order, so two calls with the same ids in another order never deadlock (nor one with a checkpoint,
  -- which locks its rows in key order too).
  IF coalesce(jsonb_array_length(p_updates), 0) = 0 THEN
    SELECT coalesce(array_agg(h.id ORDER BY h.id), '{}') INTO v_retry
      FROM (SELECT h.id FROM "disparo".held_receipts h
            WHERE EXISTS (SELECT 1 FROM "disparo".recipients r WHERE r.provider_message_id = h.provider_message_id
                            AND NOT EXISTS (SELECT 1 FROM "disparo".in_flight f WHERE f.recipient_id = r.id))
               OR (h.idempotency_key LIKE '%:%' AND EXISTS (SELECT 1 FROM "disparo".recipients r
                     WHERE r.phone = substring(h.idempotency_key from '[^:]*$')
                       AND r.campaign_id = left(h.idempotency_key, length(h.idempotency_key) - length(substring(h.idempotency_key from '[^:]*$')) - 1)
                       AND NOT EXISTS (SELECT 1 FROM "disparo".in_flight f WHERE f.recipient_id = r.id)))
            ORDER BY h.id FOR UPDATE SKIP LOCKED) h;
  ELSE
    v_retry := '{}';
  END IF;
  SELECT coalesce(array_agg(q.pid), '{}'), coalesce(array_agg(q.idem), '{}') INTO v_pids, v_keys FROM (
    SELECT e ->> 'providerMessageId' AS pid, e ->> 'idempotencyKey' AS idem FROM jsonb_array_elements(coalesce(p_updates, '[]')) e
    UNION ALL
    SELECT h.provider_message_id, h.idempotency_key FROM "disparo".held_receipts h WHERE h.id = ANY (v_retry)) q;
  -- Every row the loop may write, locked here in key order before any is written (a checkpoint locks
  -- its rows in key order too: the two never wait on each other in a cycle): the rows carrying one of
  -- the provider ids (on the row or on its send in flight), and the recipient each idempotency key
  -- names, the loop's fallback (whether or not the id finds a row: checking would cost a probe too).
  SELECT coalesce(array_agg(r.id ORDER BY r.id), '{}') INTO v_locked
    FROM (SELECT r.id FROM "disparo".recipients r
          WHERE r.id IN (SELECT x.id FROM "disparo".recipients x WHERE x.provider_message_id = ANY (v_pids)
                         UNION ALL
                         SELECT f.recipient_id FROM "disparo".in_flight f WHERE f.provider_message_id = ANY (v_pids)
                         UNION ALL
                         SELECT x.id FROM unnest(v_keys) k(idem) JOIN "disparo".recipients x
                           ON x.phone = substring(k.idem from '[^:]*$')
                          AND x.campaign_id = left(k.idem, length(k.idem) - length(substring(k.idem from '[^:]*$')) - 1)
                         WHERE k.idem LIKE '%:%')
          ORDER BY r.id FOR UPDATE) r;
  FOR u IN
    SELECT q.held_id, q.pid, q.status, q.at, q.error, q.idem FROM (
      SELECT h.id AS held_id, 0 AS part, h.id AS i, h.provider_message_id AS pid, h.status, h.at, h.error, h.idempotency_key AS idem
        FROM "disparo".held_receipts h WHERE h.id = ANY (v_retry)
      UNION ALL
      SELECT NULL, 1, x.i, e ->> 'providerMessageId', e ->> 'status', (e ->> 'at')::bigint, e ->> 'error', e ->> 'idempotencyKey'
        FROM jsonb_array_elements(coalesce(p_updates, '[]')) WITH ORDINALITY AS x(e, i)
    ) q ORDER BY q.part, q.i
  LOOP
    -- The receipt's row, read under its lock: a status read without it may be moved on by a
    -- concurrent receipt before this one writes, and written over (backwards, and counted twice).
    LOOP
      SELECT w.id, w.campaign_id, w.batch, w.status, w.provider_message_id INTO v_id, v_campaign, v_batch, v_from, v_known
        FROM "disparo".get_recipient_by_provider_id(u.pid) w;
      IF NOT FOUND AND u.idem LIKE '%:%' THEN
        -- The key is `campaignId:phone`; campaign ids may hold ':', phones never do.
        SELECT r.id, r.campaign_id, r.batch, w.status, w.provider_message_id INTO v_id, v_campaign, v_batch, v_from, v_known
          FROM "disparo".recipients r CROSS JOIN LATERAL "disparo"._shown(r) w
          WHERE r.phone = substring(u.idem from '[^:]*$') AND r.campaign_id = left(u.idem, length(u.idem) - length(substring(u.idem from '[^:]*$')) - 1);
      END IF;
      v_found := FOUND;
      EXIT WHEN NOT v_found OR v_id = ANY (v_locked);
      -- A row not locked above: it took the provider id since (its outcome committed meanwhile). Lock
      -- it, then read again, as it is now. (Out of key order: the one exception, a row that took its
      -- id while this call ran.)
      PERFORM 1 FROM "disparo".recipients r WHERE r.id = v_id FOR UPDATE;
      v_locked := v_locked || v_id;
    END LOOP;
    IF NOT v_found OR v_from = 'sending' THEN
      -- Not yet (holdsReceipt): a row in doubt learns the provider id; a new receipt is held.
      IF v_found AND v_known IS NULL THEN
        -- (A row `sending` is in flight: the id goes with its send, 000006_in_flight.sql.)
        UPDATE "disparo".in_flight SET provider_message_id = u.pid WHERE recipient_id = v_id;
        IF NOT FOUND THEN
          UPDATE "disparo".recipients SET provider_message_id = u.pid WHERE id = v_id;
        END IF;
      END IF;
      IF u.held_id IS NULL THEN
        INSERT INTO "disparo".held_receipts (provider_message_id, idempotency_key, status, at, error, held_at)
          VALUES (u.pid, u.idem, u.status, u.at, u.error, p_now);
        v_held := v_held + 1;
        IF v_found THEN v_ignored := v_ignored + 1; ELSE v_unmatched := v_unmatched + 1; END IF;
      END IF;
      CONTINUE;
    END IF;
    IF u.held_id IS NOT NULL THEN
      DELETE FROM "disparo".held_receipts WHERE id = u.held_id;
    END IF;
    IF v_known IS NULL AND v_from = 'unknown' THEN
      UPDATE "disparo".recipients SET provider_message_id = u.pid WHERE id = v_id;
    END IF;
    v_to := CASE
      WHEN v_from = 'unknown' AND u.status IN ('sent', 'delivered', 'read', 'failed') THEN u.status
      WHEN v_from = 'sent' AND u.status IN ('delivered', 'read', 'failed') THEN u.status
      WHEN v_from = 'delivered' AND u.status = 'read' THEN 'read'
    END;
    IF v_to IS NULL THEN
      IF u.held_id IS NULL THEN v_ignored := v_ignored + 1; END IF;
      CONTINUE;
    END IF;
    UPDATE "disparo".recipients SET
      status = v_to,
      last_error = CASE WHEN v_to = 'failed' THEN coalesce(u.error, 'the provider reported the message failed') ELSE last_error END,
      sent_at = CASE WHEN v_to = 'failed' THEN sent_at ELSE coalesce(sent_at, u.at) END,
      delivered_at = CASE WHEN v_to IN ('delivered', 'read') THEN coalesce(delivered_at, u.at) ELSE delivered_at END,
      read_at = CASE WHEN v_to = 'read' THEN u.at ELSE read_at END,
      updated_at = p_now
    WHERE id = v_id;
    v_applied := v_applied + 1;
    v_changed := v_changed || jsonb_build_array(jsonb_build_object('recipientId', v_id::text, 'campaignId', v_campaign, 'from', v_from, 'to', v_to));
    v_moves := v_moves || CAST(ROW(v_campaign, v_batch, v_from, v_to) AS "disparo".move);
  END LOOP;
  PERFORM "disparo"._count_moves(v_moves);
  RETURN jsonb_build_object('applied', v_applied, 'ignored', v_ignored, 'unmatched', v_unmatched, 'held', v_held, 'changed', v_changed);
END
$$;
$disparo_sql$);

-- sql/functions/checkpoint.sql
SELECT pg_temp.disparo_function('checkpoint', '5c2baee209c9936e373cf28c7010dfe2', $disparo_sql$
-- StateStore.checkpoint, the one write of the send path, atomic: first record `p_outcomes` (the
-- contract's `Outcome` records as columns: one JSON array per field, checkpoint-codec.ts) in order,
-- then, when `p_write_ahead` (a `WriteAhead`, its `items` as columns too) is given,
-- reserve the account's slots for its items and write each granted item ahead as `sending`: a send in
-- flight, one narrow row in `in_flight` (000006_in_flight.sql); the recipient row is written once, by
-- its outcome, which deletes the send. A single send is a group of one. Returns, one entry per outcome and per item, in order:
--   {"applied": [bool], "failures": [int | null], "granted": [bool], "at": [slotAt | retryAt], "reason": [null | refusal]}
-- (checkpoint-codec.ts turns it into the contract's `CheckpointResult`).
--
-- The rules are core's (@disparo/core/store), checked against this function by the conformance suite:
-- - an outcome applies only while its row is open and leased by `p_owner`, on the row or by a range
--   (outcomeApplies; _shown, as every lease check here); it moves
--   the account's run of real failures (failuresAfter) and its next slot to `accountNextSendAt` when
--   that is later, never earlier;
-- - the reservation is reserveSlots: checks in SLOT_CHECKS order (lease_lost, account_unavailable,
--   daily_cap, hourly_cap, in_flight, pacing), the first that applies refusing the item with nothing
--   reserved; consecutive slots (the first needs next_send_at <= now + aheadMs and starts at
--   max(now, next_send_at); item i's slot is the previous slot + its gap + item i's lead); every grant
--   counts toward the caps and the window; a repeat (our own live write-ahead of this very attempt: a
--   retried call whose commit was not heard) is granted again without a slot. Account usability is
--   ACCOUNT_USABILITY_RULES.
--
-- Why the reservation needs no loop: a grant moves the account's next slot to that slot plus its gap,
-- so after the first grant the pacing check never refuses again, and a refusal changes nothing, so
-- every item after it meets the same refusal. With j grants made so far, each check is a function of j
-- alone; the first j at which one fails (`v_k`) is how many leased items are granted, and every leased
-- item after those gets the refusal of the first check that fails at j = v_k. Slots are running sums.
--
-- The in-flight window: the account's sends written ahead without an outcome are its rows in
-- `in_flight`, whoever wrote them, on the wire or in doubt (lease expired), until their outcome is
-- recorded or they are settled. They are counted after the account's row is locked: a worker reserving the same account
-- waits for that lock, and its count, a statement of its own (READ COMMITTED: a fresh snapshot), then
-- sees the sends the other one committed. So across every worker at most `maxInFlight` sends of an
-- account are ever on the wire.
--
-- Cost: a group's inputs are parsed once into arrays, and every step is one set-based statement,
-- whatever the group's size. A single send (at most one outcome and one item: W = 1, one checkpoint
-- per message) has a path of its own, first below: scalar statements by key (measured, a set-based
-- statement's plan costs more to start than a key lookup costs to run, and a per-message checkpoint
-- is a dozen of them: 0.9 ms against 0.3 ms in all), as few of them and as few PL/pgSQL expressions as
-- the rules allow, since each is prepared again in every transaction. The two paths apply the same
-- rules, and the conformance suite runs each (single sends and groups). The account row is written
-- once per call, with the outcomes' effects and the reservation together.
CREATE OR REPLACE FUNCTION "disparo".checkpoint(p_owner text, p_now bigint, p_lease_ms bigint,
  p_outcomes jsonb DEFAULT NULL, p_write_ahead jsonb DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql
-- Every statement here reads rows by key: one plan fits every call, and planning each call anew
-- (custom plans) cost more than the rest of the checkpoint. That plan is made at a session's first
-- call, from the statistics of that moment (an empty table, before a big import): no statement here
-- ever wants a scan of a whole table, so none is planned.
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $$
DECLARE
  v_no integer;
  v_n integer;
BEGIN
  -- Outcomes and items come as columns (checkpoint-codec.ts). A worker still on an older version of
  -- the package sends records: they are turned into columns first, so a rolling upgrade keeps working.
  IF jsonb_typeof(p_outcomes) = 'array' OR jsonb_typeof(p_write_ahead -> 'items') = 'array' THEN
    SELECT c.outcomes, c.write_ahead INTO p_outcomes, p_write_ahead FROM "disparo"._checkpoint_columns(p_outcomes, p_write_ahead) c;
  END IF;
  v_no := coalesce(jsonb_array_length(p_outcomes -> 'recipientId'), 0);
  v_n := coalesce(jsonb_array_length(p_write_ahead -> 'items' -> 'recipientId'), 0);
  -- ---- a single send: at most one outcome and one item ----
  -- The same rules as the group's path below, as scalar statements by key: measured, a set-based
  -- statement's plan costs more to start than a key lookup costs to run. And every PL/pgSQL
  -- expression is prepared anew in each transaction (a checkpoint is one), so this path keeps them
  -- few: the arithmetic of the reservation is done by the statements that read what it needs.
  IF v_no <= 1 AND v_n <= 1 THEN
    DECLARE
      -- Its columns (checkpoint-codec.ts): entry 0 of each; columns without entries are none.
      s jsonb := CASE WHEN v_no = 1 THEN p_outcomes END;
      t jsonb := CASE WHEN v_n = 1 THEN p_write_ahead -> 'items' END;
      v_account text := p_write_ahead ->> 'accountId';
      s_status text; s_applied boolean; s_was text; s_campaign text; s_batch integer; s_acc text;
      s_failures integer;                  -- the outcome's account's run of failures after it
      o_acc text; o_next bigint;           -- that account (found), and its next slot after the outcome
      c_failures integer; c_next bigint;   -- the same, read with the write-ahead's account
      t_id bigint; t_campaign text; t_batch integer; t_status text; t_attempts integer; t_expires bigint; t_kind smallint;
      v_found boolean; v_usable boolean; v_next bigint;
      v_hour_key text; v_this_hour integer; v_day_key text; v_today integer;
      v_reason text; v_retry bigint; v_granted boolean; v_at bigint; v_span bigint;
    BEGIN
      IF s IS NOT NULL THEN
        s_status := s -> 'status' ->> 0;
        IF s_status IS NULL OR s_status NOT IN ('sent', 'failed', 'skipped', 'unknown', 'pending') THEN
          RAISE EXCEPTION 'checkpoint: an outcome''s status must be sent, failed, skipped, unknown or pending' USING ERRCODE = '22023';
        END IF;
      END IF;
      t_id := "disparo"._row_id(t -> 'recipientId' ->> 0);
      -- The rows, locked in key order before anything reads them: a send in flight is written and
      -- deleted only under its row's lock, so each statement after this one sees it as it stands.
      PERFORM 1 FROM "disparo".recipients rc WHERE rc.id IN ("disparo"._row_id(s -> 'recipientId' ->> 0), t_id) ORDER BY rc.id FOR UPDATE;
      IF s IS NOT NULL THEN
        -- outcomeApplies: the row open and leased by p_owner, as shown (_shown). One statement writes
        -- the outcome, with its send's text, account and id when it was in flight (the send is deleted:
        -- 000006_in_flight.sql), and returns what the row held before.
        WITH x AS (
          SELECT r.id, w.status, w.account_id, w.text, w.provider_message_id
          FROM "disparo".recipients r CROSS JOIN LATERAL "disparo"._shown(r) w
          WHERE r.id = "disparo"._row_id(s -> 'recipientId' ->> 0) AND r.campaign_id = s -> 'campaignId' ->> 0
            AND w.status IN ('pending', 'sending') AND w.lease_owner = p_owner
        ), gone AS (
          DELETE FROM "disparo".in_flight f USING x WHERE f.recipient_id = x.id AND x.status = 'sending'
        )
        UPDATE "disparo".recipients rc SET
          attempts = (s -> 'attempts' ->> 0)::integer,
          updated_at = p_now,
          text = x.text,
          -- Absent or null keeps what the row knows (the write-ahead set the account).
          account_id = CASE WHEN s -> 'accountId' ->> 0 <> '' THEN s -> 'accountId' ->> 0 ELSE x.account_id END,
          provider_message_id = CASE WHEN s -> 'providerMessageId' ->> 0 <> '' THEN s -> 'providerMessageId' ->> 0 ELSE x.provider_message_id END,
          last_error = CASE WHEN (s -> 'hasError' ->> 0)::boolean THEN s -> 'error' ->> 0 ELSE rc.last_error END,
          -- A retry by the same owner follows (often in this very call): keep the row, renewed like a heartbeat.
          lease_owner = CASE WHEN s_status = 'pending' AND coalesce((s -> 'keepLease' ->> 0)::boolean, false) THEN p_owner END,
          lease_expires_at = CASE WHEN s_status = 'pending' AND coalesce((s -> 'keepLease' ->> 0)::boolean, false) THEN p_now + p_lease_ms
                                  WHEN s_status = 'pending' THEN 0 END,
          status = s_status,
          skip_reason = CASE WHEN s_status = 'pending' THEN rc.skip_reason WHEN s_status = 'skipped' THEN s -> 'skipReason' ->> 0 END,
          sent_at = CASE WHEN s_status = 'sent' THEN (s -> 'at' ->> 0)::bigint ELSE rc.sent_at END,
          processed_at = CASE WHEN s_status = 'pending' THEN rc.processed_at ELSE (s -> 'at' ->> 0)::bigint END
        FROM x
        WHERE rc.id = x.id
        RETURNING true, x.status, rc.campaign_id, rc.batch,
          CASE WHEN s -> 'accountId' ->> 0 IS NULL THEN x.account_id ELSE nullif(s -> 'accountId' ->> 0, '') END
        INTO s_applied, s_was, s_campaign, s_batch, s_acc;
        -- The outcome's account, unless it is the write-ahead's (read with it below): locked (both, in
        -- key order, when they differ), failuresAfter, and the next slot to accountNextSendAt, never earlier.
        IF s_acc IS NOT NULL AND (t IS NULL OR v_account IS DISTINCT FROM s_acc) THEN
          IF t IS NOT NULL AND v_account IS NOT NULL THEN
            PERFORM 1 FROM "disparo".accounts ac WHERE ac.id IN (s_acc, v_account) ORDER BY ac.id FOR UPDATE;
          END IF;
          SELECT ac.id, CASE coalesce(s -> 'accountEffect' ->> 0, 'none') WHEN 'success' THEN 0 WHEN 'failure' THEN ac.consecutive_failures + 1 ELSE ac.consecutive_failures END,
              greatest(ac.next_send_at, (s -> 'accountNextSendAt' ->> 0)::bigint)
            INTO o_acc, s_failures, o_next FROM "disparo".accounts ac WHERE ac.id = s_acc FOR UPDATE;
        END IF;
      END IF;

      IF t IS NOT NULL THEN
        -- The account, locked (with the outcome's effects when the outcome moved it: the values the
        -- reservation starts from), and whether it is usable (ACCOUNT_USABILITY_RULES: stopped,
        -- disconnected, or disabled and still cooling down).
        SELECT true, ac.next_send_at, ac.hour_key, ac.sent_this_hour, ac.day_key, ac.sent_today,
            ac.state <> 'stopped' AND ac.connection <> 'close' AND NOT (ac.state = 'disabled' AND coalesce(ac.disabled_until > p_now, false)),
            CASE WHEN ac.id = s_acc THEN CASE coalesce(s -> 'accountEffect' ->> 0, 'none') WHEN 'success' THEN 0 WHEN 'failure' THEN ac.consecutive_failures + 1 ELSE ac.consecutive_failures END END,
            CASE WHEN ac.id = s_acc THEN greatest(ac.next_send_at, (s -> 'accountNextSendAt' ->> 0)::bigint) END
          INTO v_found, v_next, v_hour_key, v_this_hour, v_day_key, v_today, v_usable, c_failures, c_next
          FROM "disparo".accounts ac WHERE ac.id = v_account FOR UPDATE;
        IF v_account = s_acc AND v_found THEN
          o_acc := v_account;
          s_failures := c_failures;
          o_next := c_next;
          v_next := c_next;
        END IF;
        -- The account's sends in flight (000006_in_flight.sql, whoever wrote them ahead), counted by a
        -- statement that starts after the lock is held (its snapshot holds what the last holder
        -- committed), and the refusal, if any: the first check of SLOT_CHECKS that fails for one more
        -- send (a cap counts from 0 under a new key, so it refuses only under the account's key).
        SELECT CASE
              WHEN NOT coalesce(v_usable, false) THEN 'account_unavailable'
              WHEN w.dk IS NOT NULL AND v_day_key = w.dk AND greatest(0, w.dl - v_today) = 0 THEN 'daily_cap'
              WHEN w.hk IS NOT NULL AND v_hour_key = w.hk AND greatest(0, w.hl - v_this_hour) = 0 THEN 'hourly_cap'
              WHEN greatest(0, w.max - f.n) = 0 THEN 'in_flight'
              WHEN v_next > p_now + w.ahead THEN 'pacing'
            END,
            CASE
              WHEN NOT coalesce(v_usable, false) THEN p_now
              WHEN w.dk IS NOT NULL AND v_day_key = w.dk AND greatest(0, w.dl - v_today) = 0 THEN w.dx
              WHEN w.hk IS NOT NULL AND v_hour_key = w.hk AND greatest(0, w.hl - v_this_hour) = 0 THEN w.hx
              WHEN greatest(0, w.max - f.n) = 0 THEN p_now
              WHEN v_next > p_now + w.ahead THEN v_next - w.ahead
            END
          INTO v_reason, v_retry
          FROM (SELECT count(*)::integer AS n FROM (SELECT 1 FROM "disparo".in_flight f WHERE f.account_id = v_account
                                                    LIMIT greatest(coalesce((p_write_ahead ->> 'maxInFlight')::integer, 1), 0)) s) f,
            (SELECT coalesce((p_write_ahead ->> 'maxInFlight')::integer, 1) AS max, coalesce((p_write_ahead ->> 'aheadMs')::bigint, 0) AS ahead,
                p_write_ahead -> 'daily' ->> 'key' AS dk, (p_write_ahead -> 'daily' ->> 'limit')::integer AS dl, (p_write_ahead -> 'daily' ->> 'endsAt')::bigint AS dx,
                p_write_ahead -> 'hourly' ->> 'key' AS hk, (p_write_ahead -> 'hourly' ->> 'limit')::integer AS hl, (p_write_ahead -> 'hourly' ->> 'endsAt')::bigint AS hx) w;
        IF v_reason IS NULL THEN
          -- Granted, when the row is leased to us and pending: written ahead at once, as a send in flight.
          INSERT INTO "disparo".in_flight (recipient_id, campaign_id, batch, account_id, owner, expires_at, attempt, text, provider_message_id, started_at)
            SELECT rc.id, rc.campaign_id, rc.batch, v_account, p_owner, p_now + p_lease_ms, (t -> 'attempt' ->> 0)::integer, t -> 'text' ->> 0,
              nullif(t -> 'providerMessageId' ->> 0, ''), p_now
            FROM "disparo".recipients rc CROSS JOIN LATERAL "disparo"._shown(rc) w
            WHERE rc.id = t_id AND rc.campaign_id = t -> 'campaignId' ->> 0 AND w.status = 'pending' AND w.lease_owner = p_owner
          RETURNING campaign_id, batch INTO t_campaign, t_batch;
        END IF;
        IF t_batch IS NULL THEN
          -- Otherwise the item against its row: a repeat of our live write-ahead of this very attempt
          -- (granted again, without a slot), lost (anyone else's, gone, or past this attempt), or
          -- leased and refused.
          SELECT w.status, w.attempts, w.lease_expires_at INTO t_status, t_attempts, t_expires
            FROM "disparo".recipients rc CROSS JOIN LATERAL "disparo"._shown(rc) w
            WHERE rc.id = t_id AND rc.campaign_id = t -> 'campaignId' ->> 0 AND w.status IN ('pending', 'sending') AND w.lease_owner = p_owner;
          t_kind := CASE WHEN t_status = 'pending' THEN 1
                         WHEN t_status = 'sending' AND t_attempts = (t -> 'attempt' ->> 0)::integer AND t_expires > p_now THEN 2
                         ELSE 0 END;
          IF t_kind = 2 AND v_found THEN
            v_granted := true; v_at := p_now;
          ELSE
            -- (Leased and pending, yet not written above: refused. The row is locked, so it cannot have
            -- become pending since.)
            v_granted := false;
            v_at := CASE WHEN t_kind = 0 OR v_reason IS NULL THEN p_now ELSE v_retry END;
            v_reason := CASE WHEN t_kind = 0 OR v_reason IS NULL THEN 'lease_lost' ELSE v_reason END;
          END IF;
        END IF;
        IF t_batch IS NOT NULL THEN
          -- The slot: from max(now, next slot), after the item's lead; the next slot after its gap.
          v_granted := true;
          v_at := greatest(p_now, v_next) + coalesce((t -> 'leadMs' ->> 0)::bigint, 0);
          v_next := v_at + coalesce((t -> 'gapMs' ->> 0)::bigint, 0);
          SELECT coalesce(w.hk, v_hour_key), CASE WHEN w.hk IS NULL THEN v_this_hour WHEN v_hour_key = w.hk THEN v_this_hour + 1 ELSE 1 END,
              coalesce(w.dk, v_day_key), CASE WHEN w.dk IS NULL THEN v_today WHEN v_day_key = w.dk THEN v_today + 1 ELSE 1 END
            INTO v_hour_key, v_this_hour, v_day_key, v_today
            FROM (SELECT p_write_ahead -> 'hourly' ->> 'key' AS hk, p_write_ahead -> 'daily' ->> 'key' AS dk) w;
        END IF;
      END IF;

      -- The accounts moved, each once: the outcome's (its run of failures and next slot) and the
      -- write-ahead's after a grant (its next slot and caps); one row when they are the same.
      IF o_acc IS NOT NULL THEN
        UPDATE "disparo".accounts ac SET consecutive_failures = s_failures,
            next_send_at = CASE WHEN t_batch IS NOT NULL AND o_acc = v_account THEN v_next ELSE o_next END,
            hour_key = CASE WHEN t_batch IS NOT NULL AND o_acc = v_account THEN v_hour_key ELSE ac.hour_key END,
            sent_this_hour = CASE WHEN t_batch IS NOT NULL AND o_acc = v_account THEN v_this_hour ELSE ac.sent_this_hour END,
            day_key = CASE WHEN t_batch IS NOT NULL AND o_acc = v_account THEN v_day_key ELSE ac.day_key END,
            sent_today = CASE WHEN t_batch IS NOT NULL AND o_acc = v_account THEN v_today ELSE ac.sent_today END,
            updated_at = p_now
          WHERE ac.id = o_acc AND (ac.consecutive_failures <> s_failures OR ac.next_send_at <> o_next OR (t_batch IS NOT NULL AND o_acc = v_account));
      END IF;
      IF t_batch IS NOT NULL AND o_acc IS DISTINCT FROM v_account THEN
        UPDATE "disparo".accounts ac SET next_send_at = v_next, hour_key = v_hour_key, sent_this_hour = v_this_hour,
            day_key = v_day_key, sent_today = v_today, updated_at = p_now
          WHERE ac.id = v_account;
      END IF;

      IF s_applied OR t_batch IS NOT NULL THEN
        PERFORM "disparo"._count_moves(
          CASE WHEN s_applied THEN ARRAY[CAST(ROW(s_campaign, s_batch, s_was, s_status) AS "disparo".move)] ELSE '{}' END
          || CASE WHEN t_batch IS NOT NULL THEN ARRAY[CAST(ROW(t_campaign, t_batch, 'pending', 'sending') AS "disparo".move)] ELSE '{}' END);
      END IF;
      RETURN jsonb_build_object(
        'applied', CASE WHEN s IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(coalesce(s_applied, false)) END,
        'failures', CASE WHEN s IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(s_failures) END,
        'granted', CASE WHEN t IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(v_granted) END,
        'at', CASE WHEN t IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(v_at) END,
        'reason', CASE WHEN t IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(CASE WHEN NOT v_granted THEN v_reason END) END);
    END;
  END IF;

  -- ---- a group ----
  DECLARE
    v_moves "disparo".move[] := '{}';
    v_round "disparo".move[];
    v_bad boolean;
    -- a group's outcomes, parsed (position i = array index)
    o_id bigint[]; o_campaign text[]; o_status text[]; o_keep boolean[]; o_attempts integer[]; o_at bigint[];
    o_account text[]; o_pid text[]; o_error text[]; o_has_error boolean[]; o_skip text[]; o_effect text[]; o_next bigint[];
    v_twice boolean := false;      -- a recipient has two outcomes: apply them one at a time
    v_one integer;
    a_i integer[] := '{}'; a_acc text[] := '{}'; a_effect text[] := '{}'; a_next bigint[] := '{}';   -- applied, in order
    r_i integer[]; r_acc text[]; r_effect text[]; r_next bigint[];
    -- per outcome: applied, and the account's run of failures after it
    v_applied boolean[];
    v_failures integer[];
    -- the accounts the outcomes moved: final run of failures and next slot
    u_acc text[] := '{}'; u_cf integer[] := '{}'; u_next bigint[] := '{}';
    v_locked boolean := false;     -- the write-ahead's account is locked
    v_pos integer;
    -- write-ahead
    v_account text := p_write_ahead ->> 'accountId';
    w_id bigint[]; w_campaign text[]; w_batch integer[]; w_text text[]; w_attempt integer[]; w_pid text[]; w_gap bigint[]; w_lead bigint[];
    v_max integer := coalesce((p_write_ahead ->> 'maxInFlight')::integer, 1);
    v_ahead bigint := coalesce((p_write_ahead ->> 'aheadMs')::bigint, 0);
    v_hk text := p_write_ahead -> 'hourly' ->> 'key';
    v_hl integer := (p_write_ahead -> 'hourly' ->> 'limit')::integer;
    v_hx bigint := (p_write_ahead -> 'hourly' ->> 'endsAt')::bigint;
    v_dk text := p_write_ahead -> 'daily' ->> 'key';
    v_dl integer := (p_write_ahead -> 'daily' ->> 'limit')::integer;
    v_dx bigint := (p_write_ahead -> 'daily' ->> 'endsAt')::bigint;
    v_found boolean;
    v_usable boolean;
    v_state text; v_connection text; v_disabled_until bigint; v_cf integer; v_next bigint;
    v_hour_key text; v_this_hour integer; v_day_key text; v_today integer; v_in_flight integer;
    v_h0 integer; v_d0 integer;    -- sends counted in the request's hour and day so far
    v_k bigint;                    -- how many leased items can be granted (see above)
    v_reason text;                 -- the refusal of the leased items past v_k
    v_retry bigint;
    v_base bigint;                 -- the first slot's start
    v_taken integer := 0;
    v_span bigint := 0;            -- leads and gaps of the granted items
    v_fresh boolean[];
    g_granted boolean[]; g_at bigint[]; g_reason text[];
  BEGIN
    -- Locks: the rows this call may change, in key order, then the accounts, in key order. Every
    -- function locks recipients before accounts, so two calls never wait on each other in a cycle.

    -- ---- outcomes ----
    -- The columns as arrays, each in one step (jsonb_to_record); an absent `keepLease`, `accountEffect`,
    -- `gapMs` or `leadMs` is its default.
    IF v_no > 0 THEN
      SELECT ARRAY(SELECT "disparo"._row_id(u.v) FROM unnest(c."recipientId") WITH ORDINALITY AS u(v, i) ORDER BY u.i),
          c."campaignId", c.status, array_replace(c."keepLease", NULL, false), c.attempts, c.at, c."accountId", c."providerMessageId",
          c.error, c."hasError", c."skipReason", array_replace(c."accountEffect", NULL, 'none'), c."accountNextSendAt"
        INTO o_id, o_campaign, o_status, o_keep, o_attempts, o_at, o_account, o_pid, o_error, o_has_error, o_skip, o_effect, o_next
        FROM jsonb_to_record(p_outcomes) AS c("recipientId" text[], "campaignId" text[], status text[], "keepLease" boolean[], attempts integer[],
          at bigint[], "accountId" text[], "providerMessageId" text[], error text[], "hasError" boolean[], "skipReason" text[],
          "accountEffect" text[], "accountNextSendAt" bigint[]);
      IF NOT coalesce(v_no = ALL (ARRAY[cardinality(o_campaign), cardinality(o_status), cardinality(o_keep), cardinality(o_attempts), cardinality(o_at),
                            cardinality(o_account), cardinality(o_pid), cardinality(o_error), cardinality(o_has_error), cardinality(o_skip),
                            cardinality(o_effect), cardinality(o_next)]), false) THEN
        RAISE EXCEPTION 'checkpoint: every column of the outcomes must hold one entry per outcome (%)', v_no USING ERRCODE = '22023';
      END IF;
      SELECT coalesce(bool_or(x.status IS NULL OR x.status NOT IN ('sent', 'failed', 'skipped', 'unknown', 'pending')), false),
          count(DISTINCT x.id) < count(x.id)
        INTO v_bad, v_twice FROM unnest(o_status, o_id) AS x(status, id);
      IF v_bad THEN
        RAISE EXCEPTION 'checkpoint: an outcome''s status must be sent, failed, skipped, unknown or pending' USING ERRCODE = '22023';
      END IF;
    END IF;

    IF v_n > 0 THEN
      SELECT ARRAY(SELECT "disparo"._row_id(u.v) FROM unnest(c."recipientId") WITH ORDINALITY AS u(v, i) ORDER BY u.i),
          c."campaignId", c.text, c.attempt, c."providerMessageId", array_replace(c."gapMs", NULL, 0::bigint), array_replace(c."leadMs", NULL, 0::bigint)
        INTO w_id, w_campaign, w_text, w_attempt, w_pid, w_gap, w_lead
        FROM jsonb_to_record(p_write_ahead -> 'items') AS c("recipientId" text[], "campaignId" text[], text text[], attempt integer[],
          "providerMessageId" text[], "gapMs" bigint[], "leadMs" bigint[]);
      IF NOT coalesce(v_n = ALL (ARRAY[cardinality(w_campaign), cardinality(w_text), cardinality(w_attempt), cardinality(w_pid), cardinality(w_gap), cardinality(w_lead)]), false) THEN
        RAISE EXCEPTION 'checkpoint: every column of the write-ahead''s items must hold one entry per item (%)', v_n USING ERRCODE = '22023';
      END IF;
    END IF;
    -- Every row named, locked in key order: a send in flight is written and deleted only under its
    -- row's lock (000006_in_flight.sql), so each statement after this one sees the sends of these rows
    -- as they stand. (No filter on what the row holds: a send in flight may sit on a row whose own
    -- lease fields say nothing of it, as the upgrade to version 6 leaves them.)
    -- (Rows are read by key through LATERAL subqueries that cannot be flattened: planned as a join, or
    -- as `id = ANY (...)`, another index or a hash join can look cheaper than a hundred key lookups;
    -- the lease index found every row of the owner's claim, 500, to lock one.)
    PERFORM 1 FROM (SELECT DISTINCT k.id FROM unnest(coalesce(o_id, '{}') || coalesce(w_id, '{}')) k(id) ORDER BY k.id) k
      CROSS JOIN LATERAL (SELECT 1 FROM "disparo".recipients rc
                          WHERE rc.id = k.id FOR UPDATE) x;

    -- Outcomes in order: all at once, or one at a time when a recipient has two.
    v_one := CASE WHEN v_twice THEN 1 END;
    WHILE v_no > 0 AND (v_one IS NULL OR v_one <= v_no) LOOP
      WITH o AS MATERIALIZED (
        SELECT o.*, x.status AS was, x.batch, x.account_id AS row_account, x.text AS row_text, x.provider_message_id AS row_pid
        FROM unnest(o_id, o_campaign, o_status, o_keep, o_attempts, o_at, o_account, o_pid, o_error, o_has_error, o_skip, o_effect, o_next)
          WITH ORDINALITY AS o(id, campaign_id, status, keep, attempts, at, account_id, pid, error, has_error, skip, effect, next, i)
        JOIN LATERAL (SELECT w.status, rc.batch, w.account_id, w.text, w.provider_message_id
                      FROM "disparo".recipients rc CROSS JOIN LATERAL "disparo"._shown(rc) w
                      WHERE rc.id = o.id AND rc.campaign_id = o.campaign_id AND w.status IN ('pending', 'sending')
                        AND w.lease_owner = p_owner OFFSET 0) x ON true
        WHERE v_one IS NULL OR o.i = v_one
      ), gone AS (
        -- The sends these outcomes end: deleted; each row is written once, below, with its send's text.
        DELETE FROM "disparo".in_flight f USING o WHERE f.recipient_id = o.id AND o.was = 'sending'
      ), u AS (
        UPDATE "disparo".recipients rc SET
          attempts = o.attempts,
          updated_at = p_now,
          text = o.row_text,
          account_id = CASE WHEN o.account_id <> '' THEN o.account_id ELSE o.row_account END,
          provider_message_id = CASE WHEN o.pid <> '' THEN o.pid ELSE o.row_pid END,
          last_error = CASE WHEN o.has_error THEN o.error ELSE rc.last_error END,
          lease_owner = CASE WHEN o.status = 'pending' AND o.keep THEN p_owner END,
          lease_expires_at = CASE WHEN o.status = 'pending' AND o.keep THEN p_now + p_lease_ms WHEN o.status = 'pending' THEN 0 END,
          status = o.status,
          skip_reason = CASE WHEN o.status = 'pending' THEN rc.skip_reason WHEN o.status = 'skipped' THEN o.skip END,
          sent_at = CASE WHEN o.status = 'sent' THEN o.at ELSE rc.sent_at END,
          processed_at = CASE WHEN o.status = 'pending' THEN rc.processed_at ELSE o.at END
        FROM o
        WHERE rc.id = o.id
        RETURNING o.i, CASE WHEN o.account_id IS NULL THEN o.row_account ELSE nullif(o.account_id, '') END AS acc, o.effect, o.next,
          CAST(ROW(o.campaign_id, o.batch, o.was, o.status) AS "disparo".move) AS m
      )
      SELECT array_agg(u.i::integer ORDER BY u.i), array_agg(u.acc ORDER BY u.i), array_agg(u.effect ORDER BY u.i), array_agg(u.next ORDER BY u.i), array_agg(u.m)
        INTO r_i, r_acc, r_effect, r_next, v_round FROM u;
      IF r_i IS NOT NULL THEN
        a_i := a_i || r_i; a_acc := a_acc || r_acc; a_effect := a_effect || r_effect; a_next := a_next || r_next;
        v_moves := v_moves || v_round;
      END IF;
      EXIT WHEN v_one IS NULL;
      v_one := v_one + 1;
    END LOOP;

    -- The accounts, locked in key order, and the outcomes' effects folded per account: failuresAfter
    -- as a running fold (`run` counts the account's successes so far: each starts a new run of
    -- failures from 0), and the next slot to the latest accountNextSendAt, never earlier.
    IF cardinality(a_i) > 0 THEN
      WITH a AS MATERIALIZED (
        SELECT ac.id, ac.consecutive_failures, ac.next_send_at FROM "disparo".accounts ac
        WHERE ac.id = ANY (array_append(a_acc, v_account)) ORDER BY ac.id FOR UPDATE
      ), e AS (
        SELECT r.i, r.acc, r.effect, r.next, a.consecutive_failures AS cf0, a.next_send_at AS next0,
          count(*) FILTER (WHERE r.effect = 'success') OVER (PARTITION BY r.acc ORDER BY r.i) AS run
        FROM unnest(a_i, a_acc, a_effect, a_next) AS r(i, acc, effect, next) LEFT JOIN a ON a.id = r.acc
      ), f AS (
        SELECT e.*,
          CASE WHEN e.cf0 IS NOT NULL THEN
            (CASE WHEN e.run = 0 THEN e.cf0 ELSE 0 END) + count(*) FILTER (WHERE e.effect = 'failure') OVER (PARTITION BY e.acc, e.run ORDER BY e.i)
          END::integer AS cf,
          greatest(e.next0, max(e.next) OVER (PARTITION BY e.acc)) AS next_final,
          row_number() OVER (PARTITION BY e.acc ORDER BY e.i DESC) AS last
        FROM e
      )
      SELECT (SELECT array_agg(f.i IS NOT NULL ORDER BY p.i) FROM generate_series(1, v_no) p(i) LEFT JOIN f ON f.i = p.i),
          (SELECT array_agg(f.cf ORDER BY p.i) FROM generate_series(1, v_no) p(i) LEFT JOIN f ON f.i = p.i),
          coalesce(array_agg(f.acc ORDER BY f.acc) FILTER (WHERE f.last = 1 AND f.cf0 IS NOT NULL), '{}'),
          coalesce(array_agg(f.cf ORDER BY f.acc) FILTER (WHERE f.last = 1 AND f.cf0 IS NOT NULL), '{}'),
          coalesce(array_agg(f.next_final ORDER BY f.acc) FILTER (WHERE f.last = 1 AND f.cf0 IS NOT NULL), '{}')
        INTO v_applied, v_failures, u_acc, u_cf, u_next
        FROM f;
      v_locked := true;
    ELSIF v_no > 0 THEN
      v_applied := array_fill(false, ARRAY[v_no]);
      v_failures := array_fill(NULL::integer, ARRAY[v_no]);
    END IF;

    -- ---- the write-ahead ----
    IF v_n > 0 THEN
      -- The account (locked above when an outcome moved it, here otherwise) and its sends in flight:
      -- every send of the account in `in_flight`, whoever wrote it ahead, counted under its lock by a
      -- statement that starts after the lock is held (its snapshot holds what the last holder committed).
      IF NOT v_locked THEN
        PERFORM 1 FROM "disparo".accounts ac WHERE ac.id = v_account FOR UPDATE;
      END IF;
      -- (The count stops at the window: all it decides is whether the window is full. The LIMIT also
      -- makes it an index scan, which marks the dead entries of ended sends as it passes them; a bitmap
      -- scan of this churning table walked all of them on every call: 1.2 ms a call after 150 calls.)
      SELECT true, ac.state, ac.connection, ac.disabled_until, ac.consecutive_failures, ac.next_send_at, ac.hour_key, ac.sent_this_hour,
          ac.day_key, ac.sent_today,
          (SELECT count(*)::integer FROM (SELECT 1 FROM "disparo".in_flight f WHERE f.account_id = v_account LIMIT greatest(v_max, 0)) s)
        INTO v_found, v_state, v_connection, v_disabled_until, v_cf, v_next, v_hour_key, v_this_hour, v_day_key, v_today, v_in_flight
        FROM "disparo".accounts ac WHERE ac.id = v_account;
      v_found := coalesce(v_found, false);
      v_pos := array_position(u_acc, v_account);
      IF v_pos IS NOT NULL THEN
        v_cf := u_cf[v_pos];
        v_next := u_next[v_pos];
      END IF;
      -- ACCOUNT_USABILITY_RULES: stopped, disconnected, or disabled and still cooling down.
      v_usable := v_found AND v_state <> 'stopped' AND v_connection <> 'close' AND NOT (v_state = 'disabled' AND coalesce(v_disabled_until > p_now, false));

      -- v_k: the first number of grants j at which a check fails, and that check (SLOT_CHECKS order).
      -- A cap counts from 0 under a new key, and is checked at j = 0 only under the account's key.
      v_d0 := CASE WHEN v_day_key = v_dk THEN v_today ELSE 0 END;
      v_h0 := CASE WHEN v_hour_key = v_hk THEN v_this_hour ELSE 0 END;
      IF v_dk IS NOT NULL THEN
        v_k := CASE WHEN v_day_key = v_dk THEN greatest(0, v_dl - v_d0) ELSE greatest(1, v_dl) END;
        v_reason := 'daily_cap'; v_retry := v_dx;
      END IF;
      IF v_hk IS NOT NULL AND (v_k IS NULL OR (CASE WHEN v_hour_key = v_hk THEN greatest(0, v_hl - v_h0) ELSE greatest(1, v_hl) END) < v_k) THEN
        v_k := CASE WHEN v_hour_key = v_hk THEN greatest(0, v_hl - v_h0) ELSE greatest(1, v_hl) END;
        v_reason := 'hourly_cap'; v_retry := v_hx;
      END IF;
      IF v_k IS NULL OR greatest(0, v_max - v_in_flight) < v_k THEN
        v_k := greatest(0, v_max - v_in_flight);
        v_reason := 'in_flight'; v_retry := p_now;
      END IF;
      IF v_k > 0 AND v_next > p_now + v_ahead THEN
        v_k := 0;
        v_reason := 'pacing'; v_retry := v_next - v_ahead;
      END IF;
      v_base := greatest(p_now, v_next);

      -- Each item against its row (kind: 1 leased, 2 repeat, 0 lost, as above); `e` counts the leased
      -- items before it, `before` their leads and gaps.
      WITH w AS (
        SELECT w.i, w.lead, w.gap, k.kind, x.batch,
          count(*) FILTER (WHERE k.kind = 1) OVER (ORDER BY w.i ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS e,
          coalesce(sum(w.lead + w.gap) FILTER (WHERE k.kind = 1) OVER (ORDER BY w.i ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
        FROM unnest(w_id, w_campaign, w_attempt, w_gap, w_lead) WITH ORDINALITY AS w(id, campaign_id, attempt, gap, lead, i)
        LEFT JOIN LATERAL (SELECT rc.campaign_id, rc.batch, h.lease_owner, h.status, h.attempts, h.lease_expires_at
                             FROM "disparo".recipients rc CROSS JOIN LATERAL "disparo"._shown(rc) h WHERE rc.id = w.id OFFSET 0) x ON true
        CROSS JOIN LATERAL (SELECT CASE
                WHEN x.campaign_id IS DISTINCT FROM w.campaign_id OR x.lease_owner IS DISTINCT FROM p_owner THEN 0
                WHEN x.status = 'pending' THEN 1
                WHEN x.status = 'sending' AND x.attempts = w.attempt AND x.lease_expires_at > p_now THEN 2
                ELSE 0 END AS kind) k
      ), g AS (
        SELECT w.i, w.lead, w.gap, w.before, w.batch,
          CASE WHEN w.kind = 2 AND v_found THEN 'repeat'
               WHEN w.kind = 0 THEN 'lease_lost'
               WHEN NOT v_usable THEN 'account_unavailable'
               WHEN w.e >= v_k THEN v_reason
          END AS refusal
        FROM w
      )
      SELECT array_agg(g.refusal IS NULL OR g.refusal = 'repeat' ORDER BY g.i),
          array_agg(CASE WHEN g.refusal IS NULL THEN v_base + g.before + g.lead
                         WHEN g.refusal IN ('daily_cap', 'hourly_cap', 'pacing') THEN v_retry
                         ELSE p_now END ORDER BY g.i),
          array_agg(CASE WHEN g.refusal <> 'repeat' THEN g.refusal END ORDER BY g.i),
          array_agg(g.refusal IS NULL ORDER BY g.i),
          array_agg(g.batch ORDER BY g.i),
          count(*) FILTER (WHERE g.refusal IS NULL),
          coalesce(sum(g.lead + g.gap) FILTER (WHERE g.refusal IS NULL), 0)
        INTO g_granted, g_at, g_reason, v_fresh, w_batch, v_taken, v_span
        FROM g;
      IF v_taken > 0 THEN
        -- Each granted item written ahead: a send in flight (000006_in_flight.sql). Its row is not written.
        WITH u AS (
          INSERT INTO "disparo".in_flight (recipient_id, campaign_id, batch, account_id, owner, expires_at, attempt, text, provider_message_id, started_at)
          -- (An id given twice is written once: DISTINCT ON. Measured, ON CONFLICT DO NOTHING instead cost
          -- 0.5 ms a group of 200.)
          SELECT DISTINCT ON (g.id) g.id, g.campaign_id, g.batch, v_account, p_owner, p_now + p_lease_ms, g.attempt, g.text, nullif(g.pid, ''), p_now
          FROM unnest(w_id, w_campaign, w_batch, w_text, w_attempt, w_pid, v_fresh) WITH ORDINALITY AS g(id, campaign_id, batch, text, attempt, pid, fresh, i)
          WHERE g.fresh
          ORDER BY g.id, g.i
          RETURNING CAST(ROW(campaign_id, batch, 'pending', 'sending') AS "disparo".move) AS m
        )
        SELECT v_moves || coalesce(array_agg(u.m), '{}') INTO v_moves FROM u;
      END IF;

      IF v_taken > 0 THEN
        -- The reservation joins the outcomes' effects: the account row is written once.
        v_next := v_base + v_span;
        IF v_hk IS NOT NULL THEN v_hour_key := v_hk; v_this_hour := v_h0 + v_taken; END IF;
        IF v_dk IS NOT NULL THEN v_day_key := v_dk; v_today := v_d0 + v_taken; END IF;
        IF v_pos IS NULL THEN
          u_acc := u_acc || v_account; u_cf := u_cf || v_cf; u_next := u_next || v_next;
        ELSE
          u_next[v_pos] := v_next;
        END IF;
      END IF;
    END IF;

    -- Each account moved, once: its run of failures and next slot (and, for the write-ahead's account
    -- after a grant, its caps).
    IF cardinality(u_acc) > 0 THEN
      UPDATE "disparo".accounts ac SET consecutive_failures = u.cf, next_send_at = u.next,
          hour_key = CASE WHEN u.acc = v_account AND v_taken > 0 THEN v_hour_key ELSE ac.hour_key END,
          sent_this_hour = CASE WHEN u.acc = v_account AND v_taken > 0 THEN v_this_hour ELSE ac.sent_this_hour END,
          day_key = CASE WHEN u.acc = v_account AND v_taken > 0 THEN v_day_key ELSE ac.day_key END,
          sent_today = CASE WHEN u.acc = v_account AND v_taken > 0 THEN v_today ELSE ac.sent_today END,
          updated_at = p_now
        FROM unnest(u_acc, u_cf, u_next) AS u(acc, cf, next)
        WHERE ac.id = u.acc AND (ac.consecutive_failures <> u.cf OR ac.next_send_at <> u.next OR (u.acc = v_account AND v_taken > 0));
    END IF;

    PERFORM "disparo"._count_moves(v_moves);
    RETURN jsonb_build_object('applied', coalesce(v_applied, '{}'), 'failures', coalesce(v_failures, '{}'),
      'granted', coalesce(g_granted, '{}'), 'at', coalesce(g_at, '{}'), 'reason', coalesce(g_reason, '{}'));
  END;
END
$$;
$disparo_sql$);

-- sql/functions/claim_recipients.sql
SELECT pg_temp.disparo_function('claim_recipients', '097729a8298b7288f0f621ab021a7909', $disparo_sql$
-- StateStore.claimRecipients: lease up to `p_limit` pending rows of one batch, lowest seq first, that
-- no live lease holds. Marks the batch started. Rows whose phone opted out after the import are
-- skipped here (_skip_opted_out) and do not count toward the limit.
--
-- Range leases (000005_range_leases.sql): a row with no lease of its own is not written. The claim
-- writes one `leases` row per contiguous stretch of such rows it takes, so a claim of a thousand
-- fresh rows is one insert, not a thousand updates. A row with a lease of its own (an expired one, or
-- the "not leased" mark a hand-back leaves) is leased on the row, as before ranges.
--
-- Claims of one batch take the batch row's lock first, so they run one at a time there and the ranges
-- they make never overlap: a stretch stops where a live range begins, and the expired ranges it
-- passes over are trimmed to what lies outside it (every row they covered there is now this claim's,
-- done, or leased on the row). Besides the batch row, a claim never waits: the expired ranges it may
-- trim are locked first with SKIP LOCKED, and one that a heartbeat or a release holds counts as live
-- this time (its rows are left for a later claim). So a claim, which holds ranges, never waits on a
-- heartbeat or a release, which lock ranges and rows.
--
-- Why a keyset lower bound (`p_after_seq`): the claim index keeps the entries of rows already claimed
-- and finished until a vacuum removes them, so a claim that scans the batch from its start walks
-- more dead entries at every claim. The caller passes the highest seq it last claimed in this batch;
-- when a claim comes back short it passes 0 next time. When the range above `p_after_seq` runs out,
-- the same call fills up from below it, so rows handed back below the cursor (retries, recovery) are
-- still found, lowest first among those.
CREATE OR REPLACE FUNCTION "disparo".claim_recipients(p_campaign_id text, p_batch integer, p_owner text, p_limit integer,
  p_now bigint, p_lease_ms bigint, p_after_seq integer DEFAULT 0)
RETURNS SETOF "disparo".recipients
LANGUAGE plpgsql AS $$
DECLARE
  v_got integer := 0;
  v_need integer;
  v_low integer;
  v_high integer;
  v_pass integer;
  v_dead int4multirange;   -- expired ranges in the span this pass reads, locked by this claim
  v_dead_ids bigint[];     -- (their keys)
  v_live int4multirange;   -- every other range there, and opted-out rows another statement holds
  v_held integer[];        -- (those rows' seqs)
  v_ranged integer[];      -- seqs taken by range
  v_ranged_ids bigint[];   -- and their ids
  v_own bigint[];          -- ids to lease on the row
  v_skip bigint[];
  v_own_skip bigint[];
  v_max integer;
  v_found integer;
  v_taken bigint[] := '{}';
  v_moves "disparo".move[] := '{}';
BEGIN
  PERFORM 1 FROM "disparo".batches b WHERE b.campaign_id = p_campaign_id AND b.batch = p_batch FOR NO KEY UPDATE;
  UPDATE "disparo".batches SET started_at = p_now
    WHERE campaign_id = p_campaign_id AND batch = p_batch AND started_at IS NULL;
  FOR v_pass IN 1..2 LOOP
    EXIT WHEN v_pass = 2 AND coalesce(p_after_seq, 0) <= 0;
    IF v_pass = 1 THEN
      v_low := greatest(coalesce(p_after_seq, 0), 0);
      v_high := NULL;
    ELSE
      v_low := 0;
      v_high := p_after_seq;
    END IF;
    SELECT range_agg(int4range(d.lo, d.hi, '[]')), coalesce(array_agg(d.id), '{}') INTO v_dead, v_dead_ids FROM (
      SELECT l.id, l.lo, l.hi FROM "disparo".leases l
      WHERE l.campaign_id = p_campaign_id AND l.batch = p_batch AND l.hi > v_low AND (v_high IS NULL OR l.lo <= v_high)
        AND l.expires_at <= p_now
      ORDER BY l.id FOR UPDATE SKIP LOCKED
    ) d;
    SELECT range_agg(int4range(l.lo, l.hi, '[]')) INTO v_live FROM "disparo".leases l
      WHERE l.campaign_id = p_campaign_id AND l.batch = p_batch AND l.hi > v_low AND (v_high IS NULL OR l.lo <= v_high)
        AND l.id <> ALL (v_dead_ids);
    LOOP
      v_need := p_limit - v_got;
      EXIT WHEN v_need <= 0;
      -- Free rows from the cursor up: with no lease of their own, outside every live range; with one,
      -- expired or the "not leased" mark.
      WITH cand AS (
        SELECT r.id, r.seq, r.phone, r.lease_expires_at IS NULL AS ranged FROM "disparo".recipients r
        WHERE r.campaign_id = p_campaign_id AND r.batch = p_batch AND r.processed_at IS NULL AND r.status = 'pending'
          AND r.seq > v_low AND (v_high IS NULL OR r.seq <= v_high) AND NOT EXISTS (SELECT 1 FROM "disparo".in_flight f WHERE f.recipient_id = r.id)
          AND CASE WHEN r.lease_expires_at IS NULL THEN NOT coalesce(v_live @> r.seq, false)
                   ELSE r.lease_owner IS NULL OR r.lease_expires_at <= p_now END
        ORDER BY r.seq
        LIMIT v_need
      ), flagged AS (
        SELECT c.id, c.seq, c.ranged, EXISTS (SELECT 1 FROM "disparo".opt_outs o WHERE o.phone = c.phone) AS opted FROM cand c
      )
      SELECT coalesce(array_agg(f.seq) FILTER (WHERE f.ranged AND NOT f.opted), '{}'),
          coalesce(array_agg(f.id) FILTER (WHERE f.ranged AND NOT f.opted), '{}'),
          coalesce(array_agg(f.id) FILTER (WHERE NOT f.ranged AND NOT f.opted), '{}'),
          coalesce(array_agg(f.id) FILTER (WHERE f.opted), '{}'),
          max(f.seq), count(*)
        INTO v_ranged, v_ranged_ids, v_own, v_skip, v_max, v_found
        FROM flagged f;
      EXIT WHEN v_found = 0;
      -- Opted-out rows are skipped now, unless another statement holds one: then it is left as it is
      -- (a later claim skips it), and no range made here covers it.
      IF cardinality(v_skip) > 0 THEN
        SELECT coalesce(array_agg(x.id), '{}') INTO v_own_skip FROM (
          SELECT r.id FROM "disparo".recipients r WHERE r.id = ANY (v_skip) ORDER BY r.id FOR UPDATE SKIP LOCKED
        ) x;
        SELECT coalesce(array_agg(r.seq), '{}') INTO v_held FROM "disparo".recipients r
          WHERE r.id = ANY (v_skip) AND r.id <> ALL (v_own_skip);
        IF cardinality(v_held) > 0 THEN
          SELECT coalesce(v_live, '{}'::int4multirange) + range_agg(int4range(h.seq, h.seq, '[]')) INTO v_live FROM unnest(v_held) h(seq);
        END IF;
        v_moves := v_moves || "disparo"._skip_opted_out(v_own_skip, p_now);
      END IF;
      -- The expired ranges over the span read, (v_low, v_max], trimmed to what lies outside it.
      IF v_dead && int4range(v_low, v_max, '(]') THEN
        WITH piece AS (
          INSERT INTO "disparo".leases (campaign_id, batch, lo, hi, owner, expires_at)
            SELECT l.campaign_id, l.batch, v_max + 1, l.hi, l.owner, l.expires_at FROM "disparo".leases l
            WHERE l.id = ANY (v_dead_ids) AND l.lo <= v_low AND l.hi > v_max
            RETURNING id
        )
        SELECT v_dead_ids || coalesce(array_agg(piece.id), '{}') INTO v_dead_ids FROM piece;
        UPDATE "disparo".leases l SET hi = v_low WHERE l.id = ANY (v_dead_ids) AND l.lo <= v_low AND l.hi > v_low;
        UPDATE "disparo".leases l SET lo = v_max + 1 WHERE l.id = ANY (v_dead_ids) AND l.lo > v_low AND l.lo <= v_max AND l.hi > v_max;
        DELETE FROM "disparo".leases l WHERE l.id = ANY (v_dead_ids) AND l.lo > v_low AND l.hi <= v_max;
      END IF;
      -- One range per stretch of the seqs taken by range: a stretch ends where a live range lies
      -- between two of them.
      IF cardinality(v_ranged) > 0 THEN
        INSERT INTO "disparo".leases (campaign_id, batch, lo, hi, owner, expires_at)
          SELECT p_campaign_id, p_batch, min(s.seq), max(s.seq), p_owner, p_now + p_lease_ms
          FROM (
            SELECT b.seq, sum(b.brk) OVER (ORDER BY b.seq) AS g FROM (
              SELECT u.seq, CASE WHEN coalesce(v_live && int4range(lag(u.seq) OVER (ORDER BY u.seq), u.seq, '()'), false) THEN 1 ELSE 0 END AS brk
              FROM unnest(v_ranged) u(seq)
            ) b
          ) s
          GROUP BY s.g;
        v_taken := v_taken || v_ranged_ids;
        v_got := v_got + cardinality(v_ranged);
      END IF;
      -- Rows with a lease of their own, leased on the row; one another statement holds is left.
      IF cardinality(v_own) > 0 THEN
        WITH u AS (
          UPDATE "disparo".recipients r SET lease_owner = p_owner, lease_expires_at = p_now + p_lease_ms, updated_at = p_now
          WHERE r.id IN (SELECT x.id FROM "disparo".recipients x WHERE x.id = ANY (v_own) ORDER BY x.id FOR UPDATE SKIP LOCKED)
            AND r.status = 'pending' AND (r.lease_owner IS NULL OR r.lease_expires_at <= p_now) AND NOT EXISTS (SELECT 1 FROM "disparo".in_flight f WHERE f.recipient_id = r.id)
          RETURNING r.id
        )
        SELECT v_taken || coalesce(array_agg(u.id), '{}'), v_got + count(*) INTO v_taken, v_got FROM u;
      END IF;
      EXIT WHEN v_found < v_need;
      v_low := v_max;
    END LOOP;
  END LOOP;
  PERFORM "disparo"._count_moves(v_moves);
  RETURN QUERY SELECT w.* FROM "disparo".recipients r CROSS JOIN LATERAL "disparo"._shown(r) w
    WHERE r.id = ANY (v_taken);
END
$$;
$disparo_sql$);

-- sql/functions/cleanup.sql
SELECT pg_temp.disparo_function('cleanup', 'f74708fade5bcba33ad1bb2812e93e8c', $disparo_sql$
-- StateStore.cleanup: delete finished campaigns whose `finished_at` is before `p_older_than`, with their
-- rows, batch records, counter shards, leases and sends in flight. Only a finished campaign has a `finished_at` (set by
-- transition_campaign when core's isFinished says so), so no list of statuses lives here.
-- Returns {"campaigns": n, "recipients": n}.
--
-- The rows go first, and their sends in flight in a statement of its own after them. A worker may be
-- writing one of them ahead as the campaign is cleaned up (it was cancelled moments before): deleting
-- the row waits for that write-ahead's row lock, and a later statement's snapshot holds the send it
-- committed meanwhile. In one statement, that send was past its snapshot: it stayed, with no row to
-- settle it, and held its account's window for good. A write-ahead that comes after the rows are gone
-- finds no row and writes nothing.
CREATE OR REPLACE FUNCTION "disparo".cleanup(p_older_than bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_ids text[];
  v_recipients bigint;
BEGIN
  WITH c AS (
    DELETE FROM "disparo".campaigns WHERE finished_at < p_older_than RETURNING id
  )
  SELECT coalesce(array_agg(c.id), '{}') INTO v_ids FROM c;
  IF cardinality(v_ids) = 0 THEN
    RETURN jsonb_build_object('campaigns', 0, 'recipients', 0);
  END IF;
  WITH r AS (
    DELETE FROM "disparo".recipients WHERE campaign_id = ANY (v_ids) RETURNING 1
  )
  SELECT count(*) INTO v_recipients FROM r;
  DELETE FROM "disparo".in_flight WHERE campaign_id = ANY (v_ids);
  DELETE FROM "disparo".leases WHERE campaign_id = ANY (v_ids);
  DELETE FROM "disparo".batches WHERE campaign_id = ANY (v_ids);
  DELETE FROM "disparo".campaign_counts WHERE campaign_id = ANY (v_ids);
  DELETE FROM "disparo".batch_counts WHERE campaign_id = ANY (v_ids);
  RETURN jsonb_build_object('campaigns', cardinality(v_ids), 'recipients', v_recipients);
END
$$;
$disparo_sql$);

-- sql/functions/contact_history.sql
SELECT pg_temp.disparo_function('contact_history', 'c57b8ce2dc0fc4dc1131e5897feae398', $disparo_sql$
-- StateStore.contactHistory: sends (rows in sent, delivered or read) to the phones in `p_phones` (a
-- JSON array) at or after `p_since`, in any campaign, newest first.
CREATE OR REPLACE FUNCTION "disparo".contact_history(p_phones jsonb, p_since bigint)
RETURNS TABLE (phone text, campaign_id text, account_id text, sent_at bigint)
LANGUAGE sql STABLE AS $$
  SELECT r.phone, r.campaign_id, r.account_id, r.sent_at FROM "disparo".recipients r
  WHERE r.phone = ANY (ARRAY(SELECT DISTINCT jsonb_array_elements_text(p_phones)))
    AND r.status IN ('sent', 'delivered', 'read') AND r.sent_at >= p_since
  ORDER BY r.sent_at DESC, r.id DESC
$$;
$disparo_sql$);

-- sql/functions/count_processed_since.sql
SELECT pg_temp.disparo_function('count_processed_since', '0f120a1011eebf005e4a167c0115e09d', $disparo_sql$
-- StateStore.countProcessedSince: rows of the campaign that reached a terminal status at or after `p_since`.
CREATE OR REPLACE FUNCTION "disparo".count_processed_since(p_campaign_id text, p_since bigint)
RETURNS integer
LANGUAGE sql STABLE AS $$
  SELECT count(*)::integer FROM "disparo".recipients r WHERE r.campaign_id = p_campaign_id AND r.processed_at >= p_since
$$;
$disparo_sql$);

-- sql/functions/create_campaign.sql
SELECT pg_temp.disparo_function('create_campaign', 'bc90b476fece8ba6b023ebc56833ca87', $disparo_sql$
-- StateStore.createCampaign. `p_campaign` is a `NewCampaign` record. A campaign id already taken
-- raises unique_violation (23505), which the store reports as a ConflictError.
CREATE OR REPLACE FUNCTION "disparo".create_campaign(p_campaign jsonb)
RETURNS jsonb
LANGUAGE sql AS $$
  INSERT INTO "disparo".campaigns AS c (id, name, templates, media, account_ids, status, settings, scheduled_at,
    metadata, created_at, updated_at)
  VALUES (p_campaign ->> 'id', p_campaign ->> 'name', p_campaign -> 'templates', nullif(p_campaign -> 'media', 'null'),
    p_campaign -> 'accountIds', p_campaign ->> 'status', p_campaign -> 'settings', (p_campaign ->> 'scheduledAt')::bigint,
    coalesce(p_campaign -> 'metadata', '{}'), (p_campaign ->> 'now')::bigint, (p_campaign ->> 'now')::bigint)
  RETURNING "disparo"._campaign_json(c)
$$;
$disparo_sql$);

-- sql/functions/get_account.sql
SELECT pg_temp.disparo_function('get_account', '2741b50b0f53c7457eb874678f101471', $disparo_sql$
-- StateStore.getAccount: the account's row, or none.
CREATE OR REPLACE FUNCTION "disparo".get_account(p_id text)
RETURNS SETOF "disparo".accounts
LANGUAGE sql STABLE AS $$
  SELECT a.* FROM "disparo".accounts a WHERE a.id = p_id
$$;
$disparo_sql$);

-- sql/functions/get_campaign.sql
SELECT pg_temp.disparo_function('get_campaign', '0fb90967904433d5d0ed5d830b2e0a65', $disparo_sql$
-- StateStore.getCampaign: the campaign (see _campaign_json), or null.
CREATE OR REPLACE FUNCTION "disparo".get_campaign(p_id text)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT "disparo"._campaign_json(c) FROM "disparo".campaigns c WHERE c.id = p_id
$$;
$disparo_sql$);

-- sql/functions/get_recipient_by_provider_id.sql
SELECT pg_temp.disparo_function('get_recipient_by_provider_id', '2f716fe08d87513d438cab9e60ece696', $disparo_sql$
-- StateStore.getRecipientByProviderId: the row carrying this provider message id (the latest one to
-- take it, should two), or no row. A send in flight (000006_in_flight.sql) carries the id it was
-- written ahead with; the row shows it (_shown). apply_status_updates finds a receipt's row here too.
CREATE OR REPLACE FUNCTION "disparo".get_recipient_by_provider_id(p_provider_message_id text)
RETURNS SETOF "disparo".recipients
LANGUAGE sql STABLE AS $$
  SELECT w.* FROM "disparo".recipients r CROSS JOIN LATERAL "disparo"._shown(r) w
  WHERE r.id IN (SELECT x.id FROM "disparo".recipients x WHERE x.provider_message_id = p_provider_message_id
                 UNION ALL
                 SELECT f.recipient_id FROM "disparo".in_flight f WHERE f.provider_message_id = p_provider_message_id)
    AND w.provider_message_id = p_provider_message_id
  ORDER BY w.updated_at DESC, r.id DESC
  LIMIT 1
$$;
$disparo_sql$);

-- sql/functions/heartbeat.sql
SELECT pg_temp.disparo_function('heartbeat', 'ffb78778866d5b287f6bf2b51a532e34', $disparo_sql$
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
CREATE OR REPLACE FUNCTION "disparo".heartbeat(p_owner text, p_now bigint, p_lease_ms bigint)
RETURNS integer
LANGUAGE sql AS $$
  WITH l AS MATERIALIZED (
    SELECT l.id, "disparo"._range_count(l) AS n
    FROM "disparo".leases l WHERE l.owner = p_owner ORDER BY l.id FOR UPDATE SKIP LOCKED
  ), gone AS (
    DELETE FROM "disparo".leases x USING l WHERE x.id = l.id AND l.n = 0
  ), kept AS (
    UPDATE "disparo".leases x SET expires_at = p_now + p_lease_ms FROM l WHERE x.id = l.id AND l.n > 0 RETURNING l.n
  ), own_pending AS (
    -- (A row in flight is the send's: counted below, once.)
    SELECT r.id FROM "disparo".recipients r WHERE r.status = 'pending' AND r.lease_owner = p_owner
      AND NOT EXISTS (SELECT 1 FROM "disparo".in_flight f WHERE f.recipient_id = r.id) FOR UPDATE OF r SKIP LOCKED
  ), u AS (
    UPDATE "disparo".recipients r SET lease_expires_at = p_now + p_lease_ms
    FROM own_pending own WHERE r.id = own.id AND r.lease_owner = p_owner RETURNING 1
  ), sends AS (
    UPDATE "disparo".in_flight x SET expires_at = p_now + p_lease_ms
    WHERE x.recipient_id IN (SELECT f.recipient_id FROM "disparo".in_flight f WHERE f.owner = p_owner FOR UPDATE SKIP LOCKED)
    RETURNING 1
  )
  SELECT (coalesce((SELECT sum(kept.n) FROM kept), 0) + (SELECT count(*) FROM u) + (SELECT count(*) FROM sends))::integer
$$;
$disparo_sql$);

-- sql/functions/list_accounts.sql
SELECT pg_temp.disparo_function('list_accounts', '4980a8fdee46c1650cee4e00d59aa4e5', $disparo_sql$
-- StateStore.listAccounts: the accounts whose ids are in `p_ids` (a JSON array), in that order, each
-- once, unknown ids left out; or every account by id when `p_ids` is null.
CREATE OR REPLACE FUNCTION "disparo".list_accounts(p_ids jsonb DEFAULT NULL)
RETURNS SETOF "disparo".accounts
LANGUAGE sql STABLE AS $$
  SELECT a.* FROM "disparo".accounts a
  LEFT JOIN (
    SELECT x.id, min(x.i) AS i FROM jsonb_array_elements_text(coalesce(p_ids, '[]')) WITH ORDINALITY AS x(id, i) GROUP BY x.id
  ) w ON w.id = a.id
  WHERE p_ids IS NULL OR w.id IS NOT NULL
  ORDER BY w.i, a.id
$$;
$disparo_sql$);

-- sql/functions/list_batches.sql
SELECT pg_temp.disparo_function('list_batches', 'b4cdc25aab5deb4a5204206d48834003', $disparo_sql$
-- StateStore.listBatches: a JSON array of the campaign's `BatchRecord`s in batch order, each with its
-- counts (the sum of its counter shards; sent includes delivered and read, see core's BATCH_COUNT).
CREATE OR REPLACE FUNCTION "disparo".list_batches(p_campaign_id text)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT coalesce(jsonb_agg(jsonb_build_object(
      'campaignId', b.campaign_id, 'batch', b.batch,
      'size', coalesce(k.n_total, 0), 'sent', coalesce(k.n_sent, 0), 'failed', coalesce(k.n_failed, 0),
      'skipped', coalesce(k.n_skipped, 0), 'unknown', coalesce(k.n_unknown, 0),
      'startedAt', b.started_at, 'finishedAt', b.finished_at, 'error', b.error) ORDER BY b.batch), '[]')
  FROM "disparo".batches b
  LEFT JOIN LATERAL (
    SELECT sum(s.n_total) AS n_total, sum(s.n_sent + s.n_delivered + s.n_read) AS n_sent, sum(s.n_failed) AS n_failed,
      sum(s.n_skipped) AS n_skipped, sum(s.n_unknown) AS n_unknown
    FROM "disparo".batch_counts s WHERE s.campaign_id = b.campaign_id AND s.batch = b.batch
  ) k ON true
  WHERE b.campaign_id = p_campaign_id
$$;
$disparo_sql$);

-- sql/functions/list_campaigns.sql
SELECT pg_temp.disparo_function('list_campaigns', 'cd423b9e90f3475193d6811bde6cd7b9', $disparo_sql$
-- StateStore.listCampaigns: a JSON array of campaigns, oldest first (created_at, then id), with one of
-- the statuses in `p_statuses` (a JSON array; null for all), at most `p_limit` (null for all).
CREATE OR REPLACE FUNCTION "disparo".list_campaigns(p_statuses jsonb DEFAULT NULL, p_limit integer DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT coalesce(jsonb_agg("disparo"._campaign_json(c) ORDER BY c.created_at, c.id), '[]')
  FROM (
    SELECT c.* FROM "disparo".campaigns c
    WHERE p_statuses IS NULL OR c.status IN (SELECT jsonb_array_elements_text(p_statuses))
    ORDER BY c.created_at, c.id
    LIMIT CASE WHEN p_limit < 0 THEN 0 ELSE p_limit END
  ) c
$$;
$disparo_sql$);

-- sql/functions/list_in_doubt.sql
SELECT pg_temp.disparo_function('list_in_doubt', '81ac0f36d879767ae9e9bedc28daf1c6', $disparo_sql$
-- StateStore.listInDoubt: sends that may or may not have happened: sends in flight
-- (000006_in_flight.sql) whose lease expired at or before `p_now`, oldest expiry first, of one
-- campaign or all (`p_campaign_id` null), as their rows show them (_shown).
CREATE OR REPLACE FUNCTION "disparo".list_in_doubt(p_now bigint, p_limit integer, p_campaign_id text DEFAULT NULL)
RETURNS SETOF "disparo".recipients
LANGUAGE sql STABLE AS $$
  SELECT w.* FROM "disparo".in_flight f
  JOIN "disparo".recipients r ON r.id = f.recipient_id
  CROSS JOIN LATERAL "disparo"._shown(r) w
  WHERE (f.expires_at IS NULL OR f.expires_at <= p_now)
    AND (p_campaign_id IS NULL OR f.campaign_id = p_campaign_id)
  ORDER BY f.expires_at NULLS FIRST, r.seq
  LIMIT CASE WHEN p_limit < 0 THEN 0 ELSE p_limit END
$$;
$disparo_sql$);

-- sql/functions/list_opt_outs.sql
SELECT pg_temp.disparo_function('list_opt_outs', '2f509895698e8d8a7de32d7de37f3848', $disparo_sql$
-- StateStore.listOptOuts: the suppression list entries of the phones in `p_phones` (a JSON array), or
-- all of them when it is null.
CREATE OR REPLACE FUNCTION "disparo".list_opt_outs(p_phones jsonb DEFAULT NULL)
RETURNS SETOF "disparo".opt_outs
LANGUAGE sql STABLE AS $$
  SELECT o.* FROM "disparo".opt_outs o
  WHERE p_phones IS NULL OR o.phone = ANY (ARRAY(SELECT jsonb_array_elements_text(p_phones)))
  ORDER BY o.at, o.phone
$$;
$disparo_sql$);

-- sql/functions/list_recipients.sql
SELECT pg_temp.disparo_function('list_recipients', '79ed7cce4ff69202120190c89225170a', $disparo_sql$
-- StateStore.listRecipients: the campaign's rows with `seq` above `p_after_seq` (keyset paging), with
-- one of the statuses in `p_statuses` (a JSON array; null for all), by seq, at most `p_limit` (null for all).
CREATE OR REPLACE FUNCTION "disparo".list_recipients(p_campaign_id text, p_statuses jsonb DEFAULT NULL,
  p_after_seq integer DEFAULT NULL, p_limit integer DEFAULT NULL)
RETURNS SETOF "disparo".recipients
LANGUAGE sql STABLE AS $$
  SELECT w.* FROM "disparo".recipients r CROSS JOIN LATERAL "disparo"._shown(r) w
  WHERE r.campaign_id = p_campaign_id AND r.seq > greatest(coalesce(p_after_seq, 0), 0)
    AND (p_statuses IS NULL OR w.status = ANY (ARRAY(SELECT jsonb_array_elements_text(p_statuses))))
  ORDER BY r.seq
  LIMIT CASE WHEN p_limit < 0 THEN 0 ELSE p_limit END
$$;
$disparo_sql$);

-- sql/functions/next_batch.sql
SELECT pg_temp.disparo_function('next_batch', '00b3508f5655d64d5282c3443a082ca4', $disparo_sql$
-- StateStore.nextBatch: move the campaign's batch pointer from `p_current` to `p_next` (and set the
-- pause before it) when its current batch is `p_current` and none of that batch's rows is pending or
-- sending; mark the finished batch. Returns the campaign, or null (not finished, or another worker
-- moved the pointer first). The campaign row is locked first, so an import into the current batch
-- either commits before (and its rows hold the move back) or waits and sees the new batch.
CREATE OR REPLACE FUNCTION "disparo".next_batch(p_campaign_id text, p_current integer, p_next integer,
  p_next_batch_at bigint, p_now bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_current integer;
  v_result jsonb;
BEGIN
  SELECT c.current_batch INTO v_current FROM "disparo".campaigns c WHERE c.id = p_campaign_id FOR UPDATE;
  IF NOT FOUND OR v_current <> p_current THEN
    RETURN NULL;
  END IF;
  IF (SELECT coalesce(sum(k.n_pending + k.n_sending), 0) FROM "disparo".batch_counts k
      WHERE k.campaign_id = p_campaign_id AND k.batch = p_current) > 0 THEN
    RETURN NULL;
  END IF;
  UPDATE "disparo".batches SET finished_at = p_now WHERE campaign_id = p_campaign_id AND batch = p_current;
  UPDATE "disparo".campaigns c SET current_batch = p_next, next_batch_at = p_next_batch_at, updated_at = p_now
    WHERE c.id = p_campaign_id
    RETURNING "disparo"._campaign_json(c) INTO v_result;
  RETURN v_result;
END
$$;
$disparo_sql$);

-- sql/functions/notify_wake.sql
SELECT pg_temp.disparo_function('notify_wake', '0de08130671a59751fedf498d22945af', $disparo_sql$
-- StateStore.notifyWake: wake idle workers that LISTEN on `p_channel` (the store's wake channel,
-- `disparo_wake_<schema>`): a campaign started, resumed or was scheduled.
CREATE OR REPLACE FUNCTION "disparo".notify_wake(p_channel text)
RETURNS void
LANGUAGE sql AS $$
  SELECT pg_notify(p_channel, '')
$$;
$disparo_sql$);

-- sql/functions/release.sql
SELECT pg_temp.disparo_function('release', 'b57192e5f72de03376e8417d9a68b02c', $disparo_sql$
-- StateStore.release: drop `p_owner`'s leases on pending rows: all of them (its ranges, and the rows
-- leased on the row), or those of the rows whose ids are in `p_recipient_ids` (a JSON array). Sends
-- in flight (000006_in_flight.sql) are left to recovery. Returns how many rows that frees.
-- A row freed on its own is marked "not leased" (`lease_expires_at = 0`, no owner), so that no live
-- range over it takes it back (000005_range_leases.sql). Ranges, then rows, are locked in key order.
-- Claims and heartbeats take ranges and rows with SKIP LOCKED, never waiting, so a release waits at most
-- for one of them to finish, and never in a cycle.
CREATE OR REPLACE FUNCTION "disparo".release(p_owner text, p_recipient_ids jsonb DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_ranged integer := 0;
  v_rows integer;
BEGIN
  IF p_recipient_ids IS NULL THEN
    WITH l AS MATERIALIZED (
      SELECT l.id, "disparo"._range_count(l) AS n
      FROM "disparo".leases l WHERE l.owner = p_owner ORDER BY l.id FOR UPDATE
    ), gone AS (
      DELETE FROM "disparo".leases x USING l WHERE x.id = l.id
    )
    SELECT coalesce(sum(l.n), 0)::integer INTO v_ranged FROM l;
    WITH l AS (
      SELECT r.id FROM "disparo".recipients r WHERE r.lease_owner = p_owner AND r.status = 'pending'
        AND NOT EXISTS (SELECT 1 FROM "disparo".in_flight f WHERE f.recipient_id = r.id) ORDER BY r.id FOR UPDATE OF r
    ), u AS (
      UPDATE "disparo".recipients r SET lease_owner = NULL, lease_expires_at = 0 FROM l
      WHERE r.id = l.id AND r.lease_owner = p_owner AND r.status = 'pending' RETURNING 1
    )
    SELECT count(*)::integer INTO v_rows FROM u;
  ELSE
    WITH l AS (
      SELECT r.id FROM "disparo".recipients r CROSS JOIN LATERAL "disparo"._shown(r) w
      WHERE r.id = ANY (ARRAY(SELECT "disparo"._row_id(x) FROM jsonb_array_elements_text(p_recipient_ids) x))
        AND w.status = 'pending' AND w.lease_owner = p_owner
      ORDER BY r.id FOR UPDATE OF r
    ), u AS (
      UPDATE "disparo".recipients r SET lease_owner = NULL, lease_expires_at = 0 FROM l
      WHERE r.id = l.id AND r.status = 'pending' AND (r.lease_owner = p_owner OR r.lease_expires_at IS NULL) RETURNING 1
    )
    SELECT count(*)::integer INTO v_rows FROM u;
  END IF;
  RETURN v_ranged + v_rows;
END
$$;
$disparo_sql$);

-- sql/functions/remove_opt_out.sql
SELECT pg_temp.disparo_function('remove_opt_out', '1a9a75b2f8e301d285eaffcda144fd3f', $disparo_sql$
-- StateStore.removeOptOut: true when the phone was on the suppression list.
CREATE OR REPLACE FUNCTION "disparo".remove_opt_out(p_phone text)
RETURNS boolean
LANGUAGE sql AS $$
  WITH d AS (DELETE FROM "disparo".opt_outs WHERE phone = p_phone RETURNING 1)
  SELECT count(*) > 0 FROM d
$$;
$disparo_sql$);

-- sql/functions/settle_in_doubt.sql
SELECT pg_temp.disparo_function('settle_in_doubt', '4f7d44a4f67c5dc6a9435d4589998b5e', $disparo_sql$
-- StateStore.settleInDoubt: `p_settlements` is an array of `InDoubtSettlement`
-- ({"recipientId", "status": sent|pending|unknown, "providerMessageId", "sentAt"}). Each applies only
-- while its row is still `sending` (in flight, 000006_in_flight.sql) with an expired lease, so of two
-- recovering workers exactly one settles it (the other re-reads the row after the first commits and
-- finds it settled); the first settlement of a row wins. The row is written once, with its send's
-- text, attempt and account, and the send deleted, so it leaves its account's in-flight window. The
-- account is paced from now (core's nextSendAfterSettling: max(next_send_at, now +
-- pacing.intervalMs.min)), since the provider may have taken the message as late as the dead worker's
-- last moment. Returns how many applied.
CREATE OR REPLACE FUNCTION "disparo".settle_in_doubt(p_settlements jsonb, p_now bigint)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  v_ids bigint[];
  v_applied integer;
  v_accounts text[];
  v_moves "disparo".move[];
BEGIN
  SELECT array_agg(DISTINCT "disparo"._row_id(e ->> 'recipientId')) INTO v_ids
    FROM jsonb_array_elements(coalesce(p_settlements, '[]')) e;
  -- Recipients first, then accounts, each in key order (as every function locks them). A send in
  -- flight (000006_in_flight.sql) changes only under its row's lock, so the statement after this one
  -- sees each send as it stands.
  PERFORM 1 FROM "disparo".recipients r WHERE r.id = ANY (v_ids) ORDER BY r.id FOR UPDATE;
  WITH s AS (
    SELECT DISTINCT ON (x.id) x.id, x.status, x.pid, x.sent_at
    FROM (
      SELECT "disparo"._row_id(e ->> 'recipientId') AS id, e ->> 'status' AS status, e ->> 'providerMessageId' AS pid,
        (e ->> 'sentAt')::bigint AS sent_at, i
      FROM jsonb_array_elements(p_settlements) WITH ORDINALITY AS x(e, i)
    ) x
    WHERE x.status IN ('sent', 'pending', 'unknown')
    ORDER BY x.id, x.i
  ), old AS (
    -- The sends settled: in flight, their lease expired; deleted here, their row written once below.
    DELETE FROM "disparo".in_flight f USING s
    WHERE f.recipient_id = s.id AND (f.expires_at IS NULL OR f.expires_at <= p_now)
    RETURNING f.*
  ), u AS (
    UPDATE "disparo".recipients r SET
      status = s.status,
      text = old.text,
      attempts = old.attempt,
      account_id = old.account_id,
      lease_owner = NULL,
      -- Back to pending: the "not leased" mark, so no range over the row takes it (000005_range_leases.sql).
      lease_expires_at = CASE WHEN s.status = 'pending' THEN 0 END,
      updated_at = p_now,
      provider_message_id = CASE WHEN s.status = 'sent' AND s.pid <> '' THEN s.pid ELSE coalesce(old.provider_message_id, r.provider_message_id) END,
      sent_at = CASE WHEN s.status = 'sent' THEN coalesce(s.sent_at, p_now) ELSE r.sent_at END,
      processed_at = CASE WHEN s.status = 'pending' THEN r.processed_at ELSE p_now END
    FROM s JOIN old ON old.recipient_id = s.id
    WHERE r.id = s.id
    RETURNING old.account_id, CAST(ROW(old.campaign_id, old.batch, 'sending', s.status) AS "disparo".move) AS m
  )
  SELECT count(*), array_agg(DISTINCT u.account_id) FILTER (WHERE u.account_id IS NOT NULL AND u.account_id <> ''), array_agg(u.m)
    INTO v_applied, v_accounts, v_moves FROM u;

  IF v_accounts IS NOT NULL THEN
    WITH l AS (
      SELECT a.id FROM "disparo".accounts a WHERE a.id = ANY (v_accounts) ORDER BY a.id FOR UPDATE
    )
    UPDATE "disparo".accounts a SET
      next_send_at = greatest(a.next_send_at, p_now + coalesce((a.pacing -> 'intervalMs' ->> 'min')::bigint, 0)),
      updated_at = p_now
    FROM l WHERE a.id = l.id;
  END IF;
  PERFORM "disparo"._count_moves(v_moves);
  RETURN v_applied;
END
$$;
$disparo_sql$);

-- sql/functions/transition_campaign.sql
SELECT pg_temp.disparo_function('transition_campaign', '91cfffa931f0188aa5cd4fe6b67a7367', $disparo_sql$
-- StateStore.transitionCampaign, compare-and-set: when the campaign's status is one of
-- `p_change.from`, set `to` and the rest of the change, and return the campaign; else null.
-- `p_change` is a `CampaignTransition`, with `from` already narrowed by the caller to the statuses
-- that may go to `to` (core's CAMPAIGN_TRANSITIONS, the one source of that table) and `finished`
-- saying whether `to` ends the campaign. A key absent from the change leaves its column as it is.
CREATE OR REPLACE FUNCTION "disparo".transition_campaign(p_id text, p_change jsonb)
RETURNS jsonb
LANGUAGE sql AS $$
  UPDATE "disparo".campaigns c SET
    status = p_change ->> 'to',
    updated_at = (p_change ->> 'now')::bigint,
    pause_reason = CASE WHEN p_change ->> 'to' = 'paused' THEN p_change ->> 'pauseReason' END,
    scheduled_at = CASE WHEN p_change ? 'scheduledAt' THEN (p_change ->> 'scheduledAt')::bigint ELSE c.scheduled_at END,
    last_error = CASE WHEN p_change ? 'lastError' THEN p_change ->> 'lastError' ELSE c.last_error END,
    started_at = CASE WHEN p_change ->> 'to' = 'running' THEN coalesce(c.started_at, (p_change ->> 'now')::bigint) ELSE c.started_at END,
    finished_at = CASE WHEN (p_change ->> 'finished')::boolean THEN (p_change ->> 'now')::bigint ELSE c.finished_at END
  WHERE c.id = p_id AND c.status IN (SELECT jsonb_array_elements_text(p_change -> 'from'))
  RETURNING "disparo"._campaign_json(c)
$$;
$disparo_sql$);

-- sql/functions/update_account.sql
SELECT pg_temp.disparo_function('update_account', 'eed9e511640e9a456ef354ea81845ccb', $disparo_sql$
-- StateStore.updateAccount: `p_patch` is an `AccountPatch`; a key absent from it leaves its column as
-- it is. `nextSendAtAtLeast` only ever moves next_send_at later. Returns the row, or none.
CREATE OR REPLACE FUNCTION "disparo".update_account(p_id text, p_patch jsonb, p_now bigint)
RETURNS SETOF "disparo".accounts
LANGUAGE sql AS $$
  UPDATE "disparo".accounts a SET
    state = CASE WHEN p_patch ? 'state' THEN p_patch ->> 'state' ELSE a.state END,
    connection = CASE WHEN p_patch ? 'connection' THEN p_patch ->> 'connection' ELSE a.connection END,
    consecutive_failures = CASE WHEN p_patch ? 'consecutiveFailures' THEN (p_patch ->> 'consecutiveFailures')::integer ELSE a.consecutive_failures END,
    disabled_until = CASE WHEN p_patch ? 'disabledUntil' THEN (p_patch ->> 'disabledUntil')::bigint ELSE a.disabled_until END,
    disabled_reason = CASE WHEN p_patch ? 'disabledReason' THEN p_patch ->> 'disabledReason' ELSE a.disabled_reason END,
    next_send_at = greatest(a.next_send_at, coalesce((p_patch ->> 'nextSendAtAtLeast')::bigint, a.next_send_at)),
    updated_at = p_now
  WHERE a.id = p_id
  RETURNING *
$$;
$disparo_sql$);

-- sql/functions/update_campaign.sql
SELECT pg_temp.disparo_function('update_campaign', '3decd3c67b43b6606c58eb8db5a98535', $disparo_sql$
-- StateStore.updateCampaign: `p_patch` is a `CampaignPatch`; a key absent from it leaves its column
-- as it is. Returns the campaign, or null when there is none.
CREATE OR REPLACE FUNCTION "disparo".update_campaign(p_id text, p_patch jsonb, p_now bigint)
RETURNS jsonb
LANGUAGE sql AS $$
  UPDATE "disparo".campaigns c SET
    name = CASE WHEN p_patch ? 'name' THEN p_patch ->> 'name' ELSE c.name END,
    templates = CASE WHEN p_patch ? 'templates' THEN p_patch -> 'templates' ELSE c.templates END,
    media = CASE WHEN p_patch ? 'media' THEN nullif(p_patch -> 'media', 'null') ELSE c.media END,
    account_ids = CASE WHEN p_patch ? 'accountIds' THEN p_patch -> 'accountIds' ELSE c.account_ids END,
    settings = CASE WHEN p_patch ? 'settings' THEN p_patch -> 'settings' ELSE c.settings END,
    metadata = CASE WHEN p_patch ? 'metadata' THEN p_patch -> 'metadata' ELSE c.metadata END,
    scheduled_at = CASE WHEN p_patch ? 'scheduledAt' THEN (p_patch ->> 'scheduledAt')::bigint ELSE c.scheduled_at END,
    updated_at = p_now
  WHERE c.id = p_id
  RETURNING "disparo"._campaign_json(c)
$$;
$disparo_sql$);

-- sql/functions/upsert_account.sql
SELECT pg_temp.disparo_function('upsert_account', '4e2e632805c94f469080158bc3325ac2', $disparo_sql$
-- StateStore.upsertAccount: create the account (active, next send now), or update its pacing only;
-- its state and pacing position are kept.
CREATE OR REPLACE FUNCTION "disparo".upsert_account(p_id text, p_pacing jsonb, p_now bigint)
RETURNS SETOF "disparo".accounts
LANGUAGE sql AS $$
  INSERT INTO "disparo".accounts (id, pacing, next_send_at, created_at, updated_at) VALUES (p_id, p_pacing, p_now, p_now, p_now)
  ON CONFLICT (id) DO UPDATE SET pacing = excluded.pacing, updated_at = excluded.updated_at
  RETURNING *
$$;
$disparo_sql$);

-- 3. Access: the service role only.
SELECT pg_temp.disparo_lock_down(ARRAY['_campaign_json', '_checkpoint_columns', '_count_moves', '_import_staged', '_range_count', '_row_id', '_shown', '_skip_opted_out', 'account_send_times', 'add_opt_outs', 'add_recipients', 'apply_status_updates', 'checkpoint', 'claim_recipients', 'cleanup', 'contact_history', 'count_processed_since', 'create_campaign', 'get_account', 'get_campaign', 'get_recipient_by_provider_id', 'heartbeat', 'list_accounts', 'list_batches', 'list_campaigns', 'list_in_doubt', 'list_opt_outs', 'list_recipients', 'next_batch', 'notify_wake', 'release', 'remove_opt_out', 'settle_in_doubt', 'transition_campaign', 'update_account', 'update_campaign', 'upsert_account']);
REVOKE ALL ON SCHEMA "disparo" FROM PUBLIC, anon, authenticated;
GRANT USAGE ON SCHEMA "disparo" TO service_role;
REVOKE ALL ON ALL TABLES IN SCHEMA "disparo" FROM PUBLIC, anon, authenticated, service_role;
GRANT SELECT ON ALL TABLES IN SCHEMA "disparo" TO service_role;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA "disparo" FROM PUBLIC, anon, authenticated, service_role;

DROP FUNCTION pg_temp.disparo_migration(integer, text, text);
DROP FUNCTION pg_temp.disparo_function(text, text, text);
DROP FUNCTION pg_temp.disparo_lock_down(text[]);

-- 4. PostgREST picks up the functions.
NOTIFY pgrst, 'reload schema';
