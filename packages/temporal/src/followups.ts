/**
 * What follows an event of a run, after the service stored it: for `finished` (the run's final
 * status), its evidence, attestations, Definition of Done, impediment and notifications; for
 * `preview_live`, the notifications that the preview is up. One workflow per run and event
 * (`followupWorkflowId`: Temporal refuses a second start), run by the worker; its activities run on
 * the service's own task queue (`followupTaskQueue`), because only the service owns Postgres. Every
 * activity is idempotent on (run, effect), so a retried one changes nothing twice.
 */
export type FollowupEvent = 'finished' | 'preview_live';

/** The workflow type of a run's follow-up. */
export const RUN_FOLLOWUP_WORKFLOW = 'runFollowup';

export function followupWorkflowId(runId: string, event: FollowupEvent): string {
  return event === 'finished' ? `finalize-${runId}` : `announce-preview-${runId}`;
}

/** The task queue the workflow service serves the follow-up activities on. */
export function followupTaskQueue(taskQueue: string): string {
  return `${taskQueue}-governance`;
}

export interface FollowupInput {
  runId: string;
  tenantId: string;
  event: FollowupEvent;
  /** Where the activities run: `followupTaskQueue` of the service's task queue. */
  activityQueue: string;
  /** Retries of one webhook or e-mail delivery before it is dead-lettered. */
  delivery: { maxAttempts: number; initialIntervalMs: number; maximumIntervalMs: number };
}

/** What the follow-up did, as its workflow result (for operators in the Web UI). */
export interface FollowupResult {
  evidence?: number;
  attestations?: number;
  doneMet?: boolean;
  impedimentId?: string;
  deliveries: { delivered: number; deadLettered: number };
}

export interface FollowupStep {
  runId: string;
  tenantId: string;
}

/** The service's follow-up activities (implemented in services/workflows/src/governance/). */
export interface FollowupActivities {
  /** Registers the run's evidence (its summary's files and their digests) and links it into the methodology graph. */
  packageEvidence(i: FollowupStep): Promise<{ evidence: number }>;
  /** Signs the run's attestations (SLSA provenance, test result) over its evidence. */
  attestRun(i: FollowupStep): Promise<{ attestations: number }>;
  /** Evaluates the profile's Definition of Done and stores the checklist with the run. */
  evaluateDone(i: FollowupStep): Promise<{ met: boolean }>;
  /** Raises the run's impediment when automation could not finish (once per cause). */
  raiseImpediment(i: FollowupStep): Promise<{ impedimentId?: string }>;
  /** Creates the notifications of the event (in-app) and their webhook/e-mail deliveries; returns those still to deliver. */
  prepareNotifications(i: FollowupStep & { event: FollowupEvent }): Promise<{ deliveryIds: string[] }>;
  /** One attempt of one delivery; throws when it fails (a non-retryable failure when it never can succeed). */
  deliverNotification(i: { deliveryId: string }): Promise<void>;
  /** Gives a delivery up after its last attempt. */
  deadLetterNotification(i: { deliveryId: string; error: string }): Promise<void>;
}
