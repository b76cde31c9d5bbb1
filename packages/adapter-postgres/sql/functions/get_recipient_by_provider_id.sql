-- StateStore.getRecipientByProviderId: the row carrying this provider message id (the latest one to
-- take it, should two), or no row.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.get_recipient_by_provider_id(p_provider_message_id text)
RETURNS SETOF :DISPARO_SCHEMA.recipients
LANGUAGE sql STABLE AS $$
  SELECT w.* FROM :DISPARO_SCHEMA.recipients r CROSS JOIN LATERAL :DISPARO_SCHEMA._with_lease(r) w
  WHERE r.provider_message_id = p_provider_message_id
  ORDER BY r.updated_at DESC, r.id DESC
  LIMIT 1
$$;
