-- The outcomes of a checkpoint as rows: `p_outcomes` is an array of the contract's `Outcome` records
-- (keys as in TypeScript: recipientId, campaignId, status, keepLease, attempts, at, accountId,
-- providerMessageId, error, skipReason, accountEffect, accountNextSendAt). `i` is the position in the
-- array, `has_error` whether `error` was given at all (given as null, it clears the row's last error;
-- absent, it keeps it).
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA._outcome_rows(p_outcomes jsonb)
RETURNS TABLE (i integer, recipient_id text, id bigint, campaign_id text, status text, keep_lease boolean, attempts integer, at bigint,
  account_id text, provider_message_id text, error text, has_error boolean, skip_reason text, effect text, next_send_at bigint)
LANGUAGE sql IMMUTABLE AS $$
  SELECT x.i::integer,
    x.e ->> 'recipientId',
    :DISPARO_SCHEMA._row_id(x.e ->> 'recipientId'),
    x.e ->> 'campaignId',
    x.e ->> 'status',
    coalesce((x.e ->> 'keepLease')::boolean, false),
    (x.e ->> 'attempts')::integer,
    (x.e ->> 'at')::bigint,
    x.e ->> 'accountId',
    x.e ->> 'providerMessageId',
    x.e ->> 'error',
    x.e ? 'error',
    x.e ->> 'skipReason',
    coalesce(x.e ->> 'accountEffect', 'none'),
    (x.e ->> 'accountNextSendAt')::bigint
  FROM jsonb_array_elements(coalesce(p_outcomes, '[]')) WITH ORDINALITY AS x(e, i)
$$;
