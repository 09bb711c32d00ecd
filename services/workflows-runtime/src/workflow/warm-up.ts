import { proxyLocalActivities } from '@temporalio/workflow';
import type { WarmUpActivities, WarmUpResult } from '../activities/index.js';

/**
 * A worker's warm-up, which the worker starts on its own task queue as it starts (worker.ts). The
 * first workflow task a worker handles costs several times a later one (its workflow sandbox's code
 * runs for the first time), and the first call to the service more than a later one: without it,
 * the first run after a start pays for both. The local activity runs on the worker that handles
 * this task, so it warms that worker's own paths.
 */
export async function workerWarmUp(): Promise<WarmUpResult> {
  const { warmUpWorker } = proxyLocalActivities<WarmUpActivities>({ startToCloseTimeout: '30s', retry: { maximumAttempts: 1 } });
  return warmUpWorker();
}
