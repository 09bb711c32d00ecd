import { randomUUID } from 'node:crypto';
import { Client } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { workerWarmUp } from './workflow/warm-up.js';

/** How long a worker waits for its warm-up before it goes on without it (Temporal slow or away). */
const WARM_UP_TIMEOUT_MS = 10_000;

/**
 * Runs the worker's warm-up workflow (workflow/warm-up.ts) on its task queue and waits for it, at
 * most `timeoutMs`: call it once the worker polls. The worker's one use of a Temporal client: it
 * starts this workflow and nothing else (runs are the service's to start). Never fails: says what
 * the warm-up did, or why the worker goes on without it.
 */
export async function warmUpWorker(
  connection: NativeConnection,
  o: { namespace: string; taskQueue: string; identity: string; timeoutMs?: number },
): Promise<string> {
  const started = Date.now();
  const timeoutMs = o.timeoutMs ?? WARM_UP_TIMEOUT_MS;
  const client = new Client({ connection, namespace: o.namespace });
  let timer: NodeJS.Timeout | undefined;
  try {
    const handle = await client.workflow.start(workerWarmUp, {
      taskQueue: o.taskQueue,
      workflowId: `worker-warm-up-${o.identity}-${randomUUID()}`,
      // Left behind by a worker gone before it ran, it ends on its own.
      workflowExecutionTimeout: '1m',
      staticSummary: `warm-up of worker ${o.identity}`,
    });
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000}s`)), timeoutMs);
    });
    const r = await Promise.race([handle.result(), timedOut]);
    return `warmed up in ${Date.now() - started} ms (${r.service}; ${r.disk})`;
  } catch (err) {
    return `warm-up skipped: ${(err as Error).message}`;
  } finally {
    clearTimeout(timer);
  }
}
