-- StateStore.upsertAccount: create the account (active, next send now), or update its pacing only;
-- its state and pacing position are kept.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.upsert_account(p_id text, p_pacing jsonb, p_now bigint)
RETURNS SETOF :DISPARO_SCHEMA.accounts
LANGUAGE sql AS $$
  INSERT INTO :DISPARO_SCHEMA.accounts (id, pacing, next_send_at, created_at, updated_at) VALUES (p_id, p_pacing, p_now, p_now, p_now)
  ON CONFLICT (id) DO UPDATE SET pacing = excluded.pacing, updated_at = excluded.updated_at
  RETURNING *
$$;
