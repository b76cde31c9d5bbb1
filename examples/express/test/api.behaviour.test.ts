import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { startServer, type Running } from '../src/server.js';

let server: Running;
const key = 'test-key-0123456789';
const call = async (path: string, init: RequestInit & { json?: unknown } = {}, auth = key) => {
  const res = await fetch(server.url + path, {
    ...init,
    headers: { authorization: `Bearer ${auth}`, ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}), ...(init.headers as Record<string, string>) },
    body: init.json !== undefined ? JSON.stringify(init.json) : init.body,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & unknown[] };
};

let dataDir = '';
beforeAll(async () => {
  // The default store: PGlite in a folder of its own.
  dataDir = mkdtempSync(join(tmpdir(), 'disparo-express-'));
  server = await startServer(loadConfig({ PORT: '0', API_KEY: key, DATA_DIR: dataDir, ACCOUNTS: JSON.stringify([{ id: 'sim-1', transport: 'simulator', latencyMs: { min: 0, max: 5 }, intervalMs: { min: 0, max: 5 } }]) }), { pollIntervalMs: 50 });
});
afterAll(async () => {
  await server?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('express example API', () => {
  it('rejects calls without the API key', async () => {
    const res = await call('/api/campaigns', {}, 'wrong-key-0123456789');
    expect(res.status).toBe(401);
    expect(String(res.body.message)).toContain('API key');
  });

  it('validates bodies and names the field', async () => {
    const res = await call('/api/campaigns', { method: 'POST', json: { name: '', template: 'x', accountIds: ['sim-1'] } });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('VALIDATION');
    expect((res.body.issues as Array<{ path: string }>).map((i) => i.path)).toContain('name');
    const malformed = await call('/api/campaigns', { method: 'POST', body: '{"name":', headers: { 'content-type': 'application/json' } });
    expect(malformed.status).toBe(400);
    expect((await call('/api/campaigns/nope')).status).toBe(404);
  });

  it('creates a campaign, imports CSV, runs it to completion, and refuses an illegal transition', async () => {
    const created = await call('/api/campaigns', { method: 'POST', json: { name: 'csv', template: 'Oi {{nome|cliente}}', accountIds: ['sim-1'], batchSize: 5, batchPauseMs: { min: 0, max: 0 } } });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    const csv = 'nome;telefone\nAna;(11) 98765-4321\nBruno;11 98765-4322\n"Silva; Carla";+55 21 99876-5432\nDup;5511987654321\nX;123\n';
    const imported = await call(`/api/campaigns/${id}/recipients`, { method: 'POST', body: csv, headers: { 'content-type': 'text/csv' } });
    expect(imported.body).toMatchObject({ inserted: 3, duplicates: 1, invalid: 1 });
    expect((await call(`/api/campaigns/${id}/start`, { method: 'POST' })).status).toBe(200);
    let progress = (await call(`/api/campaigns/${id}`)).body;
    for (let i = 0; i < 200 && progress.status !== 'completed'; i++) {
      await new Promise((r) => setTimeout(r, 25));
      progress = (await call(`/api/campaigns/${id}`)).body;
    }
    expect(progress.status).toBe('completed');
    expect(progress.sent).toBe(3);
    const again = await call(`/api/campaigns/${id}/pause`, { method: 'POST' });
    expect(again.status).toBe(409);
    expect(again.body.error).toBe('INVALID_TRANSITION');
  });

  it('a CSV without a phone column is refused with what to do', async () => {
    const created = await call('/api/campaigns', { method: 'POST', json: { name: 'bad csv', template: 'Oi', accountIds: ['sim-1'] } });
    const res = await call(`/api/campaigns/${created.body.id}/recipients`, { method: 'POST', body: 'name,city\nAna,SP\n', headers: { 'content-type': 'text/csv' } });
    expect(res.status).toBe(400);
    expect(String(res.body.message)).toContain('phone column');
  });

  it('test-send previews the rendered text without touching the campaign', async () => {
    const created = await call('/api/campaigns', { method: 'POST', json: { name: 'preview', template: 'Oi {{nome|cliente}}', accountIds: ['sim-1'] } });
    const res = await call(`/api/campaigns/${created.body.id}/test-send`, { method: 'POST', json: { to: [{ phone: '11987650000', vars: { nome: 'Ana' } }] } });
    expect(res.status).toBe(200);
    expect(res.body[0]).toMatchObject({ phone: '5511987650000', text: 'Oi Ana' });
    const progress = (await call(`/api/campaigns/${created.body.id}`)).body as unknown as { counters: { total: number } };
    expect(progress.counters.total).toBe(0);
  });
});
