-- StateStore.listBatches: a JSON array of the campaign's `BatchRecord`s in batch order, each with its
-- counts (the sum of its counter shards; sent includes delivered and read, see core's BATCH_COUNT).
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.list_batches(p_campaign_id text)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT coalesce(jsonb_agg(jsonb_build_object(
      'campaignId', b.campaign_id, 'batch', b.batch,
      'size', coalesce(k.n_total, 0), 'sent', coalesce(k.n_sent, 0), 'failed', coalesce(k.n_failed, 0),
      'skipped', coalesce(k.n_skipped, 0), 'unknown', coalesce(k.n_unknown, 0),
      'startedAt', b.started_at, 'finishedAt', b.finished_at, 'error', b.error) ORDER BY b.batch), '[]')
  FROM :DISPARO_SCHEMA.batches b
  LEFT JOIN LATERAL (
    SELECT sum(s.n_total) AS n_total, sum(s.n_sent + s.n_delivered + s.n_read) AS n_sent, sum(s.n_failed) AS n_failed,
      sum(s.n_skipped) AS n_skipped, sum(s.n_unknown) AS n_unknown
    FROM :DISPARO_SCHEMA.batch_counts s WHERE s.campaign_id = b.campaign_id AND s.batch = b.batch
  ) k ON true
  WHERE b.campaign_id = p_campaign_id
$$;
