// After `n8n-node build` (tsc + icons), inline @disparo/* and their dependencies (pg, zod, ...) into
// the node's entry file. n8n installs a community node with npm into its own folder, and the node
// lint forbids runtime `dependencies` (they would be installed into the n8n instance and could
// conflict with n8n's own copies), so the package ships one self-contained file per node and only
// declares `n8n-workflow` as a peer (n8n provides it at run time).
import { build } from 'esbuild';
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const nodeDir = path.join(root, 'dist', 'nodes', 'Disparo');
const entry = path.join(nodeDir, 'Disparo.node.js');

await build({
  entryPoints: [entry],
  outfile: entry,
  allowOverwrite: true,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  // n8n-workflow: the host's copy (the node's errors must be n8n's classes). pg-native: pg's optional
  // native binding, never used here. PGlite: an optional client of the store, not used by this node.
  external: ['n8n-workflow', 'pg-native', '@electric-sql/pglite'],
  sourcemap: false,
  legalComments: 'eof',
  logLevel: 'warning',
});

// The helpers tsc emitted next to the entry are inlined now; drop them so nothing requires @disparo/*.
for (const file of await readdir(nodeDir)) {
  if (/\.js(\.map)?$/.test(file) && !file.startsWith('Disparo.node.')) await rm(path.join(nodeDir, file));
  if (file === 'Disparo.node.js.map') await rm(path.join(nodeDir, file));
}
// tsc's incremental state (the template's tsconfig) is of no use in the published package.
await rm(path.join(root, 'dist', 'tsconfig.tsbuildinfo'), { force: true });
console.log(`bundled ${path.relative(root, entry)}`);
