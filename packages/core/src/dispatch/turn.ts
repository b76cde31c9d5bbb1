import type { Turn } from '../context.js';

/**
 * One holder at a time, FIFO: an account's sends in this process take turns. Bottleneck would do
 * this too, but it schedules with its own timers, outside the engine's Clock.
 */
export class FifoTurn implements Turn {
  private tail: Promise<void> = Promise.resolve();
  private queued = 0;

  get busy(): boolean {
    return this.queued > 0;
  }

  get contended(): boolean {
    return this.queued > 1;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((r) => (release = r));
    this.queued++;
    await previous;
    try {
      return await fn();
    } finally {
      this.queued--;
      release();
    }
  }
}
