import { DisparoError, ValidationError, type TransportError, type WebhookError } from '@disparo/core';

/** An HTTP-level refusal of this app (unknown route, unsupported media type) in the shape the mapper answers. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export interface ErrorReply {
  status: number;
  body: { error: string; message: string; issues?: ValidationError['issues'] };
  /** Not a refusal we understand: log it, answer 500 without details. */
  unexpected: boolean;
}

/**
 * The one mapping from anything a route throws to an HTTP answer, always JSON:
 * `{ error: <CODE>, message, issues? }`. DisparoErrors keep their code and message.
 */
export function errorReply(error: unknown): ErrorReply {
  if (DisparoError.isInstance(error)) {
    const body: ErrorReply['body'] = { error: error.code, message: error.message };
    if (ValidationError.isInstance(error)) body.issues = error.issues;
    return { status: statusOf(error), body, unexpected: false };
  }
  if (error instanceof HttpError) return { status: error.status, body: { error: error.code, message: error.message }, unexpected: false };
  const parser = bodyParserError(error);
  if (parser) return { status: parser.status, body: { error: parser.code, message: parser.message }, unexpected: false };
  return { status: 500, body: { error: 'INTERNAL', message: 'Unexpected error; see the server log.' }, unexpected: true };
}

/** Statuses of Disparo's error codes; a code this table does not know (STORE, or a newer one) is a 500. */
export function statusOf(error: DisparoError): number {
  switch (error.code) {
    case 'VALIDATION':
      return 400;
    case 'NOT_FOUND':
      return 404;
    case 'INVALID_TRANSITION':
    case 'CONFLICT':
      return 409;
    case 'WEBHOOK':
      return (error as WebhookError).reason === 'malformed' ? 400 : 401;
    case 'TRANSPORT':
      return (error as TransportError).kind === 'rate_limited' ? 429 : 502;
    case 'SHUTDOWN':
      return 503;
    default:
      return 500;
  }
}

/** Express's body parsers throw http-errors with a `type` (entity.too.large, entity.parse.failed, ...). */
function bodyParserError(error: unknown): { status: number; code: string; message: string } | null {
  if (!(error instanceof Error)) return null;
  const e = error as Error & { status?: unknown; type?: unknown; expose?: unknown; limit?: unknown; length?: unknown };
  if (typeof e.type !== 'string' || typeof e.status !== 'number' || e.status < 400 || e.status > 499) return null;
  switch (e.type) {
    case 'entity.parse.failed':
      return { status: 400, code: 'VALIDATION', message: `Malformed JSON body: ${e.message}` };
    case 'entity.too.large': {
      const sent = typeof e.length === 'number' ? ` (${megabytes(e.length)} sent)` : '';
      const limit = typeof e.limit === 'number' ? `at most ${megabytes(e.limit)}` : 'less';
      return { status: 413, code: 'PAYLOAD_TOO_LARGE', message: `The body is too large: this route accepts ${limit}${sent}.` };
    }
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', message: e.message };
    default:
      return { status: e.status, code: 'BAD_REQUEST', message: e.expose === false ? 'Bad request.' : e.message };
  }
}

function megabytes(bytes: number): string {
  return `${(bytes / 1_048_576).toFixed(bytes % 1_048_576 === 0 ? 0 : 1)} MB`;
}
