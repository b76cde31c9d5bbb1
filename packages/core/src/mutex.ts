/**
 * One holder at a time, FIFO. Serialises the sends of one account inside a process, so at most one
 * message per account is on the wire (and in doubt after a crash). Bottleneck would do this too, but
 * it schedules with its own timers, outside the engine's Clock.
 */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((r) => (release = r));
    await previous;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
