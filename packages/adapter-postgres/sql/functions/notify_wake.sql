-- StateStore.notifyWake: wake idle workers that LISTEN on `p_channel` (the store's wake channel,
-- `disparo_wake_<schema>`): a campaign started, resumed or was scheduled.
CREATE OR REPLACE FUNCTION :DISPARO_SCHEMA.notify_wake(p_channel text)
RETURNS void
LANGUAGE sql AS $$
  SELECT pg_notify(p_channel, '')
$$;
