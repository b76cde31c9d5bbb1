/**
 * The deterministic chaos simulation of @disparo/core (engines crashing at arbitrary await points,
 * step() racing run(), faults, opt-outs, logouts) with this adapter as the shared store: several engines
 * on one PGlite database, checked against the invariants I1-I5.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { PGlite } from '@electric-sql/pglite';
import { runSimulation } from '@disparo/core/testing';
import { createPostgresStore } from '@disparo/adapter-postgres';
import { freshSchema } from './support.js';

const db = new PGlite();
afterAll(() => db.close());

describe('simulation on PGlite: several engines sharing one store', () => {
  it.each([1, 3, 5])('seed %i keeps I1-I5', { timeout: 120_000 }, async (seed) => {
    const report = await runSimulation({
      seed,
      chaosMs: 30_000,
      store: async () => {
        const store = createPostgresStore(db, { schema: freshSchema('sim') });
        await store.migrate();
        return store;
      },
    });
    expect(report.violations, `replay: pnpm sim --seed ${seed} (on PGlite)`).toEqual([]);
    expect(report.stats.sends).toBeGreaterThan(0);
  });
});
