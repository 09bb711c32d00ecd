import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** How a command is isolated. `none` only when a definition says so explicitly. */
export type SandboxKind = 'bubblewrap' | 'none';

/** Everything the sandbox needs to know to run one command. */
export interface SandboxSpec {
  kind: SandboxKind;
  bwrap: string;
  /** The unprivileged user and group the command runs as. */
  uid: number;
  gid: number;
  /** The run's worktree: writable, and the working directory. */
  worktree: string;
  /** The run's private temp dir: writable, also HOME. */
  tmpDir: string;
  /** Further writable directories (the tenant's package caches, the repo's git dir). */
  writable: string[];
  /** Further read-only directories (toolchains the definition names). */
  readOnly: string[];
  /** Whether the phase may reach the network. */
  network: boolean;
  /** Process and file-size limits. */
  maxProcesses: number;
  maxFileBytes: number;
  /** A minimal passwd/group pair naming the sandbox user (git and npm look the user up). */
  etcDir: string;
}

/** System directories every command needs, mounted read-only. */
const SYSTEM_READ_ONLY = ['/usr', '/etc/alternatives', '/etc/ssl', '/etc/ca-certificates', '/opt'];
/** Only for phases with network access. */
const NETWORK_FILES = ['/etc/resolv.conf', '/etc/hosts', '/etc/nsswitch.conf', '/etc/gai.conf'];

/** Finds bubblewrap on PATH. */
export function findBubblewrap(path: string): string | undefined {
  for (const dir of path.split(delimiter)) {
    const candidate = join(dir, 'bwrap');
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

/**
 * The argv that runs `command` (a shell command line) under the spec. With bubblewrap: a read-only
 * system, a private /tmp, /proc and /dev, only the run's own directories writable, its own PID (and,
 * offline, network) namespace, a new session, dying with the worker, and rlimits on processes and
 * file size. Nothing of the worker's data, keys or other runs is mounted.
 */
export function sandboxArgv(spec: SandboxSpec, command: string): { file: string; args: string[] } {
  const limits = ['/usr/bin/prlimit', `--nproc=${spec.maxProcesses}`, `--fsize=${spec.maxFileBytes}`, '--core=0', '--'];
  if (spec.kind === 'none') return { file: limits[0]!, args: [...limits.slice(1), '/bin/sh', '-c', command] };
  const args = [
    '--unshare-user', '--uid', String(spec.uid), '--gid', String(spec.gid),
    '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try',
    ...(spec.network ? [] : ['--unshare-net']),
    '--die-with-parent', '--new-session',
    '--hostname', 'sandbox',
    '--proc', '/proc',
    '--dev', '/dev',
    '--tmpfs', '/tmp',
    '--symlink', 'usr/bin', '/bin',
    '--symlink', 'usr/sbin', '/sbin',
    '--symlink', 'usr/lib', '/lib',
    '--symlink', 'usr/lib64', '/lib64',
  ];
  for (const dir of SYSTEM_READ_ONLY) args.push('--ro-bind-try', dir, dir);
  if (spec.network) for (const f of NETWORK_FILES) args.push('--ro-bind-try', f, f);
  args.push('--ro-bind', join(spec.etcDir, 'passwd'), '/etc/passwd', '--ro-bind', join(spec.etcDir, 'group'), '/etc/group');
  for (const dir of spec.readOnly) args.push('--ro-bind', dir, dir);
  for (const dir of [spec.tmpDir, ...spec.writable, spec.worktree]) args.push('--bind', dir, dir);
  // The sandbox's own root (and the directories bwrap made for the mounts) is read-only too.
  args.push('--remount-ro', '/', '--chdir', spec.worktree, '--', ...limits, '/bin/sh', '-c', command);
  return { file: spec.bwrap, args };
}

/** The sandbox user of a tenant: a fixed unprivileged uid/gid derived from the tenant id. */
export function sandboxUserFor(tenantId: string): { uid: number; gid: number } {
  let h = 2166136261;
  for (const c of Buffer.from(tenantId)) h = Math.imul(h ^ c, 16777619) >>> 0;
  const id = 200_000 + (h % 100_000);
  return { uid: id, gid: id };
}

/** passwd/group lines that name the sandbox user, so tools that look the user up work. */
export function sandboxEtcFiles(uid: number, gid: number, home: string): { passwd: string; group: string } {
  return {
    passwd: `root:x:0:0::/nonexistent:/usr/sbin/nologin\nsandbox:x:${uid}:${gid}::${home}:/bin/sh\nnobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n`,
    group: `root:x:0:\nsandbox:x:${gid}:\nnogroup:x:65534:\n`,
  };
}
