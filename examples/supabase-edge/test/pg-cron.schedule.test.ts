/**
 * pg_cron for real (Debian's postgresql-15-cron, pg_cron 1.4) driving pg_net's `net.http_post` (the
 * PL/Python stand-in), the way a Supabase project schedules an edge function: the job's SQL is the SQL
 * a Supabase migration schedules. pg_cron 1.4 has no second-level schedules: a job runs on the next
 * whole minute. The job itself, end to end (cron -> HTTP -> the function -> the store -> a provider), is
 * process-campaigns.cron.test.ts, the one test here that waits for a minute.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requirePgCron, startCronPostgres, type CronPostgres } from './support/pg-cron.js';

interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

const enabled = requirePgCron();

describe.skipIf(!enabled)('pg_cron + net.http_post', () => {
  let cron: CronPostgres;
  let db: pg.Client;
  let server: Server;
  let functionUrl: string;
  const received: Received[] = [];
  let onRequest: (() => void) | undefined;

  beforeAll(async () => {
    // Where the edge function would be: answers like one, and records what it was sent.
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, at: Date.now() });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ success: true }));
        onRequest?.();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    functionUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/functions/v1/process-campaigns`;
    cron = await startCronPostgres();
    db = new pg.Client({ connectionString: cron.url });
    await db.connect();
  }, 60_000);

  afterAll(async () => {
    await db?.end();
    await cron?.stop();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  });

  it('net.http_post has pg_net signature, POSTs JSON with the given headers and query, and records the response', async () => {
    const { rows } = await db.query<{ id: string }>(
      `SELECT net.http_post(url := $1, body := '{"n": 1}'::jsonb, params := '{"mode": "test run"}'::jsonb,
         headers := jsonb_build_object('Content-Type', 'application/json', 'Authorization', 'Bearer k'), timeout_milliseconds := 2000) AS id`,
      [functionUrl],
    );
    const last = received.at(-1)!;
    expect(last).toMatchObject({ method: 'POST', url: '/functions/v1/process-campaigns?mode=test+run', body: '{"n": 1}' });
    expect(last.headers).toMatchObject({ 'content-type': 'application/json', authorization: 'Bearer k' });
    const response = await db.query('SELECT status_code, content, timed_out, error_msg FROM net._http_response WHERE id = $1', [rows[0]!.id]);
    expect(response.rows[0]).toEqual({ status_code: 200, content: '{"success":true}', timed_out: false, error_msg: null });

    // Defaults as pg_net's: body {}, JSON content type. A refused connection is recorded, not raised.
    const refused = await db.query<{ id: string }>(`SELECT net.http_post('http://127.0.0.1:1/nothing') AS id`);
    const failed = await db.query('SELECT status_code, error_msg FROM net._http_response WHERE id = $1', [refused.rows[0]!.id]);
    expect(failed.rows[0]).toMatchObject({ status_code: null, error_msg: expect.stringMatching(/refused/i) });
    await expect(db.query(`SELECT net.http_post($1, '{}'::jsonb, '{}'::jsonb, '{"Content-Type": "text/plain"}'::jsonb)`, [functionUrl])).rejects.toThrow(
      'Content-Type header must be "application/json"',
    );
  });

  it('pg_cron 1.4 refuses second-level schedules', async () => {
    await expect(db.query(`SELECT cron.schedule('disparo-seconds', '30 seconds', 'SELECT 1')`)).rejects.toThrow('invalid schedule: 30 seconds');
  });
});
