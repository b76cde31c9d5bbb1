/**
 * The fake Graph server in a process of its own, as Meta's servers are: the bench's own process then
 * holds only what a user's worker holds (the engine, the transport's HTTP client, the store client).
 * Run as a child (`fork`), it starts a FakeGraph for one number at the given rate and latency, sends
 * its address, and on request sends what it recorded; the parent rebuilds a read-only FakeGraph from
 * that record, so the bench reads the same figures as the tests do in process.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { FakeGraph } from '../test/fake-graph.js';

interface Address {
  url: string;
  accessToken: string;
  appSecret: string;
  version: string;
}

type Recorded = Pick<FakeGraph, 'requests' | 'accepted' | 'rejected'> & { peakOpenSends: Array<[string, number]> };

if (process.send && process.argv[2] === '--child') {
  const [phoneNumberId, rate, latency] = [process.argv[3]!, Number(process.argv[4]), Number(process.argv[5])];
  const fake = await FakeGraph.start({ numbers: [{ phoneNumberId, throughputPerSecond: rate }] });
  fake.latencyMs = latency;
  process.on('message', (m: { cmd: string }) => {
    if (m.cmd === 'record') {
      const peaks = (fake as unknown as { peakOpenSends: Map<string, number> }).peakOpenSends;
      process.send!({ record: { requests: fake.requests, accepted: fake.accepted, rejected: fake.rejected, peakOpenSends: [...peaks] } satisfies Recorded });
    } else if (m.cmd === 'close') void fake.close().then(() => process.exit(0));
  });
  process.send({ address: { url: fake.url, accessToken: fake.accessToken, appSecret: fake.appSecret, version: fake.version } satisfies Address });
}

/** A FakeGraph running in a child process. */
export class GraphProcess {
  private constructor(
    private readonly child: ChildProcess,
    readonly address: Address,
  ) {}

  static start(phoneNumberId: string, ratePerSecond: number, latencyMs: number): Promise<GraphProcess> {
    const child = fork(fileURLToPath(import.meta.url), ['--child', phoneNumberId, String(ratePerSecond), String(latencyMs)], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`the fake Graph process exited (${code}) before it listened`)));
      child.once('message', (m: { address: Address }) => resolve(new GraphProcess(child, m.address)));
    });
  }

  /** What the server recorded, as a FakeGraph whose read methods (messages, arrivals, maxInWindow, ...) work. */
  record(): Promise<FakeGraph> {
    return new Promise((resolve) => {
      this.child.once('message', (m: { record: Recorded }) => {
        const snapshot = Object.create(FakeGraph.prototype) as FakeGraph;
        Object.assign(snapshot, { requests: m.record.requests, accepted: m.record.accepted, rejected: m.record.rejected, peakOpenSends: new Map(m.record.peakOpenSends) });
        resolve(snapshot);
      });
      this.child.send({ cmd: 'record' });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.child.removeAllListeners('exit');
      this.child.once('exit', () => resolve());
      this.child.send({ cmd: 'close' });
    });
  }
}
