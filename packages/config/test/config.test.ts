import { describe, expect, it } from 'vitest';
import { ConfigError, loadServiceConfig, loadWorkerConfig } from '../src/index.js';

const service = { DATABASE_URL: 'postgres://u:p@db:5432/ameide', AMEIDE_API_KEYS: 'k1:acme,k2:system:service' };

describe('service configuration', () => {
  it('reads defaults and API keys', () => {
    const cfg = loadServiceConfig(service);
    expect(cfg.port).toBe(8080);
    expect(cfg.temporal).toEqual({ address: '127.0.0.1:7233', namespace: 'default', taskQueue: 'coding-agent' });
    expect(cfg.auth.apiKeys).toEqual([
      { token: 'k1', tenantId: 'acme', service: false },
      { token: 'k2', tenantId: 'system', service: true },
    ]);
  });

  it.each([
    [{ ...service, DATABASE_URL: 'mysql://x' }, 'Invalid setting DATABASE_URL: must be a postgres:// or postgresql:// URL (got "mysql://x")'],
    [{ AMEIDE_API_KEYS: 'k:t' }, /^Invalid setting DATABASE_URL: .*\(not set\)$/],
    [{ ...service, AMEIDE_API_PORT: '99999' }, /^Invalid setting AMEIDE_API_PORT: /],
    [{ ...service, TEMPORAL_ADDRESS: 'http://temporal' }, 'Invalid setting TEMPORAL_ADDRESS: must be host:port, e.g. localhost:7233 (got "http://temporal")'],
    [{ ...service, AMEIDE_API_KEYS: 'justatoken' }, /^Invalid setting AMEIDE_API_KEYS: each entry must be token:tenant/],
    [{ ...service, AMEIDE_API_KEYS: 'k3:*' }, /^Invalid setting AMEIDE_API_KEYS: the tenant "\*" \(all tenants\) is only for worker credentials/],
    [{ DATABASE_URL: service.DATABASE_URL }, /^Invalid setting AMEIDE_API_KEYS: no credentials configured/],
    [{ ...service, AMEIDE_JWT_SECRET: 'short' }, /^Invalid setting AMEIDE_JWT_SECRET: must be at least 32 characters/],
  ])('names the wrong setting in one line (%#)', (env, message) => {
    let err: unknown;
    try {
      loadServiceConfig(env);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toContain('\n');
  });
});

describe('worker configuration', () => {
  it('requires the service credential', () => {
    expect(() => loadWorkerConfig({})).toThrow(/^Invalid setting AMEIDE_SERVICE_TOKEN: /);
  });

  it('defaults the workspace and artifact store under AMEIDE_HOME', () => {
    const cfg = loadWorkerConfig({ AMEIDE_SERVICE_TOKEN: 'x'.repeat(20), AMEIDE_HOME: '/var/lib/ameide' });
    expect(cfg.workspaceDir).toBe('/var/lib/ameide/workspaces');
    expect(cfg.artifactStoreUrl).toBe('file:///var/lib/ameide/artifacts');
    expect(() => loadWorkerConfig({ AMEIDE_SERVICE_TOKEN: 'x'.repeat(20), ARTIFACT_STORE_URL: 'ftp://x' })).toThrow(/ARTIFACT_STORE_URL/);
  });

  it('reads the preview settings: grace period and the address of the forwarded ports', () => {
    const base = { AMEIDE_SERVICE_TOKEN: 'x'.repeat(20) };
    expect(loadWorkerConfig(base)).toMatchObject({ previewGraceSeconds: 300, previewHost: '127.0.0.1' });
    expect(loadWorkerConfig({ ...base, AMEIDE_PREVIEW_GRACE_SECONDS: '0', AMEIDE_PREVIEW_HOST: '10.0.0.5' })).toMatchObject({
      previewGraceSeconds: 0,
      previewHost: '10.0.0.5',
    });
    expect(() => loadWorkerConfig({ ...base, AMEIDE_PREVIEW_HOST: '0.0.0.0' })).toThrow(/AMEIDE_PREVIEW_HOST/);
    expect(() => loadWorkerConfig({ ...base, AMEIDE_PREVIEW_GRACE_SECONDS: '-1' })).toThrow(/AMEIDE_PREVIEW_GRACE_SECONDS/);
  });

  it('reads how many lines of a command output a status update carries', () => {
    const base = { AMEIDE_SERVICE_TOKEN: 'x'.repeat(20) };
    expect(loadWorkerConfig(base).outputTailLines).toBe(40);
    expect(loadWorkerConfig({ ...base, AMEIDE_OUTPUT_TAIL_LINES: '100' }).outputTailLines).toBe(100);
    expect(() => loadWorkerConfig({ ...base, AMEIDE_OUTPUT_TAIL_LINES: '0' })).toThrow(/AMEIDE_OUTPUT_TAIL_LINES/);
  });

  it('never defaults the workspace into a dot-directory, and keeps an explicit one as given', () => {
    const dotted = loadWorkerConfig({ AMEIDE_SERVICE_TOKEN: 'x'.repeat(20), AMEIDE_HOME: '/srv/app/.ameide' }).workspaceDir;
    expect(dotted).toMatch(/^\/var\/tmp\/ameide-[0-9a-f]{12}\/workspaces$/);
    // One place per home: two homes never share it.
    expect(loadWorkerConfig({ AMEIDE_SERVICE_TOKEN: 'x'.repeat(20), AMEIDE_HOME: '/srv/other/.ameide' }).workspaceDir).not.toBe(dotted);
    expect(loadWorkerConfig({ AMEIDE_SERVICE_TOKEN: 'x'.repeat(20), AMEIDE_WORKSPACE_DIR: '/data/.ws' }).workspaceDir).toBe('/data/.ws');
  });
});

describe("the operator's sandbox policy", () => {
  const worker = { AMEIDE_SERVICE_TOKEN: 'svc_0123456789abcdef' };

  it('allows no escape hatch by default and limits egress to the package registries', () => {
    const { policy } = loadServiceConfig(service);
    expect(policy.allowNone).toBe(false);
    expect(policy.readOnlyPathPrefixes).toEqual([]);
    expect(policy.egressAllowedHosts).toContain('registry.npmjs.org');
    expect(loadWorkerConfig(worker).policy).toEqual(policy);
  });

  it('reads the same settings for the service and the worker', () => {
    const env = {
      AMEIDE_SANDBOX_ALLOW_NONE: 'true',
      AMEIDE_SANDBOX_READ_ONLY_PATHS: '/opt/tools/, /srv/agents',
      AMEIDE_EGRESS_ALLOWED_HOSTS: 'Registry.Example.com,*.internal.example',
    };
    const expected = {
      allowNone: true,
      readOnlyPathPrefixes: ['/opt/tools', '/srv/agents'],
      egressAllowedHosts: ['registry.example.com', '*.internal.example'],
    };
    expect(loadServiceConfig({ ...service, ...env }).policy).toEqual(expected);
    expect(loadWorkerConfig({ ...worker, ...env, AMEIDE_EGRESS_EXTRA_NETWORKS: '10.20.0.0/16' })).toMatchObject({
      policy: expected,
      egressExtraNetworks: ['10.20.0.0/16'],
    });
  });

  it.each([
    [{ AMEIDE_SANDBOX_ALLOW_NONE: 'yes' }, /^Invalid setting AMEIDE_SANDBOX_ALLOW_NONE: must be true or false/],
    [{ AMEIDE_SANDBOX_READ_ONLY_PATHS: 'opt/tools' }, /^Invalid setting AMEIDE_SANDBOX_READ_ONLY_PATHS: must be absolute paths/],
    [{ AMEIDE_SANDBOX_READ_ONLY_PATHS: '/opt/../etc' }, /^Invalid setting AMEIDE_SANDBOX_READ_ONLY_PATHS: must be absolute paths without "\.\."/],
    [{ AMEIDE_EGRESS_ALLOWED_HOSTS: '10.0.0.1' }, /^Invalid setting AMEIDE_EGRESS_ALLOWED_HOSTS: must be host names/],
    [{ AMEIDE_EGRESS_EXTRA_NETWORKS: 'internal' }, /^Invalid setting AMEIDE_EGRESS_EXTRA_NETWORKS: must be CIDR networks/],
  ])('names a wrong policy setting in one line (%#)', (env, message) => {
    expect(() => loadWorkerConfig({ ...worker, ...env })).toThrow(message);
  });
});
