import { existsSync, mkdirSync, mkdtempSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { pruneStaleWorkspaces, requireFreeDisk } from '../../src/activities/lifecycle.js';

it('prunes run workspaces older than the TTL and keeps recent ones', async () => {
  const ws = mkdtempSync(join(tmpdir(), 'ws-'));
  const old = join(ws, 'runs', 'acme', 'old-run');
  const fresh = join(ws, 'runs', 'acme', 'fresh-run');
  mkdirSync(join(old, 'worktree'), { recursive: true });
  mkdirSync(join(fresh, 'worktree'), { recursive: true });
  const twoDaysAgo = new Date(Date.now() - 48 * 3600_000);
  utimesSync(old, twoDaysAgo, twoDaysAgo);
  expect(await pruneStaleWorkspaces(ws, 24)).toBe(1);
  expect(existsSync(old)).toBe(false);
  expect(existsSync(fresh)).toBe(true);
  expect(await pruneStaleWorkspaces(join(ws, 'nothing-here'), 24)).toBe(0);
});

it('refuses new runs below the free-disk floor with a clear message', async () => {
  await expect(requireFreeDisk(tmpdir(), 0)).resolves.toBeUndefined();
  await expect(requireFreeDisk(tmpdir(), 1e12)).rejects.toThrow(
    /^only \d+ MB free on the worker's workspace disk \(floor 1000000000000 MB\): free space there or lower AMEIDE_MIN_FREE_DISK_MB$/,
  );
});
