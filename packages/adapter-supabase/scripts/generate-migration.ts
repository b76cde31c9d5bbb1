/**
 * Writes the Supabase migration, `supabase/migrations/<timestamp>_disparo.sql`, from
 * @disparo/adapter-postgres's SQL (see src/migration.ts). Run by `build` (before tsup) and by
 * `pnpm --filter @disparo/adapter-supabase generate`; the file is committed and shipped, and a test
 * checks it matches what this script renders.
 *
 * The timestamp is Supabase's migration version: `supabase db push` applies a version once. So the file
 * keeps its name while its SQL is unchanged, and gets a new timestamp (now, UTC) when the SQL changes,
 * which a project that copies it in then applies on top of the older one.
 */
import { readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { supabaseMigration } from '../src/migration.js';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../supabase/migrations/', import.meta.url));
export const MIGRATION_FILE = /^(\d{14})_disparo\.sql$/;

/** The shipped migration files (there should be exactly one). */
export const shippedMigrations = (): string[] => {
  try {
    return readdirSync(MIGRATIONS_DIR).filter((f) => MIGRATION_FILE.test(f)).sort();
  } catch {
    return [];
  }
};

const timestamp = (d: Date) => d.toISOString().replace(/[-:T]/g, '').slice(0, 14);

export function writeMigration(now = new Date()): { file: string; changed: boolean } {
  const sql = supabaseMigration();
  const existing = shippedMigrations();
  const same = existing.find((f) => readFileSync(`${MIGRATIONS_DIR}${f}`, 'utf8') === sql);
  if (same && existing.length === 1) return { file: same, changed: false };
  mkdirSync(MIGRATIONS_DIR, { recursive: true });
  for (const f of existing) rmSync(`${MIGRATIONS_DIR}${f}`);
  const file = same ?? `${timestamp(now)}_disparo.sql`;
  writeFileSync(`${MIGRATIONS_DIR}${file}`, sql);
  return { file, changed: true };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { file, changed } = writeMigration();
  console.log(changed ? `wrote supabase/migrations/${file}` : `supabase/migrations/${file} is up to date`);
}
