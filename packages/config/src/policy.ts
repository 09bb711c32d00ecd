import { isAbsolute, normalize } from 'node:path';
import { z } from 'zod';
import { commaList } from './env.js';

/**
 * The operator's policy over what tenants' definitions may ask of the sandbox. The service refuses
 * definitions outside it; the worker enforces it again for every run (a plan may predate a change).
 */
export interface SandboxPolicy {
  /** Whether a definition may run its commands without a sandbox (`guardrails.sandbox: none`). */
  allowNone: boolean;
  /** Absolute host directories under which a definition's `read_only_paths` may lie (none by default). */
  readOnlyPathPrefixes: string[];
  /** Host patterns a definition's `egress_hosts` may name (`host` or `*.domain`); also the default allowlist. */
  egressAllowedHosts: string[];
}

/**
 * Package registries online phases reach by default: npm, PyPI, the Go module proxy, crates.io and
 * Maven Central. Nothing else, and never the stack's own services.
 */
export const DEFAULT_EGRESS_HOSTS = [
  'registry.npmjs.org',
  'registry.yarnpkg.com',
  'pypi.org',
  'files.pythonhosted.org',
  'proxy.golang.org',
  'sum.golang.org',
  'index.crates.io',
  'static.crates.io',
  'crates.io',
  'repo.maven.apache.org',
  'repo1.maven.org',
];

const HOST_PATTERN = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Whether `pattern` is a host name or `*.domain` (lower-case, no ports, no other wildcards). */
export function isHostPattern(pattern: string): boolean {
  // A name, never an address: the egress proxy refuses IP literals.
  return HOST_PATTERN.test(pattern) && pattern.length <= 253 && !/^[0-9.]+$/.test(pattern.replace(/^\*\./, ''));
}

/** The policy variables, shared by the service's and the worker's settings. */
export const policySchema = z.object({
  AMEIDE_SANDBOX_ALLOW_NONE: z.enum(['true', 'false', '1', '0'], { error: 'must be true or false' }).default('false'),
  AMEIDE_SANDBOX_READ_ONLY_PATHS: z
    .string()
    .optional()
    .refine((s) => commaList(s).every((p) => isAbsolute(p) && !p.split('/').includes('..')), 'must be absolute paths without "..", comma-separated'),
  AMEIDE_EGRESS_ALLOWED_HOSTS: z
    .string()
    .optional()
    .refine((s) => commaList(s).every((h) => isHostPattern(h.toLowerCase())), 'must be host names or *.domain patterns, comma-separated'),
});

export function toSandboxPolicy(e: z.infer<typeof policySchema>): SandboxPolicy {
  const hosts = commaList(e.AMEIDE_EGRESS_ALLOWED_HOSTS).map((h) => h.toLowerCase());
  return {
    allowNone: e.AMEIDE_SANDBOX_ALLOW_NONE === 'true' || e.AMEIDE_SANDBOX_ALLOW_NONE === '1',
    readOnlyPathPrefixes: commaList(e.AMEIDE_SANDBOX_READ_ONLY_PATHS).map((p) => normalize(p).replace(/(.)\/$/, '$1')),
    egressAllowedHosts: hosts.length ? hosts : DEFAULT_EGRESS_HOSTS,
  };
}

/** Whether `path` (absolute, normalised) is one of the prefixes or inside one. */
export function underPrefix(path: string, prefixes: string[]): boolean {
  return prefixes.some((p) => path === p || path.startsWith(p === '/' ? '/' : p + '/'));
}

/** Whether a definition's egress pattern stays within the operator's: `*.a.com` covers `x.a.com` and `*.x.a.com`. */
export function egressPatternAllowed(pattern: string, operator: string[]): boolean {
  const p = pattern.toLowerCase();
  return operator.some((o) => o === p || (o.startsWith('*.') && p.endsWith(o.slice(1))));
}
