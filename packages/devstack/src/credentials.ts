import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { SignJWT } from 'jose';

/** Development credentials of an embedded stack: a JWT secret and the worker's service key. */
export interface DevCredentials {
  jwtSecret: string;
  serviceToken: string;
  /** Password of the embedded Postgres' user: generated per stack, never a fixed default. */
  postgresPassword: string;
  /** The work item webhook's HMAC secret for the stack's tenant. */
  webhookSecret: string;
}

/** Loads or creates the stack's credentials (kept under AMEIDE_HOME, mode 0600). */
export function ensureCredentials(file: string): DevCredentials {
  const old = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Partial<DevCredentials>) : {};
  const creds: DevCredentials = {
    jwtSecret: old.jwtSecret ?? randomBytes(32).toString('base64url'),
    serviceToken: old.serviceToken ?? `svc_${randomBytes(24).toString('base64url')}`,
    postgresPassword: old.postgresPassword ?? generatePassword(),
    webhookSecret: old.webhookSecret ?? `whsec_${randomBytes(24).toString('base64url')}`,
  };
  if (old.postgresPassword && old.jwtSecret && old.serviceToken && old.webhookSecret) return creds;
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(creds, null, 2), { mode: 0o600 });
  return creds;
}

/** A random password (URL-safe, so it fits a postgres:// URL as it is). */
export function generatePassword(): string {
  return randomBytes(24).toString('base64url');
}

/** Signs a user token for `tenantId` with the stack's JWT secret. */
export function signDevToken(creds: DevCredentials, tenantId: string, subject = 'developer', ttl = '30d'): Promise<string> {
  return new SignJWT({ tenant_id: tenantId })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(subject)
    .setIssuedAt()
    .setExpirationTime(ttl)
    .sign(new TextEncoder().encode(creds.jwtSecret));
}

/** The service's AMEIDE_API_KEYS value that admits the worker's credential. */
export function serviceApiKeys(creds: DevCredentials): string {
  return `${creds.serviceToken}:*:service`;
}
