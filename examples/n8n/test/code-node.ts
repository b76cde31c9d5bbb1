/**
 * Runs a Code node's JavaScript the way n8n's task runner does for "Run Once for All Items": the code
 * is the body of an async function that sees `$input`, `$env`, `$execution` and a `require` limited to
 * the allow-listed modules (NODE_FUNCTION_ALLOW_EXTERNAL); `process` is not there.
 */
import * as core from '@disparo/core';
import * as adapter from '@disparo/adapter-postgres';
import * as evolution from '@disparo/transport-evolution';
import pg from 'pg';

export const ALLOWED = { '@disparo/core': core, '@disparo/adapter-postgres': adapter, '@disparo/transport-evolution': evolution, pg } as const;

export interface CodeNodeItem {
  json: Record<string, any>;
}

const AsyncFunction = Object.getPrototypeOf(async () => undefined).constructor as new (...args: string[]) => (...args: unknown[]) => Promise<unknown>;

let executionId = 0;

export async function runCodeNode(code: string, input: CodeNodeItem[], env: Record<string, string>): Promise<CodeNodeItem[]> {
  const fn = new AsyncFunction('$input', '$env', '$execution', 'require', 'process', code);
  const $input = { all: () => input, first: () => input[0], item: input[0] };
  // Like n8n with N8N_BLOCK_ENV_ACCESS_IN_NODE=false: every variable readable, unknown ones undefined.
  const $env = new Proxy(env, { get: (target, name) => (typeof name === 'string' ? target[name] : undefined) });
  const require = (name: string) => {
    if (!(name in ALLOWED)) throw new Error(`Cannot find module '${name}' (not in NODE_FUNCTION_ALLOW_EXTERNAL)`);
    return ALLOWED[name as keyof typeof ALLOWED];
  };
  return (await fn($input, $env, { id: String(++executionId) }, require, undefined)) as CodeNodeItem[];
}

/** The Webhook node's item for a POST with this JSON body. */
export const webhookItem = (body: unknown): CodeNodeItem => ({ json: { headers: {}, params: {}, query: {}, body } });
