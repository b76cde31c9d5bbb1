-- StateStore.contactHistory: sends (rows in sent, delivered or read) to the phones in `p_phones` (a
-- JSON array) at or after `p_since`, in any campaign, newest first.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.contact_history(p_phones jsonb, p_since bigint)
RETURNS TABLE (phone text, campaign_id text, account_id text, sent_at bigint)
LANGUAGE sql STABLE AS $$
  SELECT r.phone, r.campaign_id, r.account_id, r.sent_at FROM :DISPARO_SCHEMA.recipients r
  WHERE r.phone = ANY (ARRAY(SELECT DISTINCT jsonb_array_elements_text(p_phones)))
    AND r.status IN ('sent', 'delivered', 'read') AND r.sent_at >= p_since
  ORDER BY r.sent_at DESC, r.id DESC
$$;
