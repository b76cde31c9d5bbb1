/** Helpers for the worker process tests: spawn `src/main.ts` for real, read its JSON log, count sends at a sink. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
export const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export interface WorkerProcess {
  proc: ChildProcess;
  logs: LogLine[];
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  /** Resolves with the first log line matching, or rejects after `ms` (or if the process exits first). */
  waitForLog(match: (l: LogLine) => boolean, ms?: number): Promise<LogLine>;
}

/** Variables the worker reads: never inherited from the test's own environment. */
const WORKER_VARS = ['DATABASE_URL', 'DB_SCHEMA', 'ACCOUNTS', 'WORKER_ID', 'CONCURRENCY', 'LEASE_TTL_MS', 'POLL_INTERVAL_MS', 'SHUTDOWN_TIMEOUT_MS', 'HEALTH_PORT', 'HEALTH_HOST', 'HEALTH_FILE', 'LOG_LEVEL', 'CLOUD_API_ACCESS_TOKEN', 'CLOUD_API_APP_SECRET', 'CLOUD_API_VERIFY_TOKEN'];

const live = new Set<ChildProcess>();

export function spawnWorker(env: Record<string, string>): WorkerProcess {
  const base: NodeJS.ProcessEnv = { ...process.env };
  for (const k of WORKER_VARS) delete base[k];
  const proc = spawn(process.execPath, ['--import', 'tsx', MAIN], { cwd: ROOT, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  const logs: LogLine[] = [];
  const waiters = new Set<() => void>();
  let partial = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => {
    partial += d.toString('utf8');
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      if (!line.trim()) continue;
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ msg: line, raw: true });
      }
    }
    for (const w of waiters) w();
  });
  proc.stderr!.on('data', (d: Buffer) => (err = (err + d.toString('utf8')).slice(-20_000)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    proc.on('exit', (code, signal) => {
      live.delete(proc);
      resolve({ code, signal, at: Date.now() });
      for (const w of waiters) w();
    }),
  );
  const waitForLog = (match: (l: LogLine) => boolean, ms = 20_000) =>
    new Promise<LogLine>((resolve, reject) => {
      const check = () => {
        const hit = logs.find(match);
        if (hit) return done(() => resolve(hit));
        if (proc.exitCode !== null || proc.signalCode !== null) done(() => reject(new Error(`worker exited (${proc.exitCode ?? proc.signalCode}) before the log line came\n${tail()}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`no such log line within ${ms} ms\n${tail()}`))), ms);
      const done = (f: () => void) => {
        clearTimeout(timer);
        waiters.delete(check);
        f();
      };
      waiters.add(check);
      check();
    });
  const tail = () => `--- stdout (last 15) ---\n${logs.slice(-15).map((l) => JSON.stringify(l)).join('\n')}\n--- stderr ---\n${err.slice(-3_000)}`;
  return { proc, logs, stderr: () => err, exited, waitForLog };
}

export function killAll(): void {
  for (const p of live) p.kill('SIGKILL');
}

export interface SinkSend {
  account: string;
  worker: string;
  key: string;
  providerMessageId: string;
  /** When the sink heard of it (this process's clock). */
  heardAt: number;
}

/** The provider's side, outside the workers: every accepted send, and lookups for in-doubt ones. */
export interface Sink {
  url: string;
  sends: SinkSend[];
  /**
   * Record the next send matching `match` but hold back its answer: the message has reached the
   * provider, the worker does not know yet. Resolves with it once it arrives.
   */
  holdNext(match: (s: SinkSend) => boolean, answerAfterMs?: number): Promise<SinkSend>;
  close(): Promise<void>;
}

export async function startSink(): Promise<Sink> {
  const sends: SinkSend[] = [];
  let hold: { match: (s: SinkSend) => boolean; resolve: (s: SinkSend) => void; answerAfterMs: number | undefined } | null = null;
  const byKey = new Map<string, SinkSend>();
  const server: Server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://sink');
    if (req.method === 'POST' && u.pathname === '/send') {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const s = { ...(JSON.parse(body) as Omit<SinkSend, 'heardAt'>), heardAt: Date.now() };
        sends.push(s);
        if (!byKey.has(s.key)) byKey.set(s.key, s);
        if (hold?.match(s)) {
          const { resolve, answerAfterMs } = hold;
          hold = null;
          resolve(s);
          // Without answerAfterMs, never answered: the worker dies waiting (its socket closes with it).
          if (answerAfterMs !== undefined) setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'), answerAfterMs);
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
      return;
    }
    if (req.method === 'GET' && u.pathname === '/lookup') {
      const s = byKey.get(u.searchParams.get('key') ?? '');
      if (!s) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ providerMessageId: s.providerMessageId, at: s.heardAt }));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    sends,
    holdNext: (match, answerAfterMs) => new Promise<SinkSend>((resolve) => (hold = { match, resolve, answerAfterMs })),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** How many times each idempotency key reached the sink. */
export function countByKey(sends: SinkSend[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const s of sends) m.set(s.key, (m.get(s.key) ?? 0) + 1);
  return m;
}

export async function until<T>(what: string, f: () => Promise<T | null | undefined | false>, ms = 20_000, every = 100): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(every);
  }
}
