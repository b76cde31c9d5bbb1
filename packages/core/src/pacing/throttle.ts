/**
 * Additive increase, multiplicative decrease for a rate-paced account in this process: a "too fast"
 * answer from the provider (Cloud API 130429) halves the share of the configured rate and window the
 * account uses; every sent message wins a little back. It only ever slows an account below what is
 * configured, never above. The answers to one burst arrive together (every send on the wire in that
 * second may be refused), so the share is halved at most once per `calmMs`: one event, one decrease.
 */
export class Throttle {
  private factor = 1;
  private lastDecrease = Number.NEGATIVE_INFINITY;

  constructor(
    /** The least share kept (so an account never stalls). */
    private readonly floor = 1 / 16,
    /** Share won back per message sent. */
    private readonly step = 1 / 64,
    /** How long after a decrease further "too fast" answers count as the same event (the provider counts per second). */
    private readonly calmMs = 1_000,
  ) {}

  /** The share of the configured rate and window in use now, in (0, 1]. */
  get share(): number {
    return this.factor;
  }

  /** A "too fast" answer at `now`. */
  slowDown(now: number): void {
    if (now - this.lastDecrease < this.calmMs) return;
    this.lastDecrease = now;
    this.factor = Math.max(this.floor, this.factor / 2);
  }

  sent(): void {
    if (this.factor < 1) this.factor = Math.min(1, this.factor + this.step);
  }
}
