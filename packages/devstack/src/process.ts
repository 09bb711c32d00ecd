import { spawn, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { userInfo } from 'node:os';

export function isRoot(): boolean {
  return userInfo().uid === 0;
}

/** A child process of the stack with its log file. */
export interface ManagedProcess {
  child: ChildProcess;
  alive(): boolean;
  stop(): Promise<void>;
}

/** Starts a long-running child with output appended to `logFile`; `stop()` sends SIGTERM, then SIGKILL. */
export function startProcess(cmd: string, args: string[], opts: { env: Record<string, string>; logFile: string; cwd?: string }): ManagedProcess {
  const fd = openSync(opts.logFile, 'a');
  const child = spawn(cmd, args, { env: opts.env, cwd: opts.cwd, stdio: ['ignore', fd, fd], detached: true });
  let exited = false;
  child.once('exit', () => (exited = true));
  return {
    child,
    alive: () => !exited,
    stop: () =>
      new Promise<void>((resolve) => {
        if (exited) return resolve();
        const kill = setTimeout(() => {
          try {
            process.kill(-child.pid!, 'SIGKILL');
          } catch {
            /* gone */
          }
        }, 5000);
        child.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        try {
          process.kill(-child.pid!, 'SIGTERM');
        } catch {
          resolve();
        }
      }),
  };
}
