import { z } from 'zod';
/** The engine reads time only through a Clock, so tests and simulations run on virtual time. */
export interface Clock {
  now(): number;
  /** Resolve after `ms`; reject with the signal's reason when aborted. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /**
   * Optional: call `fn` after `ms` unless the returned function is called first. A cheaper
   * `sleep` for timeouts that are almost always cancelled (one per send); without it the engine
   * uses `sleep` with an AbortSignal.
   */
  setTimer?(ms: number, fn: () => void): () => void;
}

/** What a transport that only reads the time needs from a `Clock` (any `Clock` fits). */
export type NowClock = Pick<Clock, 'now'>;

/** A transport's `clock` option, checked: something with `now()` in epoch ms (`systemClock`, a `VirtualClock`). */
export const clockOption = z.custom<NowClock>((v) => typeof v === 'object' && v !== null && typeof (v as NowClock).now === 'function', 'must be a clock: an object with now() returning epoch ms (systemClock, VirtualClock)');

/** Run `fn` after `ms` on `clock` unless the returned cancel function is called first. */
export function startTimer(clock: Clock, ms: number, fn: () => void): () => void {
  if (clock.setTimer) return clock.setTimer(ms, fn);
  const controller = new AbortController();
  clock.sleep(ms, controller.signal).then(fn, () => undefined);
  return () => controller.abort(TIMER_CANCELLED);
}

/** Abort reason of a cancelled timer (a constant: no stack trace per cancel). */
const TIMER_CANCELLED = Symbol('timer cancelled');

export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new Error('aborted');
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep(ms, signal) {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(abortReason(signal));
      const onAbort = () => {
        clearTimeout(timer);
        reject(abortReason(signal!));
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, Math.max(0, ms));
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  },
  setTimer(ms, fn) {
    const timer = setTimeout(fn, Math.max(0, ms));
    return () => clearTimeout(timer);
  },
};
