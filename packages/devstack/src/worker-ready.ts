import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describeExit, lastLine, logSince, type ManagedProcess } from './process.js';

const run = promisify(execFile);

/** What the worker prints when it starts polling (services/workflows-runtime/src/main.ts). */
const POLLING = /worker polling task queue "([^"]+)"/;

/** The task queue types a worker of runs polls: its workflows and its activities. */
const TYPES = ['workflow', 'activity'] as const;

/** Whether Temporal lists pollers of both types on `taskQueue` (through the Temporal CLI). */
export async function hasPollers(cli: string, address: string, namespace: string, taskQueue: string): Promise<boolean> {
  const { stdout } = await run(cli, ['task-queue', 'describe', '--task-queue', taskQueue, '--address', address, '--namespace', namespace, '-o', 'json'], {
    timeout: 10_000,
  });
  const pollers = (JSON.parse(stdout) as { pollers?: Array<{ taskQueueType?: string }> | null }).pollers ?? [];
  return TYPES.every((t) => pollers.some((p) => (p.taskQueueType ?? '').toLowerCase().includes(t)));
}

/**
 * Waits until the worker polls its task queue, so that the first run after `make up` does not wait
 * for it: its log says it started polling and, when the Temporal CLI is at hand, Temporal lists it
 * among the queue's workflow and activity pollers. Throws, naming the log, when it exits or takes
 * longer than `timeoutMs`.
 */
export async function waitForWorker(
  worker: ManagedProcess,
  opts: { logFile: string; timeoutMs: number; temporal?: { cli: string; address: string; namespace: string } },
): Promise<string> {
  const deadline = Date.now() + opts.timeoutMs;
  let exit: Awaited<ManagedProcess['exited']> | undefined;
  void worker.exited.then((e) => (exit = e));
  while (Date.now() < deadline) {
    if (exit) {
      const why = lastLine(logSince(opts.logFile, worker.logOffset), /error|fatal|cannot/i);
      throw Object.assign(new Error(`the worker exited before it polled (${describeExit(exit)})${why ? `: ${why}` : ''} (log: ${opts.logFile})`), {
        expected: true,
      });
    }
    const queue = POLLING.exec(logSince(opts.logFile, worker.logOffset))?.[1];
    if (queue !== undefined) {
      if (!opts.temporal) return queue;
      const t = opts.temporal;
      if (await hasPollers(t.cli, t.address, t.namespace, queue).catch(() => false)) return queue;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw Object.assign(new Error(`the worker did not poll its task queue within ${opts.timeoutMs / 1000}s (log: ${opts.logFile})`), { expected: true });
}
