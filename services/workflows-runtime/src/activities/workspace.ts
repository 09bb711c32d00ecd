import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import type { CodingRunInput } from '@ameide/temporal';
import { GitError, workerGit, type GitLimits } from './git.js';

/**
 * Paths of one run's workspace. Everything under `box` is the sandbox's (its disk quota, owned by
 * the sandbox user below `box/worktree` and `box/steps/<step>/…`); everything else is the
 * worker's alone: the prompt, the transcripts, and the import repository that receives the
 * sandbox's work as a verified bundle.
 */
export interface RunPaths {
  runDir: string;
  /** The sandbox's area: its disk quota is mounted here. */
  box: string;
  /** The run's checkout (a repository of the sandbox user's, never touched by the worker's git). */
  worktree: string;
  promptFile: string;
  transcriptsDir: string;
  /** The worker's repository for this run: verified imports, what is pushed and handed off. */
  importRepo: string;
}

export function runPaths(workspaceDir: string, tenantId: string, runId: string): RunPaths {
  const runDir = join(workspaceDir, 'runs', safeSegment(tenantId), runId);
  const box = join(runDir, 'box');
  return {
    runDir,
    box,
    worktree: join(box, 'worktree'),
    promptFile: join(runDir, 'prompt.md'),
    transcriptsDir: join(runDir, 'transcripts'),
    importRepo: join(runDir, 'import.git'),
  };
}

/**
 * A tenant id as one path segment. Ids of letters, digits, `.`, `_` and `-` stay as they are; any
 * other id gets the other characters replaced and a hash of the whole id appended, so two ids that
 * differ only in punctuation (`a/b`, `a_b`) never share a directory.
 */
export function safeSegment(s: string): string {
  if (/^[A-Za-z0-9._-]+$/.test(s) && s !== '.' && s !== '..') return s;
  return `${s.replace(/[^A-Za-z0-9._-]/g, '_')}-${createHash('sha256').update(s).digest('hex').slice(0, 12)}`;
}

/** A local path or file URL stays as given (made absolute); anything else is a remote URL. */
export function normaliseRepoUrl(url: string): string {
  // Never an option: git would read `-u…` or `--upload-pack=…` as one.
  if (url.startsWith('-')) throw Object.assign(new Error(`repository URL "${url}" must not start with "-"`), { permanent: true });
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url) || /^[^/]+@[^:]+:/.test(url)) return url;
  return isAbsolute(url) ? url : resolve(url);
}

const mirrorLocks = new Map<string, Promise<unknown>>();

/** Serialises work on one mirror inside this worker process. */
async function withMirrorLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const prev = mirrorLocks.get(key) ?? Promise.resolve();
  const next = prev.catch(() => undefined).then(fn);
  mirrorLocks.set(key, next);
  try {
    return await next;
  } finally {
    if (mirrorLocks.get(key) === next) mirrorLocks.delete(key);
  }
}

/**
 * Where the bare mirror of a tenant's repository lives. Mirrors are the worker's alone: sandboxes
 * see only their `objects/` directory, read-only, as the alternate object store of their checkout.
 * (Mirrors of earlier versions, under `mirrors/`, were writable by sandboxes and are never used.)
 */
export function mirrorPath(workspaceDir: string, tenantId: string, repoUrl: string): string {
  const url = normaliseRepoUrl(repoUrl);
  return join(workspaceDir, 'repos', safeSegment(tenantId), createHash('sha256').update(url).digest('hex').slice(0, 16) + '.git');
}

/**
 * What one run fetches into the mirror, as remote-tracking refs: the default branch, and its work
 * branch (a pattern: an exact name that origin lacks would fail the fetch, and a pattern matches
 * nothing then; it may also bring branches whose names begin with the work branch's). Not every
 * branch: each run pushes one, so fetching them all would transfer every other run's work on every
 * run, and have origin list all its branches.
 */
export function mirrorRefspecs(branch: string, defaultBranch: string): string[] {
  return [`+refs/heads/${defaultBranch}:refs/remotes/origin/${defaultBranch}`, `+refs/heads/${branch}*:refs/remotes/origin/${branch}*`];
}

/** The error of a run whose definition names a default branch the repository does not have. */
export function branchNotFound(defaultBranch: string): Error {
  return Object.assign(new Error(`branch "${defaultBranch}" not found in the repository; check the definition's default_branch`), { permanent: true });
}

/**
 * Creates the tenant's bare mirror of the repository once, then fetches what the run needs on every
 * run ({@link mirrorRefspecs}), always with the URL and refspecs given here (never read from the
 * mirror's configuration). Throws {@link branchNotFound} when origin has no default branch of that name.
 */
export async function ensureMirror(
  workspaceDir: string,
  tenantId: string,
  repoUrl: string,
  refs: { branch: string; defaultBranch: string },
  gitConfig = '/dev/null',
  limits: GitLimits = {},
): Promise<string> {
  const url = normaliseRepoUrl(repoUrl);
  const dir = mirrorPath(workspaceDir, tenantId, repoUrl);
  return withMirrorLock(dir, async () => {
    if (!existsSync(join(dir, 'HEAD'))) {
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
      await workerGit(dir).raw(['init', '--quiet', '--bare']);
    }
    const fetch = ['fetch', '--quiet', '--no-tags', '--prune', '--no-write-fetch-head', url, ...mirrorRefspecs(refs.branch, refs.defaultBranch)];
    await workerGit(dir, gitConfig, limits)
      .raw(fetch)
      .catch((err: Error) => {
        throw err instanceof GitError && err.message.includes(`couldn't find remote ref refs/heads/${refs.defaultBranch}`)
          ? branchNotFound(refs.defaultBranch)
          : err;
      });
    return dir;
  });
}

/**
 * The commit a run starts from: origin's head of the work branch when an earlier run of the same
 * work pushed it, otherwise origin's default branch. Read from the worker's own mirror, both in one
 * git (each costs a few milliseconds to start).
 */
export async function resolveBase(mirror: string, branch: string, defaultBranch: string): Promise<string> {
  const names = [branch, defaultBranch].map((b) => `refs/remotes/origin/${b}^{commit}`);
  // One line each, in order: "<commit> commit", or the name and "missing".
  const out = await workerGit(mirror).text(['cat-file', '--batch-check=%(objectname) %(objecttype)'], { input: names.join('\n') + '\n' });
  const [work, main] = out.split('\n').map((l) => /^([0-9a-f]{40}|[0-9a-f]{64}) commit$/.exec(l)?.[1]);
  const base = work ?? main;
  if (!base) throw branchNotFound(defaultBranch);
  return base;
}

/**
 * Creates the run's import repository: bare, the worker's alone (0700), borrowing the mirror's
 * objects so a bundle built on the base commit can be verified and fetched.
 */
export async function createImportRepo(paths: RunPaths, mirror: string): Promise<void> {
  await rm(paths.importRepo, { recursive: true, force: true });
  await mkdir(paths.importRepo, { recursive: true, mode: 0o700 });
  await chmod(paths.importRepo, 0o700);
  await workerGit(paths.importRepo).raw(['init', '--quiet', '--bare']);
  await writeFile(join(paths.importRepo, 'objects', 'info', 'alternates'), join(mirror, 'objects') + '\n');
}

/** Renders the agent's task from the work items: title, description, acceptance criteria, links. */
export function renderPrompt(input: CodingRunInput, branch: string): string {
  const lines: string[] = [];
  for (const w of input.workItems) {
    lines.push(`# ${w.title || w.id}`, '', `Work item: ${w.id}`, '');
    if (w.description) lines.push(w.description.trim(), '');
    if (w.acceptanceCriteria.length) lines.push('## Acceptance criteria', '', ...w.acceptanceCriteria.map((c) => `- ${c}`), '');
    if (w.contextLinks.length) lines.push('## Context', '', ...w.contextLinks.map((l) => `- ${l}`), '');
  }
  if (!input.workItems.length) lines.push(`# Run ${input.runId}`, '', 'No work item is attached to this run.', '');
  const m = input.methodology;
  lines.push('## Run', '', `- Run: ${input.runId}`, `- Branch: ${branch}`, `- Definition: ${input.definitionName}`);
  if (m.profile) lines.push(`- Methodology: ${m.profile}`);
  if (m.goalIds.length) lines.push(`- Goals: ${m.goalIds.join(', ')}`);
  if (m.timeboxIds.length) lines.push(`- Timeboxes: ${m.timeboxIds.join(', ')}`);
  lines.push('');
  const p = input.previousAttempt;
  if (p) {
    lines.push(
      '## Previous attempt',
      '',
      `This run retries run ${p.runId}, which did not finish the work:`,
      '',
      ...quote(p.reason || 'no reason was recorded'),
      '',
    );
    lines.push(`The checkout starts from what earlier runs pushed to ${branch} (or the default branch); work the previous attempt did not push is not in it.`);
    if (p.handoffUri) lines.push(`That work is in its handoff bundle, ${p.handoffUri}: \`ameide runs handoff ${p.runId}\` restores its branch and notes.`);
    else lines.push('No handoff bundle of it was stored.');
    lines.push('');
    if (p.note) lines.push('Note from the person who handed it back:', '', ...quote(p.note), '');
  }
  return lines.join('\n');
}

/** Text as a Markdown block quote. */
function quote(text: string): string[] {
  return text
    .trim()
    .split('\n')
    .map((l) => (l ? `> ${l}` : '>'));
}

export async function writePrompt(paths: RunPaths, input: CodingRunInput, branch: string): Promise<void> {
  await writeFile(paths.promptFile, renderPrompt(input, branch), { mode: 0o644 });
}

/** The message of the commit that carries whatever the run left uncommitted. */
export function commitMessage(run: CodingRunInput): string {
  const item = run.workItems[0];
  const subject = item ? `${item.id}: ${item.title || 'change by coding agent'}` : `Coding agent run ${run.runId}`;
  return [subject, '', `Ameide-Run: ${run.runId}`, `Ameide-Plan: ${run.planId}`].join('\n');
}
