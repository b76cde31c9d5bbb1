// Copies Disparo's Supabase migration from the installed @disparo/adapter-supabase into
// supabase/migrations/, replacing an older copy, so that `supabase db push` applies it.
import { copyFileSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const from = join(dirname(require.resolve('@disparo/adapter-supabase/package.json')), 'supabase', 'migrations');
const to = fileURLToPath(new URL('../supabase/migrations/', import.meta.url));
const isDisparo = (f) => /^\d{14}_disparo\.sql$/.test(f);
const shipped = readdirSync(from).filter(isDisparo);
if (shipped.length !== 1) throw new Error(`expected one *_disparo.sql in ${from}, found ${shipped.length} (build @disparo/adapter-supabase first)`);
for (const old of readdirSync(to).filter(isDisparo)) if (old !== shipped[0]) rmSync(join(to, old));
copyFileSync(join(from, shipped[0]), join(to, shipped[0]));
console.log(`supabase/migrations/${shipped[0]}`);
