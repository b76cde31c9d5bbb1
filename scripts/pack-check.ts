/**
 * Packs every published package the way a release does (`pnpm pack`: `workspace:` ranges become
 * versions), installs the tarballs with npm into a scratch project outside the monorepo (under the OS
 * temp folder), and checks what a new user meets:
 *
 * - each tarball: no `workspace:` range left, LICENSE (the root one), README, every file its
 *   `exports`/`main`/`types` name;
 * - the quick starts of the READMEs, taken from the README code blocks themselves: a ```ts block right
 *   after a `<!-- pack-check: MODE -->` comment. MODE `run` runs it as ESM (.mjs) and as CommonJS
 *   (.cjs, imports turned into require and the rest wrapped in an async function) and type-checks it
 *   as .mts and .cts; `typecheck` only type-checks (blocks that need a server or an account). Add
 *   `esm-only` to skip the CommonJS variants (a block that imports an ESM-only entry). Lines between
 *   the comment's first line and `-->` are a prelude the check adds before the block (`declare`s for
 *   what the block leaves to the reader). TypeScript: `module`/`moduleResolution` `nodenext`, strict,
 *   `skipLibCheck: false`. Every README of a published package and the root README must mark at
 *   least one block;
 * - `@arethetypeswrong/cli` on each tarball: entry points with a `require` condition are checked with
 *   the `node16` profile (ESM and CJS consumers), entry points without one are ESM-only by design and
 *   are checked with the `esm-only` profile (so an ESM-only `./testing` is fine, a broken one is not).
 *
 * Usage: pnpm pack:check [--build] [--keep]
 *   --build  run `pnpm build` first (CI builds before, so it does not)
 *   --keep   keep the scratch project and print where it is
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ATTW = '@arethetypeswrong/cli@0.18.5';
const RUN_TIMEOUT_MS = 90_000;
const args = new Set(process.argv.slice(2));
const started = Date.now();

// ---- output -------------------------------------------------------------------------------------

const failures: string[] = [];
let passed = 0;
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const indent = (text: string, max = 60) => {
  const lines = text.trimEnd().split('\n');
  const shown = lines.length > max ? [...lines.slice(0, max), `… (${lines.length - max} more lines)`] : lines;
  return shown.map((l) => `      ${l}`).join('\n');
};
function ok(step: string, what: string): void {
  passed += 1;
  console.log(`  ✓ ${step.padEnd(10)} ${what}`);
}
function fail(step: string, what: string, details = ''): void {
  failures.push(`${step} ${what}`);
  console.log(`  ✗ ${step.padEnd(10)} ${what}${details ? `\n${indent(details)}` : ''}`);
}

interface Result {
  code: number | null;
  output: string;
  ms: number;
  timedOut: boolean;
}

function sh(cmd: string, argv: string[], options: { cwd: string; timeoutMs?: number; env?: NodeJS.ProcessEnv }): Promise<Result> {
  const t0 = Date.now();
  return new Promise((done) => {
    const child = spawn(cmd, argv, { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let timedOut = false;
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const timer = options.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, options.timeoutMs)
      : undefined;
    child.on('error', (error) => {
      clearTimeout(timer);
      done({ code: null, output: `${output}${error.message}`, ms: Date.now() - t0, timedOut });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, output, ms: Date.now() - t0, timedOut });
    });
  });
}

const timedOutOrCrashed = (r: Result) => r.timedOut || r.code === null;

async function pool<T>(items: T[], size: number, work: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(Array.from({ length: Math.min(size, queue.length) }, async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await work(item);
  }));
}

// ---- the packages ---------------------------------------------------------------------------------

interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  main?: string;
  module?: string;
  types?: string;
  exports?: unknown;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}
const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T;

const packages = readdirSync(join(ROOT, 'packages'))
  .map((dir) => ({ dir: join(ROOT, 'packages', dir), manifest: readJson<Manifest>(join(ROOT, 'packages', dir, 'package.json')) }))
  .filter((p) => !p.manifest.private);
const ourNames = new Set(packages.map((p) => p.manifest.name));

// ---- README blocks ------------------------------------------------------------------------------

interface Block {
  id: string;
  readme: string;
  line: number;
  mode: 'run' | 'typecheck';
  esmOnly: boolean;
  prelude: string;
  code: string;
}

function blocksOf(readme: string, label: string): Block[] {
  const lines = readFileSync(readme, 'utf8').split('\n');
  const found: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^<!--\s*pack-check:\s*(run|typecheck)\b(.*)$/.exec(lines[i]!);
    if (!m) continue;
    const mode = m[1] as Block['mode'];
    let rest = m[2]!;
    const prelude: string[] = [];
    let j = i;
    if (!rest.includes('-->')) {
      for (j = i + 1; j < lines.length && !lines[j]!.includes('-->'); j++) prelude.push(lines[j]!);
      rest += lines[j] ?? '';
    }
    const esmOnly = /\besm-only\b/.test(rest);
    let k = j + 1;
    while (k < lines.length && !lines[k]!.trim()) k++;
    if (!/^```(ts|typescript|js|javascript)\s*$/.test(lines[k] ?? '')) {
      fail('readme', `${label}:${i + 1}: a pack-check comment must stand right before a \`\`\`ts block`);
      continue;
    }
    const code: string[] = [];
    for (k = k + 1; k < lines.length && !/^```\s*$/.test(lines[k]!); k++) code.push(lines[k]!);
    found.push({ id: '', readme: label, line: i + 1, mode, esmOnly, prelude: prelude.join('\n'), code: code.join('\n') });
  }
  return found.map((b, n) => ({ ...b, id: `${label.replace(/\/README\.md$|\.md$/, '').replace(/[^a-z0-9]+/gi, '-')}-${n + 1}` }));
}

// ---- main ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  console.log(`pack-check: ${packages.map((p) => p.manifest.name).join(', ')}`);

  if (args.has('--build')) {
    const r = await sh('pnpm', ['build'], { cwd: ROOT });
    if (r.code !== 0) return fail('build', 'pnpm build', r.output);
    ok('build', `pnpm build (${secs(r.ms)})`);
  }
  for (const p of packages) {
    if (!existsSync(join(p.dir, 'dist'))) return fail('build', `${p.manifest.name} has no dist/: run "pnpm build" first, or pass --build`);
  }

  const scratch = mkdtempSync(join(tmpdir(), 'disparo-pack-check-'));
  try {
    await check(scratch);
  } finally {
    if (args.has('--keep')) console.log(`  scratch project kept in ${scratch}`);
    else rmSync(scratch, { recursive: true, force: true });
  }
}

async function check(scratch: string): Promise<void> {
  // 1. pack
  const tarballs = join(scratch, 'tarballs');
  mkdirSync(tarballs);
  const packed: Array<{ name: string; tarball: string; manifest: Manifest; files: Set<string> }> = [];
  for (const p of packages) {
    const before = new Set(readdirSync(tarballs));
    const r = await sh('pnpm', ['pack', '--pack-destination', tarballs], { cwd: p.dir });
    const tarball = readdirSync(tarballs).find((f) => !before.has(f) && f.endsWith('.tgz'));
    if (r.code !== 0 || !tarball) {
      fail('pack', p.manifest.name, r.output);
      continue;
    }
    const unpacked = join(scratch, 'unpacked', basename(tarball, '.tgz'));
    mkdirSync(unpacked, { recursive: true });
    const x = await sh('tar', ['-xzf', join(tarballs, tarball), '-C', unpacked], { cwd: scratch });
    if (x.code !== 0) {
      fail('pack', `${p.manifest.name}: cannot unpack ${tarball}`, x.output);
      continue;
    }
    const list = await sh('tar', ['-tzf', join(tarballs, tarball)], { cwd: scratch });
    const files = new Set(list.output.split('\n').filter(Boolean).map((f) => f.replace(/^package\//, '')));
    const manifest = readJson<Manifest>(join(unpacked, 'package', 'package.json'));
    packed.push({ name: p.manifest.name, tarball: join(tarballs, tarball), manifest, files });
    ok('pack', `${tarball} (${files.size} files)`);
  }

  // 2. what is in each tarball
  const license = readFileSync(join(ROOT, 'LICENSE'), 'utf8');
  for (const t of packed) {
    const problems: string[] = [];
    for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies'] as const) {
      for (const [dep, range] of Object.entries((t.manifest as unknown as Record<string, Record<string, string> | undefined>)[field] ?? {})) {
        if (/^(workspace|link|file|portal):/.test(range)) problems.push(`${field}.${dep} is "${range}" (publish with pnpm or changesets, not npm)`);
      }
    }
    if (!t.files.has('LICENSE')) problems.push('no LICENSE file');
    else if (readFileSync(join(scratch, 'unpacked', basename(t.tarball, '.tgz'), 'package', 'LICENSE'), 'utf8') !== license) problems.push('LICENSE differs from the repository root LICENSE');
    if (!t.files.has('README.md')) problems.push('no README.md');
    const targets = new Set<string>();
    const walk = (v: unknown) => {
      if (typeof v === 'string') targets.add(v.replace(/^\.\//, ''));
      else if (v && typeof v === 'object') Object.values(v).forEach(walk);
    };
    walk(t.manifest.exports);
    [t.manifest.main, t.manifest.module, t.manifest.types].forEach(walk);
    for (const target of targets) if (!target.includes('*') && !t.files.has(target)) problems.push(`names ${target}, which is not in the tarball`);
    if (problems.length) fail('manifest', t.name, problems.join('\n'));
    else ok('manifest', `${t.name}: no workspace: ranges; LICENSE, README and every exported file present`);
  }
  if (packed.length !== packages.length) return;

  // 3. the README blocks
  const readmes = [join(ROOT, 'README.md'), ...packages.map((p) => join(p.dir, 'README.md'))];
  const blocks: Block[] = [];
  for (const readme of readmes) {
    const label = relative(ROOT, readme);
    const found = blocksOf(readme, label);
    if (found.length === 0) fail('readme', `${label} marks no quick start (put <!-- pack-check: run --> or <!-- pack-check: typecheck --> before its \`\`\`ts block)`);
    blocks.push(...found);
  }
  if (blocks.length === 0) return;
  ok('readme', `${blocks.length} blocks from ${readmes.length} READMEs: ${blocks.map((b) => `${b.readme}:${b.line} (${b.mode})`).join(', ')}`);

  // 4. the scratch project: our tarballs, the peers they name, and what the blocks import
  const project = join(scratch, 'project');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), `${JSON.stringify({ name: 'disparo-pack-check', private: true }, null, 2)}\n`);
  const monorepoRanges = new Map<string, string>();
  for (const file of [join(ROOT, 'package.json'), ...['packages', 'examples'].flatMap((d) => readdirSync(join(ROOT, d)).map((p) => join(ROOT, d, p, 'package.json')))]) {
    if (!existsSync(file)) continue;
    const m = readJson<Manifest>(file);
    for (const deps of [m.dependencies, m.devDependencies, m.peerDependencies]) {
      for (const [dep, range] of Object.entries(deps ?? {})) if (!range.startsWith('workspace:') && !monorepoRanges.has(dep)) monorepoRanges.set(dep, range);
    }
  }
  const peerRanges = new Map<string, string>();
  for (const t of packed) for (const [dep, range] of Object.entries(t.manifest.peerDependencies ?? {})) if (!ourNames.has(dep)) peerRanges.set(dep, range);
  const wanted = new Map<string, string>();
  const want = (dep: string): boolean => {
    const range = peerRanges.get(dep) ?? monorepoRanges.get(dep);
    if (!range) return false;
    wanted.set(dep, range);
    return true;
  };
  const missing: string[] = [];
  for (const b of blocks) {
    const specifiers = [...`${b.prelude}\n${b.code}`.matchAll(/(?:from\s+|import\s*\(\s*)['"]([^'"]+)['"]/g)].map((m) => m[1]!);
    for (const spec of specifiers) {
      if (spec.startsWith('node:') || spec.startsWith('.')) continue;
      const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
      if (ourNames.has(pkg)) continue;
      if (!want(pkg)) missing.push(`${b.readme}:${b.line} imports ${pkg}, which no package.json of the repository names`);
      want(`@types/${pkg.replace(/^@(.*)\/(.*)$/, '$1__$2')}`); // when the repository uses its @types package
    }
  }
  for (const dep of ['typescript', '@types/node']) if (!want(dep)) missing.push(`the root package.json names no ${dep}`);
  if (missing.length) return fail('install', 'the scratch project', missing.join('\n'));
  const installArgs = [...packed.map((t) => t.tarball), ...[...wanted].map(([dep, range]) => `${dep}@${range}`), ATTW];
  const install = await sh('npm', ['install', '--no-audit', '--no-fund', '--loglevel=warn', ...installArgs], { cwd: project, timeoutMs: 300_000 });
  const warnings = install.output.split('\n').filter((l) => /ERESOLVE|peer|deprecated.*@disparo|@disparo.*deprecated/i.test(l));
  if (install.code !== 0) return fail('install', `npm install of the tarballs and ${[...wanted.keys()].join(', ')}`, install.output);
  if (warnings.length) fail('install', 'npm warned about peer dependencies', warnings.join('\n'));
  else ok('install', `npm install: the ${packed.length} tarballs + ${[...wanted].map(([d, r]) => `${d}@${r}`).join(', ')} (${secs(install.ms)})`);

  // 5. the files: .mts/.cts for tsc, .mjs/.cjs to run
  const require = createRequire(join(project, 'package.json'));
  const ts = require('typescript') as typeof import('typescript');
  const split = (source: string) => {
    const sf = ts.createSourceFile('block.ts', source, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
    const imports: string[] = [];
    const body: string[] = [];
    for (const st of sf.statements) (ts.isImportDeclaration(st) ? imports : body).push(st.getFullText(sf));
    return { imports: imports.join(''), body: body.join('') };
  };
  const files: string[] = [];
  for (const b of blocks) {
    const esm = `${b.prelude}\n${b.code}\nexport {};\n`;
    writeFileSync(join(project, `${b.id}.mts`), esm);
    files.push(`${b.id}.mts`);
    if (!b.esmOnly) {
      const { imports, body } = split(b.code);
      const cjs = `${b.prelude}\n${imports}\n(async () => {${body}\n})().catch((error) => {\n  console.error(error);\n  process.exit(1);\n});\n`;
      writeFileSync(join(project, `${b.id}.cts`), cjs);
      files.push(`${b.id}.cts`);
    }
    if (b.mode === 'run') {
      const transpile = (source: string, module: import('typescript').ModuleKind) =>
        ts.transpileModule(source, { compilerOptions: { module, target: ts.ScriptTarget.ES2022, esModuleInterop: true } }).outputText;
      writeFileSync(join(project, `${b.id}.mjs`), transpile(readFileSync(join(project, `${b.id}.mts`), 'utf8'), ts.ModuleKind.ESNext));
      if (!b.esmOnly) writeFileSync(join(project, `${b.id}.cjs`), transpile(readFileSync(join(project, `${b.id}.cts`), 'utf8'), ts.ModuleKind.CommonJS));
    }
  }
  writeFileSync(
    join(project, 'tsconfig.json'),
    `${JSON.stringify(
      {
        // A plain Node project's settings; `lib` left to its default (the target's, plus DOM), as most have it.
        compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, skipLibCheck: false, types: ['node'] },
        files,
      },
      null,
      2,
    )}\n`,
  );

  // 6. type-check, run, attw: independent, so side by side
  const typecheck = (async () => {
    const r = await sh(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.json', '--pretty', 'false'], { cwd: project, timeoutMs: 180_000 });
    // skipLibCheck is off so that our own .d.ts files are checked; errors inside other packages'
    // declarations (PGlite's, Baileys') are theirs: shown, not failed on.
    const errors: Array<{ file: string; text: string }> = [];
    for (const line of r.output.split('\n')) {
      const m = /^(.+?)\(\d+,\d+\): error /.exec(line);
      if (m) errors.push({ file: m[1]!, text: line });
      else if (line.trim() && errors.length) errors[errors.length - 1]!.text += `\n${line}`;
    }
    const theirs = errors.filter((e) => e.file.startsWith('node_modules/') && !e.file.startsWith('node_modules/@disparo/'));
    const ours = errors.filter((e) => !theirs.includes(e));
    const summary = `${files.length} files (${files.join(', ')}), nodenext, strict, skipLibCheck false (${secs(r.ms)})`;
    if (theirs.length) {
      const where = [...new Set(theirs.map((e) => e.file.split('/').slice(1, e.file.split('/')[1]!.startsWith('@') ? 3 : 2).join('/')))];
      console.log(`  · typecheck  ${theirs.length} errors inside other packages' declarations (${where.join(', ')}), not ours: users need skipLibCheck for those`);
    }
    if (!timedOutOrCrashed(r) && ours.length === 0) return ok('typecheck', summary);
    // Name the README line of each error, not only the scratch file.
    const byBlock = (ours.length ? ours.map((e) => e.text).join('\n') : r.output).replace(/^([\w-]+)\.(mts|cts)\((\d+),(\d+)\)/gm, (all, id: string, ext: string) => {
      const b = blocks.find((x) => x.id === id);
      return b ? `${b.readme}:${b.line} as ${ext === 'mts' ? 'ESM' : 'CJS'} TypeScript, ${all}` : all;
    });
    fail('typecheck', `tsc --noEmit (module/moduleResolution nodenext, skipLibCheck false)${r.timedOut ? ' timed out' : ''}`, byBlock);
  })();

  const runs = blocks
    .filter((b) => b.mode === 'run')
    .flatMap((b) => [{ b, ext: 'mjs', label: 'ESM' }, ...(b.esmOnly ? [] : [{ b, ext: 'cjs', label: 'CommonJS' }])]);
  const running = pool(runs, 4, async ({ b, ext, label }) => {
    const cwd = join(project, `cwd-${b.id}-${ext}`); // the block's relative paths land here
    mkdirSync(cwd);
    const r = await sh(process.execPath, [join(project, `${b.id}.${ext}`)], { cwd, timeoutMs: RUN_TIMEOUT_MS });
    const what = `${b.readme}:${b.line} as ${label}`;
    if (r.code === 0) ok('run', `${what} (${secs(r.ms)})`);
    else fail('run', `${what}: ${r.timedOut ? `still running after ${secs(RUN_TIMEOUT_MS)}` : `exit code ${r.code}`}`, r.output);
  });

  const attwBin = join(project, 'node_modules', '.bin', 'attw');
  const typesCheck = pool(packed, 2, async (t) => {
    const entries: Array<[string, unknown]> =
      typeof t.manifest.exports === 'object' && t.manifest.exports ? Object.entries(t.manifest.exports as Record<string, unknown>) : [['.', t.manifest.exports]];
    const hasRequire = (v: unknown): boolean =>
      !!v && typeof v === 'object' && Object.entries(v as Record<string, unknown>).some(([k, x]) => k === 'require' || (k === 'default' && typeof x === 'string' && x.endsWith('.cjs')) || hasRequire(x));
    const code = entries.filter(([k]) => k !== './package.json' && !k.includes('*'));
    const dual = code.filter(([, v]) => hasRequire(v) || typeof v === 'string').map(([k]) => k);
    const esmOnly = code.filter(([, v]) => !hasRequire(v) && typeof v !== 'string').map(([k]) => k);
    for (const [profile, list] of [['node16', dual], ['esm-only', esmOnly]] as const) {
      if (list.length === 0) continue;
      const r = await sh(attwBin, [t.tarball, '--profile', profile, '--entrypoints', ...list, '--format', 'table-flipped', '--no-emoji', '--no-color'], { cwd: project, timeoutMs: 120_000 });
      const what = `${t.name}: ${list.join(' ')} (profile ${profile}${profile === 'esm-only' ? ': no require condition, ESM-only by design' : ''})`;
      if (r.code === 0) ok('attw', `${what}`);
      else fail('attw', what, r.output);
    }
  });

  await Promise.all([typecheck, running, typesCheck]);
}

main()
  .catch((error: unknown) => fail('pack-check', 'crashed', error instanceof Error ? (error.stack ?? error.message) : String(error)))
  .finally(() => {
    const total = secs(Date.now() - started);
    if (failures.length) {
      console.log(`\npack-check: ${failures.length} failed, ${passed} passed (${total}):\n${failures.map((f) => `  - ${f}`).join('\n')}`);
      process.exitCode = 1;
    } else {
      console.log(`\npack-check: all ${passed} checks passed (${total})`);
    }
  });
