import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import type { CodingRunInput } from '@ameide/temporal';
import { gitAt } from './git.js';

/** Paths of one run's workspace. The prompt and transcripts sit beside the worktree, outside the diff. */
export interface RunPaths {
  runDir: string;
  worktree: string;
  promptFile: string;
  transcriptsDir: string;
}

export function runPaths(workspaceDir: string, tenantId: string, runId: string): RunPaths {
  const runDir = join(workspaceDir, 'runs', safeSegment(tenantId), runId);
  return {
    runDir,
    worktree: join(runDir, 'worktree'),
    promptFile: join(runDir, 'prompt.md'),
    transcriptsDir: join(runDir, 'transcripts'),
  };
}

function safeSegment(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]/g, '_');
}

/** A local path or file URL stays as given (made absolute); anything else is a remote URL. */
export function normaliseRepoUrl(url: string): string {
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

/** Where the bare mirror of a tenant's repository lives. */
export function mirrorPath(workspaceDir: string, tenantId: string, repoUrl: string): string {
  const url = normaliseRepoUrl(repoUrl);
  return join(workspaceDir, 'mirrors', safeSegment(tenantId), createHash('sha256').update(url).digest('hex').slice(0, 16) + '.git');
}

/** Clones the repository once into a bare mirror per tenant and repo, then fetches on every run. */
export async function ensureMirror(workspaceDir: string, tenantId: string, repoUrl: string): Promise<string> {
  const url = normaliseRepoUrl(repoUrl);
  const dir = mirrorPath(workspaceDir, tenantId, repoUrl);
  return withMirrorLock(dir, async () => {
    if (!existsSync(join(dir, 'HEAD'))) {
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
      await gitAt(dir).clone(url, dir, ['--bare']);
      await gitAt(dir).addConfig('remote.origin.fetch', '+refs/heads/*:refs/remotes/origin/*');
    }
    await gitAt(dir).fetch(['origin', '--prune', '--verbose']);
    return dir;
  });
}

/**
 * Adds the run's worktree on the work branch. When origin already has that branch (an earlier run of
 * the same work), the run continues from its head; otherwise it starts at the default branch.
 * Returns the commit the run starts from.
 */
export async function addWorktree(mirror: string, paths: RunPaths, branch: string, defaultBranch: string): Promise<string> {
  const git = gitAt(mirror);
  const resolve = (ref: string) => git.revparse(['--verify', `${ref}^{commit}`]).then((s) => s.trim(), () => '');
  const base = (await resolve(`refs/remotes/origin/${branch}`)) || (await resolve(`refs/remotes/origin/${defaultBranch}`));
  if (!base) {
    throw Object.assign(new Error(`branch "${defaultBranch}" not found in the repository; check the definition's default_branch`), { permanent: true });
  }
  // A retried prepare starts over; --force also reuses a registration whose directory is gone, and
  // lets another run of the same work keep the branch checked out in its own worktree.
  if (existsSync(paths.worktree)) await rm(paths.worktree, { recursive: true, force: true });
  await withMirrorLock(mirror, () => git.raw(['worktree', 'add', '--force', '-B', branch, paths.worktree, base]));
  return base;
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
  return lines.join('\n');
}

export async function writePrompt(paths: RunPaths, input: CodingRunInput, branch: string): Promise<void> {
  await writeFile(paths.promptFile, renderPrompt(input, branch));
}
