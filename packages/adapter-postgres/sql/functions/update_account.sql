-- StateStore.updateAccount: `p_patch` is an `AccountPatch`; a key absent from it leaves its column as
-- it is. `nextSendAtAtLeast` only ever moves next_send_at later. Returns the row, or none.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.update_account(p_id text, p_patch jsonb, p_now bigint)
RETURNS SETOF :DISPARO_SCHEMA.accounts
LANGUAGE sql AS $$
  UPDATE :DISPARO_SCHEMA.accounts a SET
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
