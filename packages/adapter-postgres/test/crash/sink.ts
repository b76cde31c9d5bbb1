/**
 * The crash test's provider: a local HTTP server in the test process, so what it saw survives the
 * workers' SIGKILLs. Every send is stamped when it arrives, answered after a random latency (some
 * longer than the account's gap, as a slow provider does), and stamped again when answered; `lookup`
 * finds a message from its arrival on (the provider has it, answered or not). Pacing and the
 * in-flight window are then measured where the provider sees the messages, not where the store
 * grants them.
 */
import { createServer, type Server } from 'node:http';

export interface SinkSend {
  account: string;
  worker: string;
  key: string;
  providerMessageId: string;
  /** When the sink received the request. */
  arrivedAt: number;
  /** When the sink answered it (null until then). */
  answeredAt: number | null;
}

export interface Slot {
  account: string;
  recipientId: string;
  slotAt: number;
}

export interface ProviderSink {
  url: string;
  sends: SinkSend[];
  slots: Slot[];
  close(): Promise<void>;
}

export async function startSink(options: { latencyMs: { min: number; max: number } }): Promise<ProviderSink> {
  const sends: SinkSend[] = [];
  const slots: Slot[] = [];
  const byKey = new Map<string, SinkSend>();
  const { min, max } = options.latencyMs;
  const body = (req: import('node:http').IncomingMessage) =>
    new Promise<string>((resolve) => {
      let text = '';
      req.on('data', (c) => (text += c));
      req.on('end', () => resolve(text));
    });
  const server: Server = createServer((req, res) => {
    const arrivedAt = Date.now();
    const u = new URL(req.url ?? '/', 'http://sink');
    if (req.method === 'POST' && u.pathname === '/send') {
      void body(req).then((text) => {
        const m = JSON.parse(text) as Omit<SinkSend, 'arrivedAt' | 'answeredAt'>;
        const s: SinkSend = { ...m, arrivedAt, answeredAt: null };
        sends.push(s);
        if (!byKey.has(s.key)) byKey.set(s.key, s);
        setTimeout(() => {
          s.answeredAt = Date.now();
          res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        }, min + Math.random() * (max - min));
      });
      return;
    }
    if (req.method === 'POST' && u.pathname === '/slot') {
      void body(req).then((text) => {
        slots.push(JSON.parse(text) as Slot);
        res.writeHead(200).end();
      });
      return;
    }
    if (req.method === 'GET' && u.pathname === '/lookup') {
      const s = byKey.get(u.searchParams.get('key') ?? '');
      if (!s) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ providerMessageId: s.providerMessageId, at: s.arrivedAt }));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    sends,
    slots,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export interface WireReport {
  /** Per account: the smallest gap between two consecutive arrivals. */
  minGapMs: Record<string, number>;
  /** Consecutive arrivals of one account closer than `minGapMs - toleranceMs`. */
  gapsBelowMin: number;
  /** Messages of one account that arrived while an earlier one of that account was not yet answered. */
  overlaps: number;
  examples: string[];
}

/** Pacing and the in-flight window (W = 1) as the provider saw them. */
export function wireReport(sends: SinkSend[], minGapMs: number, toleranceMs: number): WireReport {
  const report: WireReport = { minGapMs: {}, gapsBelowMin: 0, overlaps: 0, examples: [] };
  const accounts = [...new Set(sends.map((s) => s.account))].sort();
  for (const account of accounts) {
    const mine = sends.filter((s) => s.account === account).sort((a, b) => a.arrivedAt - b.arrivedAt);
    let smallest = Number.POSITIVE_INFINITY;
    let busyUntil = Number.NEGATIVE_INFINITY;
    let busyWith: SinkSend | null = null;
    for (let i = 0; i < mine.length; i++) {
      const s = mine[i]!;
      if (i > 0) {
        const gap = s.arrivedAt - mine[i - 1]!.arrivedAt;
        smallest = Math.min(smallest, gap);
        if (gap < minGapMs - toleranceMs) {
          report.gapsBelowMin++;
          if (report.examples.length < 5) report.examples.push(`${account}: ${gap} ms between ${mine[i - 1]!.key} (${mine[i - 1]!.worker}) and ${s.key} (${s.worker})`);
        }
      }
      if (s.arrivedAt < busyUntil) {
        report.overlaps++;
        if (report.examples.length < 5) report.examples.push(`${account}: ${s.key} (${s.worker}) arrived ${busyUntil - s.arrivedAt} ms before ${busyWith!.key} (${busyWith!.worker}) was answered`);
      }
      const end = s.answeredAt ?? Number.POSITIVE_INFINITY;
      if (end > busyUntil) {
        busyUntil = end;
        busyWith = s;
      }
    }
    report.minGapMs[account] = smallest;
  }
  return report;
}
