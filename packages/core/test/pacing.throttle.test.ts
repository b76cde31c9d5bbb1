import { describe, expect, it } from 'vitest';
import { Throttle } from '../src/pacing/throttle.js';

describe('Throttle: how a rate-paced account answers "too fast"', () => {
  it('a burst of refusals within a second halves the share once, not once per refusal', () => {
    const t = new Throttle();
    // A burst past the provider's limit: every send of that second comes back 130429 within a few ms.
    for (let i = 0; i < 17; i++) t.slowDown(10_000 + i * 3);
    expect(t.share).toBe(0.5);
  });

  it('refusals in separate seconds each halve it, down to the floor', () => {
    const t = new Throttle();
    for (let i = 0; i < 6; i++) t.slowDown(i * 1_000);
    expect(t.share).toBe(1 / 16);
  });

  it('every message sent wins a little back, never above the configured rate', () => {
    const t = new Throttle();
    t.slowDown(0);
    for (let i = 0; i < 31; i++) t.sent();
    expect(t.share).toBeCloseTo(0.5 + 31 / 64);
    for (let i = 0; i < 10; i++) t.sent();
    expect(t.share).toBe(1);
  });
});
