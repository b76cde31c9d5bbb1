import type { Logger as Pino } from 'pino';
import { createSimulatorTransport, type LookupResult, type Transport } from '@disparo/core/transport';
import { createEvolutionTransport } from '@disparo/transport-evolution';
import type { AccountConfigEnv } from './config.js';

export interface WorkerTransport {
  id: string;
  transport: Transport;
  pacing: { intervalMs?: { min: number; max: number }; hourlyCap?: number; dailyCap?: number };
  close(): Promise<void>;
}

/** One transport per configured account. `workerId` keeps simulated provider message ids unique across processes. */
export async function createTransports(accounts: AccountConfigEnv[], log: Pino, workerId: string): Promise<WorkerTransport[]> {
  const out: WorkerTransport[] = [];
  for (const [i, a] of accounts.entries()) {
    if (a.transport === 'simulator') {
      const transport = simulator(a, i, workerId);
      out.push({ id: a.id, transport, pacing: pacingOf(a), close: async () => transport.close?.() });
    } else if (a.transport === 'evolution') {
      const transport = createEvolutionTransport({
        baseUrl: a.baseUrl,
        apiKey: a.apiKey,
        instance: a.instance,
        ...(a.webhookSecret ? { webhook: { secret: a.webhookSecret } } : {}),
      });
      out.push({ id: a.id, transport, pacing: pacingOf(a), close: () => transport.close() });
    } else {
      // Loaded only when configured: the baileys package is optional for this worker.
      const { createBaileysAccount } = await import('./baileys.js');
      const account = await createBaileysAccount(a.id, a.authDir, log);
      out.push({ id: a.id, transport: account.transport, pacing: pacingOf(a), close: account.close });
    }
  }
  return out;
}

function pacingOf(a: AccountConfigEnv): WorkerTransport['pacing'] {
  return {
    ...(a.intervalMs ? { intervalMs: a.intervalMs } : {}),
    ...(a.hourlyCap ? { hourlyCap: a.hourlyCap } : {}),
    ...(a.dailyCap ? { dailyCap: a.dailyCap } : {}),
  };
}

type SimulatorAccount = Extract<AccountConfigEnv, { transport: 'simulator' }>;

/**
 * The simulator; with `sinkUrl`, an HTTP endpoint outside this process plays the provider's memory:
 * a send counts only once the sink has it, and in-doubt sends are looked up there (so a SIGKILLed
 * worker's last send is settled as sent, not resent).
 */
function simulator(a: SimulatorAccount, index: number, workerId: string): Transport {
  const sink = a.sinkUrl?.replace(/\/+$/, '');
  const sim = createSimulatorTransport({
    name: 'simulator',
    seed: 1_000 + index,
    latencyMs: a.latencyMs ?? { min: 0, max: 0 },
    messageIdPrefix: `${workerId}-${a.id}-`,
    ...(a.disconnect ? { disconnect: a.disconnect } : {}),
    ...(sink
      ? {
          lookup: false,
          onSend: async (record) => {
            const res = await fetch(`${sink}/send`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ account: a.id, worker: workerId, key: record.idempotencyKey, to: record.to, providerMessageId: record.providerMessageId, at: record.at }),
            });
            if (!res.ok) throw new Error(`sink answered ${res.status}`);
          },
        }
      : {}),
  });
  if (!sink) return sim;
  return {
    name: sim.name,
    send: (m, o) => sim.send(m, o),
    connectionState: () => sim.connectionState(),
    checkNumbers: (p) => sim.checkNumbers(p),
    subscribe: (l) => sim.subscribe(l),
    close: () => sim.close(),
    // The sink records every send before it counts, so its 404 proves the message never went out.
    lookup: async (q): Promise<LookupResult> => {
      const res = await fetch(`${sink}/lookup?key=${encodeURIComponent(q.message.idempotencyKey)}`);
      if (res.status === 404) return { status: 'absent' };
      if (!res.ok) throw new Error(`sink lookup answered ${res.status}`);
      const body = (await res.json()) as { providerMessageId: string; at: number };
      return { status: 'found', sent: { providerMessageId: body.providerMessageId, acceptedAt: body.at } };
    },
  };
}
