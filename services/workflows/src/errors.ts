import { Code, ConnectError } from '@connectrpc/connect';

/** A request field is wrong; maps to InvalidArgument naming the field. */
export class InvalidFieldError extends Error {
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`${field}: ${problem}`);
  }
}

export class NotFoundError extends Error {
  constructor(kind: string, id: string) {
    super(`${kind} "${id}" not found`);
  }
}

export class AlreadyExistsError extends Error {}
export class FailedPreconditionError extends Error {}
export class UnavailableError extends Error {}

/** Error codes of a dependency that is away (connection failures, Postgres shutting down or starting). */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EPIPE',
  '57P01',
  '57P02',
  '57P03',
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
]);

/** Whether `err` (or what it wraps) says a dependency is unreachable right now: worth a retry. */
function dependencyUnavailable(err: unknown): boolean {
  for (let e = err as { code?: unknown; message?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string' && UNAVAILABLE_CODES.has(e.code)) return true;
    if (
      typeof e.message === 'string' &&
      /Connection terminated|connection timeout|Client has encountered a connection error|timeout exceeded when trying to connect/i.test(e.message)
    )
      return true;
  }
  return false;
}

/** Maps domain errors to Connect codes in one place; dependency outages are Unavailable; anything else is Internal. */
export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof InvalidFieldError) return new ConnectError(message, Code.InvalidArgument);
  if (err instanceof NotFoundError) return new ConnectError(message, Code.NotFound);
  if (err instanceof AlreadyExistsError) return new ConnectError(message, Code.AlreadyExists);
  if (err instanceof FailedPreconditionError) return new ConnectError(message, Code.FailedPrecondition);
  if (err instanceof UnavailableError) return new ConnectError(message, Code.Unavailable);
  if (dependencyUnavailable(err)) return new ConnectError('a dependency of the service (the database) is unavailable; retry shortly', Code.Unavailable);
  console.error('internal error:', err);
  return new ConnectError('internal error', Code.Internal);
}
