import type { ZodError, ZodType, output } from 'zod';

const MARK = Symbol.for('disparo.error');

export type ErrorCode =
  | 'DISPARO'
  | 'VALIDATION'
  | 'INVALID_TRANSITION'
  | 'NOT_FOUND'
  | 'STORE'
  | 'TRANSPORT'
  | 'SHUTDOWN'
  | 'WEBHOOK'
  | 'CONFLICT';

/**
 * Base of every error Disparo throws. `code` is stable; messages say what was wrong and what to do.
 * Each subclass declares its code once (`static readonly code`); the constructor stamps it on the
 * instance and `isInstance` compares it, so checks work across ESM/CJS copies of the package, where
 * `instanceof` does not.
 */
export class DisparoError extends Error {
  static readonly code: ErrorCode = 'DISPARO';
  readonly [MARK] = true;
  readonly code: ErrorCode;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    // defineProperty, not assignment: assigning `name` throws where built-in prototypes are frozen
    // (n8n's secure Code-node sandbox), because Error.prototype.name is then read-only.
    Object.defineProperty(this, 'name', { value: new.target.name, enumerable: false, writable: true, configurable: true });
    this.code = (new.target as unknown as { code: ErrorCode }).code;
  }

  /** `DisparoError.isInstance(x)`: any Disparo error; `NotFoundError.isInstance(x)`: that class only. */
  static isInstance<T extends DisparoError>(this: { prototype: T; readonly code: ErrorCode }, value: unknown): value is T {
    if (typeof value !== 'object' || value === null || (value as Record<symbol, unknown>)[MARK] !== true) return false;
    return this.code === 'DISPARO' || (value as DisparoError).code === this.code;
  }
}

export interface ValidationIssue {
  /** Dotted path of the offending field, e.g. `recipients.3.phone`. */
  path: string;
  message: string;
}

export class ValidationError extends DisparoError {
  static override readonly code = 'VALIDATION';
  readonly issues: ValidationIssue[];
  constructor(message: string, issues: ValidationIssue[] = [], options?: { cause?: unknown }) {
    super(message, options);
    this.issues = issues;
  }
  /** The first offending field, for quick checks (`err.field === 'name'`). */
  get field(): string | undefined {
    return this.issues[0]?.path;
  }
  static fromZod(what: string, error: ZodError, prefix = ''): ValidationError {
    const issues: ValidationIssue[] = [];
    for (const i of error.issues) {
      const base = [prefix, ...i.path.map(String)].filter(Boolean).join('.');
      // Name unknown keys themselves, so `err.field` points at the typo.
      if (i.code === 'unrecognized_keys') for (const key of i.keys) issues.push({ path: base ? `${base}.${key}` : key, message: 'unknown option' });
      else issues.push({ path: base || '(root)', message: i.message });
    }
    return new ValidationError(`Invalid ${what}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues, { cause: error });
  }
}

/** `value` read with `schema`, or a `ValidationError` naming each bad field of `what` (under `prefix`). */
export function validate<S extends ZodType>(schema: S, value: unknown, what: string, prefix = ''): output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw ValidationError.fromZod(what, result.error, prefix);
  return result.data;
}

export class InvalidTransitionError extends DisparoError {
  static override readonly code = 'INVALID_TRANSITION';
  constructor(
    readonly campaignId: string,
    readonly from: string,
    readonly to: string,
  ) {
    super(
      `Campaign ${campaignId} cannot go from "${from}" to "${to}". Check its status with getCampaign() first; see the transition table in the @disparo/core README.`,
    );
  }
}

export class NotFoundError extends DisparoError {
  static override readonly code = 'NOT_FOUND';
  constructor(
    readonly entity: string,
    readonly id: string,
  ) {
    super(`No ${entity} with id "${id}". Check the id, or create it first.`);
  }
}

export class StoreError extends DisparoError {
  static override readonly code = 'STORE';
}

export class ConflictError extends DisparoError {
  static override readonly code = 'CONFLICT';
}

/**
 * How the engine must treat a failed send:
 * - `transient`: retry with backoff (consumes an attempt);
 * - `rate_limited`: back the account off (honour `retryAfterMs`), no attempt consumed;
 * - `invalid_recipient`: never retry, skip the recipient (`not_on_whatsapp`);
 * - `permanent`: fail the recipient now;
 * - `account`: the account cannot send (disconnected, logged out, banned, token expired):
 *   pause the account, return the recipient to pending, no attempt consumed;
 * - `ambiguous`: the provider may have sent it (timeout after the request left):
 *   reconcile through `lookup` before any resend, otherwise apply the in-doubt policy.
 */
export type TransportErrorKind = 'transient' | 'rate_limited' | 'invalid_recipient' | 'permanent' | 'account' | 'ambiguous';

/** Why an account stopped, when a `TransportError` of kind `account` knows it. */
export type AccountStopReason = 'disconnected' | 'logged_out' | 'banned' | 'replaced' | 'unauthorized' | 'restricted';

export interface TransportErrorOptions {
  retryAfterMs?: number;
  accountReason?: AccountStopReason;
  providerCode?: string | number;
  scope?: 'recipient' | 'campaign';
  optOut?: boolean;
  cause?: unknown;
}

export class TransportError extends DisparoError {
  static override readonly code = 'TRANSPORT';
  readonly kind: TransportErrorKind;
  readonly retryAfterMs: number | undefined;
  /** For kind `account`: whether the account can come back by reconnecting (`disconnected`) or needs a human. */
  readonly accountReason: AccountStopReason | undefined;
  /** Provider's own code (HTTP status, WhatsApp error code, Baileys DisconnectReason). */
  readonly providerCode: string | number | undefined;
  /**
   * Whom the failure concerns beyond this one message, when the provider says so: `recipient` (a
   * `rate_limited` answer for this contact only, e.g. Cloud API 131056: back off the contact, keep
   * sending to others) or `campaign` (a `permanent` content error every recipient would hit, e.g. a
   * paused template: pause the campaign). Absent: the kind's default.
   */
  readonly scope: 'recipient' | 'campaign' | undefined;
  /** The recipient asked not to receive messages (Cloud API 131050): opt the contact out. */
  readonly optOut: boolean;
  constructor(kind: TransportErrorKind, message: string, options: TransportErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.kind = kind;
    this.retryAfterMs = options.retryAfterMs;
    this.accountReason = options.accountReason;
    this.providerCode = options.providerCode;
    this.scope = options.scope;
    this.optOut = options.optOut ?? false;
  }
}

/** A webhook body that is unsigned, wrongly signed or malformed. Nothing was changed. */
export class WebhookError extends DisparoError {
  static override readonly code = 'WEBHOOK';
  constructor(
    message: string,
    readonly reason: 'unsigned' | 'bad_signature' | 'malformed',
  ) {
    super(message);
  }
}

export class ShutdownError extends DisparoError {
  static override readonly code = 'SHUTDOWN';
  constructor(message = 'The engine is stopping; no new work is accepted. Start a new engine to continue.') {
    super(message);
  }
}
