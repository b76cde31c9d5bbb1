import { afterEach } from 'vitest';

// Between tests, let the worker's event loop reach its I/O phase. PGlite answers queries on the same
// thread without yielding to it, so a long PGlite suite can keep vitest's own messages to the main
// process unread until their 60 s timer fires first ("[vitest-worker]: Timeout calling onTaskUpdate",
// an unhandled error that fails a run whose tests all passed). See vitest discussion #6511.
afterEach(() => new Promise<void>((resolve) => setImmediate(resolve)));
