import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { createAuthenticator } from '../../src/auth.js';

const secret = 's'.repeat(40);
const key = new TextEncoder().encode(secret);
const auth = createAuthenticator({ jwtSecret: secret, apiKeys: [{ token: 'svc_key_123', tenantId: 'system', service: true }] });
const sign = (claims: Record<string, unknown>, alg = 'HS256', exp = '1h') =>
  new SignJWT(claims).setProtectedHeader({ alg }).setSubject('alice').setIssuedAt().setExpirationTime(exp).sign(key);

describe('bearer token authentication', () => {
  it('accepts a JWT naming a tenant, and a service role', async () => {
    expect(await auth(await sign({ tenant_id: 'acme' }))).toEqual({ tenantId: 'acme', subject: 'alice', service: false });
    expect(await auth(await sign({ tenant_id: 'acme', roles: ['service'] }))).toMatchObject({ service: true });
  });

  it('takes "all tenants" only from a worker credential', async () => {
    expect(await auth(await sign({ tenant_id: '*', roles: ['service'] }))).toMatchObject({ tenantId: '*', service: true });
    expect(await auth(await sign({ tenant_id: '*' }))).toBeUndefined();
  });

  it('accepts static API keys', async () => {
    expect(await auth('svc_key_123')).toEqual({ tenantId: 'system', subject: 'apikey:system', service: true });
    expect(await auth('svc_key_124')).toBeUndefined();
  });

  it('rejects tokens without a tenant, expired, or signed with another algorithm or key', async () => {
    expect(await auth(await sign({}))).toBeUndefined();
    expect(await auth(await sign({ tenant_id: 'acme' }, 'HS256', '-1m'))).toBeUndefined();
    expect(await auth(await sign({ tenant_id: 'acme' }, 'HS512'))).toBeUndefined();
    const other = await new SignJWT({ tenant_id: 'acme' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('x'.repeat(40)));
    expect(await auth(other)).toBeUndefined();
  });
});
