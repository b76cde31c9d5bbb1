/**
 * An import reads the next chunk while the store writes the last one. A store's write takes several
 * turns of the event loop (round trips: statements, a COPY), so the reading must leave the loop now
 * and then: read in one go, the next chunk held it until it was full, and the write only went on
 * after that. Reading and writing then took turns, and an import took as long as both.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createEngine, createMemoryStore, createSimulatorTransport, silentLogger } from '../src/index.js';
import type { NewRecipient, RecipientBuffer } from '../src/store/contract.js';
import { VirtualClock } from '../src/testing/virtual-clock.js';

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('import: reading overlaps the store\'s writes', () => {
  it.each(['iterable', 'array'] as const)('a write makes progress while the next chunk is read (%s)', async (kind) => {
    // A store that keeps a chunk in its own form, as the PostgreSQL store does (COPY text): every row
    // taken into a chunk is pushed to it, so `taken` counts what the import has read.
    const store = createMemoryStore();
    const chunkSize = 5_000;
    let taken = 0;
    // What had been taken when each of the first write's round trips came back.
    const seen: number[] = [];
    let writes = 0;
    class Chunk implements RecipientBuffer {
      readonly rows: NewRecipient[] = [];
      get length() {
        return this.rows.length;
      }
      push(row: NewRecipient) {
        taken++;
        this.rows.push(row);
      }
    }
    Object.assign(store, {
      recipientBuffer: async () => new Chunk(),
      addRecipientBuffer: async (id: string, chunk: Chunk, now: number) => {
        const first = writes++ === 0;
        for (let i = 0; i < 3; i++) {
          await turn();
          if (first) seen.push(taken);
        }
        return store.addRecipients(id, chunk.rows, now);
      },
    });
    const engine = createEngine({ store, logger: silentLogger, accounts: [{ id: 'a1', transport: createSimulatorTransport(), pacing: { intervalMs: { min: 0, max: 0 } } }] });
    const c = await engine.createCampaign({ name: 'overlap', templates: ['Oi'], accountIds: ['a1'] });
    const n = 4 * chunkSize;
    const phone = (i: number) => `55119${String(80_000_000 + i)}`;
    const items = Array.from({ length: n }, (_, i) => ({ phone: phone(i), vars: {} }));
    const result = await engine.addRecipients(c.id, kind === 'array' ? items : items.values(), { chunkSize });
    expect(result).toMatchObject({ processed: n, inserted: n });
    expect(seen).toHaveLength(3);
    // The first write started when the first chunk was full; each of its round trips came back
    // before the second chunk was read through.
    expect(seen[0]).toBeGreaterThanOrEqual(chunkSize);
    expect(seen[2]).toBeLessThan(2 * chunkSize);
  });

  afterEach(() => vi.useRealTimers());

  it('an import into a store that needs no turn of the loop finishes under fake timers', async () => {
    // A user's test with vitest's fake timers (setImmediate faked too) importing into the memory
    // store: the pauses for the write must not wait on a timer nobody advances.
    const store = createMemoryStore();
    const engine = createEngine({ store, logger: silentLogger, accounts: [{ id: 'a1', transport: createSimulatorTransport(), pacing: { intervalMs: { min: 0, max: 0 } } }] });
    const c = await engine.createCampaign({ name: 'fake timers', templates: ['Oi'], accountIds: ['a1'] });
    const n = 5_000;
    const items = Array.from({ length: n }, (_, i) => ({ phone: `55119${String(80_000_000 + i)}`, vars: {} }));
    vi.useFakeTimers();
    const outcome = await Promise.race([
      engine.addRecipients(c.id, items, { chunkSize: 2_000 }).then((r) => r.inserted),
      // Microtasks only: what finishes without any timer firing. 10,000 rounds are far more than
      // the import needs; a hung import never settles.
      (async () => {
        for (let i = 0; i < 10_000; i++) await Promise.resolve();
        return 'hung';
      })(),
    ]);
    expect(outcome).toBe(n);
  });

  it('an import into the memory store lets no virtual time pass', async () => {
    // The virtual clock jumps to its next sleeper once a few turns of the loop go by with nothing to
    // do: an import that waited on turns let a host's timer (here one minute away) fire meanwhile.
    const clock = new VirtualClock(1_700_000_000_000);
    const store = createMemoryStore();
    const engine = createEngine({ store, clock, logger: silentLogger, accounts: [{ id: 'a1', transport: createSimulatorTransport(), pacing: { intervalMs: { min: 0, max: 0 } } }] });
    const c = await engine.createCampaign({ name: 'virtual', templates: ['Oi'], accountIds: ['a1'] });
    let fired = false;
    void clock.sleep(60_000).then(() => (fired = true));
    const stop = clock.autoAdvance();
    try {
      const t0 = clock.now();
      const items = Array.from({ length: 20_000 }, (_, i) => ({ phone: `55119${String(80_000_000 + i)}`, vars: {} }));
      expect((await engine.addRecipients(c.id, items, { chunkSize: 2_000 })).inserted).toBe(20_000);
      expect(clock.now() - t0).toBe(0);
      expect(fired).toBe(false);
    } finally {
      stop();
    }
  });
});
