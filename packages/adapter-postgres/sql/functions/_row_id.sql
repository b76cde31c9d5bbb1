-- A recipient id as the wire carries it (text) to the bigint key; an id that is not one matches no
-- row (null equals nothing), so a caller's bad id is "not found", never an error.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA._row_id(p_id text)
RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN p_id ~ '^[0-9]{1,18}$' THEN p_id::bigint END
$$;
