import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { rename, writeFile } from 'node:fs/promises';
import pg from 'pg';
import type { Logger as Pino } from 'pino';
import { createPostgresStore } from '@disparo/adapter-postgres';
import { createEngine, NotFoundError, ValidationError, WebhookError, type Engine, type Logger } from '@disparo/core';
import type { WorkerConfig } from './config.js';
import { cloudApiIntake } from './cloud-api.js';
import { createTransports } from './transports.js';

export interface Worker {
  engine: Engine;
  workerId: string;
  /** The health endpoint's port (when HEALTH_PORT is set; useful with HEALTH_PORT=0). */
  healthPort: number | null;
  /**
   * Graceful stop: no new claims, the message on the wire finishes and is checkpointed, leases are
   * released, connections closed. Resolves true if the engine stopped within SHUTDOWN_TIMEOUT_MS.
   */
  stop(reason: string): Promise<boolean>;
  /** Settles when the engine's loop ends (after stop, or if it fails). */
  done: Promise<void>;
}

const asLogger = (log: Pino): Logger => ({
  debug: (m, f) => log.debug(f ?? {}, m),
  info: (m, f) => log.info(f ?? {}, m),
  warn: (m, f) => log.warn(f ?? {}, m),
  error: (m, f) => log.error(f ?? {}, m),
});

const MAX_WEBHOOK_BYTES = 5 * 1024 * 1024;

function readBody(req: IncomingMessage): Promise<string> {
  return readRawBody(req).then((b) => b.toString('utf8'));
}

/** The body's exact bytes (signatures are computed over them). */
function readRawBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_WEBHOOK_BYTES) {
        reject(new ValidationError('webhook body too large', [{ path: 'body', message: 'too large' }]));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Everything a worker process runs: store, transports, engine loop, health endpoint and file. */
export async function startWorker(config: WorkerConfig, log: Pino): Promise<Worker> {
  const workerId = config.WORKER_ID ?? `w-${randomUUID().slice(0, 8)}`;
  log = log.child({ workerId });
  // Each running campaign makes its own round trips, and LISTEN holds one connection.
  const pool = new pg.Pool({ connectionString: config.DATABASE_URL, max: Math.min(20, 4 + Math.ceil(config.CONCURRENCY / 2)) });
  pool.on('error', (err) => log.error({ err }, 'idle database connection failed'));
  // A connection that breaks while checked out and between queries (the store's LISTEN connection)
  // emits 'error' on its client; unheard, that would crash the process. Log it: queries retry on fresh
  // connections, and polling (POLL_INTERVAL_MS) covers for lost wake-ups.
  pool.on('connect', (client) => client.on('error', (err) => log.warn({ err }, 'database connection lost')));
  const store = createPostgresStore(pool, { schema: config.DB_SCHEMA });
  try {
    await store.migrate();
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw error;
  }

  const transports = await createTransports(config.ACCOUNTS, log, workerId);
  const engine = createEngine({
    store,
    logger: asLogger(log),
    workerId,
    leaseMs: config.LEASE_TTL_MS,
    pollIntervalMs: config.POLL_INTERVAL_MS,
    maxConcurrentCampaigns: config.CONCURRENCY,
    accounts: transports.map((t) => ({ id: t.id, transport: t.transport, pacing: t.pacing })),
  });
  const cloudApi = cloudApiIntake(engine, new Map(transports.flatMap((t) => (t.cloudApi ? [[t.id, t.cloudApi] as const] : []))));

  engine.on('campaign:started', ({ campaign }) => log.info({ campaignId: campaign.id }, 'campaign started'));
  engine.on('campaign:paused', ({ campaign, reason }) => log.warn({ campaignId: campaign.id, reason }, 'campaign paused'));
  engine.on('campaign:resumed', ({ campaign }) => log.info({ campaignId: campaign.id }, 'campaign resumed'));
  engine.on('campaign:completed', ({ campaign }) => log.info({ campaignId: campaign.id, counters: campaign.counters }, 'campaign completed'));
  engine.on('batch:completed', ({ campaignId, batch }) => log.info({ campaignId, batch }, 'batch completed'));
  engine.on('message:sent', (e) => log.debug(e, 'sent'));
  engine.on('message:failed', (e) => log.warn(e, 'send failed'));
  engine.on('message:unknown', (e) => log.warn(e, 'send in doubt (not resent)'));
  engine.on('account:disabled', (e) => log.warn(e, 'account disabled'));
  engine.on('account:enabled', (e) => log.info(e, 'account enabled'));
  engine.on('account:stopped', (e) => log.error(e, 'account stopped: needs a human'));
  engine.on('account:connection', (e) => log.info(e, 'account connection'));

  // Stores the accounts and records each one's connection as its transport reports it now (a worker
  // that starts after a disconnect resumes the campaigns paused for lack of accounts). Accounts that
  // are not open yet (a Baileys login) report it through their own events.
  await engine.ready();

  const startedAt = Date.now();
  let stopping = false;
  const healthBody = async () => ({
    ok: !stopping,
    status: stopping ? 'stopping' : 'running',
    workerId,
    pid: process.pid,
    uptimeMs: Date.now() - startedAt,
    accounts: await engine.health().catch(() => []),
  });

  // Health file: rewritten every few seconds (atomically); a probe checks its age (`at`).
  let beat: NodeJS.Timeout | null = null;
  if (config.HEALTH_FILE) {
    const file = config.HEALTH_FILE;
    const write = async () => {
      const tmp = `${file}.${process.pid}.tmp`;
      await writeFile(tmp, JSON.stringify({ ...(await healthBody()), at: Date.now() }));
      await rename(tmp, file);
    };
    await write();
    beat = setInterval(() => void write().catch((err: unknown) => log.warn({ err }, 'writing the health file failed')), 2_000);
    beat.unref();
  }

  let health: Server | null = null;
  let healthPort: number | null = null;
  if (config.HEALTH_PORT !== undefined) {
    health = createServer((req, res) => {
      void (async () => {
        const url = new URL(req.url ?? '/', 'http://worker');
        const json = (code: number, body: unknown) => res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
        // Liveness: the process answers and is not shutting down.
        if (req.method === 'GET' && (url.pathname === '/health' || url.pathname === '/healthz' || url.pathname === '/')) {
          const body = await healthBody();
          return json(body.ok ? 200 : 503, body);
        }
        // Readiness: also reaches PostgreSQL.
        if (req.method === 'GET' && (url.pathname === '/ready' || url.pathname === '/readyz')) {
          const body = await healthBody();
          const db = await Promise.race([
            pool.query('SELECT 1').then(() => 'ok', (e: Error) => e.message),
            new Promise<string>((r) => setTimeout(() => r('timeout'), 2_000).unref()),
          ]);
          const ok = body.ok && db === 'ok';
          return json(ok ? 200 : 503, { ...body, ok, database: db });
        }
        // Meta's Cloud API: one callback URL for every Cloud API account (GET handshake, POST signed with the App Secret).
        if (url.pathname === '/webhooks/cloud-api' || url.pathname === '/webhooks/cloud-api/') {
          if (req.method === 'GET') {
            const answer = cloudApi.verify(url.searchParams);
            return res.writeHead(answer.status, { 'content-type': answer.contentType }).end(answer.body);
          }
          if (req.method === 'POST') {
            try {
              return json(200, { events: await cloudApi.receive(await readRawBody(req), req.headers) });
            } catch (error) {
              const code = error instanceof WebhookError ? (error.reason === 'malformed' ? 400 : 401) : error instanceof ValidationError ? 400 : 500;
              if (code === 500) log.error({ err: error }, 'cloud api webhook failed');
              return json(code, { error: (error as Error).message });
            }
          }
        }
        // Provider webhooks (Evolution: receipts, connection changes, inbound "SAIR").
        const hook = /^\/webhook\/([A-Za-z0-9_.:-]+)\/?$/.exec(url.pathname);
        if (req.method === 'POST' && hook) {
          try {
            const text = await readBody(req);
            const events = await engine.handleWebhook(hook[1]!, text ? (JSON.parse(text) as unknown) : {}, req.headers);
            return json(200, { events: events.length });
          } catch (error) {
            const code = error instanceof NotFoundError ? 404 : error instanceof WebhookError ? 401 : error instanceof ValidationError || error instanceof SyntaxError ? 400 : 500;
            if (code === 500) log.error({ err: error, account: hook[1] }, 'webhook failed');
            return json(code, { error: (error as Error).message });
          }
        }
        json(404, { error: 'not found' });
      })().catch((err: unknown) => {
        log.error({ err }, 'health endpoint failed');
        if (!res.headersSent) res.writeHead(500).end();
      });
    });
    await new Promise<void>((resolve, reject) => {
      health!.once('error', reject);
      health!.listen(config.HEALTH_PORT, config.HEALTH_HOST, () => resolve());
    });
    healthPort = (health.address() as { port: number }).port;
  }

  log.info(
    { accounts: transports.map((t) => t.id), schema: config.DB_SCHEMA, concurrency: config.CONCURRENCY, leaseTtlMs: config.LEASE_TTL_MS, pollIntervalMs: config.POLL_INTERVAL_MS, healthPort },
    'worker started',
  );
  // Recovers in-doubt sends at start, wakes on LISTEN/NOTIFY (store.subscribeWake), polls as a fallback.
  const done = engine.run();

  let stopPromise: Promise<boolean> | null = null;
  const stop = (reason: string) =>
    (stopPromise ??= (async () => {
      stopping = true;
      const t0 = Date.now();
      log.info({ reason, timeoutMs: config.SHUTDOWN_TIMEOUT_MS }, 'stopping: finishing the message on the wire, releasing leases');
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), config.SHUTDOWN_TIMEOUT_MS)));
      const graceful = engine.stop().then(
        () => true,
        (err: unknown) => (log.error({ err }, 'engine stop failed'), false),
      );
      const ok = await Promise.race([graceful, timeout]);
      clearTimeout(timer);
      if (beat) clearInterval(beat);
      health?.close();
      health?.closeAllConnections();
      await Promise.all(transports.map((t) => t.close().catch((err: unknown) => log.warn({ err, account: t.id }, 'closing transport failed'))));
      if (ok) await pool.end().catch(() => undefined);
      if (config.HEALTH_FILE) await writeFile(config.HEALTH_FILE, JSON.stringify({ ok: false, status: 'stopped', workerId, at: Date.now() })).catch(() => undefined);
      if (ok) log.info({ ms: Date.now() - t0 }, 'stopped gracefully');
      else log.error({ ms: Date.now() - t0 }, 'shutdown timed out: leases left behind expire after LEASE_TTL_MS');
      return ok;
    })());

  return { engine, workerId, healthPort, stop, done };
}
