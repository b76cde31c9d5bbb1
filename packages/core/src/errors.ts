import type { ZodError } from 'zod';

const MARK = Symbol.for('disparo.error');

export type ErrorCode =
  | 'VALIDATION'
  | 'INVALID_TRANSITION'
  | 'NOT_FOUND'
  | 'STORE'
  | 'TRANSPORT'
  | 'SHUTDOWN'
  | 'WEBHOOK'
  | 'CONFLICT';

/** Base of every error Disparo throws. `code` is stable; messages say what was wrong and what to do. */
export class DisparoError extends Error {
  readonly [MARK] = true;
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
  /** Works across ESM/CJS copies of the package, unlike `instanceof`. */
  static isInstance(value: unknown): value is DisparoError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[MARK] === true;
  }
}

export interface ValidationIssue {
  /** Dotted path of the offending field, e.g. `recipients.3.phone`. */
  path: string;
  message: string;
}

export class ValidationError extends DisparoError {
  readonly issues: ValidationIssue[];
  constructor(message: string, issues: ValidationIssue[] = [], options?: { cause?: unknown }) {
    super('VALIDATION', message, options);
    this.issues = issues;
  }
  /** The first offending field, for quick checks (`err.field === 'name'`). */
  get field(): string | undefined {
    return this.issues[0]?.path;
  }
  static fromZod(what: string, error: ZodError, prefix = ''): ValidationError {
    const issues = error.issues.map((i) => ({
      path: [prefix, ...i.path.map(String)].filter(Boolean).join('.') || '(root)',
      message: i.message,
    }));
    const list = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
    return new ValidationError(`Invalid ${what}: ${list}`, issues, { cause: error });
  }
  static override isInstance(value: unknown): value is ValidationError {
    return DisparoError.isInstance(value) && value.code === 'VALIDATION';
  }
}

export class InvalidTransitionError extends DisparoError {
  constructor(
    readonly campaignId: string,
    readonly from: string,
    readonly to: string,
  ) {
    super(
      'INVALID_TRANSITION',
      `Campaign ${campaignId} cannot go from "${from}" to "${to}". Check its status with getCampaign() first; see the transition table in the @disparo/core README.`,
    );
  }
  static override isInstance(value: unknown): value is InvalidTransitionError {
    return DisparoError.isInstance(value) && value.code === 'INVALID_TRANSITION';
  }
}

export class NotFoundError extends DisparoError {
  constructor(
    readonly entity: string,
    readonly id: string,
  ) {
    super('NOT_FOUND', `No ${entity} with id "${id}". Check the id, or create it first.`);
  }
  static override isInstance(value: unknown): value is NotFoundError {
    return DisparoError.isInstance(value) && value.code === 'NOT_FOUND';
  }
}

export class StoreError extends DisparoError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('STORE', message, options);
  }
  static override isInstance(value: unknown): value is StoreError {
    return DisparoError.isInstance(value) && value.code === 'STORE';
  }
}

export class ConflictError extends DisparoError {
  constructor(message: string) {
    super('CONFLICT', message);
  }
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

export class TransportError extends DisparoError {
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
  constructor(
    kind: TransportErrorKind,
    message: string,
    options: {
      retryAfterMs?: number;
      accountReason?: AccountStopReason;
      providerCode?: string | number;
      scope?: 'recipient' | 'campaign';
      optOut?: boolean;
      cause?: unknown;
    } = {},
  ) {
    super('TRANSPORT', message, { cause: options.cause });
    this.kind = kind;
    this.retryAfterMs = options.retryAfterMs;
    this.accountReason = options.accountReason;
    this.providerCode = options.providerCode;
    this.scope = options.scope;
    this.optOut = options.optOut ?? false;
  }
  static override isInstance(value: unknown): value is TransportError {
    return DisparoError.isInstance(value) && value.code === 'TRANSPORT';
  }
}

/** A webhook body that is unsigned, wrongly signed or malformed. Nothing was changed. */
export class WebhookError extends DisparoError {
  constructor(
    message: string,
    readonly reason: 'unsigned' | 'bad_signature' | 'malformed',
  ) {
    super('WEBHOOK', message);
  }
  static override isInstance(value: unknown): value is WebhookError {
    return DisparoError.isInstance(value) && value.code === 'WEBHOOK';
  }
}

export class ShutdownError extends DisparoError {
  constructor(message = 'The engine is stopping; no new work is accepted. Start a new engine to continue.') {
    super('SHUTDOWN', message);
  }
  static override isInstance(value: unknown): value is ShutdownError {
    return DisparoError.isInstance(value) && value.code === 'SHUTDOWN';
  }
}
