/**
 * A store that keeps an import's chunk in its own form (StateStore.recipientBuffer) gets every row
 * as the engine reads it, not a chunk of row objects afterwards; the result is the array path's.
 * And items are read with the recipient schema's rules whether or not they take its fast path.
 */
import { describe, expect, it } from 'vitest';
import { createEngine, createMemoryStore, createSimulatorTransport, silentLogger, ValidationError, type StateStore } from '../src/index.js';
import type { NewRecipient, RecipientBuffer } from '../src/store/contract.js';
import { parseRecipientInput, recipientInputSchema } from '../src/engine/schemas.js';
import { validate } from '../src/errors.js';

function engineOn(store: StateStore) {
  return createEngine({ store, logger: silentLogger, accounts: [{ id: 'a1', transport: createSimulatorTransport(), pacing: { intervalMs: { min: 0, max: 0 } } }] });
}

describe('import into a store with its own chunk form', () => {
  it('each row reaches the buffer as it is read; counts and rows equal the array path', async () => {
    const log: string[] = [];
    const buffered = createMemoryStore();
    class Buffer implements RecipientBuffer {
      readonly rows: NewRecipient[] = [];
      get length() {
        return this.rows.length;
      }
      push(row: NewRecipient) {
        log.push(`pushed ${row.phone}`);
        this.rows.push(row);
      }
    }
    Object.assign(buffered, {
      recipientBuffer: async () => new Buffer(),
      addRecipientBuffer: (id: string, rows: Buffer, now: number) => buffered.addRecipients(id, rows.rows, now),
    });
    const phones = ['5511990000001', '5511990000002', '5511990000001', 'bad', '5511990000003', '5511990000004', '5511990000002'];
    function* source() {
      for (const phone of phones) {
        log.push(`read ${phone}`);
        yield { phone, vars: { name: phone.slice(-1) } };
      }
    }
    const results = [];
    const lists = [];
    for (const store of [buffered, createMemoryStore()]) {
      const engine = engineOn(store);
      const c = await engine.createCampaign({ name: 'b', templates: ['Oi {{name}}'], accountIds: ['a1'], batchSize: 2 });
      results.push(await engine.addRecipients(c.id, source(), { chunkSize: 2 }));
      lists.push((await store.listRecipients(c.id)).map((r) => [r.seq, r.batch, r.phone, r.vars.name]));
    }
    expect(results[0]).toEqual(results[1]);
    expect(results[0]).toMatchObject({ processed: 7, inserted: 4, duplicates: 2, invalid: 1 });
    expect(lists[0]).toEqual(lists[1]);
    // Pushed right after it was read, before the next one is read.
    const ofBuffered = log.slice(0, log.lastIndexOf('read 5511990000002') + 2);
    expect(ofBuffered.slice(0, 4)).toEqual(['read 5511990000001', 'pushed 5511990000001', 'read 5511990000002', 'pushed 5511990000002']);
  });
});

describe('recipient items', () => {
  const cases: unknown[] = [
    { phone: '5511990000001' },
    { phone: 5511990000001, vars: { a: 1, b: true, c: null, d: 'x', e: '' } },
    { phone: '1', vars: undefined, extra: 'dropped' },
    { phone: '1', vars: JSON.parse('{"__proto__": "p", "constructor": "c"}') },
    { phone: '1', vars: Object.assign(Object.create(null), { x: 'y' }) },
    { phone: Infinity },
    { phone: NaN },
    { phone: null },
    { phone: '1', vars: { a: Infinity } },
    { phone: '1', vars: { a: 'has\u0000nul' } },
    { phone: '1', vars: { 'k\u0000': 'v' } },
    { phone: '1', vars: { a: { nested: 1 } } },
    { phone: '1', vars: ['x'] },
    { phone: '1', vars: null },
    ['5511990000001'],
    null,
    'text',
  ];
  it.each(cases.map((c, i) => [i, c]))('item %i: the same result or the same error as the schema', (_, item) => {
    const viaSchema = () => validate(recipientInputSchema, item, 'recipient', 'recipients.0');
    const fast = () => parseRecipientInput(item, 'recipients.0');
    let want: unknown;
    try {
      want = viaSchema();
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      expect(fast).toThrow((error as Error).message);
      return;
    }
    const got = fast();
    expect(got).toEqual(want);
    expect(Object.keys(got.vars)).toEqual(Object.keys((want as typeof got).vars));
  });
});
