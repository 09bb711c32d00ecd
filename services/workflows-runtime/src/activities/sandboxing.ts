import { chmod, chown, lchown, lstat, mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import type { CodingRunInput, CommandPhase } from '@ameide/temporal';
import { findBubblewrap, sandboxEtcFiles, sandboxUserFor, type SandboxSpec } from '../guardrails/sandbox.js';
import type { RunPaths } from './workspace.js';

/** What the sandbox glue needs from the worker. */
export interface SandboxDeps {
  workspaceDir: string;
  /** PATH of the worker, used for finding bubblewrap and for `sandbox: none` commands. */
  commandPath: string;
  /** Secret values held by the worker (see WorkerConfig.secrets). */
  secrets: Record<string, string>;
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

function permanent(type: string, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true });
}

/** Per-run directories beside the worktree: a private temp/HOME and the sandbox user's passwd/group. */
export function sandboxDirs(paths: RunPaths) {
  return { tmp: join(paths.runDir, 'tmp'), etc: join(paths.runDir, 'etc') };
}

/** The tenant's package caches: shared by its runs, never by another tenant's. */
export function cacheDir(workspaceDir: string, tenantId: string): string {
  return join(workspaceDir, 'caches', tenantId.replace(/[^A-Za-z0-9._-]/g, '_'));
}

/** Gives a tree to the sandbox user, skipping what it owns already (a warm mirror is mostly its own). */
async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  const st = await lstat(path);
  if (st.uid !== uid || st.gid !== gid) await lchown(path, uid, gid);
  if (!st.isDirectory()) return;
  await Promise.all((await readdir(path)).map((name) => chownTree(join(path, name), uid, gid)));
}

/**
 * Lets the sandbox user pass through (not list) every directory above `path`: inside the workspace
 * they become 0711, so one run cannot list another's; above it only the search bit is added.
 */
async function allowPassage(workspaceDir: string, path: string): Promise<void> {
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    const inWorkspace = dir === workspaceDir || !relative(workspaceDir, dir).startsWith('..');
    if (inWorkspace) await chmod(dir, 0o711);
    else {
      const mode = (await stat(dir)).mode & 0o7777;
      if ((mode & 0o001) === 0) await chmod(dir, mode | 0o001);
    }
    if (dir === dirname(dir)) break;
  }
}

/**
 * Makes the run's directories ready for the sandbox user: refuses to go on without bubblewrap unless
 * the definition says `sandbox: none`, creates the temp dir and the tenant's caches, and hands the
 * worktree, the repo's mirror and the caches to the tenant's unprivileged user.
 */
export async function prepareSandbox(deps: SandboxDeps, run: CodingRunInput, paths: RunPaths, mirror: string): Promise<void> {
  const g = run.repo.guardrails;
  if (g.sandbox === 'bubblewrap' && !findBubblewrap(deps.commandPath)) {
    throw permanent('SandboxUnavailable', 'bubblewrap is not installed on the worker: install it, or set guardrails.sandbox: none in the definition to run without a sandbox');
  }
  const { tmp, etc } = sandboxDirs(paths);
  const caches = cacheDir(deps.workspaceDir, run.tenantId);
  const cacheDirs = g.packageCaches.flatMap((c) => Object.values(CACHE_ENV[c] ?? {}).map((d) => join(caches, d)));
  for (const d of [tmp, etc, ...cacheDirs]) await mkdir(d, { recursive: true });
  if (g.sandbox === 'none') return;
  const { uid, gid } = sandboxUserFor(run.tenantId);
  const files = sandboxEtcFiles(uid, gid, tmp);
  await writeFile(join(etc, 'passwd'), files.passwd, { mode: 0o644 });
  await writeFile(join(etc, 'group'), files.group, { mode: 0o644 });
  // The checkout and the mirror were written by the worker: hand them over. The caches and the temp
  // dir only need their top directory: everything inside is created by the sandbox user itself.
  await Promise.all([chownTree(paths.worktree, uid, gid), chownTree(mirror, uid, gid), ...[tmp, ...cacheDirs].map((d) => chown(d, uid, gid))]);
  for (const d of [paths.worktree, tmp, mirror, ...cacheDirs]) await allowPassage(deps.workspaceDir, d);
  await allowPassage(deps.workspaceDir, join(etc, 'passwd'));
  for (const p of g.readOnlyPaths) await allowPassage(deps.workspaceDir, join(p, '.'));
}

/** Where the worker holds a tenant's secret: AMEIDE_SECRET_<TENANT>__<from_env>, without the prefix. */
function secretKey(run: CodingRunInput, fromEnv: string): string {
  return `${run.tenantId.toUpperCase().replace(/[^A-Z0-9]/g, '_')}__${fromEnv}`;
}

/** The secrets this phase may see, resolved from the worker's own environment. */
export function phaseSecrets(deps: SandboxDeps, run: CodingRunInput, phase: CommandPhase): Record<string, string> {
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

/** Every secret value of the run, whatever the phase: all of them are redacted everywhere. */
export function allSecretValues(deps: SandboxDeps, run: CodingRunInput): string[] {
  return run.repo.secrets.map((ref) => deps.secrets[secretKey(run, ref.fromEnv)]).filter((v): v is string => Boolean(v));
}

/**
 * The environment and sandbox of one command phase. The environment is minimal: PATH, HOME (the
 * run's temp dir), LANG, the cache locations, the definition's variables, the run's context and the
 * phase's secrets. Nothing else of the worker's environment reaches the command.
 */
export function phaseExecution(
  deps: SandboxDeps,
  run: CodingRunInput,
  phase: CommandPhase,
  paths: RunPaths,
  mirror: string,
): { env: Record<string, string>; sandbox: SandboxSpec } {
  const g = run.repo.guardrails;
  const { tmp, etc } = sandboxDirs(paths);
  const caches = cacheDir(deps.workspaceDir, run.tenantId);
  const cacheEnv: Record<string, string> = {};
  for (const c of g.packageCaches) for (const [k, d] of Object.entries(CACHE_ENV[c] ?? {})) cacheEnv[k] = join(caches, d);
  const sandboxed = g.sandbox === 'bubblewrap';
  const extraBins = g.readOnlyPaths.map((p) => join(p, 'bin'));
  const env = {
    ...QUIET_TOOLS,
    ...run.repo.env,
    ...cacheEnv,
    PATH: sandboxed ? [...extraBins, SANDBOX_PATH].join(':') : deps.commandPath,
    HOME: tmp,
    TMPDIR: tmp,
    LANG: 'C.UTF-8',
    CI: 'true',
    AMEIDE_RUN_ID: run.runId,
    AMEIDE_PHASE: phase,
    AMEIDE_PROMPT_FILE: paths.promptFile,
    AMEIDE_WORK_ITEM_IDS: run.methodology.workItemIds.join(','),
    ...phaseSecrets(deps, run, phase),
  };
  const { uid, gid } = sandboxUserFor(run.tenantId);
  const sandbox: SandboxSpec = {
    kind: g.sandbox,
    bwrap: findBubblewrap(deps.commandPath) ?? 'bwrap',
    uid,
    gid,
    worktree: paths.worktree,
    tmpDir: tmp,
    // The worktree's git metadata lives in the repo's mirror; the prompt file is read-only.
    writable: [mirror, ...new Set(Object.values(cacheEnv).map((d) => d.split(sep).slice(0, caches.split(sep).length + 1).join(sep)))],
    readOnly: [paths.promptFile, ...g.readOnlyPaths],
    network: g.network[phase],
    maxProcesses: g.budgets.maxProcesses,
    maxFileBytes: g.budgets.maxFileBytes,
    etcDir: etc,
  };
  return { env, sandbox };
}
