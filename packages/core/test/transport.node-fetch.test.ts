import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpRequest, nodeFetch, TransportError } from '@disparo/core/transport';

let server: Server;
let url: string;
const sockets = new Set<unknown>();
const seen: Array<{ method: string; body: string; contentType: string | undefined }> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    sockets.add(req.socket);
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      seen.push({ method: req.method!, body, contentType: req.headers['content-type'] });
      if (req.url === '/hold') return; // never answers
      res.setHeader('retry-after', '7');
      res.setHeader('set-cookie', ['a=1', 'b=2']);
      res.writeHead(req.url === '/limited' ? 429 : 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ echo: body, ok: 'sí' }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))));

const call = (path: string, extra: Partial<Parameters<typeof httpRequest>[0]> = {}) =>
  httpRequest({ url: `${url}${path}`, method: 'POST', headers: {}, body: { text: 'Olá' }, timeoutMs: 2_000, sends: true, where: 'test', fetch: nodeFetch, ...extra });

describe('nodeFetch: provider calls over node:http with kept-alive connections', () => {
  it('sends the JSON body and reads status, headers (repeated ones too) and a UTF-8 body', async () => {
    const answer = await call('/limited');
    expect(answer.status).toBe(429);
    expect(answer.headers.get('retry-after')).toBe('7');
    expect(answer.headers.get('set-cookie')).toContain('a=1');
    expect(answer.json).toEqual({ echo: '{"text":"Olá"}', ok: 'sí' });
    expect(seen.at(-1)).toMatchObject({ method: 'POST', body: '{"text":"Olá"}', contentType: 'application/json' });
  });

  it('reuses its connections', async () => {
    sockets.clear();
    for (let i = 0; i < 5; i++) await call('/');
    expect(sockets.size).toBe(1);
  });

  it('a timeout after the request left is ambiguous for a send; a refused connection is transient', async () => {
    await expect(call('/hold', { timeoutMs: 200 })).rejects.toMatchObject({ kind: 'ambiguous', providerCode: 'timeout' });
    const refused = await call('/', { url: 'http://127.0.0.1:1/' }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(TransportError);
    expect(refused).toMatchObject({ kind: 'transient', providerCode: 'ECONNREFUSED' });
  });

  it("gives back the caller's abort reason", async () => {
    const reason = new TransportError('ambiguous', 'send timed out');
    const controller = new AbortController();
    setTimeout(() => controller.abort(reason), 50);
    await expect(call('/hold', { signal: controller.signal })).rejects.toBe(reason);
  });
});
