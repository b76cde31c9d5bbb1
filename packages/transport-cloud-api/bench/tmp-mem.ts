import { createMemoryStore } from '@disparo/core';
import { FakeGraph } from '../test/fake-graph.js';
import { runThroughput } from '../test/throughput.js';
const n = Number(process.argv[2] ?? 2000);
const claim = Number(process.argv[3] ?? 0) || undefined;
const fake = await FakeGraph.start({ numbers: [{ phoneNumberId: '100000000000001' }] });
const ticker = setInterval(() => console.error(JSON.stringify({ requests: fake.arrivals().length, accepted: fake.accepted.length })), 2000);
try {
  const r = await runThroughput({ fake, store: createMemoryStore(), phoneNumberId: '100000000000001', ratePerSecond: 1000, maxInFlight: 256, messages: n, latencyMs: 150, timeoutMs: 30_000, claimSize: claim });
  console.log(JSON.stringify({ ...r, perSecond: fake.perSecond() }));
} catch (e) { console.log(String(e)); }
clearInterval(ticker);
await fake.close();
