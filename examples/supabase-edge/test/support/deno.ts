/**
 * Deno for tests, for real: the binary the npm package `deno` ships (through its platform package,
 * `@deno/linux-x64-glibc` here; no download at run time), and helpers to run a Supabase Edge Function
 * shaped script (`Deno.serve(handler)`) from a folder with a `deno.json` import map that points the
 * `@disparo/*` imports at the built packages and their dependencies at `npm:` specifiers.
 *
 * npm packages are fetched from the npm registry on first use and cached in DENO_DIR (Deno's default:
 * $XDG_CACHE_HOME/deno, else $HOME/.cache/deno); set DENO_DIR to move the cache, e.g. for CI caching.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
export const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));

/** Path of the Deno executable from the `deno` devDependency. */
export function denoBinary(): string {
  if (process.env.DENO_BIN) return process.env.DENO_BIN;
  let denoPackage: string;
  try {
    denoPackage = require.resolve('deno/package.json');
  } catch {
    throw new Error('The npm package `deno` is not installed: run `pnpm install` at the repository root (examples/supabase-edge has it as a devDependency).');
  }
  const platform = process.platform === 'linux' ? `linux-${process.arch}-glibc` : `${process.platform}-${process.arch}`;
  const exe = process.platform === 'win32' ? 'deno.exe' : 'deno';
  // The `deno` package's install script would copy the binary next to it; pnpm does not run it, so resolve the platform package.
  const candidates = [join(dirname(denoPackage), exe)];
  try {
    candidates.push(join(dirname(createRequire(denoPackage).resolve(`@deno/${platform}/package.json`)), exe));
  } catch {
    // not installed for this platform; reported below
  }
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`No Deno binary for ${platform}: the optional dependency @deno/${platform} of the npm package \`deno\` is missing. Reinstall with \`pnpm install\`, or set DENO_BIN.`);
  return found;
}

export interface LocalPackage {
  /** The package name as imported, e.g. `@disparo/core`. */
  name: string;
  /** Its folder, holding package.json and the built `dist/`. */
  dir: string;
}

/** The workspace package folder of a `@disparo/*` package name. */
export const workspacePackage = (name: string): LocalPackage => ({ name, dir: join(repoRoot, 'packages', name.replace(/^@disparo\//, '')) });

interface PackageJson {
  name: string;
  exports?: Record<string, { import?: { default?: string } | string } | string>;
  module?: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

/**
 * A deno.json `imports` map: each local package (and each of its exported subpaths) to its built ESM
 * file, and each of their npm dependencies to `npm:name@range` (with a `name/` entry for deep imports
 * such as `libphonenumber-js/max`). `extra` entries win.
 */
export function importMapFor(packages: LocalPackage[], extra: Record<string, string> = {}): Record<string, string> {
  const imports: Record<string, string> = {};
  const local = new Set(packages.map((p) => p.name));
  for (const pkg of packages) {
    const manifest = JSON.parse(readFileSync(join(pkg.dir, 'package.json'), 'utf8')) as PackageJson;
    const entries = manifest.exports ?? { '.': manifest.module ?? 'dist/index.js' };
    for (const [subpath, target] of Object.entries(entries)) {
      if (subpath.endsWith('package.json')) continue;
      const file = typeof target === 'string' ? target : typeof target.import === 'string' ? target.import : target.import?.default;
      if (!file) continue;
      imports[subpath === '.' ? pkg.name : `${pkg.name}/${subpath.replace(/^\.\//, '')}`] = pathToFileURL(join(pkg.dir, file)).href;
    }
    for (const [dep, range] of Object.entries({ ...manifest.peerDependencies, ...manifest.dependencies })) {
      if (local.has(dep) || range.startsWith('workspace:')) continue;
      imports[dep] ??= `npm:${dep}@${range}`;
      imports[`${dep}/`] ??= `npm:/${dep}@${range}/`;
    }
  }
  return { ...imports, ...extra };
}

const newestMtime = (dir: string): number => {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
};

/**
 * Builds the packages whose `dist/` is missing or older than their `src/` (`pnpm --filter <name> build`),
 * one build at a time across test processes (a lock folder in the repository's node_modules/.cache).
 * CI builds everything before the tests, so there this does nothing.
 */
export function ensureBuilt(packages: LocalPackage[]): void {
  const stale = packages.filter((p) => {
    const entry = join(p.dir, 'dist', 'index.js');
    return !existsSync(entry) || (existsSync(join(p.dir, 'src')) && newestMtime(join(p.dir, 'src')) > statSync(entry).mtimeMs);
  });
  if (stale.length === 0) return;
  const lockDir = join(repoRoot, 'node_modules', '.cache', 'disparo-build.lock');
  mkdirSync(dirname(lockDir), { recursive: true });
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      mkdirSync(lockDir);
      break;
    } catch {
      // Another test process is building; a lock older than 3 minutes is left over from a killed run.
      const held = statSync(lockDir, { throwIfNoEntry: false });
      if (held && Date.now() - held.mtimeMs > 180_000) rmSync(lockDir, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`Timed out waiting for another build (lock ${lockDir}).`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
    }
  }
  try {
    for (const p of packages) {
      const entry = join(p.dir, 'dist', 'index.js');
      if (existsSync(entry) && !(existsSync(join(p.dir, 'src')) && newestMtime(join(p.dir, 'src')) > statSync(entry).mtimeMs)) continue;
      const built = spawnSync('pnpm', ['--filter', p.name, 'build'], { cwd: repoRoot, encoding: 'utf8' });
      if (built.status !== 0) throw new Error(`Building ${p.name} for Deno failed:\n${built.stdout}\n${built.stderr}`);
    }
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}

export interface DenoProject {
  dir: string;
  remove(): void;
}

/**
 * Writes files and a deno.json with the given import map into a new folder under the OS temp dir, where
 * no package.json or node_modules lies above, as on Supabase where a function folder stands alone.
 */
export function denoProject(files: Record<string, string>, imports: Record<string, string>): DenoProject {
  const dir = mkdtempSync(join(tmpdir(), 'disparo-deno-'));
  writeFileSync(join(dir, 'deno.json'), `${JSON.stringify({ imports }, null, 2)}\n`);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The permissions Supabase's edge runtime grants a function: network, environment, reading files. */
export const EDGE_PERMISSIONS = ['--allow-net', '--allow-env', '--allow-read'];

export interface DenoRun {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export function runDeno(args: string[], options: { cwd: string; env?: Record<string, string>; timeoutMs?: number }): Promise<DenoRun> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(denoBinary(), args, { cwd: options.cwd, env: { ...process.env, NO_COLOR: '1', ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - started });
    });
  });
}

export interface ServedFunction {
  /** Base URL of the function, e.g. http://127.0.0.1:PORT. */
  url: string;
  process: ChildProcess;
  /** From spawning `deno` to its "Listening on" line: compile, module loading (and npm downloads when the cache is cold). */
  startMs: number;
  output(): string;
  /** Ends the process (SIGTERM, or the given signal) and waits for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Runs an edge-function script that calls `Deno.serve(handler)`, on a free port of 127.0.0.1
 * (DENO_SERVE_ADDRESS=tcp:127.0.0.1:0 overrides the address Deno.serve would pick), and resolves when
 * it listens. Functions read their configuration from the environment, as on Supabase (`Deno.env`).
 */
export function serveDeno(entry: string, options: { cwd: string; env?: Record<string, string>; timeoutMs?: number; permissions?: string[] }): Promise<ServedFunction> {
  const started = performance.now();
  const child = spawn(denoBinary(), ['run', '--no-lock', ...(options.permissions ?? EDGE_PERMISSIONS), entry], {
    cwd: options.cwd,
    env: { ...process.env, NO_COLOR: '1', DENO_SERVE_ADDRESS: 'tcp:127.0.0.1:0', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`Deno did not start listening within ${options.timeoutMs ?? 120_000} ms:\n${output}`));
    }, options.timeoutMs ?? 120_000);
    const onData = (c: Buffer) => {
      output += c.toString();
      const listening = /Listening on (http:\/\/[^\s/]+)/.exec(output);
      if (listening) {
        clearTimeout(timer);
        resolve({
          url: listening[1]!,
          process: child,
          startMs: performance.now() - started,
          output: () => output,
          stop: async (signal = 'SIGTERM') => {
            if (child.exitCode === null && child.signalCode === null) child.kill(signal);
            await exited;
          },
        });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`Deno exited (code ${code}) before listening:\n${output}`));
    });
  });
}
