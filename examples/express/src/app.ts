import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import express, { type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import { DisparoError, type Engine, type ValidationError, type TransportError, type WebhookError } from '@disparo/core';
import { csvRecipients } from './csv.js';

export interface AppOptions {
  engine: Engine;
  /** Required on every /api call: `Authorization: Bearer <key>`, `x-api-key`, or `?key=` (for the page's event stream). */
  apiKey: string;
  /** How often the live page gets fresh numbers. */
  pushIntervalMs?: number;
}

const page = readFileSync(new URL('../public/index.html', import.meta.url), 'utf8');

/** The HTTP API, the live progress page and the webhook intake, on one Express app. */
export function createApp({ engine, apiKey, pushIntervalMs = 500 }: AppOptions): express.Express {
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

  const api = express.Router();
  api.use(auth);
  api.use(express.json({ limit: '20mb' }));
  api.use(express.text({ type: ['text/csv', 'text/plain'], limit: '50mb' }));

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
    route(async (req, res) => {
      let recipients: unknown;
      if (typeof req.body === 'string') {
        const parsed = csvRecipients(req.body);
        if (parsed.error) {
          res.status(400);
          return { error: 'VALIDATION', message: `Invalid CSV: ${parsed.error}` };
        }
        recipients = parsed.recipients;
      } else {
        recipients = Array.isArray(req.body) ? req.body : req.body?.recipients;
      }
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

  app.use('/api', api);

  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    if (error instanceof SyntaxError && 'body' in error) {
      res.status(400).json({ error: 'VALIDATION', message: `Malformed JSON body: ${error.message}` });
      return;
    }
    if (DisparoError.isInstance(error)) {
      const status = statusOf(error);
      res.status(status).json({ error: error.code, message: error.message, ...('issues' in error ? { issues: (error as ValidationError).issues } : {}) });
      return;
    }
    console.error(error);
    res.status(500).json({ error: 'INTERNAL', message: 'Unexpected error; see the server log.' });
  });
  return app;
}

function statusOf(error: DisparoError): number {
  switch (error.code) {
    case 'VALIDATION':
      return 400;
    case 'NOT_FOUND':
      return 404;
    case 'INVALID_TRANSITION':
    case 'CONFLICT':
      return 409;
    case 'WEBHOOK':
      return (error as WebhookError).reason === 'malformed' ? 400 : 401;
    case 'TRANSPORT':
      return (error as TransportError).kind === 'rate_limited' ? 429 : 502;
    case 'SHUTDOWN':
      return 503;
    default:
      return 500;
  }
}
