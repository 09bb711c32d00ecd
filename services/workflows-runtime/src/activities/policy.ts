import type { CodingRunInput } from '@ameide/temporal';
import { checkPaths, symlinkEscapes } from '../guardrails/paths.js';
import { gitAt } from './git.js';

/**
 * Paths the change touched (committed by the agent, staged, unstaged or untracked) that the
 * definition does not allow, as `path (reason)`. Empty when the change keeps to the policy.
 */
export async function changedPathViolations(worktree: string, baseCommit: string, run: CodingRunInput): Promise<string[]> {
  const git = gitAt(worktree);
  // Only when the agent committed: an empty diff would cost simple-git's silent-command delay.
  const head = (await git.revparse(['HEAD'])).trim();
  const committed = head === baseCommit ? [] : (await git.raw(['diff', '--name-only', '-z', baseCommit, 'HEAD'])).split('\0');
  const status = (await git.raw(['status', '--porcelain=v1', '-z', '--untracked-files=all'])).split('\0');
  const pending: string[] = [];
  for (let i = 0; i < status.length; i++) {
    const entry = status[i]!;
    if (entry.length < 4) continue;
    pending.push(entry.slice(3));
    if (entry[0] === 'R' || entry[0] === 'C') pending.push(status[++i]!); // the rename's source path
  }
  const paths = [...new Set([...committed, ...pending].filter(Boolean))].sort();
  const { allowedPaths: allowed, deniedPaths: denied } = run.repo.guardrails;
  const violations = [...checkPaths(paths, { allowed, denied }), ...(await symlinkEscapes(worktree, paths))];
  return violations.map((v) => `${v.path} (${v.reason})`);
}
