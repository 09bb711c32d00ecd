import { execFile, spawn } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { toolEnv } from '@ameide/config';
import type { ArtifactStore } from '../artifacts.js';
import { gitAt } from './git.js';

const execFileAsync = promisify(execFile);

/** What the person taking over a run needs to know, rendered into `.codex/followup.md`. */
export interface FollowupInfo {
  /** What the run set out to do (usually the work items' titles or the prompt's gist). */
  attempted: string;
  /** The phase that failed or ran out of budget (e.g. "agent", "test"). */
  failedPhase: string;
  /** Why the run stopped. */
  reason: string;
  /** The tail of the failing command's output. */
  lastOutput: string;
  workItems: Array<{ id: string; title: string }>;
  /** Extra concrete steps, listed after restoring the branch and before running the tests. */
  nextSteps?: string[];
}

export interface HandoffBundleInput {
  /** The run's worktree, on `branch`. */
  worktree: string;
  /** The commit the run branch started from; empty bundles the whole branch. */
  baseCommit: string;
  branch: string;
  /** Directory of the run's command transcripts; copied into the bundle (may be missing). */
  transcriptsDir: string;
  runId: string;
  followup: FollowupInfo;
  artifacts: ArtifactStore;
  /** Artifact key of the tar.gz. */
  key: string;
  /** Scratch directory; the staging directory is created and removed under it. */
  workDir: string;
}

/** `manifest.json` at the top of a handoff bundle. */
export interface HandoffManifest {
  version: 1;
  runId: string;
  branch: string;
  baseCommit: string;
  headCommit: string;
  /** Whether uncommitted work was committed as `WIP: handoff of run <runId>`. */
  wipCommit: boolean;
  createdAt: string;
}

/** Top-level directory inside the tar.gz. */
export const HANDOFF_ROOT = 'handoff';

/**
 * Packs everything a person needs to continue a run the agent could not finish into one tar.gz:
 * the run branch as a git bundle, the diff against the base, the transcripts and a follow-up note.
 * Uncommitted work in the worktree is committed first as `WIP: handoff of run <runId>`.
 */
export async function createHandoffBundle(input: HandoffBundleInput): Promise<{ uri: string; sha256: string; size: number }> {
  const { worktree, branch, runId } = input;
  await mkdir(input.workDir, { recursive: true });
  const stagingRoot = await mkdtemp(join(input.workDir, 'handoff-'));
  try {
    const wipCommit = await commitLeftovers(worktree, branch, runId);
    const git = gitAt(worktree);
    const headCommit = (await git.revparse([`refs/heads/${branch}^{commit}`])).trim();
    const baseCommit = input.baseCommit ? (await git.revparse([`${input.baseCommit}^{commit}`])).trim() : '';

    const staging = join(stagingRoot, HANDOFF_ROOT);
    await mkdir(join(staging, '.codex'), { recursive: true });

    // The bundle carries the commits since the base, so a clone that has the base can fetch the branch.
    // When there are none (or no base), it carries the whole branch.
    const bundle = join(staging, 'branch.bundle');
    const ahead = baseCommit ? Number((await git.raw(['rev-list', '--count', `${baseCommit}..refs/heads/${branch}`])).trim()) : 0;
    await git.raw(['bundle', 'create', bundle, ahead > 0 ? `${baseCommit}..refs/heads/${branch}` : `refs/heads/${branch}`]);
    await git.raw(['bundle', 'verify', bundle]);

    const diffBase = baseCommit || (await emptyTree(worktree));
    await gitToFile(worktree, ['diff', '--binary', '--no-color', '--no-ext-diff', '--no-textconv', diffBase, headCommit, '--'], join(staging, 'changes.diff'));

    const transcripts = join(staging, 'transcripts');
    if (existsSync(input.transcriptsDir)) await cp(input.transcriptsDir, transcripts, { recursive: true });
    else await mkdir(transcripts);

    await writeFile(join(staging, '.codex', 'followup.md'), renderFollowup(input.followup, runId, branch));
    const manifest: HandoffManifest = { version: 1, runId, branch, baseCommit, headCommit, wipCommit, createdAt: new Date().toISOString() };
    await writeFile(join(staging, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');

    const archive = join(stagingRoot, 'handoff.tar.gz');
    await execFileAsync('tar', ['-czf', archive, '-C', stagingRoot, HANDOFF_ROOT], { env: minimalEnv() });
    const stored = await input.artifacts.put(input.key, await readFile(archive));
    return { uri: stored.uri, sha256: stored.sha256, size: stored.size };
  } finally {
    await rm(stagingRoot, { recursive: true, force: true });
  }
}

/**
 * Commits everything uncommitted in the worktree (tracked changes and untracked files that .gitignore
 * does not exclude) onto `branch`, with the agent's identity and without hooks. Returns whether it did.
 */
async function commitLeftovers(worktree: string, branch: string, runId: string): Promise<boolean> {
  const git = gitAt(worktree);
  await git.raw(['add', '--all', '--', '.']);
  const tree = (await git.raw(['write-tree'])).trim();
  const parent = (await git.revparse([`refs/heads/${branch}^{commit}`])).trim();
  const parentTree = (await git.revparse([`${parent}^{tree}`])).trim();
  if (tree === parentTree) return false;
  const commit = (await git.raw(['commit-tree', '--no-gpg-sign', tree, '-p', parent, '-m', `WIP: handoff of run ${runId}`])).trim();
  // Moves the branch (and HEAD with it, when HEAD is on the branch) only if nobody moved it meanwhile.
  await git.raw(['update-ref', '-m', `handoff of run ${runId}`, `refs/heads/${branch}`, commit, parent]);
  return true;
}

async function emptyTree(worktree: string): Promise<string> {
  return (await gitAt(worktree).raw(['hash-object', '-t', 'tree', '/dev/null'])).trim();
}

const minimalEnv = () => toolEnv();

/** Runs git with its stdout going to `file` byte for byte (diffs may hold any bytes). */
function gitToFile(cwd: string, args: string[], file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const out = createWriteStream(file);
    const child = spawn('git', ['-c', 'safe.directory=*', ...args], { cwd, env: minimalEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
    child.stdout.pipe(out);
    let exit: number | null | undefined;
    let closed = false;
    const settle = () => {
      if (exit === undefined || !closed) return;
      if (exit === 0) resolve();
      else reject(new Error(`git ${args[0]} failed (exit ${exit}): ${stderr.trim()}`));
    };
    child.on('error', (err) => {
      out.destroy();
      reject(err);
    });
    child.on('close', (code) => {
      exit = code;
      settle();
    });
    out.on('error', reject);
    out.on('close', () => {
      closed = true;
      settle();
    });
  });
}

/** A fence longer than any run of backticks in `text`, so the output cannot close it. */
function fenceFor(text: string): string {
  const longest = Math.max(0, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  return '`'.repeat(Math.max(3, longest + 1));
}

/** The follow-up note of a handoff bundle (`.codex/followup.md`). Pure. */
export function renderFollowup(info: FollowupInfo, runId: string, branch: string): string {
  const dir = `handoff-${runId.slice(0, 8)}`;
  const output = info.lastOutput.replace(/\s+$/, '');
  const fence = fenceFor(output);
  const lines: string[] = [
    `# Handoff of run ${runId}`,
    '',
    `The agent could not finish this run. Everything it did is on branch \`${branch}\`; work it had not committed`,
    `is in the last commit, \`WIP: handoff of run ${runId}\`, if there was any.`,
    '',
    '## What was attempted',
    '',
    info.attempted.trim() || '(not recorded)',
    '',
    '## Where it stopped',
    '',
    `- Failing phase: ${info.failedPhase || 'unknown'}`,
    `- Reason: ${info.reason.trim() || 'unknown'}`,
    '',
    '## Last output',
    '',
    fence,
    ...(output ? [output] : ['(no output)']),
    fence,
    '',
    '## Work items',
    '',
    ...(info.workItems.length ? info.workItems.map((w) => `- ${w.id}${w.title ? `: ${w.title}` : ''}`) : ['- none attached to this run']),
    '',
    '## What to do next',
    '',
  ];
  const steps = [
    `Restore the branch (skip if you are reading this in the restored directory):\n\n   \`\`\`sh\n   ameide runs handoff ${runId} --dir ${dir}\n   cd ${dir}\n   \`\`\``,
    `Continue on branch \`${branch}\` (it is checked out): \`git switch ${branch}\`, then \`git log --oneline -5\` and \`git show --stat HEAD\` to see where the agent left off.`,
    ...(info.nextSteps ?? []).map((s) => s.trim()).filter(Boolean),
    `Fix what failed in the ${info.failedPhase || 'failing'} phase and run the tests until they pass.`,
    `Push the branch: \`git push -u origin ${branch}\`.`,
  ];
  steps.forEach((s, i) => lines.push(`${i + 1}. ${s}`));
  lines.push('');
  return lines.join('\n');
}
