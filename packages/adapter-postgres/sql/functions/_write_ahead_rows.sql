-- The items of a checkpoint's write-ahead as rows: `p_write_ahead` is the contract's `WriteAhead`
-- record, whose `items` are `WriteAheadItem`s (recipientId, campaignId, text, attempt,
-- providerMessageId, gapMs, leadMs). `i` is the item's position.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA._write_ahead_rows(p_write_ahead jsonb)
RETURNS TABLE (i integer, id bigint, campaign_id text, text text, attempt integer, provider_message_id text, gap_ms bigint, lead_ms bigint)
LANGUAGE sql IMMUTABLE AS $$
  SELECT x.i::integer,
    :DISPARO_SCHEMA._row_id(x.e ->> 'recipientId'),
    x.e ->> 'campaignId',
    x.e ->> 'text',
    (x.e ->> 'attempt')::integer,
    x.e ->> 'providerMessageId',
    coalesce((x.e ->> 'gapMs')::bigint, 0),
    coalesce((x.e ->> 'leadMs')::bigint, 0)
  FROM jsonb_array_elements(coalesce(p_write_ahead -> 'items', '[]')) WITH ORDINALITY AS x(e, i)
$$;
