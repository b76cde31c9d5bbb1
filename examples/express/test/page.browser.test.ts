/// <reference lib="dom" />
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { loadConfig } from '../src/config.js';
import { testDatabase } from '../../../packages/adapter-postgres/test/support.js';
import { startServer, type Running } from '../src/server.js';
import { launchChromium } from './chromium.js';

const artefacts = fileURLToPath(new URL('../../../test-artifacts/', import.meta.url));

let server: Running;
let browser: Browser;
const key = 'browser-key-0123456789';

beforeAll(async () => {
  server = await startServer(
    loadConfig({
      PORT: '0',
      API_KEY: key,
      // This one runs on real PostgreSQL (the test run's server), the way a deployment would.
      DATABASE_URL: await testDatabase('express'),
      ACCOUNTS: JSON.stringify([
        { id: 'sim-1', transport: 'simulator', latencyMs: { min: 5, max: 20 }, intervalMs: { min: 20, max: 60 } },
        { id: 'sim-2', transport: 'simulator', latencyMs: { min: 5, max: 20 }, intervalMs: { min: 20, max: 60 } },
      ]),
    }),
    { pushIntervalMs: 200, pollIntervalMs: 100 },
  );
  ({ browser } = await launchChromium());
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('live progress page in a real browser', () => {
  it('shows a campaign started from the page moving to completion', async () => {
    const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    const created = (await (await fetch(`${server.url}/api/campaigns`, { method: 'POST', headers, body: JSON.stringify({ name: 'Browser run', template: '{Olá|Oi} {{name|cliente}}', accountIds: ['sim-1', 'sim-2'], batchSize: 40, batchPauseMs: { min: 100, max: 200 } }) })).json()) as { id: string };
    const recipients = Array.from({ length: 120 }, (_, i) => ({ phone: `55119${String(60_000_000 + i)}`, vars: { name: `C${i}` } }));
    await fetch(`${server.url}/api/campaigns/${created.id}/recipients`, { method: 'POST', headers, body: JSON.stringify({ recipients }) });

    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    await page.goto(`${server.url}/?key=${key}`);
    const card = page.locator(`[data-campaign="${created.id}"]`);
    await card.waitFor();
    expect(await card.locator('[data-stat="status"]').textContent()).toBe('draft');

    await card.locator('button[data-action="start"]').click();
    // The numbers move while it runs…
    await page.waitForFunction((id) => {
      const el = document.querySelector(`[data-campaign="${id}"] [data-stat="sent"]`);
      return el && Number(el.textContent) > 0 && Number(el.textContent) < 120;
    }, created.id, { timeout: 20_000 });
    const midway = Number(await card.locator('[data-stat="sent"]').textContent());
    // …and reach completion.
    await page.waitForFunction((id) => document.querySelector(`[data-campaign="${id}"] [data-stat="status"]`)?.textContent === 'completed', created.id, { timeout: 30_000 });
    expect(midway).toBeGreaterThan(0);
    expect(await card.locator('[data-stat="sent"]').textContent()).toBe('120');
    expect(await card.locator('[data-stat="percent"]').textContent()).toBe('100.0%');
    expect(await card.locator('tbody tr').count()).toBe(3); // three batches of 40
    await page.locator('#accounts [data-account="sim-1"]').waitFor();
    mkdirSync(artefacts, { recursive: true });
    await page.screenshot({ path: `${artefacts}express-progress-page.png`, fullPage: true });
  }, 60_000);
});
