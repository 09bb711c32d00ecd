import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { toolEnv } from '@ameide/config';
import type { ArtifactStore } from '../artifacts.js';
import { workerGit, type GitLimits } from './git.js';

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
  /** A repository only the worker writes (the run's import repository) holding `headCommit`. */
  repo: string;
  /** Cancellation and time limit of its git commands. */
  gitLimits?: GitLimits;
  /** The commit the run branch started from; empty bundles the whole branch. */
  baseCommit: string;
  /** The verified head of the run's work. */
  headCommit: string;
  /** Whether `headCommit` is a `WIP: handoff of run …` commit of work the agent had not committed. */
  wipCommit: boolean;
  branch: string;
  /** Set when the branch may not leave the worker (e.g. it carries a secret): no git bundle, and why. */
  withheld?: string;
  /** Directory of the run's command transcripts; copied into the bundle (may be missing). */
  transcriptsDir: string;
  runId: string;
  followup: FollowupInfo;
  artifacts: ArtifactStore;
  /** Artifact key of the tar.gz. */
  key: string;
  /** Scratch directory; the staging directory is created and removed under it. */
  workDir: string;
  /** Hides the run's secrets in the diff (byte for byte otherwise). */
  redactBytes?: (data: Buffer) => Buffer;
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
  /** Why the bundle carries no `branch.bundle`, when it does not. */
  withheld?: string;
  createdAt: string;
}

/** Top-level directory inside the tar.gz. */
export const HANDOFF_ROOT = 'handoff';

/**
 * Packs everything a person needs to continue a run the agent could not finish into one tar.gz:
 * the run branch as a git bundle (unless it is withheld), the diff against the base, the
 * transcripts and a follow-up note. Built from the worker's own repository, from verified data only.
 */
export async function createHandoffBundle(input: HandoffBundleInput): Promise<{ uri: string; sha256: string; size: number }> {
  const { branch, runId, headCommit } = input;
  await mkdir(input.workDir, { recursive: true });
  const stagingRoot = await mkdtemp(join(input.workDir, 'handoff-'));
  try {
    const git = workerGit(input.repo, undefined, input.gitLimits);
    const baseCommit = input.baseCommit ? await git.text(['rev-parse', '--verify', `${input.baseCommit}^{commit}`]) : '';
    const staging = join(stagingRoot, HANDOFF_ROOT);
    await mkdir(join(staging, '.codex'), { recursive: true });

    if (!input.withheld) {
      // The bundle carries the commits since the base, so a clone that has the base can fetch the
      // branch. When there are none (or no base), it carries the whole branch.
      const ref = `refs/heads/${branch}`;
      await git.raw(['update-ref', ref, headCommit]);
      const bundle = join(staging, 'branch.bundle');
      const ahead = baseCommit ? Number(await git.text(['rev-list', '--count', `${baseCommit}..${ref}`])) : 0;
      await git.raw(['bundle', 'create', '-q', bundle, ahead > 0 ? `${baseCommit}..${ref}` : ref]);
      await git.raw(['bundle', 'verify', '-q', bundle]);
    }

    const diffBase = baseCommit || (await git.text(['hash-object', '-t', 'tree', '/dev/null']));
    const diff = await git.raw(['diff', '--binary', '--no-color', '--no-ext-diff', '--no-textconv', diffBase, headCommit, '--']);
    await writeFile(join(staging, 'changes.diff'), input.redactBytes ? input.redactBytes(diff) : diff);

    const transcripts = join(staging, 'transcripts');
    if (existsSync(input.transcriptsDir)) await cp(input.transcriptsDir, transcripts, { recursive: true });
    else await mkdir(transcripts);

    const notes = input.withheld ? [`The run's branch is not in this bundle: ${input.withheld}. changes.diff shows the work, with secrets hidden.`] : [];
    const followup = { ...input.followup, nextSteps: [...notes, ...(input.followup.nextSteps ?? [])] };
    await writeFile(join(staging, '.codex', 'followup.md'), renderFollowup(followup, runId, branch));
    const manifest: HandoffManifest = {
      version: 1,
      runId,
      branch,
      baseCommit,
      headCommit,
      wipCommit: input.wipCommit,
      ...(input.withheld ? { withheld: input.withheld } : {}),
      createdAt: new Date().toISOString(),
    };
    await writeFile(join(staging, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');

    const archive = join(stagingRoot, 'handoff.tar.gz');
    await execFileAsync('tar', ['-czf', archive, '-C', stagingRoot, HANDOFF_ROOT], { env: toolEnv() });
    const stored = await input.artifacts.put(input.key, await readFile(archive));
    return { uri: stored.uri, sha256: stored.sha256, size: stored.size };
  } finally {
    await rm(stagingRoot, { recursive: true, force: true });
  }
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
