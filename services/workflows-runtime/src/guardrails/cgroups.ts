import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Limits of one command's cgroup. */
export interface CgroupLimits {
  /** Most processes (and threads) the command may have at once: per run, whatever the tenant runs elsewhere. */
  maxProcesses: number;
  /** CPU time per wall-clock second, in CPUs (1 = one core's worth). */
  cpus: number;
}

/** A cgroup one command runs in; created before it starts, emptied and removed when it ends. */
export interface CommandCgroup {
  /** The `cgroup.procs` files the command's first process writes itself into. */
  procs: string[];
  /** SIGKILLs every process still in the cgroup, until none is left. */
  kill(): Promise<void>;
  /** Kills what is left and removes the cgroup directories. */
  remove(): Promise<void>;
}

const ROOT = '/sys/fs/cgroup';

type Layout = { version: 1; pids: string; cpu: string } | { version: 2; base: string };

let layout: Promise<Layout | undefined> | undefined;

/**
 * Finds where this worker may create cgroups: cgroup v2 (a unified hierarchy with the pids and cpu
 * controllers delegated to an `ameide` subtree) or v1 (separate pids and cpu hierarchies). Undefined
 * when neither is writable, e.g. in an unprivileged container; the sandbox then falls back to a
 * per-user process limit and no CPU limit.
 */
function detect(): Promise<Layout | undefined> {
  layout ??= (async (): Promise<Layout | undefined> => {
    try {
      if (existsSync(join(ROOT, 'cgroup.controllers'))) {
        const base = join(ROOT, 'ameide');
        await writeFile(join(ROOT, 'cgroup.subtree_control'), '+pids +cpu');
        await mkdir(base, { recursive: true });
        await writeFile(join(base, 'cgroup.subtree_control'), '+pids +cpu');
        return { version: 2, base };
      }
      const pids = join(ROOT, 'pids', 'ameide');
      const cpu = join(ROOT, 'cpu', 'ameide');
      if (!existsSync(join(ROOT, 'pids')) || !existsSync(join(ROOT, 'cpu'))) return undefined;
      await mkdir(pids, { recursive: true });
      await mkdir(cpu, { recursive: true });
      return { version: 1, pids, cpu };
    } catch {
      return undefined;
    }
  })();
  return layout;
}

async function killAll(procsFile: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const pids = (await readFile(procsFile, 'utf8').catch(() => '')).split('\n').filter(Boolean).map(Number);
    if (!pids.length) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone already */
      }
    }
    // Killed processes are gone within a millisecond or two: look again soon, then every 10 ms.
    await new Promise((r) => setTimeout(r, Math.min(10, 1 << i)));
  }
}

/**
 * Creates a cgroup for one command with the given limits, or returns undefined when this worker
 * cannot create cgroups. `command` must be unique among this process's running commands (run id +
 * step + time); the cgroup's name also carries this process's pid.
 */
export async function createCommandCgroup(command: string, limits: CgroupLimits): Promise<CommandCgroup | undefined> {
  const l = await detect();
  const name = `w${process.pid}-${command}`;
  if (!l) return undefined;
  // A one-second period: the average stays at `cpus`, but the short multi-threaded bursts of tool
  // start-up (node, npm) are not throttled as they would be with the default 100 ms.
  const period = 1_000_000;
  const quota = Math.max(1000, Math.round(limits.cpus * period));
  try {
    if (l.version === 2) {
      const dir = join(l.base, name);
      await mkdir(dir);
      await writeFile(join(dir, 'pids.max'), String(limits.maxProcesses));
      await writeFile(join(dir, 'cpu.max'), `${quota} ${period}`);
      const procs = join(dir, 'cgroup.procs');
      return cgroupHandle([procs], [dir]);
    }
    const pids = join(l.pids, name);
    const cpu = join(l.cpu, name);
    await mkdir(pids);
    await mkdir(cpu);
    await writeFile(join(pids, 'pids.max'), String(limits.maxProcesses));
    await writeFile(join(cpu, 'cpu.cfs_period_us'), String(period));
    await writeFile(join(cpu, 'cpu.cfs_quota_us'), String(quota));
    return cgroupHandle([join(pids, 'cgroup.procs'), join(cpu, 'cgroup.procs')], [pids, cpu]);
  } catch {
    return undefined;
  }
}

function cgroupHandle(procs: string[], dirs: string[]): CommandCgroup {
  const kill = async () => {
    for (const p of procs) await killAll(p);
  };
  return {
    procs,
    kill,
    async remove() {
      await kill();
      for (const d of dirs) await rmdir(d).catch(() => undefined);
    },
  };
}

/**
 * On worker start: empties and removes the cgroups of commands that worker processes now gone left
 * behind (they died before removing them). Sandboxed commands died with them (bubblewrap's
 * --die-with-parent); a command without a sandbox may not have, and is killed here. Names start
 * with the creating process's pid, so the cgroups of live workers are left alone.
 */
export async function pruneCommandCgroups(): Promise<void> {
  await removeCgroups((name) => {
    const pid = Number(/^w(\d+)-/.exec(name)?.[1]);
    return Boolean(pid) && !processAlive(pid);
  });
}

/**
 * Kills every process of the commands whose name contains `fragment` (e.g. `-<run id>-agent-`),
 * whichever worker process started them, and removes their cgroups: before a retried attempt, so
 * that nothing of an earlier attempt of the same step is still running.
 */
export async function killCommandCgroups(fragment: string): Promise<void> {
  await removeCgroups((name) => name.includes(fragment));
}

async function removeCgroups(match: (name: string) => boolean): Promise<void> {
  const l = await detect();
  if (!l) return;
  for (const base of l.version === 2 ? [l.base] : [l.pids, l.cpu]) {
    for (const entry of await readdir(base, { withFileTypes: true }).catch(() => [])) {
      if (!entry.isDirectory() || !match(entry.name)) continue;
      await killAll(join(base, entry.name, 'cgroup.procs'));
      await rmdir(join(base, entry.name)).catch(() => undefined);
    }
  }
}

/** Whether a process with this pid exists (one of another user's counts). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
