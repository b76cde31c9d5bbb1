import { abortReason, type Clock } from '../clock.js';

interface Sleeper {
  at: number;
  seq: number;
  resolve: () => void;
}

/**
 * Virtual time. `advance(ms)` / `advanceTo(t)` fire due sleepers in time order, letting
 * promise chains settle between them. `runUntilIdle`-style driving: `autoAdvance()` jumps to
 * the next sleeper whenever the event loop has nothing else to do.
 */
export class VirtualClock implements Clock {
  private current: number;
  private sleepers: Sleeper[] = [];
  private seq = 0;
  private auto: { stop: boolean } | null = null;

  constructor(start = Date.UTC(2026, 0, 5, 12, 0, 0)) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  /** Number of pending sleepers (for tests). */
  get pending(): number {
    return this.sleepers.length;
  }

  /** Time of the earliest pending sleeper, or null. */
  nextAt(): number | null {
    let min: number | null = null;
    for (const s of this.sleepers) if (min === null || s.at < min) min = s.at;
    return min;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(abortReason(signal));
      const sleeper: Sleeper = { at: this.current + Math.max(0, ms), seq: this.seq++, resolve: () => {} };
      const onAbort = () => {
        this.sleepers = this.sleepers.filter((s) => s !== sleeper);
        reject(abortReason(signal!));
      };
      sleeper.resolve = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.sleepers.push(sleeper);
    });
  }

  setTimer(ms: number, fn: () => void): () => void {
    const sleeper: Sleeper = { at: this.current + Math.max(0, ms), seq: this.seq++, resolve: fn };
    this.sleepers.push(sleeper);
    return () => {
      this.sleepers = this.sleepers.filter((s) => s !== sleeper);
    };
  }

  /** Advance to `target`, firing every sleeper due on the way in time order. */
  async advanceTo(target: number): Promise<void> {
    for (;;) {
      await settle();
      const next = this.popDue(target);
      if (!next) break;
      this.current = Math.max(this.current, next.at);
      next.resolve();
    }
    this.current = Math.max(this.current, target);
    await settle();
  }

  advance(ms: number): Promise<void> {
    return this.advanceTo(this.current + ms);
  }

  /**
   * Keep jumping to the next sleeper whenever nothing else is runnable (checked with a few
   * macrotask turns so real I/O such as an embedded database can finish). Returns a stop function.
   */
  autoAdvance(options: { idleTurns?: number } = {}): () => void {
    const idleTurns = options.idleTurns ?? 3;
    const state = { stop: false };
    this.auto = state;
    const loop = async () => {
      let quiet = 0;
      let lastSeq = this.seq;
      let lastCount = this.sleepers.length;
      while (!state.stop) {
        await new Promise<void>((r) => setImmediate(r));
        if (this.seq !== lastSeq || this.sleepers.length !== lastCount) {
          lastSeq = this.seq;
          lastCount = this.sleepers.length;
          quiet = 0;
          continue;
        }
        if (++quiet < idleTurns) continue;
        quiet = 0;
        const next = this.popDue(Number.POSITIVE_INFINITY);
        if (next) {
          this.current = Math.max(this.current, next.at);
          next.resolve();
          lastCount = this.sleepers.length;
        }
      }
    };
    void loop();
    return () => {
      state.stop = true;
      if (this.auto === state) this.auto = null;
    };
  }

  private popDue(limit: number): Sleeper | undefined {
    let best: Sleeper | undefined;
    for (const s of this.sleepers) {
      if (s.at > limit) continue;
      if (!best || s.at < best.at || (s.at === best.at && s.seq < best.seq)) best = s;
    }
    if (best) this.sleepers = this.sleepers.filter((s) => s !== best);
    return best;
  }
}

async function settle(): Promise<void> {
  // Let promise chains run to completion (several microtask hops, then one macrotask turn).
  for (let i = 0; i < 5; i++) await Promise.resolve();
  await new Promise<void>((r) => setImmediate(r));
}
