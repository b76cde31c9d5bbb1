/**
 * Entry point: `node --import tsx src/main.ts` (or `pnpm start`).
 * Exit codes: 0 graceful stop, 1 failure (startup, crash, or a shutdown that overran SHUTDOWN_TIMEOUT_MS),
 * 78 bad configuration (EX_CONFIG: do not restart until the environment is fixed).
 */
import pino from 'pino';
import { ConfigError, loadConfig, type WorkerConfig } from './config.js';
import { startWorker, type Worker } from './worker.js';

let config: WorkerConfig;
try {
  config = loadConfig();
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exit(78);
  }
  throw error;
}

const log = pino({ level: config.LOG_LEVEL, base: { service: 'disparo-worker', pid: process.pid } });
let worker: Worker | null = null;
let signalled: NodeJS.Signals | null = null;
let signalledAt = 0;

const fatal = (what: string) => (err: unknown) => {
  log.fatal({ err }, what);
  process.exit(1);
};
process.on('uncaughtException', fatal('uncaught exception'));
process.on('unhandledRejection', fatal('unhandled rejection'));

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (signalled) {
      // Wrappers (pnpm, npm, tsx's watcher) forward the terminal's Ctrl-C that the process also got
      // directly: the same signal again within a second is that echo, not a second request.
      if (signal === signalled && Date.now() - signalledAt < 1_000) return;
      // A second signal: the operator does not want to wait. Leases expire after LEASE_TTL_MS.
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    signalled = signal;
    signalledAt = Date.now();
    if (!worker) {
      log.info({ signal }, 'signal during startup: exiting (nothing claimed yet)');
      process.exit(0);
    }
    void worker.stop(signal).then((graceful) => process.exit(graceful ? 0 : 1));
  });
}

try {
  worker = await startWorker(config, log);
} catch (err) {
  fatal('worker failed to start')(err);
}
await worker!.done.catch(fatal('engine loop failed'));
if (!signalled) {
  // The loop only ends by stop(); anything else is a bug worth a restart.
  log.error('engine loop ended without a stop signal');
  process.exit(1);
}
