-- StateStore.addOptOuts: `p_entries` is an array of `OptOut` ({"phone", "reason", "source", "at"}).
-- Adds the phones to the suppression list (the first entry of a phone wins; one already listed is
-- kept) and skips their pending sends, leased or not, in every campaign (_skip_opted_out). Rows on
-- the wire are left to their worker; the next claim catches them if they come back.
-- Returns {"added", "cancelled"}.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.add_opt_outs(p_entries jsonb, p_now bigint)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_added integer;
  v_ids bigint[];
  v_moves :DISPARO_SCHEMA.move[];
BEGIN
  WITH e AS (
    SELECT DISTINCT ON (x.e ->> 'phone') x.e ->> 'phone' AS phone, x.e ->> 'reason' AS reason, x.e ->> 'source' AS source,
      (x.e ->> 'at')::bigint AS at
    FROM jsonb_array_elements(coalesce(p_entries, '[]')) WITH ORDINALITY AS x(e, i)
    ORDER BY x.e ->> 'phone', x.i
  ), ins AS (
    INSERT INTO :DISPARO_SCHEMA.opt_outs (phone, reason, source, at)
    SELECT e.phone, e.reason, e.source, e.at FROM e ORDER BY e.phone
    ON CONFLICT (phone) DO NOTHING
    RETURNING 1
  )
  SELECT count(*) INTO v_added FROM ins;

  -- The phone index finds the phone in every campaign; the rows are locked in key order.
  SELECT coalesce(array_agg(l.id), '{}') INTO v_ids FROM (
    SELECT r.id FROM :DISPARO_SCHEMA.recipients r
    WHERE r.phone = ANY (ARRAY(SELECT x ->> 'phone' FROM jsonb_array_elements(coalesce(p_entries, '[]')) x)) AND r.status = 'pending'
    ORDER BY r.id FOR UPDATE
  ) l;
  v_moves := :DISPARO_SCHEMA._skip_opted_out(v_ids, p_now);
  PERFORM :DISPARO_SCHEMA._count_moves(v_moves);
  RETURN jsonb_build_object('added', v_added, 'cancelled', cardinality(v_moves));
END
$$;
