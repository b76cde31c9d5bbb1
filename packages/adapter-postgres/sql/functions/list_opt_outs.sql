-- StateStore.listOptOuts: the suppression list entries of the phones in `p_phones` (a JSON array), or
-- all of them when it is null.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.list_opt_outs(p_phones jsonb DEFAULT NULL)
RETURNS SETOF :DISPARO_SCHEMA.opt_outs
LANGUAGE sql STABLE AS $$
  SELECT o.* FROM :DISPARO_SCHEMA.opt_outs o
  WHERE p_phones IS NULL OR o.phone = ANY (ARRAY(SELECT jsonb_array_elements_text(p_phones)))
  ORDER BY o.at, o.phone
$$;
