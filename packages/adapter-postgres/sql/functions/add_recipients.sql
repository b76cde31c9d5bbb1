-- StateStore.addRecipients with the rows as JSON: `p_rows` is an array of `NewRecipient`
-- ({"phone", "vars"}). Stages them in the session's temporary table and imports them with
-- _import_staged, the same path as COPY (which node-postgres pools use instead). For PGlite, single
-- connections and PostgREST (Supabase).
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.add_recipients(p_campaign_id text, p_rows jsonb, p_now bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
  IF to_regclass('pg_temp.disparo_import') IS NULL THEN
    CREATE TEMPORARY TABLE disparo_import (ord integer NOT NULL, phone text NOT NULL, vars jsonb NOT NULL) ON COMMIT DELETE ROWS;
  END IF;
  INSERT INTO pg_temp.disparo_import (ord, phone, vars)
  SELECT e.ord::integer, e.value ->> 'phone', coalesce(e.value -> 'vars', '{}'::jsonb)
  FROM jsonb_array_elements(coalesce(p_rows, '[]')) WITH ORDINALITY AS e(value, ord);
  RETURN :DISPARO_SCHEMA._import_staged(p_campaign_id, p_now);
END
$$;
