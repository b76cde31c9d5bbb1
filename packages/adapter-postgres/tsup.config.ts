import { defineConfig } from 'tsup';

export default defineConfig({
  // `calls`: the SQL functions' calls and codecs without a driver (see src/calls-entry.ts).
  entry: { index: 'src/index.ts', calls: 'src/calls-entry.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
});
