/**
 * The lifetime of a run's local preview, as a workflow of its own (id `preview-<runId>`, started by
 * the run's preview phase): a durable timer until the preview's TTL, cut short to a grace period when
 * a newer preview of the same work item goes live. Then the worker that holds the preview stops it
 * and the preview router drops its routes. Workflow code (deterministic).
 */
import { condition, defineSignal, proxyActivities, setHandler } from '@temporalio/workflow';
import { PREVIEW_LOST_SIGNAL, PREVIEW_SUPERSEDED_SIGNAL, type PreviewWorkflowInput } from '@ameide/temporal';
import type { Activities } from '../activities/index.js';
import { errorMessage } from './run.js';

/** A newer preview of the same work item is live (sent by the service when it registers one). */
export const previewSuperseded = defineSignal(PREVIEW_SUPERSEDED_SIGNAL);
/** The preview's process is gone (its worker stopped it, e.g. on restart): stop waiting. */
export const previewLost = defineSignal<[string?]>(PREVIEW_LOST_SIGNAL);

export async function runPreview(input: PreviewWorkflowInput): Promise<{ reason: string }> {
  let superseded = false;
  let lost: string | undefined;
  setHandler(previewSuperseded, () => void (superseded = true));
  setHandler(previewLost, (why) => void (lost = why || 'the preview process is gone'));
  const expiresAt = Date.parse(input.expireTime);
  const left = () => Math.max(0, expiresAt - Date.now());

  let reason = 'expired';
  if (await condition(() => superseded || lost !== undefined, left())) {
    if (lost === undefined) {
      // A newer preview took the alias: this one keeps answering on its own URL for the grace period,
      // or until its TTL if that comes first.
      const graceMs = input.graceSeconds * 1000;
      const expiresFirst = graceMs >= left();
      const lostMeanwhile = Math.min(graceMs, left()) > 0 && (await condition(() => lost !== undefined, Math.min(graceMs, left())));
      reason = lostMeanwhile ? lost! : expiresFirst ? 'expired' : 'superseded by a newer preview of its work item';
    } else {
      reason = lost;
    }
  }
  // Only the worker that holds the process can stop it: its own task queue. A worker that never comes
  // back cannot; then the route is dropped without it.
  const { stopPreview } = proxyActivities<Activities>({
    taskQueue: input.stopQueue,
    scheduleToCloseTimeout: '1h',
    startToCloseTimeout: '2m',
    retry: { initialInterval: '1s', maximumInterval: '1m' },
  });
  const { markPreviewStopped } = proxyActivities<Activities>({
    startToCloseTimeout: '15s',
    retry: { initialInterval: '1s', maximumInterval: '30s' },
  });
  try {
    await stopPreview({ runId: input.runId, tenantId: input.tenantId, reason });
  } catch (err) {
    await markPreviewStopped({ runId: input.runId, reason: `${reason}; its worker did not stop it: ${errorMessage(err)}` });
  }
  return { reason };
}
