/**
 * Exponential backoff with jitter: attempt n (1-based) waits a random time in [base/2, base], where
 * base = min(maxMs, minMs * 2^(n-1)). The jitter keeps workers that failed together (a database
 * failover) from retrying together.
 */
export function backoffMs(attempt: number, range: { minMs: number; maxMs: number }, random: () => number): number {
  const base = Math.min(range.maxMs, range.minMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(base / 2 + random() * (base / 2));
}
