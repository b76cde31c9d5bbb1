/**
 * A headless Chromium for the browser tests, with nothing to install by hand. In order:
 *
 * 1. `CHROMIUM_PATH`, when set (your own Chrome or Chromium);
 * 2. on Linux x64, the Chromium that the `@sparticuz/chromium` npm package ships (brotli-compressed
 *    inside the package, so it arrives with `pnpm install` from the npm registry; no download at run
 *    time), unpacked once into `<os temp>/disparo-chromium-<version>/`;
 * 3. Debian's `/usr/bin/chromium`, if that one cannot start (e.g. a slim image without the shared
 *    libraries Chromium needs) and it is installed.
 *
 * If none starts, the error says why each failed and what to do; the test fails rather than skips.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

const DEBIAN_CHROMIUM = '/usr/bin/chromium';

/** The flags Chromium needs here: as root (no sandbox), no GPU, and no calls home on a closed network. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Unpacks the Chromium of `@sparticuz/chromium` (once per version) and returns its path. */
async function packagedChromium(): Promise<string> {
  // Its exports map hides package.json: walk up from the entry point to read the version.
  let dir = dirname(createRequire(import.meta.url).resolve('@sparticuz/chromium'));
  let version: string | undefined;
  for (; !version && dirname(dir) !== dir; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (!existsSync(manifest)) continue;
    const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === '@sparticuz/chromium') version = pkg.version;
  }
  if (!version) throw new Error('cannot read the version of @sparticuz/chromium');
  const target = join(tmpdir(), `disparo-chromium-${version}`);
  const done = join(target, '.complete');
  const binary = join(target, 'chromium');
  if (existsSync(done) && existsSync(binary)) return binary;
  // A run killed mid-unpack leaves a partial binary that the package would reuse as is: start over.
  rmSync(target, { recursive: true, force: true });
  mkdirSync(target, { recursive: true });
  const { default: Sparticuz } = await import('@sparticuz/chromium');
  // The package unpacks into os.tmpdir(); point that at our own versioned folder for the call.
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = target;
  try {
    const path = await Sparticuz.executablePath();
    if (path !== binary) throw new Error(`@sparticuz/chromium unpacked to ${path}, expected ${binary}`);
  } finally {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  }
  writeFileSync(done, `${version}\n`);
  return binary;
}

export async function launchChromium(): Promise<{ browser: Browser; source: string }> {
  const failures: string[] = [];
  const linuxX64 = process.platform === 'linux' && process.arch === 'x64';
  if (!process.env.CHROMIUM_PATH && !linuxX64) {
    failures.push(`- the @sparticuz/chromium npm package: it ships a Linux x64 build only, and this is ${process.platform}-${process.arch}`);
  }
  const candidates: Array<{ source: string; path: () => Promise<string> }> = process.env.CHROMIUM_PATH
    ? [{ source: `CHROMIUM_PATH (${process.env.CHROMIUM_PATH})`, path: async () => process.env.CHROMIUM_PATH! }]
    : [
        ...(linuxX64 ? [{ source: 'the @sparticuz/chromium npm package', path: packagedChromium }] : []),
        ...(existsSync(DEBIAN_CHROMIUM) ? [{ source: `Debian's ${DEBIAN_CHROMIUM}`, path: async () => DEBIAN_CHROMIUM }] : []),
      ];
  for (const candidate of candidates) {
    try {
      const executablePath = await candidate.path();
      const browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS, timeout: 30_000 });
      return { browser, source: `${candidate.source}: Chromium ${browser.version()}` };
    } catch (error) {
      failures.push(`- ${candidate.source}: ${(error as Error).message.split('\n').slice(0, 6).join('\n  ')}`);
    }
  }
  throw new Error(
    `No Chromium could start for the browser test.\n${failures.join('\n')}\n` +
      'What to do: set CHROMIUM_PATH to a Chrome or Chromium that runs here (on macOS, e.g. ' +
      '"/Applications/Google Chrome.app/Contents/MacOS/Google Chrome"). On Linux, a missing shared library (libnss3, libatk...) ' +
      'means the system lacks what Chromium needs: on Debian or Ubuntu "apt-get install chromium" brings them, and a Chromium this test then uses.',
  );
}
