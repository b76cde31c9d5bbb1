import { ValidationError } from '@disparo/core/store';
import { z } from 'zod';

const schemaSchema = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, 'a plain identifier: letters, digits and _ (not starting with a digit), up to 63 characters');

export interface SupabaseStoreOptions {
  /**
   * The schema the Disparo migration created (default `disparo`). It must be one of the Data API's
   * exposed schemas (Dashboard > Project Settings > Data API > Exposed schemas).
   */
  schema?: string;
  /** Give up on one RPC call after this long (default 30 s); the engine retries its writes. */
  timeoutMs?: number;
  /**
   * PostgREST's `db-max-rows` of the project (Supabase: Project Settings > Data API > Max rows, default
   * 1000): the most rows one call of a set-returning function may return. The store never asks one
   * call for more (claims are capped, listings are paged), so nothing is leased and then cut off.
   * Set it to your project's value if you lowered it; a larger value only saves round trips.
   */
  maxRows?: number;
}

export const optionsSchema = z
  .object({
    schema: schemaSchema.default('disparo'),
    timeoutMs: z.number().int().min(100).max(600_000).default(30_000),
    maxRows: z.number().int().min(1).max(1_000_000).default(1_000),
  })
  .strict();

export type ResolvedOptions = z.output<typeof optionsSchema>;

export function parseOptions(options: unknown): ResolvedOptions {
  const parsed = optionsSchema.safeParse(options ?? {});
  if (!parsed.success) throw ValidationError.fromZod('Supabase store options', parsed.error);
  return parsed.data;
}

/** A schema name, validated as the store's option is. */
export function schemaName(value: unknown, what: string): string {
  const parsed = schemaSchema.safeParse(value);
  if (!parsed.success) throw ValidationError.fromZod(what, parsed.error, 'schema');
  return parsed.data;
}
