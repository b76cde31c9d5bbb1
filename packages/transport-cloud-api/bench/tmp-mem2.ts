import { createEngine, createMemoryStore, silentLogger } from '@disparo/core';
import { createCloudApiTransport } from '@disparo/transport-cloud-api';
import { FakeGraph } from '../test/fake-graph.js';
const runs = Number(process.argv[2] ?? 5), n = Number(process.argv[3] ?? 3000), claim = Number(process.argv[4] ?? 200);
for (let k = 0; k < runs; k++) {
  const fake = await FakeGraph.start({ numbers: [{ phoneNumberId: '100000000000001' }] });
  fake.numbers.get('100000000000001')!.throughputPerSecond = 1000;
  fake.latencyMs = 150;
  const inner = createCloudApiTransport({ phoneNumberId: '100000000000001', accessToken: fake.accessToken, baseUrl: fake.url, timeoutMs: 10_000 });
  let started = 0, resolved = 0;
  const transport = { ...inner, name: inner.name, send: async (m: any, o: any) => { started++; const r = await inner.send(m, o); resolved++; return r; } } as typeof inner;
  const store = createMemoryStore();
  let checkpoints = 0;
  const cp = store.checkpoint.bind(store);
  (store as any).checkpoint = (i: any) => { checkpoints++; return cp(i); };
  const engine = createEngine({ store, logger: silentLogger, claimSize: claim, accounts: [{ id: 'c', transport, pacing: { ratePerSecond: 1000, maxInFlight: 256 } }] });
  const c = await engine.createCampaign({ name: 'x', template: 'Oi {{name}}', accountIds: ['c'], batchSize: Math.min(n, 10000), batchPauseMs: { min: 0, max: 0 } });
  await engine.addRecipients(c.id, Array.from({ length: n }, (_, i) => ({ phone: `551197${String(i).padStart(7, '0')}`, vars: { name: `n${i}` } })));
  let sent = 0; engine.on('message:sent', () => sent++);
  const done = new Promise<void>((r) => engine.on('campaign:completed', () => r()));
  await engine.start(c.id);
  const run = engine.run();
  const outcome = await Promise.race([done.then(() => 'done'), new Promise((r) => setTimeout(() => r('STALL'), 20_000))]);
  const p = await engine.progress(c.id);
  console.log(outcome, JSON.stringify({ started, resolved, sent, checkpoints, counters: p.counters, sustained: Math.round(fake.sustainedRate()) }));
  if (outcome === 'STALL') { process.exit(3); }
  await engine.stop(); await run; await fake.close();
}
