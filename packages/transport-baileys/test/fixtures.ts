import { readdirSync, readFileSync } from 'node:fs';

/** fixtures/ at the repository root (this file is packages/transport-baileys/test/). */
export const FIXTURES_DIR = new URL('../../../fixtures/', import.meta.url);

/** A fresh copy of one fixture, e.g. `fixture('baileys.sendMessage.result.json')`. */
export function fixture<T = any>(name: string): T {
  return JSON.parse(readFileSync(new URL(name, FIXTURES_DIR), 'utf8')) as T;
}

/** Every fixture name starting with `prefix`, e.g. `baileys.event.`. */
export function fixtureNames(prefix: string): string[] {
  return readdirSync(FIXTURES_DIR)
    .filter((n) => n.startsWith(prefix) && n.endsWith('.json'))
    .sort();
}

/**
 * A Boom error as Baileys throws it, from a JSON rendering (`baileys.error.*.json`, or a
 * `lastDisconnect.error`): an `Error` whose `message` (non-enumerable, like Boom's) is the
 * fixture's, with `isBoom`, `isServer`, `data` and `output` copied over.
 */
export function boomFrom(rendered: { message: string; [k: string]: unknown }): Error {
  const { message, ...rest } = rendered;
  return Object.assign(new Error(message), rest);
}

export function boomFixture(name: string): Error {
  return boomFrom(fixture(name));
}

/** A Boom built the way Baileys builds one: `new Boom(message, { statusCode, data })`. */
export function boom(message: string, options: { statusCode?: number; data?: unknown } = {}): Error {
  const statusCode = options.statusCode ?? 500;
  const isServer = statusCode >= 500;
  return Object.assign(new Error(message), {
    data: options.data ?? null,
    isBoom: true,
    isServer,
    output: { statusCode, payload: { statusCode, error: isServer ? 'Internal Server Error' : 'Bad Request', message: isServer ? 'An internal server error occurred' : message }, headers: {} },
  });
}
