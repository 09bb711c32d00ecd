import { Code, ConnectError, type HandlerContext } from '@connectrpc/connect';
import { ALL_TENANTS, kPrincipal, type Principal } from '../auth.js';
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

/**
 * The caller must be a worker's service credential that may report for `tenantId`: the tenant's own,
 * or the operator-wide one (tenant "*"). `what` names the call, e.g. "record status updates".
 */
export function requireWorkerFor(ctx: HandlerContext, tenantId: string, what: string): Principal {
  const principal = principalOf(ctx);
  if (!principal.service) throw new ConnectError(`only the worker service credential may ${what}`, Code.PermissionDenied);
  if (principal.tenantId !== ALL_TENANTS && principal.tenantId !== tenantId) {
    throw new ConnectError(
      `this service credential reports for tenant "${principal.tenantId}" only; use an operator-wide worker credential (tenant "*") or one of the run's tenant`,
      Code.PermissionDenied,
    );
  }
  return principal;
}
