-- StateStore.getAccount: the account's row, or none.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.get_account(p_id text)
RETURNS SETOF :DISPARO_SCHEMA.accounts
LANGUAGE sql STABLE AS $$
  SELECT a.* FROM :DISPARO_SCHEMA.accounts a WHERE a.id = p_id
$$;
