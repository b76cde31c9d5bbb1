-- StateStore.getRecipientByProviderId: the row carrying this provider message id (the latest one to
-- take it, should two), or no row. A send in flight (000006_in_flight.sql) carries the id it was
-- written ahead with; the row shows it (_shown). apply_status_updates finds a receipt's row here too.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.get_recipient_by_provider_id(p_provider_message_id text)
RETURNS SETOF :DISPARO_SCHEMA.recipients
LANGUAGE sql STABLE AS $$
  SELECT w.* FROM :DISPARO_SCHEMA.recipients r CROSS JOIN LATERAL :DISPARO_SCHEMA._shown(r) w
  WHERE r.id IN (SELECT x.id FROM :DISPARO_SCHEMA.recipients x WHERE x.provider_message_id = p_provider_message_id
                 UNION ALL
                 SELECT f.recipient_id FROM :DISPARO_SCHEMA.in_flight f WHERE f.provider_message_id = p_provider_message_id)
    AND w.provider_message_id = p_provider_message_id
  ORDER BY w.updated_at DESC, r.id DESC
  LIMIT 1
$$;
