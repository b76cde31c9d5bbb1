import { readdirSync, readFileSync } from 'node:fs';

/** fixtures/ at the repository root (this file is packages/transport-cloud-api/test/). */
export const FIXTURES_DIR = new URL('../../../fixtures/', import.meta.url);

/** A fresh copy of one fixture, e.g. `fixture('cloudapi.sendText.response.json')`. */
export function fixture<T = any>(name: string): T {
  return JSON.parse(readFileSync(new URL(name, FIXTURES_DIR), 'utf8')) as T;
}

/** Every fixture name starting with `prefix`, e.g. `cloudapi.webhook.`. */
export function fixtureNames(prefix: string): string[] {
  return readdirSync(FIXTURES_DIR)
    .filter((n) => n.startsWith(prefix) && n.endsWith('.json'))
    .sort();
}
