-- checkpoint's inputs as records, the way versions of this package before columns sent them (an array
-- of `Outcome` objects, and a `WriteAhead` whose `items` is an array of objects), turned into the
-- columns checkpoint reads (checkpoint-codec.ts): one JSON array per field, in order, with
-- `hasError` saying whether an outcome carried an `error` key. An input already in columns, or null,
-- is returned as it is; an empty array is null. For workers still on an older version during a rolling
-- upgrade; the current codec sends columns.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA._checkpoint_columns(p_outcomes jsonb, p_write_ahead jsonb,
  OUT outcomes jsonb, OUT write_ahead jsonb)
LANGUAGE sql IMMUTABLE AS $$
  SELECT
    CASE WHEN jsonb_typeof(p_outcomes) IS DISTINCT FROM 'array' THEN p_outcomes
         WHEN jsonb_array_length(p_outcomes) > 0 THEN (
      SELECT jsonb_build_object(
        'recipientId', jsonb_agg(e -> 'recipientId' ORDER BY i), 'campaignId', jsonb_agg(e -> 'campaignId' ORDER BY i),
        'status', jsonb_agg(e -> 'status' ORDER BY i), 'keepLease', jsonb_agg(e -> 'keepLease' ORDER BY i),
        'attempts', jsonb_agg(e -> 'attempts' ORDER BY i), 'at', jsonb_agg(e -> 'at' ORDER BY i),
        'accountId', jsonb_agg(e -> 'accountId' ORDER BY i), 'providerMessageId', jsonb_agg(e -> 'providerMessageId' ORDER BY i),
        'error', jsonb_agg(e -> 'error' ORDER BY i), 'hasError', jsonb_agg(e ? 'error' ORDER BY i),
        'skipReason', jsonb_agg(e -> 'skipReason' ORDER BY i), 'accountEffect', jsonb_agg(e -> 'accountEffect' ORDER BY i),
        'accountNextSendAt', jsonb_agg(e -> 'accountNextSendAt' ORDER BY i))
      FROM jsonb_array_elements(p_outcomes) WITH ORDINALITY AS x(e, i))
    END,
    CASE WHEN jsonb_typeof(p_write_ahead -> 'items') IS DISTINCT FROM 'array' THEN p_write_ahead
         WHEN jsonb_array_length(p_write_ahead -> 'items') = 0 THEN NULL
         ELSE jsonb_set(p_write_ahead, '{items}', (
      SELECT jsonb_build_object(
        'recipientId', jsonb_agg(e -> 'recipientId' ORDER BY i), 'campaignId', jsonb_agg(e -> 'campaignId' ORDER BY i),
        'text', jsonb_agg(e -> 'text' ORDER BY i), 'attempt', jsonb_agg(e -> 'attempt' ORDER BY i),
        'providerMessageId', jsonb_agg(e -> 'providerMessageId' ORDER BY i),
        'gapMs', jsonb_agg(e -> 'gapMs' ORDER BY i), 'leadMs', jsonb_agg(e -> 'leadMs' ORDER BY i))
      FROM jsonb_array_elements(p_write_ahead -> 'items') WITH ORDINALITY AS x(e, i)))
    END
$$;
