import { timingSafeEqual, createPublicKey, webcrypto } from 'node:crypto';
import { Code, ConnectError, createContextKey, type Interceptor } from '@connectrpc/connect';
import { jwtVerify, type JWTPayload } from 'jose';
import type { ServiceConfig } from '@ameide/config';

/**
 * The tenant of an operator-wide worker credential (`token:*:service`, or a JWT with `tenant_id: "*"`
 * and the service role): it may report on runs of every tenant. Any other service credential reports
 * only on its own tenant's runs.
 */
export const ALL_TENANTS = '*';

/** Who is calling: the tenant the token names, and whether it is a service credential (the worker). */
export interface Principal {
  tenantId: string;
  subject: string;
  service: boolean;
}

/** The authenticated caller, set by the auth interceptor on every request. */
export const kPrincipal = createContextKey<Principal | undefined>(undefined, { description: 'principal' });

/** Turns a bearer token into a principal, or undefined when the token is not valid. */
export type Authenticator = (token: string) => Promise<Principal | undefined>;

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Static API keys first, then JWTs verified against the configured secret (HS256) or public key. */
export function createAuthenticator(auth: ServiceConfig['auth']): Authenticator {
  const secret = auth.jwtSecret ? new TextEncoder().encode(auth.jwtSecret) : undefined;
  // The HMAC key is imported once (given as bytes, it would be imported again for every request).
  const hmacKey = secret && webcrypto.subtle.importKey('raw', secret, { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  const key = auth.jwtPublicKey ? createPublicKey(auth.jwtPublicKey) : hmacKey;
  const algorithms = auth.jwtPublicKey ? ['RS256', 'PS256', 'ES256', 'EdDSA'] : ['HS256'];
  return async (token) => {
    const apiKey = auth.apiKeys.find((k) => sameSecret(k.token, token));
    if (apiKey) return { tenantId: apiKey.tenantId, subject: `apikey:${apiKey.tenantId}`, service: apiKey.service };
    if (!key || token.split('.').length !== 3) return undefined;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, await key, { algorithms, issuer: auth.jwtIssuer, audience: auth.jwtAudience }));
    } catch {
      return undefined;
    }
    const tenantId = typeof payload.tenant_id === 'string' ? payload.tenant_id : undefined;
    if (!tenantId) return undefined;
    const roles = Array.isArray(payload.roles) ? payload.roles : [];
    const service = roles.includes('service');
    // "All tenants" is only ever a worker's scope.
    if (tenantId === ALL_TENANTS && !service) return undefined;
    return { tenantId, subject: payload.sub ?? 'unknown', service };
  };
}

/** Rejects calls without a valid bearer token; stores the principal in the request context. */
export function createAuthInterceptor(authenticate: Authenticator): Interceptor {
  return (next) => async (req) => {
    const header = req.header.get('authorization') ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (!match) throw new ConnectError('missing bearer token: send "authorization: Bearer <token>"', Code.Unauthenticated);
    const principal = await authenticate(match[1]!.trim());
    if (!principal) throw new ConnectError('invalid or expired bearer token', Code.Unauthenticated);
    req.contextValues.set(kPrincipal, principal);
    return next(req);
  };
}
