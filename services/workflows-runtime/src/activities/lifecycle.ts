import { execFile, spawn } from 'node:child_process';
import { constants, existsSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, statfs, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { ApplicationFailure } from '@temporalio/common';
import { toolEnv } from '@ameide/config';
import type { RunPaths } from './workspace.js';

const execFileAsync = promisify(execFile);

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

/** Mount points under `dir` (from the kernel's table), deepest first. */
async function mountsUnder(dir: string): Promise<string[]> {
  const table = await readFile('/proc/self/mounts', 'utf8').catch(() => '');
  const decode = (s: string) => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
  return table
    .split('\n')
    .map((l) => decode(l.split(' ')[1] ?? ''))
    .filter((m) => m === dir || m.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length);
}

const tools = () => toolEnv({ PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' });

/**
 * A formatted, empty ext4 image of `sizeMb` (sparse: a few MB on disk), made once per size in
 * `dir` and copied for each run, which is cheaper than formatting per run. The worker makes it when
 * it starts (warm-up.ts), so that its first run does not wait for it.
 */
export async function diskTemplate(dir: string, sizeMb: number): Promise<string> {
  const template = join(dir, `ext4-${sizeMb}mb.img`);
  if (existsSync(template)) return template;
  // The directories above it as any other of the workspace (the sandbox user passes through them), it alone 0700.
  await mkdir(dirname(dir), { recursive: true });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const partial = `${template}.${process.pid}.${Date.now()}`;
  const fh = await open(partial, 'w', 0o600);
  await fh.truncate(sizeMb * 1024 * 1024);
  await fh.close();
  await execFileAsync('mkfs.ext4', ['-q', '-F', '-m', '0', '-E', 'lazy_itable_init=1,lazy_journal_init=1', partial], { env: tools() });
  await rename(partial, template);
  return template;
}

/** Where the worker keeps its disk image templates. */
export const diskTemplateDir = (workspaceDir: string) => join(workspaceDir, 'disks');

/** Whether runs get a disk of their own here: a size is set and the worker may mount (root). */
export const runDisks = (sizeMb: number) => sizeMb > 0 && process.getuid?.() === 0;

/**
 * Gives the run's sandbox area (`box`) a disk of its own: a sparse ext4 image of `sizeMb`, mounted
 * (nosuid, nodev) over `box`, so the worktree and the phases' HOME and temp dirs cannot fill the
 * worker's disk. Returns false when this worker cannot mount (no root, no loop devices): the run
 * then goes on without a quota and only the disk floor and the file-size limit protect the disk.
 */
export async function mountRunDisk(paths: RunPaths, sizeMb: number, templateDir: string): Promise<boolean> {
  if (!runDisks(sizeMb)) return false;
  const image = join(paths.runDir, 'box.img');
  try {
    const template = await diskTemplate(templateDir, sizeMb);
    await execFileAsync('cp', ['--sparse=always', template, image], { env: tools() });
    await execFileAsync('mount', ['-o', 'loop,nosuid,nodev,noatime', image, paths.box], { env: tools() });
    await rm(join(paths.box, 'lost+found'), { recursive: true, force: true });
    return true;
  } catch {
    await rm(image, { force: true });
    return false;
  }
}

/**
 * Mounts the run's disk again when its image is there but not mounted (the machine restarted while
 * the run was in flight): a retried phase then finds the checkout where it left it.
 */
export async function remountRunDisk(paths: RunPaths): Promise<void> {
  const image = join(paths.runDir, 'box.img');
  if (!existsSync(image) || (await mountsUnder(paths.box)).includes(paths.box)) return;
  await execFileAsync('mount', ['-o', 'loop,nosuid,nodev,noatime', image, paths.box], { env: tools() });
}

/** Unmounts whatever is mounted under `dir` (a run's disk), lazily if it is still busy. */
export async function unmountUnder(dir: string): Promise<void> {
  for (const m of await mountsUnder(dir)) {
    await execFileAsync('umount', [m], { env: tools() })
      .catch(() => execFileAsync('umount', ['-l', m], { env: tools() }))
      .catch(() => undefined);
  }
}

/** How long the clean-up of a finished run waits for its last status updates to leave this worker, at most. */
export const CLEANUP_HOLD_MS = 3000;

/**
 * Clean-ups of finished runs (their workspace, the tenant's cache quota), each held until the run's
 * last status updates have left this worker (`release`), or `holdMs` at most (they may leave through
 * another worker, or never come). Each runs once; a failed one is left to the workspace TTL.
 */
export class HeldCleanups {
  private readonly held = new Map<string, () => void>();

  constructor(private readonly holdMs = CLEANUP_HOLD_MS) {}

  /** Holds `cleanup` of `runId`; when one of that run is held already (an earlier attempt's), that one stays and this one is dropped. */
  hold(runId: string, cleanup: () => Promise<void>): void {
    if (this.held.has(runId)) return;
    const timer = setTimeout(() => this.release(runId), this.holdMs);
    this.held.set(runId, () => {
      clearTimeout(timer);
      void cleanup().catch(() => undefined);
    });
  }

  /** Starts the held clean-up of `runId`, if any. */
  release(runId: string): void {
    const cleanup = this.held.get(runId);
    this.held.delete(runId);
    cleanup?.();
  }
}

/** Removes a run's workspace (its transcripts are already stored): its disk is unmounted first. */
export async function removeRun(paths: RunPaths): Promise<void> {
  await unmountUnder(paths.runDir);
  await rm(paths.runDir, { recursive: true, force: true });
}

/**
 * On worker start: removes run directories older than the TTL (kept after failures for a person to
 * look at), and the mirrors of earlier versions, which sandboxes could write and so are not trusted.
 * Returns how many runs were removed.
 */
export async function pruneStaleWorkspaces(workspaceDir: string, ttlHours: number, now = Date.now()): Promise<number> {
  let removed = 0;
  const runsRoot = join(workspaceDir, 'runs');
  for (const tenant of existsSync(runsRoot) ? await readdir(runsRoot) : []) {
    for (const run of await readdir(join(runsRoot, tenant))) {
      const dir = join(runsRoot, tenant, run);
      const age = now - (await stat(dir)).mtimeMs;
      if (age > ttlHours * 3600_000) {
        await unmountUnder(dir);
        await rm(dir, { recursive: true, force: true });
        removed++;
      }
    }
  }
  await rm(join(workspaceDir, 'mirrors'), { recursive: true, force: true });
  return removed;
}

/**
 * Removes the file `rel` below `root` without following a link anywhere below `root`, whatever
 * happened there since it was listed: every directory is opened through its already opened parent
 * (`/proc/self/fd/<fd>/<name>`, links refused), and the file is removed from the last one. Sandboxed
 * commands write the caches and may swap a directory for a link to a host path at any time; the
 * worker (root) would otherwise delete the host file of that name.
 */
export async function unlinkBelow(root: string, rel: string): Promise<void> {
  const parts = rel.split('/');
  const name = parts.pop()!;
  if (!name || parts.some((p) => !p || p === '.' || p === '..') || name === '..') throw new Error(`not a path below the root: ${rel}`);
  const flags = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
  let dir: FileHandle = await open(root, flags);
  try {
    for (const p of parts) {
      const next = await open(`/proc/self/fd/${dir.fd}/${p}`, flags);
      await dir.close();
      dir = next;
    }
    await unlink(`/proc/self/fd/${dir.fd}/${name}`);
  } finally {
    await dir.close();
  }
}

/**
 * Every file under `root` (not directories; links are listed, never followed) with its disk usage and
 * when it was last used (access or modification, whichever is later), listed by find(1) in one
 * process: a cache may hold hundreds of thousands of files, and a walk in JavaScript costs about
 * 50 µs of CPU a file (a second for 20,000, after every run). A file that goes while find lists (a
 * run of the tenant using its cache) only makes find say so: what it listed holds.
 */
async function listFiles(root: string): Promise<Array<{ rel: string; size: number; used: number }>> {
  const out = await new Promise<Buffer>((resolve, reject) => {
    const child = spawn('find', [root, '-mindepth', '1', '!', '-type', 'd', '-printf', '%b %s %A@ %T@ %P\\0'], {
      env: tools(),
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.on('error', reject);
    child.on('close', () => resolve(Buffer.concat(chunks)));
  });
  const files = [];
  for (const record of out.toString('utf8').split('\0')) {
    const m = /^(\d+) (\d+) ([\d.]+) ([\d.]+) (.+)$/s.exec(record);
    if (m) files.push({ rel: m[5]!, size: Number(m[1]) * 512 || Number(m[2]), used: Math.max(Number(m[3]), Number(m[4])) * 1000 });
  }
  return files;
}

/**
 * Keeps a tenant's package caches under `quotaBytes`: when they are larger, the least recently used
 * files (by access or modification time, whichever is later) are removed until they take at most
 * 90% of the quota (with {@link unlinkBelow}: the listing does not follow links either). Package
 * managers re-download what is gone. Returns the bytes removed.
 */
export async function enforceCacheQuota(cacheRoot: string, quotaBytes: number): Promise<number> {
  const files = await listFiles(cacheRoot);
  let total = files.reduce((n, f) => n + f.size, 0);
  if (total <= quotaBytes) return 0;
  let freed = 0;
  files.sort((a, b) => a.used - b.used);
  for (const f of files) {
    if (total <= quotaBytes * 0.9) break;
    await unlinkBelow(cacheRoot, f.rel).catch(() => undefined);
    total -= f.size;
    freed += f.size;
  }
  return freed;
}
