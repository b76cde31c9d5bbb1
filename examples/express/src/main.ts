import { loadConfig } from './config.js';
import { startServer } from './server.js';

async function main() {
  const config = loadConfig();
  const server = await startServer(config);
  console.log(`Disparo example listening on ${server.url}`);
  console.log(`Live page: ${server.url}/?key=${config.generatedKey ? config.API_KEY : '<API_KEY>'}`);
  if (config.generatedKey) console.log(`No API_KEY set: generated ${config.API_KEY} for this run.`);
  const shutdown = (signal: string) => {
    console.log(`${signal}: finishing the message on the wire, releasing leases…`);
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
