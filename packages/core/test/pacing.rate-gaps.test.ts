import { describe, expect, it } from 'vitest';
import { RATE_HEADROOM, rateGaps } from '../src/pacing/plan.js';
import type { Pacing } from '../src/domain/types.js';

const pacing = (ratePerSecond: number) => ({ ratePerSecond }) as Pacing;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

describe('rateGaps: the spacing of a rate-paced account', () => {
  it('sends planned in small groups, one after the other, keep the full rate (no rounding up per group)', () => {
    // 1,000/s at 0.97 headroom is 1.031 ms apart: a group of 16 spans 16.5 ms. Each group rounded up
    // on its own took 17 ms, 6% under the rate.
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
});
