import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { toolEnv } from '@ameide/config';

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
  });
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
      const child = spawn('git', [...config, ...args], { cwd: dir, env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
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
