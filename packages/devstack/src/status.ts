import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { processStartTime } from './process.js';
import type { ChildStatus, StackFile } from './stack.js';

/** A stack's stack.json, if it has one. */
export function readStackFile(file: string): StackFile | undefined {
  if (!existsSync(file)) return undefined;
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as StackFile;
  // Files of earlier versions had no children.
  return { ...parsed, children: parsed.children ?? {} };
}

/** True while the process `pid` (started at `startTime`, when known) runs. */
export function processAlive(pid: number, startTime?: string): boolean {
  if (!(pid > 0)) return false;
  if (startTime !== undefined) return processStartTime(pid) === startTime;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** True while the stack's supervisor runs. */
export function supervisorAlive(info: StackFile): boolean {
  return processAlive(info.pid, info.supervisorStartTime);
}

export function supervisorLog(info: StackFile): string {
  return join(info.logs, 'supervisor.log');
}

/** Why a stack whose supervisor is gone (or giving up) is no longer running, in one line. */
export function describeGone(info: StackFile): string {
  if (info.ended) return `the stack stopped on its own at ${info.ended.at}: ${info.ended.reason} (log: ${supervisorLog(info)})`;
  return `the stack's supervisor (pid ${info.pid}) is gone without recording why (killed?) (log: ${supervisorLog(info)})`;
}

/** Waits until `pid` has exited, for at most `ms`; true if it did. */
export async function waitForExit(alive: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (alive()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

/**
 * Stops the children a vanished supervisor left running (only processes whose start time matches
 * the one recorded: never a later process that reuses a PID), newest first; returns what it stopped.
 */
export async function stopLeftovers(info: StackFile): Promise<string[]> {
  const stopped: string[] = [];
  for (const c of Object.values(info.children).reverse()) {
    if (!c.startTime || !processAlive(c.pid, c.startTime)) continue;
    signal(c, c.stopSignal);
    if (!(await waitForExit(() => processAlive(c.pid, c.startTime), 10_000))) signal(c, 'SIGKILL');
    stopped.push(`${c.what} (pid ${c.pid})`);
  }
  return stopped;
}

function signal(c: ChildStatus, sig: NodeJS.Signals): void {
  // Children started detached lead their own process group; Postgres is not, and is signalled alone.
  for (const target of [-c.pid, c.pid]) {
    try {
      process.kill(target, sig);
      return;
    } catch {
      /* not a group leader, or gone */
    }
  }
}

/** `pnpm stack status`: the supervisor and each child, one line each. */
export function formatStatus(info: StackFile): string {
  const supervised = !info.ended && supervisorAlive(info);
  const head = supervised ? `stack running (supervisor pid ${info.pid}; log: ${supervisorLog(info)})` : describeGone(info);
  const rows = Object.entries(info.children).map(([name, c]) => {
    // Without its supervisor, what stack.json says is only what it last saw.
    const state = supervised || c.state !== 'running' ? c.state : processAlive(c.pid, c.startTime) ? 'left running' : 'gone';
    const last = c.lastExit ? `; last exit: ${c.lastExit}` : '';
    return `  ${name.padEnd(10)} ${state.padEnd(12)} pid ${String(c.pid).padEnd(8)} since ${c.since}  restarts ${c.restarts}${last}  (log: ${c.log})`;
  });
  return [head, ...rows].join('\n');
}
