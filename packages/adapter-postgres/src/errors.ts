import { ConflictError, NotFoundError, StoreError, ValidationError } from '@disparo/core/store';

/** What a failing call was doing, for the error it becomes. */
export interface CallContext {
  /** The StateStore method, e.g. `checkpoint`. */
  method: string;
  schema: string;
  /** The call's input, searched for the value PostgreSQL refused (a NUL, a lone surrogate). */
  input?: unknown;
  /** For createCampaign (a taken id) and addRecipients (an unknown campaign). */
  id?: string;
}

const codeOf = (error: unknown): string | undefined =>
  error && typeof error === 'object' && typeof (error as { code?: unknown }).code === 'string' ? (error as { code: string }).code : undefined;

/**
 * A PostgreSQL error as the library's typed error: a schema not migrated (or migrated by an older
 * version) says to call migrate(); a dropped connection is a StoreError the engine retries; text
 * PostgreSQL cannot store (a NUL character) or JSON it cannot read is a ValidationError naming the
 * field, never an untyped DatabaseError; a taken campaign id is a ConflictError.
 */
export function toStoreError(error: unknown, ctx: CallContext): Error {
  const code = codeOf(error);
  const message = error instanceof Error ? error.message : String(error);
  if (code === '42P01' || code === '42883' || code === '3F000' || code === '42704') {
    return new StoreError(`The Disparo schema "${ctx.schema}" is missing or out of date (${message}). Call store.migrate() first.`, { cause: error });
  }
  if (code !== undefined && /^(08|57P)/.test(code)) {
    return new StoreError(`Lost the connection to PostgreSQL (${message}). Check the database is up; the engine retries.`, { cause: error });
  }
  if (code === '23505' && ctx.method === 'createCampaign') {
    return new ConflictError(`A campaign with id "${ctx.id}" already exists in schema "${ctx.schema}".`, { cause: error });
  }
  if (code === 'P0002' && ctx.method === 'addRecipients') return new NotFoundError('campaign', ctx.id ?? '');
  // 22021: a NUL byte in text; 22P05: \u0000 in JSON; 22P02: text that is not valid JSON (or a number);
  // 22023: a value the function refuses; 22P04: a COPY line it cannot read.
  if (code === '22021' || code === '22P05' || code === '22P02' || code === '22023' || code === '22P04') {
    const found = findUnstorable(ctx.input);
    const what = found
      ? `${found.path} contains ${found.what}, which PostgreSQL cannot store; remove it`
      : `PostgreSQL refused a value: ${message}`;
    return new ValidationError(`${ctx.method}: ${what}.`, [{ path: found?.path ?? '(input)', message: found ? `contains ${found.what}` : message }], { cause: error });
  }
  return error instanceof Error ? error : new StoreError(message);
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The first string (or key) in `value` that PostgreSQL cannot store, with its path (`rows[3].vars.name`). */
export function findUnstorable(value: unknown, path = ''): { path: string; what: string } | null {
  if (typeof value === 'string') {
    if (value.includes('\u0000')) return { path: path || '(value)', what: 'a NUL character (\\u0000)' };
    if (LONE_SURROGATE.test(value)) return { path: path || '(value)', what: 'a lone UTF-16 surrogate (invalid Unicode)' };
    return null;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findUnstorable(value[i], `${path}[${i}]`);
      if (found) return found;
    }
    return null;
  }
  if (value && typeof value === 'object') {
    for (const [key, v] of Object.entries(value)) {
      const at = path ? `${path}.${key}` : key;
      const inKey = findUnstorable(key, at);
      if (inKey) return { path: at, what: `${inKey.what} in its name` };
      const found = findUnstorable(v, at);
      if (found) return found;
    }
  }
  return null;
}
