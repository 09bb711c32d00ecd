import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';

export function isRoot(): boolean {
  return userInfo().uid === 0;
}

/** How a child ended. */
export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** "exit code 1", "killed by SIGKILL", or (spawning failed) "it could not be started". */
export function describeExit(e: ExitInfo): string {
  return e.signal ? `killed by ${e.signal}` : e.code === null ? 'it could not be started' : `exit code ${e.code}`;
}

/** A child process of the stack with its log file. */
export interface ManagedProcess {
  child: ChildProcess;
  pid: number;
  logFile: string;
  /** Size of the log file when the child started: its own output begins there. */
  logOffset: number;
  alive(): boolean;
  /** Settles when the child has exited, however that happened. */
  exited: Promise<ExitInfo>;
  stop(): Promise<void>;
}

/** Starts a long-running child with output appended to `logFile`; `stop()` sends SIGTERM, then SIGKILL. */
export function startProcess(cmd: string, args: string[], opts: { env: Record<string, string>; logFile: string; cwd?: string }): ManagedProcess {
  const fd = openSync(opts.logFile, 'a');
  const logOffset = statSync(opts.logFile).size;
  const child = spawn(cmd, args, { env: opts.env, cwd: opts.cwd, stdio: ['ignore', fd, fd], detached: true });
  closeSync(fd);
  let exited = false;
  const exitedP = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = true;
      resolve({ code, signal });
    });
    // A command that cannot be spawned at all emits only 'error'.
    child.once('error', () => {
      exited = true;
      resolve({ code: null, signal: null });
    });
  });
  return {
    child,
    pid: child.pid ?? -1,
    logFile: opts.logFile,
    logOffset,
    alive: () => !exited,
    exited: exitedP,
    stop: async () => {
      if (exited) return;
      const kill = setTimeout(() => signalGroup(child.pid, 'SIGKILL'), 5000);
      signalGroup(child.pid, 'SIGTERM');
      await exitedP;
      clearTimeout(kill);
    },
  };
}

/** Signals a child's whole process group (children are started detached, so each leads its own). */
function signalGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(-pid, signal);
  } catch {
    /* gone */
  }
}

/** What a child wrote to its log since `offset` (at most the last 64 KiB). */
export function logSince(logFile: string, offset: number): string {
  try {
    const size = statSync(logFile).size;
    const from = Math.max(offset, size - 65536);
    if (size <= from) return '';
    const buf = Buffer.alloc(size - from);
    const fd = openSync(logFile, 'r');
    try {
      readSync(fd, buf, 0, buf.length, from);
    } finally {
      closeSync(fd);
    }
    return buf.toString('utf8');
  } catch {
    return '';
  }
}

/** The last line of `text` matching `pattern`, trimmed. */
export function lastLine(text: string, pattern: RegExp): string | undefined {
  return text
    .split('\n')
    .filter((l) => pattern.test(l))
    .at(-1)
    ?.trim();
}

/**
 * The start time of a live process (in clock ticks since boot, from /proc), which tells it apart from
 * a later process that got the same PID; undefined when it is gone (or there is no /proc).
 */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (the command) is in parentheses and may hold spaces: count from after its end.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); field 22 (starttime) is fields[19].
    return fields[0] === 'Z' ? undefined : fields[19];
  } catch {
    return undefined;
  }
}
