import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** How a command is isolated. `none` only where the operator's policy allows it and a definition asks. */
export type SandboxKind = 'bubblewrap' | 'none';

/** Where an online phase's traffic goes: the worker's egress proxy, reached through a forwarder. */
export interface SandboxEgress {
  /** Host directory holding the proxy's UNIX socket (`egress.sock`). */
  socketDir: string;
  /** Port the forwarder listens on inside the sandbox (HTTP(S)_PROXY points there). */
  port: number;
  /** The forwarder script (egress-forwarder.pl, run with the system's perl). */
  forwarder: string;
}

/**
 * The one way into a local preview's sandbox: the forwarder (egress-forwarder.pl `--inbound`) listens
 * on a UNIX socket in a directory the worker made for it and relays each connection to the
 * command's server on the sandbox's own loopback. The sandbox still has no way out.
 */
export interface SandboxInbound {
  /** Host directory, owned by the sandbox user, where the forwarder creates {@link INBOUND_SOCKET}. */
  socketDir: string;
  /** Port the command's server listens on inside the sandbox (127.0.0.1). */
  port: number;
  /** The forwarder script (egress-forwarder.pl, run with the system's perl). */
  forwarder: string;
}

/** Everything the sandbox needs to know to run one command. */
export interface SandboxSpec {
  kind: SandboxKind;
  bwrap: string;
  /** The unprivileged user and group the command runs as. */
  uid: number;
  gid: number;
  /** The working directory as the command sees it (the run's worktree, at {@link SANDBOX_MOUNTS}.worktree). */
  cwd: string;
  /** Writable directories mounted at their own path: an export's output, the tenant's package caches. */
  writable: string[];
  /** Writable directories mounted at another path: the worktree, the step's HOME and TMPDIR (see {@link SANDBOX_MOUNTS}). */
  mounts?: Array<{ host: string; at: string }>;
  /** Read-only directories and files: the prompt, the mirror's objects, toolchains the operator allows. */
  readOnly: string[];
  /** The phase's network: absent means none at all (the sandbox has only its own loopback). */
  egress?: SandboxEgress;
  /** A local preview's inbound connections (see {@link SandboxInbound}); never together with `egress`. */
  inbound?: SandboxInbound;
  /** Process and file-size limits. `maxProcesses` is per user unless the command runs in a cgroup. */
  maxProcesses: number;
  maxFileBytes: number;
  /** A minimal passwd/group pair naming the sandbox user (git and npm look the user up). */
  etcDir: string;
  /** `cgroup.procs` files the command joins before it starts (per-command pids and CPU limits). */
  cgroupProcs?: string[];
}

/** System directories every command needs, mounted read-only. */
const SYSTEM_READ_ONLY = ['/usr', '/etc/alternatives', '/etc/ssl', '/etc/ca-certificates', '/opt'];
/** Name service files, so `localhost` resolves to the sandbox's own loopback. No resolv.conf: no DNS. */
const NAME_FILES = ['/etc/hosts', '/etc/nsswitch.conf', '/etc/gai.conf'];

/**
 * Where a sandboxed command finds its checkout, HOME and TMPDIR: plain paths, whatever the
 * worker's workspace is called (test suites and static-file servers refuse paths with a
 * dot-directory). Under a root of their own, so they never hide a host path mounted beside them.
 */
export const SANDBOX_ROOT = '/sandbox';
export const SANDBOX_MOUNTS = { worktree: `${SANDBOX_ROOT}/workspace`, home: `${SANDBOX_ROOT}/home`, tmp: `${SANDBOX_ROOT}/tmp` };

/** Paths inside the sandbox for the egress plumbing. */
export const EGRESS_MOUNT = { socketDir: '/run/ameide/egress', forwarder: '/run/ameide/egress-forwarder.pl' };
/** Where a local preview's socket directory is mounted (writable) in its sandbox, and the socket's name. */
export const INBOUND_MOUNT = { socketDir: '/run/ameide/inbound', forwarder: EGRESS_MOUNT.forwarder };
export const INBOUND_SOCKET = 'inbound.sock';

/** Finds bubblewrap on PATH. */
export function findBubblewrap(path: string): string | undefined {
  for (const dir of path.split(delimiter)) {
    const candidate = join(dir, 'bwrap');
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

/**
 * Sets the step's rlimits, joins the cgroups named before `--` (as root), then runs the rest as the
 * sandbox user. Only this fixed script runs with privileges; every argument is a number, path or
 * id the worker chose: `$1` the file-size limit in 512-byte blocks, `$2` the process limit (empty:
 * none; a cgroup's `pids.max` holds instead). The limits are set with the shell's own `ulimit` (soft
 * and hard, so the command cannot raise them), inherited by everything after it: one process less
 * than `prlimit` per step. A process limit is `-u` in bash and `-p` in dash.
 */
const JOIN_CGROUPS =
  'ulimit -c 0 && ulimit -f "$1" && { [ -z "$2" ] || ulimit -u "$2" 2>/dev/null || ulimit -p "$2"; } || exit 125; shift 2; ' +
  'for f; do shift; [ "$f" = -- ] && break; echo $$ > "$f" || exit 125; done; exec "$@"';

/**
 * Runs the fixed prelude (`$1`) in a subshell of its own (a fork, not a new shell), not tested by
 * `||`, so that its `set -e` holds; when it fails, the step exits 125.
 */
const PRELUDE = '(eval "$1") >/dev/null; [ $? = 0 ] || { echo "[ameide] the checkout could not be prepared for this phase" >&2; exit 125; }';

/**
 * Runs a fixed prelude (`$1`, e.g. the phase-start snapshot) in a subshell of its own (so that its
 * `set -e` holds), then the command (`$2`) in this shell's place: one sandbox for both. The prelude's stdout is dropped; if it fails, the command does
 * not run and the step exits 125.
 */
const WITH_PRELUDE = `${PRELUDE}; exec /bin/sh -c "$2"`;

/**
 * As WITH_PRELUDE, and after the command a fixed postlude (`$3`, e.g. collecting the test reports)
 * in a subshell of its own, with its output dropped: the step's exit code stays the command's. The
 * postlude's own exit code goes to the file `$4` (data the worker reads, as untrusted as the rest).
 */
const WITH_PRELUDE_AND_POSTLUDE = `${PRELUDE}; /bin/sh -c "$2"; rc=$?; (eval "$3") >/dev/null 2>&1; echo $? > "$4"; exit $rc`;

/** A fixed script the sandbox runs after the command, and the file its exit code goes to. */
export interface Postlude {
  script: string;
  statusFile: string;
}

/**
 * The argv that runs `command` (a shell command line) under the spec. With bubblewrap: a read-only
 * system, a private /tmp, /proc and /dev, only the run's own directories writable, its own PID and
 * network namespaces (an online phase reaches the outside only through the worker's egress proxy, a
 * local preview is reached from outside only through its inbound socket),
 * a new session, dying with the worker, and rlimits on processes and file size. Nothing of the
 * worker's data, keys or other runs is mounted. The caller starts the argv as root: it sets the
 * rlimits, joins the cgroups and drops to the sandbox user with setpriv before bubblewrap starts. `prelude` and
 * `postlude`: see WITH_PRELUDE and WITH_PRELUDE_AND_POSTLUDE.
 */
export function sandboxArgv(spec: SandboxSpec, command: string, prelude?: string, postlude?: Postlude): { file: string; args: string[] } {
  const shell = postlude
    ? ['/bin/sh', '-c', WITH_PRELUDE_AND_POSTLUDE, 'sandbox', prelude ?? ':', command, postlude.script, postlude.statusFile]
    : prelude
      ? ['/bin/sh', '-c', WITH_PRELUDE, 'sandbox', prelude, command]
      : ['/bin/sh', '-c', command];
  const inCgroup = Boolean(spec.cgroupProcs?.length);
  // The root shell's arguments: the limits (see JOIN_CGROUPS), the cgroups, `--`.
  const root = [
    '-c',
    JOIN_CGROUPS,
    'sandbox',
    String(Math.floor(spec.maxFileBytes / 512)),
    inCgroup ? '' : String(spec.maxProcesses),
    ...(spec.cgroupProcs ?? []),
    '--',
  ];
  // Without a sandbox the command still joins its cgroup: its limits hold, and nothing it starts
  // outlives it (the cgroup is emptied when it ends, or when a later attempt or worker cleans up).
  if (spec.kind === 'none') return { file: '/bin/sh', args: [...root, ...shell] };
  const args = [
    '--unshare-user',
    '--uid',
    String(spec.uid),
    '--gid',
    String(spec.gid),
    '--unshare-pid',
    '--unshare-ipc',
    '--unshare-uts',
    '--unshare-cgroup-try',
    '--unshare-net',
    '--die-with-parent',
    '--new-session',
    '--hostname',
    'sandbox',
    '--proc',
    '/proc',
    '--dev',
    '/dev',
    '--tmpfs',
    '/tmp',
    '--symlink',
    'usr/bin',
    '/bin',
    '--symlink',
    'usr/sbin',
    '/sbin',
    '--symlink',
    'usr/lib',
    '/lib',
    '--symlink',
    'usr/lib64',
    '/lib64',
  ];
  for (const dir of SYSTEM_READ_ONLY) args.push('--ro-bind-try', dir, dir);
  for (const f of NAME_FILES) args.push('--ro-bind-try', f, f);
  args.push('--ro-bind', join(spec.etcDir, 'passwd'), '/etc/passwd', '--ro-bind', join(spec.etcDir, 'group'), '/etc/group');
  for (const path of spec.readOnly) args.push('--ro-bind', path, path);
  for (const dir of spec.writable) args.push('--bind', dir, dir);
  for (const m of spec.mounts ?? []) args.push('--bind', m.host, m.at);
  let run = shell;
  if (spec.egress) {
    const e = spec.egress;
    args.push('--ro-bind', e.socketDir, EGRESS_MOUNT.socketDir, '--ro-bind', e.forwarder, EGRESS_MOUNT.forwarder);
    run = ['/usr/bin/perl', EGRESS_MOUNT.forwarder, String(e.port), join(EGRESS_MOUNT.socketDir, 'egress.sock'), '--', ...run];
  } else if (spec.inbound) {
    const i = spec.inbound;
    args.push('--bind', i.socketDir, INBOUND_MOUNT.socketDir, '--ro-bind', i.forwarder, INBOUND_MOUNT.forwarder);
    run = ['/usr/bin/perl', INBOUND_MOUNT.forwarder, '--inbound', String(i.port), join(INBOUND_MOUNT.socketDir, INBOUND_SOCKET), '--', ...run];
  }
  // The sandbox's own root (and the directories bwrap made for the mounts) is read-only too.
  args.push('--remount-ro', '/', '--chdir', spec.cwd, '--', ...run);
  const drop = ['/usr/bin/setpriv', `--reuid=${spec.uid}`, `--regid=${spec.gid}`, '--clear-groups', '--', spec.bwrap, ...args];
  return { file: '/bin/sh', args: [...root, ...drop] };
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
