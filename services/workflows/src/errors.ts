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

/** Maps domain errors to Connect codes in one place; anything else is Internal. */
export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof InvalidFieldError) return new ConnectError(message, Code.InvalidArgument);
  if (err instanceof NotFoundError) return new ConnectError(message, Code.NotFound);
  if (err instanceof AlreadyExistsError) return new ConnectError(message, Code.AlreadyExists);
  if (err instanceof FailedPreconditionError) return new ConnectError(message, Code.FailedPrecondition);
  if (err instanceof UnavailableError) return new ConnectError(message, Code.Unavailable);
  console.error('internal error:', err);
  return new ConnectError('internal error', Code.Internal);
}
