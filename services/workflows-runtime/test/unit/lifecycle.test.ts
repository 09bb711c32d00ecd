import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statfsSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import {
  diskTemplate,
  enforceCacheQuota,
  HeldCleanups,
  mountRunDisk,
  pruneStaleWorkspaces,
  remountRunDisk,
  removeRun,
  requireFreeDisk,
  unlinkBelow,
  unmountUnder,
} from '../../src/activities/lifecycle.js';
import { killOrphanedGit, WORKER_MARK } from '../../src/activities/git.js';
import { runPaths } from '../../src/activities/workspace.js';

const processAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
};

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

it('trims a tenant cache over its quota to 90%, least recently used files first', async () => {
  const cache = mkdtempSync(join(tmpdir(), 'cache-'));
  const day = 24 * 3600_000;
  // Five 100 KiB files, used one day apart: oldest first.
  const files = [0, 1, 2, 3, 4].map((i) => {
    const f = join(cache, 'npm', `entry-${i}`);
    mkdirSync(join(cache, 'npm'), { recursive: true });
    writeFileSync(f, Buffer.alloc(100 * 1024, i));
    const when = new Date(Date.now() - (5 - i) * day);
    utimesSync(f, when, when);
    return f;
  });
  expect(await enforceCacheQuota(cache, 1024 * 1024)).toBe(0);
  expect(files.every((f) => existsSync(f))).toBe(true);
  // A quota of 350 KiB: trimmed to at most 315 KiB, so the two least recently used go.
  const freed = await enforceCacheQuota(cache, 350 * 1024);
  expect(freed).toBeGreaterThanOrEqual(200 * 1024);
  expect(files.map((f) => existsSync(f))).toEqual([false, false, true, true, true]);
});

it('trims cache files whatever their names: spaces, line breaks, leading dashes', async () => {
  const cache = mkdtempSync(join(tmpdir(), 'cache-'));
  mkdirSync(join(cache, 'pnpm-store', 'a b'), { recursive: true });
  const names = ['pnpm-store/a b/x 1 2 3', 'pnpm-store/line\nbreak', 'pnpm-store/-rf', 'pnpm-store/kept'];
  names.forEach((n, i) => {
    writeFileSync(join(cache, n), Buffer.alloc(100 * 1024, i));
    const when = new Date(Date.now() - (10 - i) * 3600_000);
    utimesSync(join(cache, n), when, when);
  });
  // A quota of 150 KiB: the three least recently used go, the newest stays.
  expect(await enforceCacheQuota(cache, 150 * 1024)).toBeGreaterThanOrEqual(300 * 1024);
  expect(names.map((n) => existsSync(join(cache, n)))).toEqual([false, false, false, true]);
});

it('trims a cache without following a link a sandboxed command put in place of a listed directory', async () => {
  const root = mkdtempSync(join(tmpdir(), 'cache-'));
  const cache = join(root, 'cache');
  const host = join(root, 'host');
  mkdirSync(join(cache, 'go', 'build', '00'), { recursive: true });
  mkdirSync(host);
  writeFileSync(join(cache, 'go', 'build', '00', 'entry'), 'cached');
  writeFileSync(join(host, 'entry'), 'the worker host file');
  // As listed: a file of the cache. Removed.
  await unlinkBelow(cache, 'go/build/00/entry');
  expect(existsSync(join(cache, 'go', 'build', '00', 'entry'))).toBe(false);
  // After the listing, the directory became a link to a host directory holding a file of that name.
  rmSync(join(cache, 'go', 'build', '00'), { recursive: true });
  symlinkSync(host, join(cache, 'go', 'build', '00'));
  await expect(unlinkBelow(cache, 'go/build/00/entry')).rejects.toThrow();
  expect(readFileSync(join(host, 'entry'), 'utf8')).toBe('the worker host file');
  // The link itself is a file of the cache: removable.
  await unlinkBelow(cache, 'go/build/00');
  expect(existsSync(join(cache, 'go', 'build', '00'))).toBe(false);
  await expect(unlinkBelow(cache, '../host/entry')).rejects.toThrow(/not a path below the root/);
  expect(existsSync(join(host, 'entry'))).toBe(true);
});

it.skipIf(process.getuid?.() !== 0)("gives a run's sandbox area a disk of its own: writes beyond it fail, the worker's disk is untouched", async () => {
  const ws = mkdtempSync(join(tmpdir(), 'quota-'));
  const paths = runPaths(ws, 'acme', 'run-quota');
  mkdirSync(paths.box, { recursive: true });
  expect(await mountRunDisk(paths, 16, join(ws, 'disks'))).toBe(true);
  try {
    const big = spawnSync('sh', ['-c', `head -c 40000000 /dev/zero > ${join(paths.box, 'fill')}`], { encoding: 'utf8' });
    expect(big.status).not.toBe(0);
    expect(big.stderr).toMatch(/No space left on device/);
    expect(statfsSync(paths.box).blocks * statfsSync(paths.box).bsize).toBeLessThan(17 * 1024 * 1024);
    // After a restart of the machine the disk is mounted again, with what the run had written.
    rmSync(join(paths.box, 'fill'));
    writeFileSync(join(paths.box, 'kept.txt'), 'still here\n');
    await unmountUnder(paths.runDir);
    expect(existsSync(join(paths.box, 'kept.txt'))).toBe(false);
    await remountRunDisk(paths);
    expect(readFileSync(join(paths.box, 'kept.txt'), 'utf8')).toBe('still here\n');
  } finally {
    await removeRun(paths);
  }
  expect(existsSync(paths.runDir)).toBe(false);
  expect(readFileSync('/proc/self/mounts', 'utf8')).not.toContain(paths.box);
});

describe('git left behind by a worker that died', () => {
  it('is killed when a worker starts; git of a live worker is left alone', async () => {
    // A process that is surely gone: a child that has exited.
    const gone = spawnSync('true').pid!;
    const orphan = spawn('sleep', ['60'], { env: { PATH: process.env.PATH, [WORKER_MARK]: String(gone) }, stdio: 'ignore' });
    const live = spawn('sleep', ['60'], { env: { PATH: process.env.PATH, [WORKER_MARK]: String(process.pid) }, stdio: 'ignore' });
    const exited = new Promise((r) => orphan.once('exit', r));
    try {
      expect(await killOrphanedGit()).toBeGreaterThanOrEqual(1);
      await exited;
      expect(orphan.signalCode).toBe('SIGKILL');
      expect(live.exitCode).toBeNull();
      expect(live.signalCode).toBeNull();
    } finally {
      orphan.kill('SIGKILL');
      live.kill('SIGKILL');
    }
  });

  it('dies with the worker: a git command in flight when the worker is SIGKILLed does not outlive it', async () => {
    // A stand-in for git that never ends, first on the PATH of a worker-like process that runs it.
    const dir = mkdtempSync(join(tmpdir(), 'orphan-git-'));
    const marker = join(dir, 'git.pid');
    writeFileSync(join(dir, 'git'), `#!/bin/sh\necho $$ > '${marker}'\nexec sleep 60\n`, { mode: 0o755 });
    const gitModule = new URL('../../src/activities/git.ts', import.meta.url).href;
    const worker = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', `import { workerGit } from '${gitModule}'; await workerGit('${dir}').raw(['fetch']);`],
      {
        env: { ...process.env, PATH: `${dir}:${process.env.PATH}` },
        stdio: 'ignore',
      },
    );
    try {
      const deadline = Date.now() + 30_000;
      while (!existsSync(marker) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const git = Number(readFileSync(marker, 'utf8'));
      expect(processAlive(git)).toBe(true);
      worker.kill('SIGKILL');
      for (const end = Date.now() + 5000; processAlive(git) && Date.now() < end;) await new Promise((r) => setTimeout(r, 50));
      expect(processAlive(git)).toBe(false);
    } finally {
      worker.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("a finished run's clean-up", () => {
  it('waits until the run releases it, runs once, and holds one per run', async () => {
    const cleanups = new HeldCleanups(60_000);
    const ran: string[] = [];
    cleanups.hold('r1', async () => void ran.push('r1 first'));
    cleanups.hold('r1', async () => void ran.push('r1 second'));
    cleanups.hold('r2', async () => void ran.push('r2'));
    expect(ran).toEqual([]);
    cleanups.release('r1');
    cleanups.release('r1');
    cleanups.release('unknown');
    expect(ran).toEqual(['r1 first']);
    cleanups.release('r2');
    expect(ran).toEqual(['r1 first', 'r2']);
  });

  it('runs on its own when nothing releases it in time, and a failing one is ignored', async () => {
    vi.useFakeTimers();
    try {
      const cleanups = new HeldCleanups(3000);
      const ran: string[] = [];
      cleanups.hold('r1', async () => void ran.push('r1'));
      cleanups.hold('r2', () => Promise.reject(new Error('umount failed')));
      await vi.advanceTimersByTimeAsync(2999);
      expect(ran).toEqual([]);
      await vi.advanceTimersByTimeAsync(1);
      expect(ran).toEqual(['r1']);
      cleanups.release('r1');
      expect(ran).toEqual(['r1']);
    } finally {
      vi.useRealTimers();
    }
  });
});

it('makes the disk template below a workspace that does not exist yet, without closing the workspace to the sandbox user', async () => {
  const root = mkdtempSync(join(tmpdir(), 'ws-'));
  const ws = join(root, 'workspaces');
  const dir = join(ws, 'disks');
  const template = await diskTemplate(dir, 8).catch((err: Error) => err);
  // Without mkfs.ext4 the template fails, but the directories are made as they would be.
  if (typeof template === 'string') expect(existsSync(template)).toBe(true);
  // The workspace as any directory the worker makes (the sandbox user passes through it); the templates its own.
  mkdirSync(join(root, 'other'));
  const mode = (p: string) => statSync(p).mode & 0o777;
  expect(mode(ws)).toBe(mode(join(root, 'other')));
  expect(mode(dir)).toBe(0o700);
});
