import { existsSync } from 'node:fs';
import { readdir, rm, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { gitAt } from './git.js';
import type { RunPaths } from './workspace.js';

/** Refuses a new run while the workspace disk is below its floor, instead of filling the disk. */
export async function requireFreeDisk(workspaceDir: string, floorMb: number): Promise<void> {
  const s = await statfs(existsSync(workspaceDir) ? workspaceDir : '/');
  const freeMb = Math.floor((s.bavail * s.bsize) / 1024 / 1024);
  if (freeMb < floorMb) {
    throw ApplicationFailure.create({
      type: 'DiskFull',
      nonRetryable: true,
      message: `only ${freeMb} MB free on the worker's workspace disk (floor ${floorMb} MB): free space there or lower AMEIDE_MIN_FREE_DISK_MB`,
    });
  }
}

/** Removes a run's worktree (and its registration in the mirror); its transcripts are already stored. */
export async function removeWorktree(paths: RunPaths, mirror: string): Promise<void> {
  await rm(paths.runDir, { recursive: true, force: true });
  if (existsSync(mirror)) await gitAt(mirror).raw(['worktree', 'prune']).catch(() => undefined);
}

/**
 * On worker start: removes run directories older than the TTL (kept after failures for a person to
 * look at) and prunes the mirrors' stale worktree registrations. Returns how many runs were removed.
 */
export async function pruneStaleWorkspaces(workspaceDir: string, ttlHours: number, now = Date.now()): Promise<number> {
  let removed = 0;
  const runsRoot = join(workspaceDir, 'runs');
  for (const tenant of existsSync(runsRoot) ? await readdir(runsRoot) : []) {
    for (const run of await readdir(join(runsRoot, tenant))) {
      const dir = join(runsRoot, tenant, run);
      const age = now - (await stat(dir)).mtimeMs;
      if (age > ttlHours * 3600_000) {
        await rm(dir, { recursive: true, force: true });
        removed++;
      }
    }
  }
  const mirrorsRoot = join(workspaceDir, 'mirrors');
  for (const tenant of existsSync(mirrorsRoot) ? await readdir(mirrorsRoot) : []) {
    for (const mirror of await readdir(join(mirrorsRoot, tenant))) {
      await gitAt(join(mirrorsRoot, tenant, mirror)).raw(['worktree', 'prune']).catch(() => undefined);
    }
  }
  return removed;
}
