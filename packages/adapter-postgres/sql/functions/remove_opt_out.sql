-- StateStore.removeOptOut: true when the phone was on the suppression list.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.remove_opt_out(p_phone text)
RETURNS boolean
LANGUAGE sql AS $$
  WITH d AS (DELETE FROM :DISPARO_SCHEMA.opt_outs WHERE phone = p_phone RETURNING 1)
  SELECT count(*) > 0 FROM d
$$;
