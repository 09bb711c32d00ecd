import { ActivityFailure, ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { FollowupActivities, FollowupInput, FollowupResult } from '@ameide/temporal';

/** Why a delivery's last attempt failed, for its dead letter. */
function failureMessage(err: unknown): string {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure || cause instanceof Error) return cause.message;
  return String(cause);
}

/**
 * What follows an event of a run once the service stored it (see packages/temporal/src/followups.ts).
 * For `finished`: evidence, attestations, the Definition of Done and the impediment, in that order,
 * each retried until it succeeds (they only touch the service's database, which may be away for a
 * while); then, as for `preview_live`, the notifications: every webhook or e-mail delivery is tried
 * up to `delivery.maxAttempts` times with exponential backoff, then dead-lettered. Every activity is
 * idempotent on (run, effect): a replayed or retried step never makes a second row, message or delivery.
 */
export async function runFollowup(input: FollowupInput): Promise<FollowupResult> {
  const steps = proxyActivities<FollowupActivities>({
    taskQueue: input.activityQueue,
    // Database work of a few queries: a service that died mid-step has it retried on another within this.
    startToCloseTimeout: '30 seconds',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
  });
  const delivery = proxyActivities<Pick<FollowupActivities, 'deliverNotification'>>({
    taskQueue: input.activityQueue,
    // One attempt: a webhook answers or times out within 10 s, an SMTP server within 30 s.
    startToCloseTimeout: '45 seconds',
    retry: {
      maximumAttempts: input.delivery.maxAttempts,
      initialInterval: input.delivery.initialIntervalMs,
      maximumInterval: input.delivery.maximumIntervalMs,
      backoffCoefficient: 2,
    },
  });
  const step = { runId: input.runId, tenantId: input.tenantId };
  const result: FollowupResult = { deliveries: { delivered: 0, deadLettered: 0 } };
  if (input.event === 'finished') {
    result.evidence = (await steps.packageEvidence(step)).evidence;
    result.attestations = (await steps.attestRun(step)).attestations;
    result.doneMet = (await steps.evaluateDone(step)).met;
    result.impedimentId = (await steps.raiseImpediment(step)).impedimentId;
  }
  const { deliveryIds } = await steps.prepareNotifications({ ...step, event: input.event });
  await Promise.all(
    deliveryIds.map(async (deliveryId) => {
      try {
        await delivery.deliverNotification({ deliveryId });
        result.deliveries.delivered++;
      } catch (err) {
        await steps.deadLetterNotification({ deliveryId, error: failureMessage(err) });
        result.deliveries.deadLettered++;
      }
    }),
  );
  return result;
}
