/**
 * The worker as a real child process with a Cloud API account from its environment: it sends through
 * the fake Graph server (the wire format from the fixtures) at the number's rate, and Meta's signed
 * receipts come back to its `/webhooks/cloud-api` on HEALTH_PORT and are stored in PostgreSQL.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type pg from 'pg';
import { createEngine, silentLogger } from '@disparo/core';
import { samplePhones } from '@disparo/core/testing';
import { createPostgresStore } from '@disparo/adapter-postgres';
import { pool, testDatabase } from '../../../packages/adapter-postgres/test/support.js';
import { FakeGraph } from '../../../packages/transport-cloud-api/test/fake-graph.js';
import { killAll, spawnWorker, until } from './support.js';

const A = '100000000000001';
let url = '';
let db: pg.Pool;

beforeAll(async () => {
  url = await testDatabase('worker_cloud');
  db = pool(url, 4);
});
afterAll(async () => {
  killAll();
  await db?.end();
});

it('a Cloud API account from the environment sends at its rate; signed receipts to /webhooks/cloud-api reach the database, forged ones are refused', async () => {
  // Without a token or App Secret (own or CLOUD_API_*), the worker refuses to start and says which.
  const bad = spawnWorker({ DATABASE_URL: url, ACCOUNTS: JSON.stringify([{ id: 'c', transport: 'cloud-api', phoneNumberId: A }]) });

  const store = createPostgresStore(db, { schema: 'cloud' });
  await store.migrate();
  const admin = createEngine({ store, logger: silentLogger });
  const fake = await FakeGraph.start({ numbers: [{ phoneNumberId: A }] });
  try {
    fake.latencyMs = 20;
    const w = spawnWorker({
      DATABASE_URL: url,
      DB_SCHEMA: 'cloud',
      ACCOUNTS: JSON.stringify([{ id: 'cloud-1', transport: 'cloud-api', phoneNumberId: A, baseUrl: fake.url, apiVersion: fake.version, ratePerSecond: 20, maxInFlight: 4 }]),
      CLOUD_API_ACCESS_TOKEN: fake.accessToken,
      CLOUD_API_APP_SECRET: fake.appSecret,
      CLOUD_API_VERIFY_TOKEN: 'verify-worker',
      HEALTH_PORT: '0',
      HEALTH_HOST: '127.0.0.1',
      POLL_INTERVAL_MS: '200',
    });
    const started = await w.waitForLog((l) => l.msg === 'worker started');
    const hook = `http://127.0.0.1:${started.healthPort as number}/webhooks/cloud-api`;
    expect(await fake.verifyCallback(hook, 'verify-worker')).toMatchObject({ status: 200, echoed: true });
    expect(await fake.verifyCallback(hook, 'wrong')).toMatchObject({ status: 403, echoed: false });

    // Meta posts sent and delivered for every message, several statuses per signed POST.
    fake.webhook = { url: hook, statuses: ['sent', 'delivered'], stepMs: 20, flushMs: 100 };
    const phones = samplePhones(40, 19);
    const c = await admin.createCampaign({ id: 'cloud-1', name: 'cloud', template: 'Oi {{name}}, seu pedido saiu.', accountIds: ['cloud-1'], batchPauseMs: { min: 0, max: 0 }, allowUnknownAccounts: true });
    await admin.addRecipients(c.id, phones.map((phone, i) => ({ phone, vars: { name: `p${i}` } })));
    await admin.start(c.id);
    await until('campaign completed', async () => (await store.getCampaign(c.id))?.status === 'completed', 20_000);

    // Each recipient reached Meta once, at the number's rate (20/s; 5% slack for timer jitter).
    expect(fake.messages(A).map((m) => m.to).sort()).toEqual([...phones].sort());
    expect(fake.maxInWindow(A, 1_000, 'arrivals')).toBeLessThanOrEqual(21);
    await fake.idle();
    expect(fake.deliveries.length).toBeGreaterThan(0);
    expect(fake.deliveries.every((d) => d.status === 200)).toBe(true);
    expect(fake.deliveries.some((d) => d.statuses > 1)).toBe(true);
    await until('receipts stored', async () => (await admin.progress(c.id)).counters.delivered === 40, 5_000);

    // The same body without its signature, or signed with another secret: 401, nothing applied.
    const body = fake.deliveries[0]!.body;
    expect((await fetch(hook, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).status).toBe(401);
    expect((await fetch(hook, { method: 'POST', headers: { 'content-type': 'application/json', 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` }, body })).status).toBe(401);

    w.proc.kill('SIGTERM');
    expect((await w.exited).code).toBe(0);
  } finally {
    await fake.close();
  }
  expect((await bad.exited).code).toBe(78);
  expect(bad.stderr()).toMatch(/ACCOUNTS\[0\]\.accessToken: is required: set CLOUD_API_ACCESS_TOKEN/);
  expect(bad.stderr()).toMatch(/ACCOUNTS\[0\]\.appSecret: is required .*CLOUD_API_APP_SECRET/);
}, 60_000);
