import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import express, { type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import type { Engine } from '@disparo/core';
import type { CloudApiTransport } from '@disparo/transport-cloud-api';
import { cloudApiWebhooks } from './cloud-api.js';
import { readCsvRecipients, UnsupportedCharsetError } from './csv.js';
import { errorReply, HttpError } from './errors.js';

export interface AppOptions {
  engine: Engine;
  /** Required on every /api call: `Authorization: Bearer <key>`, `x-api-key`, or `?key=` (for the page's event stream). */
  apiKey: string;
  /** How often the live page gets fresh numbers. */
  pushIntervalMs?: number;
  /** The Cloud API accounts (id -> transport), for Meta's callback URL `/webhooks/cloud-api`. */
  cloudApi?: ReadonlyMap<string, CloudApiTransport>;
}

/** Content types read as CSV by `POST /api/campaigns/:id/recipients` (streamed, never buffered whole). */
const CSV_TYPES = ['text/csv', 'text/plain', 'application/csv'];

const page = readFileSync(new URL('../public/index.html', import.meta.url), 'utf8');

/** The HTTP API, the live progress page and the webhook intake, on one Express app. */
export function createApp({ engine, apiKey, pushIntervalMs = 500, cloudApi = new Map() }: AppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  const expected = Buffer.from(apiKey);

  const auth = (req: Request, res: Response, next: NextFunction) => {
    const header = req.get('authorization')?.replace(/^Bearer\s+/i, '') ?? req.get('x-api-key') ?? (typeof req.query.key === 'string' ? req.query.key : '');
    const given = Buffer.from(header);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      res.status(401).json({ error: 'UNAUTHORIZED', message: 'Missing or wrong API key: send "Authorization: Bearer <API_KEY>".' });
      return;
    }
    next();
  };

  app.get('/', (_req, res) => {
    res.type('html').send(page);
  });
  app.get('/healthz', async (_req, res) => {
    res.json({ ok: true, accounts: await engine.health() });
  });

  // Provider webhooks authenticate with the provider's own secret (checked by the transport), not the API key.
  app.post('/webhooks/evolution/:accountId', express.json({ limit: '2mb' }), async (req, res, next) => {
    try {
      const events = await engine.handleWebhook(String(req.params.accountId), req.body, req.headers as Record<string, string>);
      res.json({ ok: true, events: events.length });
    } catch (error) {
      next(error);
    }
  });

  // Meta's Cloud API: one callback URL for the app (GET handshake, POST signed with the App Secret).
  app.use('/webhooks/cloud-api', cloudApiWebhooks(engine, cloudApi));

  app.use('/webhooks', notFound);

  const api = express.Router();
  api.use(auth);
  api.use(express.json({ limit: '20mb' }));

  const route = (fn: (req: Request, res: Response) => Promise<unknown>) => (req: Request, res: Response, next: NextFunction) => {
    fn(req, res).then((body) => body !== undefined && res.json(body), next);
  };
  const id = (req: Request) => String(req.params.id);

  api.get(
    '/campaigns',
    route(async () => {
      const campaigns = await engine.listCampaigns();
      return Promise.all(campaigns.map((c) => engine.progress(c.id)));
    }),
  );
  api.post(
    '/campaigns',
    route(async (req, res) => {
      res.status(201);
      return engine.createCampaign(req.body);
    }),
  );
  api.get('/campaigns/:id', route(async (req) => engine.progress(id(req))));
  api.get('/campaigns/:id/batches', route(async (req) => (await engine.progress(id(req))).batches));
  api.post(
    '/campaigns/:id/recipients',
    route(async (req) => {
      const kind = req.is(['application/json', ...CSV_TYPES]);
      if (kind === false) throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', `Send recipients as JSON (content-type: application/json) or CSV (content-type: text/csv), not ${req.get('content-type')}.`);
      if (kind && kind !== 'application/json') return importCsv(engine, id(req), req);
      const recipients: unknown = Array.isArray(req.body) ? req.body : req.body?.recipients;
      return engine.addRecipients(id(req), recipients as never);
    }),
  );
  for (const action of ['start', 'pause', 'resume', 'cancel'] as const) {
    api.post(`/campaigns/:id/${action}`, route(async (req) => engine[action](id(req))));
  }
  api.post('/campaigns/:id/schedule', route(async (req) => engine.schedule(id(req), req.body?.at)));
  api.post('/campaigns/:id/test-send', route(async (req) => engine.testSend(id(req), req.body?.to)));
  api.post('/opt-outs', route(async (req) => engine.optOut(req.body?.phones, { reason: z.string().optional().parse(req.body?.reason) ?? 'opted out via API' })));
  api.get('/accounts', route(async () => engine.pacingReport({ sinceMs: 3_600_000 })));

  // Live numbers for the page: one Server-Sent Events stream with every campaign's progress and the accounts.
  api.get('/events', (req, res) => {
    res.set({ 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.flushHeaders();
    let closed = false;
    const push = async () => {
      if (closed) return;
      try {
        const campaigns = await engine.listCampaigns({ limit: 50 });
        const progress = await Promise.all(campaigns.map((c) => engine.progress(c.id)));
        const accounts = await engine.pacingReport({ sinceMs: 3_600_000 });
        res.write(`data: ${JSON.stringify({ campaigns: progress, accounts, at: Date.now() })}\n\n`);
      } catch (error) {
        res.write(`event: failure\ndata: ${JSON.stringify({ message: String(error) })}\n\n`);
      }
    };
    void push();
    const timer = setInterval(push, pushIntervalMs);
    req.on('close', () => {
      closed = true;
      clearInterval(timer);
    });
  });

  api.use(notFound);
  app.use('/api', api);

  // The one error mapper: every failure under /api and /webhooks is answered in JSON (see errors.ts).
  app.use((error: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      next(error); // an event stream already under way: Express closes the connection
      return;
    }
    const reply = errorReply(error);
    if (reply.unexpected) console.error(error);
    res.status(reply.status).json(reply.body);
  });
  return app;
}

/** Unknown routes answer JSON, not Express's HTML page; an empty path segment (`/campaigns//start`) is named. */
function notFound(req: Request, _res: Response, next: NextFunction) {
  const path = req.originalUrl.split('?')[0]!;
  const hint = path.includes('//') ? ' An id in the path is empty.' : ' See the API table in the README.';
  next(new HttpError(404, 'NOT_FOUND', `No route ${req.method} ${path}.${hint}`));
}

/**
 * A CSV body, streamed from the socket through the decoder and the parser into the import: the file is
 * never held whole in memory. The answer is the import's counts plus what the reader found (`csv`).
 */
async function importCsv(engine: Engine, campaignId: string, req: Request) {
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(req.get('content-type') ?? '')?.[1];
  try {
    const csv = readCsvRecipients(req.iterator({ destroyOnReturn: false }), { charset });
    const result = await engine.addRecipients(campaignId, csv.recipients);
    return { ...result, csv: csv.report };
  } catch (error) {
    if (error instanceof UnsupportedCharsetError) throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', error.message);
    throw error;
  } finally {
    // Stopped early (a bad line, an unknown campaign): read the rest so the client gets our answer.
    if (!req.readableEnded) req.resume();
  }
}
