/**
 * One worker process of the crash test: an engine on the shared PostgreSQL schema with three simulator
 * accounts. Every send is reported to the test's HTTP sink before it counts as accepted, so the sink (in
 * another process) is the provider's memory: it survives our SIGKILL, and `lookup` asks it whether an
 * in-doubt message really left.
 */
import pg from 'pg';
import { createEngine, createSimulatorTransport, silentLogger, type Transport } from '@disparo/core';
import { createPostgresStore } from '@disparo/adapter-postgres';

const env = (name: string) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is required`);
  return v;
};
const sink = env('SINK_URL');
const workerId = env('WORKER_ID');
const pool = new pg.Pool({ connectionString: env('DATABASE_URL'), max: 6 });
const store = createPostgresStore(pool, { schema: env('SCHEMA') });

// Report every slot the store grants (before the send can happen), so the test checks pacing (I3) on
// the reservations themselves, and each send against its slot.
const checkpoint = store.checkpoint.bind(store);
store.checkpoint = async (input) => {
  const result = await checkpoint(input);
  const w = input.writeAhead;
  const granted = w ? result.grants.flatMap((g, i) => (g.granted ? [{ account: w.accountId, recipientId: w.items[i]!.recipientId, slotAt: g.slotAt }] : [])) : [];
  for (const slot of granted) {
    await fetch(`${sink}/slot`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(slot) });
  }
  return result;
};

const accountTransport = (id: string, seed: number): Transport => {
  const sim = createSimulatorTransport({
    seed,
    messageIdPrefix: `${workerId}-${id}-`,
    lookup: false,
    onSend: async (record) => {
      const res = await fetch(`${sink}/send`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ account: id, worker: workerId, key: record.idempotencyKey, providerMessageId: record.providerMessageId, to: record.to, sentAt: record.at }),
      });
      if (!res.ok) throw new Error(`sink answered ${res.status}`);
    },
  });
  return {
    name: 'simulator+sink',
    send: (m, o) => sim.send(m, o),
    connectionState: () => sim.connectionState(),
    subscribe: (l) => sim.subscribe(l),
    lookup: async (q) => {
      const res = await fetch(`${sink}/lookup?key=${encodeURIComponent(q.message.idempotencyKey)}`);
      // The sink records every message it receives before it answers: not found there is proof.
      if (res.status === 404) return { status: 'absent' };
      const body = (await res.json()) as { providerMessageId: string; at: number };
      return { status: 'found', sent: { providerMessageId: body.providerMessageId, acceptedAt: body.at } };
    },
  };
};

const intervalMs = { min: Number(env('MIN_GAP_MS')), max: Number(env('MAX_GAP_MS')) };
const engine = createEngine({
  store,
  workerId,
  logger: silentLogger,
  leaseMs: Number(env('LEASE_MS')),
  pollIntervalMs: Number(env('POLL_MS')),
  accounts: ['a1', 'a2', 'a3'].map((id, i) => ({ id, transport: accountTransport(id, i + 1), pacing: { intervalMs } })),
});

const stop = async () => {
  await engine.stop();
  await pool.end();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
await engine.run();
