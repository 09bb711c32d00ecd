import { Code, ConnectError, type HandlerContext } from '@connectrpc/connect';

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

/**
 * What Connect says about a request body it cannot read, answering `internal`: not valid protobuf
 * (`createBinarySerialization`), a frame flagged compressed without an encoding, data that does not
 * decompress. Each is the caller's mistake; the text after the prefix says what was wrong.
 */
const UNREADABLE_REQUEST: Array<{ prefix: string; problem: (m: HandlerContext['method'], rest: string) => string }> = [
  { prefix: 'parse binary: ', problem: (m, rest) => `not a valid ${m.input.name} message (${rest})` },
  { prefix: 'received compressed envelope, but do not know how to decompress', problem: () => 'a message is flagged compressed but no encoding is set' },
  { prefix: 'decompression failed', problem: () => 'the body does not decompress with its declared encoding' },
];

/**
 * A request body Connect cannot read (truncated or garbage protobuf, invalid UTF-8 in a string, a
 * broken compressed body) is the caller's mistake, but Connect (2.2) answers it `internal`: it parses
 * requests and responses with one serialization (`createBinarySerialization` in @connectrpc/connect)
 * whose parse error is always `Code.Internal`, and it reads the body before any interceptor or handler
 * runs (a JSON body that does not parse already answers `invalid_argument`). Every protocol handler
 * passes the error a call ends with to `context.abort(err)` before it writes it out; this listener,
 * installed by the request gate before the body is read, relabels such an error there as
 * `invalid_argument` ("request: …"). tests/hostile/fuzz.test.ts checks it over Connect, gRPC and gRPC-Web.
 */
export function unreadableRequestsAreInvalidArgument(ctx: HandlerContext): void {
  const onAbort = () => {
    const e: unknown = ctx.signal.reason;
    if (!(e instanceof ConnectError) || e.code !== Code.Internal) return;
    const known = UNREADABLE_REQUEST.find((u) => e.rawMessage.startsWith(u.prefix));
    if (!known) return;
    const relabelled = new ConnectError(`request: ${known.problem(ctx.method, e.rawMessage.slice(known.prefix.length))}`, Code.InvalidArgument);
    Object.assign(e, { code: relabelled.code, rawMessage: relabelled.rawMessage, message: relabelled.message });
  };
  ctx.signal.addEventListener('abort', onAbort, { once: true });
}
