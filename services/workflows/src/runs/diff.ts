import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, rename, rm } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { Code, ConnectError } from '@connectrpc/connect';
import { toolEnv } from '@ameide/config';
import { FileStatus } from '@ameide/contracts';
import { FailedPreconditionError, UnavailableError } from '../errors.js';

/**
 * A run's change as the service reads it for GetRunDiff: base..head of the work branch the run
 * pushed, from the service's own git cache (a bare repository per tenant and repository under
 * AMEIDE_SERVICE_GIT_DIR, fetched from the repository on demand).
 *
 * Git runs here on data from a remote, so it runs hardened: never through a shell (argv only), in a
 * bare repository with no checkout, no hooks, no system or user configuration, no external diff or
 * textconv programs, no prompts, objects checked on every fetch, the `file` transport only for
 * repositories that are local paths, and every command under a time limit.
 */

/** What GetRunDiff needs of a run: where its change lives and which commits bound it. */
export interface RunChange {
  tenantId: string;
  runId: string;
  repoUrl: string;
  branch: string;
  baseCommit: string;
  headCommit: string;
}

/** One file of a change, with its stats (no patch). */
export interface ChangedFile {
  path: string;
  /** The path before a rename or copy; empty otherwise. */
  oldPath: string;
  status: FileStatus;
  insertions: number;
  deletions: number;
  binary: boolean;
}

/** Patches of the first `files` files from an offset. */
export interface PatchPage {
  /** One unified diff per file, in the order of the file list. */
  patches: string[];
}

export interface RunDiffOptions {
  /** Root of the cache (AMEIDE_SERVICE_GIT_DIR). */
  dir: string;
  /** Longest one fetch may take. */
  fetchTimeoutMs?: number;
  /** Longest one local git command (a diff) may take. */
  gitTimeoutMs?: number;
  /** How many changes' file lists are kept in memory. */
  statsCacheSize?: number;
  /** What one page's patches may hold together; the page ends early past it (at least one file). */
  pageBytes?: number;
  /** What one git diff may print before it is stopped (the page is then computed in halves). */
  maxOutputBytes?: number;
}

const MiB = 1024 * 1024;
const DEFAULTS = {
  fetchTimeoutMs: 5 * 60_000,
  gitTimeoutMs: 60_000,
  statsCacheSize: 64,
  pageBytes: 16 * MiB,
  maxOutputBytes: 64 * MiB,
};

/** Settings every git command gets on its command line (the cache repositories' own config is empty). */
const HARDENED_CONFIG = [
  'core.hooksPath=/dev/null',
  'core.fsmonitor=false',
  'core.pager=cat',
  'core.quotePath=false',
  'core.sshCommand=ssh -o BatchMode=yes',
  'diff.external=',
  'diff.noprefix=false',
  'diff.mnemonicPrefix=false',
  'diff.relative=false',
  'color.ui=false',
  'protocol.allow=never',
  'protocol.https.allow=always',
  'protocol.http.allow=always',
  'protocol.ssh.allow=always',
  'protocol.git.allow=always',
  'transfer.fsckObjects=true',
  'fetch.recurseSubmodules=false',
  'gc.auto=0',
  'maintenance.auto=false',
];

/** The environment of the service's git: nothing of the service's own GIT_* variables or git configuration. */
const GIT_ENV = toolEnv({
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_TERMINAL_PROMPT: '0',
  GIT_NO_REPLACE_OBJECTS: '1',
  GIT_ATTR_NOSYSTEM: '1',
  GIT_OPTIONAL_LOCKS: '0',
  // Paths given to `git diff -- <paths>` are file names, never patterns or magic (`:(glob)…`).
  GIT_LITERAL_PATHSPECS: '1',
});

/** Flags of every diff: the same for the stats and the patches, so both describe the same files. */
const DIFF_FLAGS = ['--no-ext-diff', '--no-textconv', '--no-color', '-M'];

const SHA_RE = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
const STDERR_LIMIT = 64 * 1024;

/** A git command that failed: its exit code and stderr, or why it was stopped. */
export class GitFailed extends Error {
  constructor(
    readonly args: string[],
    readonly exitCode: number | null,
    readonly stderr: string,
    readonly stopped?: 'timed out' | 'too large' | 'aborted',
  ) {
    super(stopped ? `git ${args[0]} ${stopped}` : `git ${args[0]} failed (exit ${exitCode}): ${firstLine(stderr) || 'no output'}`);
  }
}

/** The first non-empty line of git's stderr, with any password in a URL taken out. */
export function firstLine(stderr: string): string {
  const line =
    stderr
      .split('\n')
      .map((l) => l.trim())
      .find(Boolean) ?? '';
  return anonymise(line);
}

/** `scheme://user:password@host/…` → `scheme://user@host/…`: what git prints may carry the repository URL. */
function anonymise(s: string): string {
  return s.replace(/([a-z][a-z0-9+.-]*:\/\/)([^/@\s:]*):[^/@\s]*@/gi, '$1$2@');
}

interface GitRun {
  /** The bare repository (`--git-dir`); none for `init`. */
  gitDir?: string;
  timeoutMs: number;
  /** Stop git (GitFailed "too large") when stdout grows past this. */
  maxBytes?: number;
  signal?: AbortSignal;
  /** Allow the `file` transport (the repository is a local path). */
  allowFile?: boolean;
}

/** Runs git with argv (never a shell) in its own process group, killed on timeout, abort or excess output. */
function git(args: string[], o: GitRun): Promise<Buffer> {
  const argv = [
    ...[...HARDENED_CONFIG, `protocol.file.allow=${o.allowFile ? 'always' : 'never'}`].flatMap((c) => ['-c', c]),
    ...(o.gitDir ? [`--git-dir=${o.gitDir}`] : []),
    ...args,
  ];
  return new Promise((resolvePromise, reject) => {
    if (o.signal?.aborted) return reject(new GitFailed(args, null, '', 'aborted'));
    const child = spawn('git', argv, { env: GIT_ENV, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const out: Buffer[] = [];
    let outBytes = 0;
    let err = '';
    let stopped: GitFailed['stopped'];
    const stop = (why: NonNullable<GitFailed['stopped']>) => {
      if (stopped) return;
      stopped = why;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    };
    const timer = setTimeout(() => stop('timed out'), o.timeoutMs);
    const onAbort = () => stop('aborted');
    o.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (b: Buffer) => {
      if (stopped) return;
      outBytes += b.length;
      if (o.maxBytes !== undefined && outBytes > o.maxBytes) return stop('too large');
      out.push(b);
    });
    child.stderr.on('data', (b: Buffer) => {
      if (err.length < STDERR_LIMIT) err += b.toString('utf8');
    });
    const done = () => {
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
    };
    child.on('error', (e) => {
      done();
      reject(e);
    });
    child.on('close', (code) => {
      done();
      if (stopped) reject(new GitFailed(args, code, err, stopped));
      else if (code !== 0) reject(new GitFailed(args, code, err));
      else resolvePromise(Buffer.concat(out));
    });
  });
}

/** A local path or file URL stays as given (made absolute); anything else is a remote URL. */
export function normaliseRepoUrl(url: string): { url: string; local: boolean } {
  if (!url.trim()) throw new FailedPreconditionError("the run's plan names no repository");
  // Never an option: git would read `-u…` or `--upload-pack=…` as one.
  if (url.startsWith('-')) throw new FailedPreconditionError(`the run's repository URL must not start with "-"`);
  if (/^file:\/\//i.test(url)) return { url, local: true };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url) || /^[^/]+@[^:]+:/.test(url)) return { url, local: false };
  return { url: isAbsolute(url) ? url : resolve(url), local: true };
}

/** A tenant id as one path segment (ids of other characters get them replaced and a hash appended). */
function safeSegment(s: string): string {
  if (/^[A-Za-z0-9._-]+$/.test(s) && s !== '.' && s !== '..') return s;
  return `${s.replace(/[^A-Za-z0-9._-]/g, '_')}-${createHash('sha256').update(s).digest('hex').slice(0, 12)}`;
}

/** A branch name git accepts as `refs/heads/<branch>` and that cannot be read as anything else. */
function checkBranch(branch: string): void {
  const ok =
    /^[A-Za-z0-9._/+@-]+$/.test(branch) &&
    !branch.startsWith('-') &&
    !branch.startsWith('/') &&
    !branch.endsWith('/') &&
    !branch.endsWith('.') &&
    !branch.endsWith('.lock') &&
    !branch.includes('..') &&
    !branch.includes('//') &&
    !branch.includes('@{') &&
    !branch.split('/').some((c) => c.startsWith('.'));
  if (!ok) throw new FailedPreconditionError(`the run's branch "${branch}" is not a branch name this service reads`);
}

// ---------------------------------------------------------------------------------------------------
// Parsing git's output
// ---------------------------------------------------------------------------------------------------

const STATUS: Record<string, FileStatus> = {
  A: FileStatus.ADDED,
  M: FileStatus.MODIFIED,
  D: FileStatus.DELETED,
  R: FileStatus.RENAMED,
  C: FileStatus.COPIED,
  T: FileStatus.TYPE_CHANGED,
};

/**
 * `git diff --name-status -z` and `git diff --numstat -z` of the same diff, zipped into one entry per
 * file. name-status records are `<status>\0<path>\0`, or `R<score>\0<old>\0<new>\0` for renames and
 * copies; numstat records are `<ins>\t<del>\t<path>\0`, or `<ins>\t<del>\t\0<old>\0<new>\0`, with `-`
 * for both counts of a binary file.
 */
export function parseDiffStats(nameStatus: string, numstat: string): ChangedFile[] {
  const ns = nameStatus.split('\0');
  const names: Array<{ status: FileStatus; path: string; oldPath: string }> = [];
  for (let i = 0; i < ns.length;) {
    const s = ns[i++]!;
    if (!s) continue;
    const letter = s[0]!;
    if (letter === 'R' || letter === 'C') {
      const oldPath = ns[i++] ?? '';
      const path = ns[i++] ?? '';
      names.push({ status: STATUS[letter]!, path, oldPath });
    } else {
      names.push({ status: STATUS[letter] ?? FileStatus.UNSPECIFIED, path: ns[i++] ?? '', oldPath: '' });
    }
  }
  const nm = numstat.split('\0');
  const counts: Array<{ insertions: number; deletions: number; binary: boolean; path: string; oldPath: string }> = [];
  for (let i = 0; i < nm.length;) {
    const rec = nm[i++]!;
    if (!rec) continue;
    const m = /^(\d+|-)\t(\d+|-)\t([\s\S]*)$/.exec(rec);
    if (!m) throw new Error(`unexpected numstat record: ${JSON.stringify(rec.slice(0, 80))}`);
    const binary = m[1] === '-' && m[2] === '-';
    let path = m[3]!;
    let oldPath = '';
    if (path === '') {
      oldPath = nm[i++] ?? '';
      path = nm[i++] ?? '';
    }
    counts.push({ insertions: binary ? 0 : Number(m[1]), deletions: binary ? 0 : Number(m[2]), binary, path, oldPath });
  }
  if (names.length !== counts.length) throw new Error(`git diff listed ${names.length} files with --name-status but ${counts.length} with --numstat`);
  return names.map((n, i) => {
    const c = counts[i]!;
    if (c.path !== n.path || (c.oldPath && c.oldPath !== n.oldPath)) throw new Error(`git diff --name-status and --numstat disagree at file ${i}`);
    return { path: n.path, oldPath: n.oldPath, status: n.status, insertions: c.insertions, deletions: c.deletions, binary: c.binary };
  });
}

/** git's C-style quoting of a path (core.quotePath=false: only `"`, `\` and control characters make it quote). */
export function quotePath(s: string): string {
  if (!/["\\\x00-\x1f\x7f]/.test(s)) return s;
  const esc: Record<string, string> = { '\x07': '\\a', '\b': '\\b', '\t': '\\t', '\n': '\\n', '\v': '\\v', '\f': '\\f', '\r': '\\r', '"': '\\"', '\\': '\\\\' };
  return `"${s.replace(/["\\\x00-\x1f\x7f]/g, (c) => esc[c] ?? `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`)}"`;
}

/** The `diff --git` line git writes for a file. */
export function diffHeader(f: Pick<ChangedFile, 'path' | 'oldPath'>): string {
  return `diff --git ${quotePath(`a/${f.oldPath || f.path}`)} ${quotePath(`b/${f.path}`)}`;
}

/** Splits `git diff` output into one piece per `diff --git` header (a type change has two). */
export function splitPatches(out: Buffer): Array<{ header: string; text: string }> {
  const marker = Buffer.from('\ndiff --git ');
  const starts: number[] = [];
  if (out.length && out.subarray(0, marker.length - 1).equals(marker.subarray(1))) starts.push(0);
  for (let at = out.indexOf(marker); at >= 0; at = out.indexOf(marker, at + 1)) starts.push(at + 1);
  return starts.map((start, i) => {
    const text = out.subarray(start, starts[i + 1] ?? out.length).toString('utf8');
    const nl = text.indexOf('\n');
    return { header: nl < 0 ? text : text.slice(0, nl), text };
  });
}

/**
 * Assigns the pieces of a diff to files, in order, each piece checked against the file's `diff --git`
 * line (a type change's two pieces go to one file). Undefined when they do not line up.
 */
export function assignPatches(pieces: Array<{ header: string; text: string }>, files: ChangedFile[]): string[] | undefined {
  const out: string[] = [];
  let p = 0;
  for (const f of files) {
    const header = diffHeader(f);
    if (pieces[p]?.header !== header) return undefined;
    let text = pieces[p++]!.text;
    while (f.status === FileStatus.TYPE_CHANGED && pieces[p]?.header === header) text += pieces[p++]!.text;
    out.push(text);
  }
  return p === pieces.length ? out : undefined;
}

/** A file's patch too large for a page: its header lines, and a line saying what was left out. */
function omittedPatch(f: ChangedFile, text: string | undefined, why: string): string {
  const lines = (text ?? `${diffHeader(f)}\n`).split('\n');
  const end = lines.findIndex(
    (l, i) => i > 0 && (l.startsWith('@@') || l.startsWith('Binary files') || l.startsWith('GIT binary patch') || l.startsWith('diff --git ')),
  );
  const header = lines.slice(0, end < 0 ? Math.min(lines.length, 16) : end).filter(Boolean);
  return `${header.join('\n')}\n# patch omitted: ${why}\n`;
}

// ---------------------------------------------------------------------------------------------------
// The cache
// ---------------------------------------------------------------------------------------------------

/** Reads runs' changes from the service's git cache. One per service process. */
export class RunDiffs {
  private readonly o: Required<RunDiffOptions>;
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly stats = new Map<string, ChangedFile[]>();
  private rootChecked = false;

  constructor(opts: RunDiffOptions) {
    this.o = { ...DEFAULTS, ...opts };
  }

  /** Every file of the change with its stats, from the cache (fetching what is missing); kept in memory per run and head. */
  async files(change: RunChange, signal?: AbortSignal): Promise<ChangedFile[]> {
    const key = `${change.runId}\n${change.baseCommit}\n${change.headCommit}`;
    const cached = this.stats.get(key);
    if (cached) {
      // Most recently used last.
      this.stats.delete(key);
      this.stats.set(key, cached);
      return cached;
    }
    const dir = await this.ensure(change);
    const range = [change.baseCommit, change.headCommit];
    const local = { gitDir: dir, timeoutMs: this.o.gitTimeoutMs, signal };
    const [nameStatus, numstat] = await Promise.all([
      this.local(['diff', '--name-status', '-z', ...DIFF_FLAGS, ...range], local),
      this.local(['diff', '--numstat', '-z', ...DIFF_FLAGS, ...range], local),
    ]);
    const files = parseDiffStats(nameStatus.toString('utf8'), numstat.toString('utf8'));
    this.stats.set(key, files);
    while (this.stats.size > this.o.statsCacheSize) this.stats.delete(this.stats.keys().next().value!);
    return files;
  }

  /**
   * The patches of `files[offset…]`: at most `count` files, fewer when their patches together pass
   * the page's byte budget (always at least one). A single patch larger than the budget is replaced
   * by its header lines and a line saying so.
   */
  async patches(change: RunChange, files: ChangedFile[], offset: number, count: number, signal?: AbortSignal): Promise<PatchPage> {
    const dir = await this.ensure(change);
    const page = files.slice(offset, offset + count);
    if (!page.length) return { patches: [] };
    let texts: Array<string | undefined> | undefined;
    for (let n = page.length; !texts; n = Math.ceil(n / 2)) {
      const some = page.slice(0, n);
      const got = await this.pagePatches(dir, change, files, offset, some, signal);
      if (got !== 'too large') texts = got;
      else if (n === 1) texts = [undefined];
    }
    const patches: string[] = [];
    let bytes = 0;
    for (const [i, text] of texts.entries()) {
      const f = page[i]!;
      const size = text === undefined ? Infinity : Buffer.byteLength(text);
      const patch =
        size > this.o.pageBytes
          ? omittedPatch(f, text, `${text === undefined ? `more than ${this.o.maxOutputBytes}` : size} bytes, more than one page may hold`)
          : text!;
      if (patches.length && bytes + Buffer.byteLength(patch) > this.o.pageBytes) break;
      bytes += Buffer.byteLength(patch);
      patches.push(patch);
    }
    return { patches };
  }

  /**
   * The patches of `some` (the files from `offset`): `git diff` limited to their paths (old paths of
   * renames too); when its pieces do not line up with the files (a path git cannot be given as an
   * argument, rename detection that pairs differently on fewer files), from the whole diff instead.
   */
  private async pagePatches(
    dir: string,
    change: RunChange,
    files: ChangedFile[],
    offset: number,
    some: ChangedFile[],
    signal?: AbortSignal,
  ): Promise<string[] | 'too large'> {
    const range = [change.baseCommit, change.headCommit];
    const run = { gitDir: dir, timeoutMs: this.o.gitTimeoutMs, maxBytes: this.o.maxOutputBytes, signal };
    const paths = [...new Set(some.flatMap((f) => (f.oldPath ? [f.oldPath, f.path] : [f.path])))];
    // Within what one command line may carry; otherwise the whole diff is read.
    if (paths.reduce((n, p) => n + Buffer.byteLength(p) + 1, 0) < 512 * 1024) {
      const out = await this.local(['diff', ...DIFF_FLAGS, ...range, '--', ...paths], run).catch(tooLarge);
      if (out === 'too large') return out;
      const assigned = assignPatches(splitPatches(out), some);
      if (assigned) return assigned;
    }
    const all = await this.local(['diff', ...DIFF_FLAGS, ...range], run).catch(tooLarge);
    if (all === 'too large') return all;
    const assigned = assignPatches(splitPatches(all), files);
    if (!assigned) throw new Error(`the patches of run ${change.runId} do not line up with its files`);
    return assigned.slice(offset, offset + some.length);
  }

  /** A local git command (a diff) in a cache repository; a timeout is DeadlineExceeded. */
  private async local(args: string[], o: GitRun): Promise<Buffer> {
    try {
      return await git(args, o);
    } catch (err) {
      if (err instanceof GitFailed && err.stopped === 'timed out')
        throw new ConnectError(`computing the diff took longer than ${o.timeoutMs / 1000} s; ask for a smaller page_size or stat_only`, Code.DeadlineExceeded);
      if (err instanceof GitFailed && err.stopped === 'aborted') throw new ConnectError('the call was cancelled', Code.Canceled);
      throw err;
    }
  }

  /** The cache repository of the change's tenant and repository, holding its base and head commits. */
  async ensure(change: RunChange): Promise<string> {
    if (!SHA_RE.test(change.baseCommit) || !SHA_RE.test(change.headCommit))
      throw new FailedPreconditionError(`the run's summary names no valid base and head commit (base "${change.baseCommit}", head "${change.headCommit}")`);
    checkBranch(change.branch);
    const { url, local } = normaliseRepoUrl(change.repoUrl);
    const dir = join(this.o.dir, safeSegment(change.tenantId), createHash('sha256').update(url).digest('hex').slice(0, 16) + '.git');
    const commits = [change.headCommit, change.baseCommit];
    if (existsSync(join(dir, 'HEAD')) && (await this.missing(dir, commits)).length === 0) return dir;
    // One fetch at a time per cache repository; a call that waited finds what the one before fetched.
    return this.serialised(dir, async () => {
      await this.init(dir);
      if ((await this.missing(dir, commits)).length === 0) return dir;
      const fetch = (what: string) =>
        git(['fetch', '--quiet', '--no-tags', '--no-write-fetch-head', '--no-recurse-submodules', url, what], {
          gitDir: dir,
          timeoutMs: this.o.fetchTimeoutMs,
          allowFile: local,
        });
      let branchGone = false;
      try {
        // Kept under a name of its own per branch: branches `a` and `a/b` over time never clash here.
        await fetch(`+refs/heads/${change.branch}:refs/ameide/branches/${createHash('sha256').update(change.branch).digest('hex').slice(0, 32)}`);
      } catch (err) {
        if (!(err instanceof GitFailed)) throw err;
        if (err.stopped === 'timed out') throw new UnavailableError(`fetching the repository took longer than ${this.o.fetchTimeoutMs / 1000} s`);
        if (!/couldn't find remote ref/i.test(err.stderr))
          throw new UnavailableError(`the repository cannot be read: ${firstLine(err.stderr) || `git exited with ${err.exitCode}`}`);
        branchGone = true;
      }
      // The branch moved on or was rewritten since the run: ask for the commits themselves (servers
      // that allow fetching reachable commits by id, local repositories).
      for (const sha of await this.missing(dir, commits)) await fetch(sha).catch(() => undefined);
      const missing = await this.missing(dir, commits);
      if (missing.length) {
        const which = missing.map((m) => `${m === change.headCommit ? 'head' : 'base'} commit ${m.slice(0, 12)}`).join(' and ');
        throw new FailedPreconditionError(
          `the run's ${which} ${missing.length > 1 ? 'are' : 'is'} no longer in the repository (branch ${change.branch} ${branchGone ? 'is gone' : 'was reset or rewritten'})`,
        );
      }
      return dir;
    });
  }

  /** Which of `commits` the cache repository lacks. */
  private async missing(dir: string, commits: string[]): Promise<string[]> {
    const out: string[] = [];
    for (const c of commits) {
      const has = await git(['cat-file', '-e', `${c}^{commit}`], { gitDir: dir, timeoutMs: this.o.gitTimeoutMs }).then(
        () => true,
        () => false,
      );
      if (!has) out.push(c);
    }
    return out;
  }

  /** Creates the cache repository once: bare, empty configuration, made aside and moved in place. */
  private async init(dir: string): Promise<void> {
    if (existsSync(join(dir, 'HEAD'))) return;
    await this.checkRoot();
    await mkdir(dirname(dir), { recursive: true, mode: 0o700 });
    const tmp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await git(['init', '--quiet', '--bare', tmp], { timeoutMs: this.o.gitTimeoutMs });
      await rename(tmp, dir).catch((err: NodeJS.ErrnoException) => {
        // Another service process made it first.
        if (!existsSync(join(dir, 'HEAD'))) throw err;
      });
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  /** The cache's root: made this process's own (0700); one that another user owns or can write is refused. */
  private async checkRoot(): Promise<void> {
    if (this.rootChecked) return;
    await mkdir(this.o.dir, { recursive: true, mode: 0o700 });
    const st = await lstat(this.o.dir);
    const uid = process.getuid?.();
    if (!st.isDirectory()) throw new Error(`the service's git cache ${this.o.dir} is not a directory (AMEIDE_SERVICE_GIT_DIR)`);
    if (uid !== undefined && st.uid !== uid) throw new Error(`the service's git cache ${this.o.dir} belongs to another user; set AMEIDE_SERVICE_GIT_DIR`);
    if (st.mode & 0o022) throw new Error(`the service's git cache ${this.o.dir} is writable by others; make it 0700 or set AMEIDE_SERVICE_GIT_DIR`);
    this.rootChecked = true;
  }

  private async serialised<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(fn);
    this.locks.set(key, next);
    try {
      return await next;
    } finally {
      if (this.locks.get(key) === next) this.locks.delete(key);
    }
  }
}

const tooLarge = (err: unknown): 'too large' => {
  if (err instanceof GitFailed && err.stopped === 'too large') return 'too large';
  throw err;
};
