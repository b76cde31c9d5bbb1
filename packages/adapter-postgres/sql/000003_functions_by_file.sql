-- Disparo store schema, version 3: functions by file, an in-flight window per account.
--
-- Functions are no longer part of migrations: each lives once in sql/functions/<name>.sql and
-- migrate() creates or replaces it when its text changed, tracked by a hash in `schema_functions`.
-- A database migrated by an earlier version of this package held the functions of versions 1 and 2
-- (and two views): they go here, so only the functions of sql/functions remain.

DROP FUNCTION IF EXISTS :DISPARO_SCHEMA.advance_many(jsonb);
DROP FUNCTION IF EXISTS :DISPARO_SCHEMA.advance(text, bigint, bigint, jsonb, jsonb);
DROP FUNCTION IF EXISTS :DISPARO_SCHEMA._advance(text, bigint, bigint, jsonb, jsonb);
DROP FUNCTION IF EXISTS :DISPARO_SCHEMA.advance_group(text, bigint, bigint,
  bigint[], text[], text[], boolean[], integer[], bigint[], text[], text[], text[], boolean[], text[], text[],
  text, text, integer, bigint, text, integer, bigint,
  bigint[], text[], text[], integer[], text[], bigint[], bigint[]);
DROP FUNCTION IF EXISTS :DISPARO_SCHEMA.advance_batch(text, integer, integer, bigint, bigint);
DROP FUNCTION IF EXISTS :DISPARO_SCHEMA.settle(jsonb, bigint);
DROP FUNCTION IF EXISTS :DISPARO_SCHEMA.apply_receipts(jsonb, bigint);
DROP FUNCTION IF EXISTS :DISPARO_SCHEMA.add_opt_outs(jsonb, bigint);
DROP FUNCTION IF EXISTS :DISPARO_SCHEMA.claim(text, integer, text, integer, bigint, bigint, integer);
DROP FUNCTION IF EXISTS :DISPARO_SCHEMA.import_json(text, jsonb, bigint);
DROP FUNCTION IF EXISTS :DISPARO_SCHEMA._import_staged(text, bigint);
DROP FUNCTION IF EXISTS :DISPARO_SCHEMA._count_moves_set(:DISPARO_SCHEMA.move[]);
DROP FUNCTION IF EXISTS :DISPARO_SCHEMA._count_moves(:DISPARO_SCHEMA.move[]);
DROP VIEW IF EXISTS :DISPARO_SCHEMA.campaign_view;
DROP VIEW IF EXISTS :DISPARO_SCHEMA.batch_view;

-- The functions migrate() created, with the hash of the text each was created from.
CREATE TABLE :DISPARO_SCHEMA.schema_functions (
  name text PRIMARY KEY,
  hash text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);

-- An account's sends in flight (written ahead, no outcome yet: on the wire, or in doubt until
-- settled), counted by every write-ahead under the account's row lock (functions/checkpoint.sql).
-- `status` in its predicate means a write-ahead is no longer a HOT update (version 2): measured, a
-- few percent of a checkpoint's time, for a count that cannot drift from the rows.
CREATE INDEX recipients_in_flight_idx ON :DISPARO_SCHEMA.recipients (account_id) WHERE status = 'sending';
