import type { Server } from 'node:http';
import { createEngine, createSimulatorTransport, type AccountConfig, type Engine, type StateStore, type Transport } from '@disparo/core';
import { createCloudApiTransport, type CloudApiTransport } from '@disparo/transport-cloud-api';
import { createEvolutionTransport } from '@disparo/transport-evolution';
import { createApp } from './app.js';
import type { AccountEnv, Config } from './config.js';
import { openStore } from './store.js';

function transportFor(account: AccountEnv, index: number): Transport {
  if (account.transport === 'simulator') {
    return createSimulatorTransport({ seed: index + 1, latencyMs: account.latencyMs ?? { min: 20, max: 120 }, receipts: { deliveredAfterMs: 800, readAfterMs: 3_000, readRate: 0.6 } });
  }
  if (account.transport === 'cloud-api') {
    return createCloudApiTransport({
      phoneNumberId: account.phoneNumberId,
      accessToken: account.accessToken,
      appSecret: account.appSecret,
      ...(account.apiVersion ? { apiVersion: account.apiVersion } : {}),
      ...(account.verifyToken ? { verifyToken: account.verifyToken } : {}),
      ...(account.baseUrl ? { baseUrl: account.baseUrl } : {}),
    });
  }
  return createEvolutionTransport({
    baseUrl: account.baseUrl,
    apiKey: account.apiKey,
    instance: account.instance,
    ...(account.webhookSecret ? { webhook: { secret: account.webhookSecret } } : {}),
  });
}

export interface Running {
  url: string;
  engine: Engine;
  store: StateStore;
  close(): Promise<void>;
}

/** Store, engine (running in-process) and HTTP server, as `main.ts` starts them. */
export async function startServer(config: Config, options: { pushIntervalMs?: number; pollIntervalMs?: number } = {}): Promise<Running> {
  const { store, close: closeStore, description } = await openStore(config);
  const accounts: AccountConfig[] = config.ACCOUNTS.map((a, i) => ({
    id: a.id,
    transport: transportFor(a, i),
    // The Cloud API paces by Meta's rate with several sends on the wire; the others by a human gap.
    ...(a.transport === 'cloud-api' ? { pacing: { ratePerSecond: a.ratePerSecond, maxInFlight: a.maxInFlight } } : a.intervalMs ? { pacing: { intervalMs: a.intervalMs } } : {}),
  }));
  const engine = createEngine({ store, pollIntervalMs: options.pollIntervalMs ?? 500, accounts });
  // The Cloud API accounts by id, for Meta's one callback URL (`/webhooks/cloud-api`).
  const cloudApi = new Map(config.ACCOUNTS.flatMap((a, i) => (a.transport === 'cloud-api' ? [[a.id, accounts[i]!.transport as CloudApiTransport] as const] : [])));
  const app = createApp({ engine, apiKey: config.API_KEY, pushIntervalMs: options.pushIntervalMs ?? 500, cloudApi });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(config.PORT, config.HOST, () => resolve(s));
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.PORT;
  const running = engine.run();
  return {
    url: `http://${config.HOST}:${port}`,
    engine,
    store,
    async close() {
      await engine.stop();
      await running;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await closeStore();
      void description;
    },
  };
}
