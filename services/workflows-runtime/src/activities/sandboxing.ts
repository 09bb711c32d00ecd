import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, normalize } from 'node:path';
import { underPrefix, type SandboxPolicy } from '@ameide/config';
import type { CodingRunInput, SecretPhase } from '@ameide/temporal';
import { egressProxyEnv } from '../guardrails/egress.js';
import {
  findBubblewrap,
  SANDBOX_MOUNTS,
  SANDBOX_ROOT,
  sandboxEtcFiles,
  sandboxUserFor,
  type SandboxEgress,
  type SandboxInbound,
  type SandboxSpec,
} from '../guardrails/sandbox.js';
import { safeSegment, type RunPaths } from './workspace.js';
import { permanent } from './guard.js';

/** What the sandbox glue needs from the worker. */
export interface SandboxDeps {
  workspaceDir: string;
  /** PATH of the worker, used for finding bubblewrap and for `sandbox: none` commands. */
  commandPath: string;
  /** Secret values held by the worker (see WorkerConfig.secrets). */
  secrets: Record<string, string>;
  /** The operator's policy over definitions' sandbox settings. */
  policy: SandboxPolicy;
}

/** Steps that run in the sandbox: the definition's commands (its phases and its preview) and the worker's own git steps. */
export type SandboxStep = SecretPhase | GitStep;
/** The worker's own fixed git steps in the sandbox (checkout, export). */
export type GitStep = 'checkout' | 'export' | 'reports';

/** Whether the step runs a command of the definition (install, agent, test, preview), not one of the worker's git steps. */
export function isCommandStep(step: SandboxStep): step is SecretPhase {
  return step === 'install' || step === 'agent' || step === 'test' || step === 'preview';
}

/** PATH inside the sandbox: the system's, plus the bin directories of extra read-only toolchains. */
const SANDBOX_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * Settings every command gets: package managers run as in CI (no update checks, audits or funding
 * notices, which would also try the network from offline phases).
 */
const QUIET_TOOLS: Record<string, string> = {
  npm_config_update_notifier: 'false',
  npm_config_audit: 'false',
  npm_config_fund: 'false',
  PIP_DISABLE_PIP_VERSION_CHECK: '1',
};

/** Cache directories per package manager, and the variables that point the tools at them. */
const CACHE_ENV: Record<string, Record<string, string>> = {
  npm: { npm_config_cache: 'npm' },
  pnpm: { npm_config_store_dir: 'pnpm-store', PNPM_HOME: 'pnpm-home' },
  pip: { PIP_CACHE_DIR: 'pip' },
  go: { GOMODCACHE: 'go/mod', GOCACHE: 'go/build' },
};

/** A step's own directories: HOME and TMPDIR in the sandbox's area, passwd/group in the worker's. */
export function stepDirs(paths: RunPaths, step: SandboxStep) {
  const dir = join(paths.box, 'steps', step);
  return { dir, home: join(dir, 'home'), tmp: join(dir, 'tmp'), out: join(dir, 'out'), etc: join(paths.runDir, 'etc', step) };
}

/** The tenant's package caches: shared by its runs, never by another tenant's. */
export function cacheDir(workspaceDir: string, tenantId: string): string {
  return join(workspaceDir, 'caches', safeSegment(tenantId));
}

/** The cache directories a run's guardrails name, and the variables pointing tools at them. */
function cacheEnv(deps: SandboxDeps, run: CodingRunInput): Record<string, string> {
  const caches = cacheDir(deps.workspaceDir, run.tenantId);
  const env: Record<string, string> = {};
  for (const c of run.repo.guardrails.packageCaches) for (const [k, d] of Object.entries(CACHE_ENV[c] ?? {})) env[k] = join(caches, d);
  return env;
}

/** The top-level cache directories (one per package manager) that are mounted writable. */
function cacheMounts(deps: SandboxDeps, run: CodingRunInput): string[] {
  const caches = cacheDir(deps.workspaceDir, run.tenantId);
  return [...new Set(Object.values(cacheEnv(deps, run)).map((d) => join(caches, d.slice(caches.length + 1).split('/')[0]!)))];
}

/**
 * Whether every existing directory above `path` lets other users pass through: bubblewrap resolves
 * its mounts as the sandbox user. The worker never changes these directories' permissions itself.
 */
async function reachable(path: string): Promise<boolean> {
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    const st = await stat(dir).catch(() => undefined);
    if (st && (st.mode & 0o001) === 0) return false;
    if (dir === dirname(dir)) return true;
  }
}

/**
 * Checks a run's sandbox settings against the operator's policy (a plan may predate a change of
 * it): `sandbox: none` and read-only host paths only where the policy allows them. Read-only paths
 * are resolved first, so a symlink cannot lead out of an allowed prefix.
 */
async function enforcePolicy(deps: SandboxDeps, run: CodingRunInput): Promise<void> {
  const g = run.repo.guardrails;
  if (g.sandbox === 'none' && !deps.policy.allowNone) {
    throw permanent('SandboxPolicy', 'guardrails.sandbox "none" is not allowed by the operator\'s policy (AMEIDE_SANDBOX_ALLOW_NONE is not true)');
  }
  for (const p of g.readOnlyPaths) {
    const real = await realpath(p).catch(() => undefined);
    if (!real || !underPrefix(normalize(real), deps.policy.readOnlyPathPrefixes)) {
      throw permanent('SandboxPolicy', `read-only path ${p} is not allowed by the operator's policy (AMEIDE_SANDBOX_READ_ONLY_PATHS) or does not exist`);
    }
  }
}

/**
 * Makes the run's sandbox area ready: refuses to go on without bubblewrap unless the definition says
 * `sandbox: none` (and the operator allows it), checks that the workspace is reachable for the
 * sandbox user without touching any host directory's permissions, creates the tenant's caches, and
 * hands the empty worktree directory to the tenant's unprivileged user.
 */
export async function prepareSandbox(deps: SandboxDeps, run: CodingRunInput, paths: RunPaths): Promise<void> {
  const g = run.repo.guardrails;
  await enforcePolicy(deps, run);
  if (g.sandbox === 'bubblewrap' && !findBubblewrap(deps.commandPath)) {
    throw permanent(
      'SandboxUnavailable',
      'bubblewrap is not installed on the worker: install it (the operator may also allow guardrails.sandbox: none with AMEIDE_SANDBOX_ALLOW_NONE)',
    );
  }
  if (g.sandbox === 'bubblewrap' && (deps.workspaceDir + '/').startsWith(SANDBOX_ROOT + '/')) {
    throw permanent(
      'SandboxUnavailable',
      `the workspace ${deps.workspaceDir} lies under ${SANDBOX_ROOT}, where sandboxed commands find their checkout: set AMEIDE_WORKSPACE_DIR elsewhere`,
    );
  }
  if (g.sandbox === 'bubblewrap' && !(await reachable(paths.box))) {
    throw permanent(
      'SandboxUnavailable',
      `the sandbox user cannot reach the workspace ${deps.workspaceDir}: every directory above it must be searchable by others (o+x); set AMEIDE_WORKSPACE_DIR to such a place`,
    );
  }
  for (const d of cacheMounts(deps, run)) await mkdir(d, { recursive: true });
  await mkdir(paths.worktree, { recursive: true });
  await chmod(paths.worktree, 0o700);
  if (g.sandbox === 'none') return;
  const { uid, gid } = sandboxUserFor(run.tenantId);
  // Caches: only their top directories; everything inside is created by the sandbox user itself.
  await Promise.all([paths.worktree, ...cacheMounts(deps, run)].map((d) => chown(d, uid, gid)));
}

/**
 * Fresh directories for one step: its own HOME, TMPDIR and (for export) output directory, owned by
 * the sandbox user, and the passwd/group naming that HOME. Whatever an earlier step (or an earlier
 * attempt of this one) left there is gone, so nothing one phase writes is read by the next.
 */
export async function freshStepDirs(run: CodingRunInput, paths: RunPaths, step: SandboxStep) {
  const d = stepDirs(paths, step);
  await rm(d.dir, { recursive: true, force: true });
  // Passable (not listable) for the sandbox user, whose bubblewrap resolves the mounts below.
  for (const x of [join(paths.box, 'steps'), d.dir, dirname(d.etc), d.etc]) {
    await mkdir(x, { recursive: true });
    await chmod(x, 0o711);
  }
  for (const x of [d.home, d.tmp, d.out]) await mkdir(x, { mode: 0o700 });
  if (run.repo.guardrails.sandbox === 'bubblewrap') {
    const { uid, gid } = sandboxUserFor(run.tenantId);
    await Promise.all([d.home, d.tmp, d.out].map((x) => chown(x, uid, gid)));
    const files = sandboxEtcFiles(uid, gid, SANDBOX_MOUNTS.home);
    await writeFile(join(d.etc, 'passwd'), files.passwd, { mode: 0o644 });
    await writeFile(join(d.etc, 'group'), files.group, { mode: 0o644 });
  }
  return d;
}

/** Where the worker holds a tenant's secret: AMEIDE_SECRET_<TENANT>__<from_env>, without the prefix. */
function secretKey(run: CodingRunInput, fromEnv: string): string {
  return `${run.tenantId.toUpperCase().replace(/[^A-Z0-9]/g, '_')}__${fromEnv}`;
}

/** One secret of the tenant the worker holds (e.g. a forge token), for the setting `field` that names it. */
export function secretValue(deps: Pick<SandboxDeps, 'secrets'>, run: CodingRunInput, fromEnv: string, field: string): string {
  const key = secretKey(run, fromEnv);
  const value = deps.secrets[key];
  if (value === undefined) throw permanent('SecretMissing', `${field}: the secret ${fromEnv} is not configured on the worker: set AMEIDE_SECRET_${key}`);
  return value;
}

/** The secrets this phase may see, resolved from the worker's own environment. */
export function phaseSecrets(deps: SandboxDeps, run: CodingRunInput, phase: SecretPhase): Record<string, string> {
  const out: Record<string, string> = {};
  for (const ref of run.repo.secrets) {
    if (!ref.phases.includes(phase)) continue;
    const key = secretKey(run, ref.fromEnv);
    const value = deps.secrets[key];
    if (value === undefined) throw permanent('SecretMissing', `secret ${ref.name} is not configured on the worker: set AMEIDE_SECRET_${key}`);
    out[ref.name] = value;
  }
  return out;
}

/** Every secret of the run by name, whatever the phase: all of them are redacted everywhere. */
export function allSecrets(deps: SandboxDeps, run: CodingRunInput): Array<{ name: string; value: string }> {
  return run.repo.secrets.map((ref) => ({ name: ref.name, value: deps.secrets[secretKey(run, ref.fromEnv)] ?? '' })).filter((s) => Boolean(s.value));
}

/** Every secret value of the run. */
export function allSecretValues(deps: SandboxDeps, run: CodingRunInput): string[] {
  return allSecrets(deps, run).map((s) => s.value);
}

/**
 * The environment and sandbox of one step. The environment is minimal: PATH, HOME and TMPDIR (the
 * step's own), LANG, the cache locations, the definition's variables, the run's context, the
 * phase's secrets and, online, the proxy. Nothing else of the worker's environment reaches it.
 */
export function stepExecution(
  deps: SandboxDeps,
  run: CodingRunInput,
  step: SandboxStep,
  paths: RunPaths,
  opts: { mirror: string; egress?: SandboxEgress; inbound?: SandboxInbound; maxProcesses?: number },
): { env: Record<string, string>; sandbox: SandboxSpec } {
  const g = run.repo.guardrails;
  const dirs = stepDirs(paths, step);
  const command = isCommandStep(step);
  const caches = command ? cacheEnv(deps, run) : {};
  const sandboxed = g.sandbox === 'bubblewrap';
  const readOnlyTools = command ? g.readOnlyPaths : [];
  const env: Record<string, string> = {
    ...QUIET_TOOLS,
    ...(command ? run.repo.env : {}),
    ...caches,
    PATH: sandboxed ? [...readOnlyTools.map((p) => join(p, 'bin')), SANDBOX_PATH].join(':') : deps.commandPath,
    HOME: sandboxed ? SANDBOX_MOUNTS.home : dirs.home,
    TMPDIR: sandboxed ? SANDBOX_MOUNTS.tmp : dirs.tmp,
    LANG: 'C.UTF-8',
    CI: 'true',
    AMEIDE_RUN_ID: run.runId,
    AMEIDE_PHASE: step,
    AMEIDE_PROMPT_FILE: paths.promptFile,
    AMEIDE_WORK_ITEM_IDS: run.methodology.workItemIds.join(','),
    ...(opts.egress ? egressProxyEnv(opts.egress.port) : {}),
    ...(command ? phaseSecrets(deps, run, step) : {}),
  };
  const { uid, gid } = sandboxUserFor(run.tenantId);
  const mirrorObjects = join(opts.mirror, 'objects');
  const sandbox: SandboxSpec = {
    kind: g.sandbox,
    bwrap: findBubblewrap(deps.commandPath) ?? 'bwrap',
    uid,
    gid,
    cwd: sandboxed ? SANDBOX_MOUNTS.worktree : paths.worktree,
    writable: [...(step === 'export' || step === 'reports' ? [dirs.out] : []), ...(command ? cacheMounts(deps, run) : [])],
    mounts: [
      { host: paths.worktree, at: SANDBOX_MOUNTS.worktree },
      { host: dirs.home, at: SANDBOX_MOUNTS.home },
      { host: dirs.tmp, at: SANDBOX_MOUNTS.tmp },
    ],
    // The checkout borrows the mirror's objects (git alternates): read-only, like the prompt.
    readOnly: [...(existsSync(mirrorObjects) ? [mirrorObjects] : []), paths.promptFile, ...readOnlyTools],
    egress: opts.egress,
    inbound: opts.inbound,
    maxProcesses: opts.maxProcesses ?? g.budgets.maxProcesses,
    maxFileBytes: g.budgets.maxFileBytes,
    etcDir: dirs.etc,
  };
  return { env, sandbox };
}
