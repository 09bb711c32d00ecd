import { normalize } from 'node:path';
import { egressPatternAllowed, isHostPattern, underPrefix, type SandboxPolicy } from '@ameide/config';
import { Phase, type DefinitionSpec, type MethodologyContext, type WorkItem } from '@ameide/contracts';
import { InvalidFieldError } from './errors.js';
export { isUuid } from '@ameide/db';

const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;
const BRANCH_RE = /^(?!.*\.\.)(?!\/)[A-Za-z0-9._/-]{1,200}(?<!\/)$/;
const ENV_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const MAX_PHASE_TIMEOUT_SECONDS = 24 * 3600;

export function requireName(field: string, name: string): string {
  if (!NAME_RE.test(name)) throw new InvalidFieldError(field, 'must be 1-63 lowercase letters, digits, ".", "_" or "-"');
  return name;
}

export function requireId(field: string, id: string): string {
  if (!id) throw new InvalidFieldError(field, 'must not be empty');
  return id;
}

/** Validates a definition spec and fills defaults; throws InvalidFieldError naming the field. */
export function normaliseDefinitionSpec(spec: DefinitionSpec | undefined, policy: SandboxPolicy, field = 'spec'): DefinitionSpec {
  if (!spec) throw new InvalidFieldError(field, 'is required');
  if (!spec.repoUrl.trim()) throw new InvalidFieldError(`${field}.repo_url`, 'must not be empty');
  if (spec.repoUrl.trim().startsWith('-')) throw new InvalidFieldError(`${field}.repo_url`, 'must not start with "-"');
  if (!spec.agentCommand.trim()) throw new InvalidFieldError('spec.agent_command', 'must not be empty');
  spec.defaultBranch ||= 'main';
  if (!BRANCH_RE.test(spec.defaultBranch)) throw new InvalidFieldError('spec.default_branch', 'is not a valid branch name');
  spec.branchPrefix ||= 'ameide/';
  if (!BRANCH_RE.test(spec.branchPrefix.replace(/[/-]$/, '') || 'x')) throw new InvalidFieldError('spec.branch_prefix', 'is not a valid branch prefix');
  spec.phaseTimeoutSeconds ||= 900;
  if (spec.phaseTimeoutSeconds > MAX_PHASE_TIMEOUT_SECONDS)
    throw new InvalidFieldError('spec.phase_timeout_seconds', `must be at most ${MAX_PHASE_TIMEOUT_SECONDS}`);
  for (const k of Object.keys(spec.env)) if (!ENV_RE.test(k)) throw new InvalidFieldError(`spec.env.${k}`, 'is not a valid environment variable name');
  validateGuardrails(spec);
  checkSandboxPolicy(spec, policy, field);
  return spec;
}

/**
 * Refuses what the operator's policy does not allow: running without a sandbox, read-only host
 * paths outside the allowed prefixes, egress hosts outside the operator's allowlist. Each error names
 * the field and the setting that would allow it. Also used on stored plans before a run starts.
 */
export function checkSandboxPolicy(spec: DefinitionSpec, policy: SandboxPolicy, field = 'spec'): void {
  const g = spec.guardrails;
  if (!g) return;
  if (g.sandbox === 'none' && !policy.allowNone) {
    throw new InvalidFieldError(
      `${field}.guardrails.sandbox`,
      '"none" is not allowed by the operator\'s policy (AMEIDE_SANDBOX_ALLOW_NONE is not true): remove it to run in the sandbox',
    );
  }
  g.readOnlyPaths.forEach((p, i) => {
    if (!underPrefix(normalize(p), policy.readOnlyPathPrefixes)) {
      const allowed = policy.readOnlyPathPrefixes.length ? `only paths under ${policy.readOnlyPathPrefixes.join(', ')} are` : 'no host path is';
      throw new InvalidFieldError(
        `${field}.guardrails.read_only_paths[${i}]`,
        `is outside the operator's policy: ${allowed} allowed (AMEIDE_SANDBOX_READ_ONLY_PATHS)`,
      );
    }
  });
  g.egressHosts.forEach((h, i) => {
    if (!isHostPattern(h.toLowerCase())) throw new InvalidFieldError(`${field}.guardrails.egress_hosts[${i}]`, 'must be a host name or *.domain');
    if (!egressPatternAllowed(h, policy.egressAllowedHosts)) {
      throw new InvalidFieldError(
        `${field}.guardrails.egress_hosts[${i}]`,
        `is outside the operator's egress allowlist (AMEIDE_EGRESS_ALLOWED_HOSTS: ${policy.egressAllowedHosts.join(', ')})`,
      );
    }
  });
}

const SANDBOXES = new Set(['', 'bubblewrap', 'none']);
const CACHES = new Set(['npm', 'pnpm', 'pip', 'go']);
const COMMAND_PHASES = new Set([Phase.INSTALL, Phase.AGENT, Phase.TEST]);
const RESERVED_ENV = /^(PATH|HOME|TMPDIR|LANG|CI|AMEIDE_.*)$/;

function validateGuardrails(spec: DefinitionSpec): void {
  const g = spec.guardrails;
  if (g) {
    if (!SANDBOXES.has(g.sandbox)) throw new InvalidFieldError('spec.guardrails.sandbox', 'must be "bubblewrap" or "none"');
    for (const [field, globs] of [
      ['allowed_paths', g.allowedPaths],
      ['denied_paths', g.deniedPaths],
    ] as const) {
      globs.forEach((glob, i) => {
        if (!glob.trim() || glob.startsWith('/')) throw new InvalidFieldError(`spec.guardrails.${field}[${i}]`, 'must be a repo-relative glob such as src/**');
      });
    }
    g.packageCaches.forEach((c, i) => {
      if (!CACHES.has(c)) throw new InvalidFieldError(`spec.guardrails.package_caches[${i}]`, 'must be one of npm, pnpm, pip, go');
    });
    g.readOnlyPaths.forEach((p, i) => {
      if (!p.startsWith('/') || p.split('/').includes('..'))
        throw new InvalidFieldError(`spec.guardrails.read_only_paths[${i}]`, 'must be an absolute path without ".."');
    });
  }
  spec.secrets.forEach((ref, i) => {
    if (!ENV_RE.test(ref.name) || RESERVED_ENV.test(ref.name))
      throw new InvalidFieldError(`spec.secrets[${i}].name`, 'must be an environment variable name other than PATH, HOME, TMPDIR, LANG, CI or AMEIDE_*');
    if (!/^[A-Z0-9_]+$/.test(ref.fromEnv)) throw new InvalidFieldError(`spec.secrets[${i}].from_env`, 'must be upper-case letters, digits and _');
    if (!ref.phases.length || ref.phases.some((p) => !COMMAND_PHASES.has(p)))
      throw new InvalidFieldError(`spec.secrets[${i}].phases`, 'must name one or more of install, agent, test');
  });
}

export function validateWorkItems(items: WorkItem[]): void {
  items.forEach((w, i) => {
    if (!ID_RE.test(w.id)) throw new InvalidFieldError(`work_items[${i}].id`, 'must be 1-128 letters, digits or ._:/-');
  });
}

export function validateMethodology(m: MethodologyContext | undefined, field = 'methodology'): void {
  if (!m) return;
  for (const key of ['timeboxIds', 'goalIds', 'workItemIds', 'elementIds'] as const) {
    m[key].forEach((id, i) => {
      if (!ID_RE.test(id))
        throw new InvalidFieldError(`${field}.${key.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase())}[${i}]`, 'must be 1-128 letters, digits or ._:/-');
    });
  }
}

export function pageSize(n: number): number {
  if (n > 1000) throw new InvalidFieldError('page_size', 'must be at most 1000');
  return n || 100;
}
