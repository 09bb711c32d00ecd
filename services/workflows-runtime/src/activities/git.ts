import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { toolEnv } from '@ameide/config';
import { processAlive } from '../guardrails/cgroups.js';

/** Identity of commits the worker (and the export step in the sandbox) makes. */
export const AGENT_IDENTITY = { name: 'Ameide Agent', email: 'agent@ameide.dev' };

/**
 * Settings every git the worker runs gets on its command line. The worker only runs git in
 * repositories it alone can write (mirrors, per-run import repositories), so their configuration is
 * its own; these are the second line: no hooks, no fsmonitor, no filters or external diff/textconv
 * programs, no pager, no protocol that runs a command, objects checked on every transfer.
 */
const HARDENED_CONFIG = [
  'core.hooksPath=/dev/null',
  'core.fsmonitor=false',
  'core.pager=cat',
  'core.sshCommand=ssh',
  'diff.external=',
  'protocol.allow=never',
  'protocol.file.allow=always',
  'protocol.https.allow=always',
  'protocol.http.allow=always',
  'protocol.ssh.allow=always',
  'protocol.git.allow=always',
  'transfer.fsckObjects=true',
  'fetch.fsck.hasDotgit=error',
  'fetch.fsck.hasDotdot=error',
  'fetch.fsck.hasDot=error',
  'fetch.fsck.nulInTree=error',
  'gc.auto=0',
  'maintenance.auto=false',
  'advice.detachedHead=false',
  'safe.directory=',
  `user.name=${AGENT_IDENTITY.name}`,
  `user.email=${AGENT_IDENTITY.email}`,
  'commit.gpgSign=false',
  'tag.gpgSign=false',
];

/**
 * The environment of the worker's git: no system or user configuration (a private global one that
 * only the operator writes, `/dev/null` by default), no replace objects, no prompts, nothing
 * inherited from the worker's GIT_* variables.
 */
function hardenedEnv(globalConfig: string): Record<string, string> {
  return toolEnv({
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: globalConfig,
    GIT_NO_REPLACE_OBJECTS: '1',
    GIT_TERMINAL_PROMPT: '0',
    GIT_ATTR_NOSYSTEM: '1',
    GIT_OPTIONAL_LOCKS: '0',
    // Marks every process of the worker's git (and what it starts) as this worker's: a worker that
    // starts after this one died kills what is left of them (killOrphanedGit).
    [WORKER_MARK]: String(process.pid),
  });
}

/** The variable that names the worker process a git command belongs to. */
export const WORKER_MARK = 'AMEIDE_WORKER_PID';

/** git, started so that it dies with the worker (SIGKILL when its parent goes), where setpriv can arrange that. */
const GIT_ARGV0: string[] = existsSync('/usr/bin/setpriv') ? ['/usr/bin/setpriv', '--pdeathsig', 'KILL', '--', 'git'] : ['git'];

/**
 * Kills what is left of the git commands of worker processes that are gone (a worker killed during a
 * fetch or a push leaves them running in their own process groups). Run when a worker starts.
 * Returns how many processes were killed.
 */
export async function killOrphanedGit(): Promise<number> {
  let killed = 0;
  for (const name of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue;
    const environ = await readFile(`/proc/${name}/environ`, 'latin1').catch(() => '');
    const owner = Number(new RegExp(`(?:^|\0)${WORKER_MARK}=(\\d+)(?:\0|$)`).exec(environ)?.[1]);
    if (!owner || processAlive(owner)) continue;
    try {
      process.kill(Number(name), 'SIGKILL');
      killed++;
    } catch {
      /* gone */
    }
  }
  return killed;
}

/** Bounds on the worker's git commands: a cancellation signal (the activity's) and a time limit. */
export interface GitLimits {
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** A git command that failed, with its exit code and the end of what it printed on stderr. */
export class GitError extends Error {
  constructor(
    readonly args: string[],
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`git ${args[0]} failed (exit ${exitCode}): ${stderr.trim() || 'no output'}`);
  }
}

export interface GitRunOptions {
  /** Bytes written to git's stdin. */
  input?: Buffer | string;
  /** A file streamed to git's stdin from byte `start` on. */
  inputFile?: { path: string; start: number };
  /** Stream stdout into this file instead of returning it (diffs may be large). */
  stdoutFile?: string;
}

/** Git in one worker-owned repository, hardened as described above. */
export interface WorkerGit {
  readonly dir: string;
  /** Runs git and returns stdout as bytes; rejects with GitError on a non-zero exit. */
  raw(args: string[], opts?: GitRunOptions): Promise<Buffer>;
  /** Runs git and returns stdout as trimmed text. */
  text(args: string[], opts?: GitRunOptions): Promise<string>;
  /** True when git exits 0, false when it exits 1 (e.g. `merge-base --is-ancestor`); throws otherwise. */
  test(args: string[]): Promise<boolean>;
}

/**
 * The worker's hardened git at `dir` (which must be a repository only the worker writes). With
 * `limits`, every command is killed when the signal aborts (rejecting with the signal's reason) or
 * when it runs longer than the time limit (a GitError saying so).
 */
export function workerGit(dir: string, globalConfig = '/dev/null', limits: GitLimits = {}): WorkerGit {
  const env = hardenedEnv(globalConfig);
  const config = HARDENED_CONFIG.flatMap((c) => ['-c', c]);
  const run = (args: string[], opts: GitRunOptions = {}) =>
    new Promise<{ code: number | null; stdout: Buffer; stderr: string }>((resolve, reject) => {
      if (limits.signal?.aborted) return reject(limits.signal.reason as Error);
      // Its own process group, so that a kill also reaches the helpers it runs (upload-pack, remote helpers).
      const child = spawn(GIT_ARGV0[0]!, [...GIT_ARGV0.slice(1), ...config, ...args], { cwd: dir, env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
      let stopped: 'aborted' | 'timed out' | undefined;
      const kill = (why: 'aborted' | 'timed out') => {
        stopped = why;
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          /* gone */
        }
      };
      const onAbort = () => kill('aborted');
      limits.signal?.addEventListener('abort', onAbort, { once: true });
      const timer = limits.timeoutMs ? setTimeout(() => kill('timed out'), limits.timeoutMs) : undefined;
      const out: Buffer[] = [];
      let stderr = '';
      const file = opts.stdoutFile ? createWriteStream(opts.stdoutFile) : undefined;
      if (file) child.stdout.pipe(file);
      else child.stdout.on('data', (d: Buffer) => out.push(d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
      child.on('error', reject);
      child.stdin.on('error', () => undefined);
      if (opts.inputFile) createReadStream(opts.inputFile.path, { start: opts.inputFile.start }).on('error', reject).pipe(child.stdin);
      else child.stdin.end(opts.input ?? '');
      child.on('close', (code) => {
        clearTimeout(timer);
        limits.signal?.removeEventListener('abort', onAbort);
        if (stopped === 'aborted') return reject(limits.signal!.reason as Error);
        if (stopped) stderr += `\nstopped: it took longer than ${limits.timeoutMs! / 1000}s (AMEIDE_GIT_TIMEOUT_SECONDS)`;
        const done = () => resolve({ code, stdout: Buffer.concat(out), stderr });
        if (file) file.close(done);
        else done();
      });
    });
  const raw = async (args: string[], opts?: GitRunOptions) => {
    const r = await run(args, opts);
    if (r.code !== 0) throw new GitError(args, r.code, r.stderr);
    return r.stdout;
  };
  return {
    dir,
    raw,
    text: async (args, opts) => (await raw(args, opts)).toString('utf8').trim(),
    test: async (args) => {
      const r = await run(args);
      if (r.code === 0 || r.code === 1) return r.code === 0;
      throw new GitError(args, r.code, r.stderr);
    },
  };
}
