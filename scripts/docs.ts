/**
 * The API reference, generated from the types: `pnpm docs` writes HTML to `docs/api/` (ignored by git).
 *
 * Each published package is documented from the entry points its own `tsup.config.ts` builds (so a new
 * entry point, e.g. `@disparo/core/store`, appears without touching this script), converted to JSON
 * with its name, and the packages are merged into one site. Works offline.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'docs', 'api');
const typedoc = join(ROOT, 'node_modules', 'typedoc', 'bin', 'typedoc');

function run(args: string[]): Promise<string> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [typedoc, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.on('error', fail);
    child.on('close', (code) => (code === 0 ? done(output) : fail(new Error(`typedoc ${args.join(' ')}\n${output}`))));
  });
}

/** The source files a package's tsup config builds. */
async function entryPoints(dir: string): Promise<string[]> {
  const file = join(dir, 'tsup.config.ts');
  const loaded = (await import(pathToFileURL(file).href)) as { default: unknown };
  const configs = (Array.isArray(loaded.default) ? loaded.default : [loaded.default]) as Array<{ entry?: string[] | Record<string, string> }>;
  const entries = configs.flatMap((c) => (Array.isArray(c.entry) ? c.entry : Object.values(c.entry ?? {})));
  if (entries.length === 0) throw new Error(`${relative(ROOT, file)} names no entry points`);
  return entries.map((e) => join(dir, e));
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'disparo-docs-'));
  try {
    const jsons: string[] = [];
    for (const name of readdirSync(join(ROOT, 'packages')).sort()) {
      const dir = join(ROOT, 'packages', name);
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name: string; private?: boolean };
      if (manifest.private || !existsSync(join(dir, 'tsup.config.ts'))) continue;
      const entries = await entryPoints(dir);
      const json = join(tmp, `${name}.json`);
      await run([
        '--name', manifest.name,
        '--tsconfig', join(dir, 'tsconfig.json'),
        '--readme', join(dir, 'README.md'),
        '--entryPointStrategy', 'resolve',
        ...entries.flatMap((e) => ['--entryPoints', e]),
        '--excludePrivate', '--excludeInternal',
        '--json', json,
        '--logLevel', 'Error',
      ]);
      jsons.push(json);
      console.log(`docs: ${manifest.name} from ${entries.map((e) => relative(ROOT, e)).join(', ')}`);
    }
    rmSync(OUT, { recursive: true, force: true });
    await run([
      '--name', 'Disparo',
      '--readme', join(ROOT, 'README.md'),
      '--entryPointStrategy', 'merge',
      ...jsons.flatMap((j) => ['--entryPoints', j]),
      '--out', OUT,
      '--logLevel', 'Error',
    ]);
    console.log(`docs: API reference in ${relative(ROOT, OUT)}/index.html`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
