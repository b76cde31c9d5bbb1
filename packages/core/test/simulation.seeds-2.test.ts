import { describe, expect, it } from 'vitest';
import { runSimulation } from '@disparo/core/testing';

// Deterministic simulation, seeds 101-200 (300 seeds over three files, so workers share them).
// Replay one: pnpm sim --seed N. Run many more: pnpm sim --seeds 10000.
const seeds = Array.from({ length: 100 }, (_, i) => 101 + i);

describe('deterministic simulation: crashes, faults, races; invariants I1-I5 and account rules', () => {
  it.each(seeds)('seed %i', async (seed) => {
    const report = await runSimulation({ seed, chaosMs: 60_000 });
    expect(report.violations, `replay: pnpm sim --seed ${seed}`).toEqual([]);
    expect(report.stats.sends).toBeGreaterThan(0);
  });
});
