-- StateStore.listAccounts: the accounts whose ids are in `p_ids` (a JSON array), in that order, each
-- once, unknown ids left out; or every account by id when `p_ids` is null.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.list_accounts(p_ids jsonb DEFAULT NULL)
RETURNS SETOF :DISPARO_SCHEMA.accounts
LANGUAGE sql STABLE AS $$
  SELECT a.* FROM :DISPARO_SCHEMA.accounts a
  LEFT JOIN (
    SELECT x.id, min(x.i) AS i FROM jsonb_array_elements_text(coalesce(p_ids, '[]')) WITH ORDINALITY AS x(id, i) GROUP BY x.id
  ) w ON w.id = a.id
  WHERE p_ids IS NULL OR w.id IS NOT NULL
  ORDER BY w.i, a.id
$$;
