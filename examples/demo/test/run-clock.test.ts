import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RunClock } from '../src/run-clock.js';

const dirs: string[] = [];
const clockFile = () => {
  const dir = mkdtempSync(join(tmpdir(), 'disparo-demo-clock-'));
  dirs.push(dir);
  return join(dir, 'clock.json');
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('the demo stopwatch', () => {
  it('counts sending time over runs, not the downtime between them', () => {
    const file = clockFile();
    const first = new RunClock(file);
    first.start(0, 1_000);
    first.stop(11_000); // 10 s, then Ctrl-C

    const second = new RunClock(file); // an hour later, a new process
    second.start(500, 3_611_000);
    expect(second.activeMs(3_616_000)).toBe(15_000);
    second.stop(3_621_000);
    expect(new RunClock(file).activeMs()).toBe(20_000);
    expect(new RunClock(file).runCount).toBe(2);
  });

  it('computes rate and ETA from this run only', () => {
    const file = clockFile();
    const first = new RunClock(file);
    first.start(0, 0);
    first.stop(10_000); // 1000 processed in 10 s

    const resumed = new RunClock(file);
    resumed.start(1_000, 100_000); // resumed 90 s later with 1000 done
    expect(resumed.rate(1_000, 100_500)).toBeNull(); // too early to say
    expect(resumed.rate(1_400, 104_000)).toBe(100); // 400 in 4 s, not 1400 over 104 s
    expect(resumed.etaMs(1_400, 600, 104_000)).toBe(6_000);
    expect(resumed.etaMs(2_000, 0, 110_000)).toBe(0);
  });

  it('starts from zero without a file, or with a damaged one', () => {
    expect(new RunClock(clockFile()).activeMs(5)).toBe(0);
  });
});
