import { Code, ConnectError, type HandlerContext } from '@connectrpc/connect';
import { kPrincipal, type Principal } from '../auth.js';
import { toConnectError } from '../errors.js';

/** The caller of this request; the auth interceptor guarantees it is set. */
export function principalOf(ctx: HandlerContext): Principal {
  const p = ctx.values.get(kPrincipal);
  if (!p) throw new ConnectError('missing bearer token', Code.Unauthenticated);
  return p;
}

/** Runs a handler body, mapping domain errors to Connect codes. */
export async function handle<T>(body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    throw toConnectError(err);
  }
}
