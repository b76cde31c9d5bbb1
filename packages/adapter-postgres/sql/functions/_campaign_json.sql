-- A campaign as the contract's `Campaign` record (readable keys, times in epoch ms), with its
-- counters: the sum of its counter shards. Every function that returns a campaign returns this.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA._campaign_json(c :DISPARO_SCHEMA.campaigns)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
    'id', c.id, 'name', c.name, 'templates', c.templates, 'media', c.media, 'accountIds', c.account_ids,
    'status', c.status, 'pauseReason', c.pause_reason, 'settings', c.settings, 'scheduledAt', c.scheduled_at,
    'currentBatch', c.current_batch, 'nextBatchAt', c.next_batch_at,
    'counters', jsonb_build_object(
      'total', coalesce(sum(k.n_total), 0), 'pending', coalesce(sum(k.n_pending), 0), 'sending', coalesce(sum(k.n_sending), 0),
      'sent', coalesce(sum(k.n_sent), 0), 'delivered', coalesce(sum(k.n_delivered), 0), 'read', coalesce(sum(k.n_read), 0),
      'failed', coalesce(sum(k.n_failed), 0), 'skipped', coalesce(sum(k.n_skipped), 0), 'unknown', coalesce(sum(k.n_unknown), 0)),
    'lastError', c.last_error, 'metadata', c.metadata, 'createdAt', c.created_at, 'updatedAt', c.updated_at,
    'startedAt', c.started_at, 'finishedAt', c.finished_at)
  FROM :DISPARO_SCHEMA.campaign_counts k
  WHERE k.campaign_id = c.id
$$;
