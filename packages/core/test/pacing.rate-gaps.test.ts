import { describe, expect, it } from 'vitest';
import { LATE_TOLERANCE_MS, RATE_HEADROOM, rateGaps } from '../src/pacing/plan.js';
import type { Pacing } from '../src/domain/types.js';

const pacing = (ratePerSecond: number) => ({ ratePerSecond }) as Pacing;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

describe('rateGaps: the spacing of a rate-paced account', () => {
  it('sends planned in small groups, one after the other, keep the full rate (no rounding up per group)', () => {
    // 1,000/s at 0.97 headroom is 1.031 ms apart: a group of 16 spans 16.5 ms. Each group rounded up
    // on its own took 17 ms, 3% under the rate.
    const p = pacing(1_000);
    const groups = Array.from({ length: 64 }, (_, g) => rateGaps(p, 16, 1, g * 16));
    const exact = (64 * 16 * 1_000) / (1_000 * RATE_HEADROOM);
    expect(sum(groups.flat())).toBe(Math.ceil(exact));
    expect(sum(groups.flat())).toBe(sum(rateGaps(p, 64 * 16)));
  });

  it('every gap is the spacing rounded down or up, never more apart', () => {
    const gaps = [0, 7, 100, 12_345].flatMap((from) => rateGaps(pacing(80), 50, 1, from));
    const spacing = 1_000 / (80 * RATE_HEADROOM);
    expect(gaps.every((g) => g === Math.floor(spacing) || g === Math.ceil(spacing))).toBe(true);
  });

  it('the headroom covers the sends that leave late: a sliding second never holds more than the rate', () => {
    // The worst case: every send of the second's first LATE_TOLERANCE_MS left at its end, bunched with
    // the on-time sends after them.
    for (const rate of [20, 80, 1_000]) {
      const gaps = rateGaps(pacing(rate), 4 * rate);
      const slots = gaps.map((_, i) => gaps.slice(0, i).reduce((a, b) => a + b, 0));
      const left = slots.map((at) => (at < LATE_TOLERANCE_MS ? LATE_TOLERANCE_MS : at));
      const inFirstSecond = left.filter((at) => at >= LATE_TOLERANCE_MS && at < LATE_TOLERANCE_MS + 1_000).length;
      expect(inFirstSecond).toBeLessThanOrEqual(rate);
    }
  });
});
