import { defineConfig } from 'tsup';

export default defineConfig([
  {
    // The application entry and the entries for store and transport authors: ESM and CJS.
    entry: { index: 'src/index.ts', 'store/index': 'src/store/index.ts', 'transport/index': 'src/transport/index.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    clean: true,
    sourcemap: true,
    target: 'node20',
  },
  {
    // The test kit uses vitest, whose CommonJS entry throws: ESM only.
    entry: { 'testing/index': 'src/testing/index.ts' },
    format: ['esm'],
    dts: true,
    sourcemap: true,
    target: 'node20',
    external: ['vitest'],
  },
]);
