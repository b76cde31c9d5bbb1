import { readFileSync, rmSync, writeFileSync } from 'node:fs';

/**
 * The demo's own stopwatch, kept beside the store: how long the campaign has actually been sending,
 * summed over runs, so "completed in" leaves out the time between an interrupt and the resume; and
 * where this run started, so rate and ETA describe this run rather than the first one.
 */
export class RunClock {
  private priorMs = 0;
  private runs = 0;
  private startedAt: number | null = null;
  private savedAt = 0;
  /** Recipients already processed when this run started. */
  private processedAtStart = 0;

  constructor(private readonly file: string) {
    try {
      const saved = JSON.parse(readFileSync(file, 'utf8')) as { activeMs?: unknown; runs?: unknown };
      if (typeof saved.activeMs === 'number' && saved.activeMs >= 0) this.priorMs = saved.activeMs;
      if (typeof saved.runs === 'number' && saved.runs >= 0) this.runs = saved.runs;
    } catch {
      // No earlier run (or an unreadable file): count from zero.
    }
  }

  static forget(file: string): void {
    rmSync(file, { force: true });
  }

  /** Starts timing this run; `processed` is the count of recipients already done. */
  start(processed: number, now = Date.now()): void {
    this.startedAt = now;
    this.processedAtStart = processed;
    this.runs += 1;
    this.save(now);
  }

  /** Sending time over all runs so far, this one included. */
  activeMs(now = Date.now()): number {
    return this.priorMs + (this.startedAt === null ? 0 : now - this.startedAt);
  }

  get runCount(): number {
    return this.runs;
  }

  /** Recipients per second in this run, or null in its first second (too early to say). */
  rate(processed: number, now = Date.now()): number | null {
    if (this.startedAt === null || now - this.startedAt < 1_000) return null;
    return (processed - this.processedAtStart) / ((now - this.startedAt) / 1_000);
  }

  /** Time left at this run's rate; null while unknown. */
  etaMs(processed: number, remaining: number, now = Date.now()): number | null {
    if (remaining === 0) return 0;
    const rate = this.rate(processed, now);
    return rate && rate > 0 ? (remaining / rate) * 1_000 : null;
  }

  /** Persists the running total (at most once a second unless `force`). */
  save(now = Date.now(), force = true): void {
    if (!force && now - this.savedAt < 1_000) return;
    this.savedAt = now;
    writeFileSync(this.file, `${JSON.stringify({ activeMs: Math.round(this.activeMs(now)), runs: this.runs })}\n`);
  }

  /** Ends this run: its time joins the total. */
  stop(now = Date.now()): void {
    if (this.startedAt === null) return;
    this.save(now);
    this.priorMs = this.activeMs(now);
    this.startedAt = null;
  }
}
