import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (p: string) => fileURLToPath(new URL(p, import.meta.url));
// The community node runs on n8n-workflow's CommonJS build in n8n; its ESM build is not marked as a
// module (no "type": "module"), which vite would otherwise transform file by file.
const n8nWorkflow = createRequire(new URL('./examples/n8n-nodes-disparo/package.json', import.meta.url)).resolve('n8n-workflow');

// Every package's tests run from the root against source, so the inner loop needs no build.
export default defineConfig({
  resolve: {
    alias: [
      { find: /^@disparo\/core\/testing$/, replacement: src('./packages/core/src/testing/index.ts') },
      { find: /^@disparo\/core\/store$/, replacement: src('./packages/core/src/store/index.ts') },
      { find: /^@disparo\/core\/transport$/, replacement: src('./packages/core/src/transport/index.ts') },
      { find: /^@disparo\/core$/, replacement: src('./packages/core/src/index.ts') },
      { find: /^@disparo\/adapter-postgres$/, replacement: src('./packages/adapter-postgres/src/index.ts') },
      { find: /^@disparo\/adapter-postgres\/calls$/, replacement: src('./packages/adapter-postgres/src/calls-entry.ts') },
      { find: /^@disparo\/adapter-supabase$/, replacement: src('./packages/adapter-supabase/src/index.ts') },
      { find: /^@disparo\/transport-evolution$/, replacement: src('./packages/transport-evolution/src/index.ts') },
      { find: /^n8n-workflow$/, replacement: n8nWorkflow },
      { find: /^@disparo\/transport-baileys$/, replacement: src('./packages/transport-baileys/src/index.ts') },
      { find: /^@disparo\/transport-cloud-api$/, replacement: src('./packages/transport-cloud-api/src/index.ts') },
    ],
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'examples/*/test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    globalSetup: ['./vitest.global-setup.ts'],
  },
});
