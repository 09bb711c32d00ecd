import { Client, Connection, WorkflowExecutionAlreadyStartedError, WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry';
import { ApplicationFailure, CancelledFailure, optionalTsToDate, TerminatedFailure, TimeoutFailure, type SearchAttributePair } from '@temporalio/common';
import type { TemporalConfig } from '@ameide/config';
import {
  CODING_AGENT_RUN_WORKFLOW,
  followupWorkflowId,
  RUN_FOLLOWUP_WORKFLOW,
  type FollowupInput,
  PREVIEW_LOST_SIGNAL,
  PREVIEW_SUPERSEDED_SIGNAL,
  previewWorkflowId,
  SA,
  WORK_ITEM_CHANGED_SIGNAL,
  type CodingRunInput,
  type CodingRunResult,
  type RunStatusName,
  type RunSummaryResult,
  type WorkItemChange,
} from '@ameide/temporal';
import { UnavailableError } from '../errors.js';
import { followupMetadata, runMetadata } from './metadata.js';

/** How long starting a workflow may take before the caller is answered (the run then waits for the reconciler). */
const START_TIMEOUT_MS = 5000;

/** The one place the service talks to Temporal. */
export class TemporalFacade {
  private constructor(
    private readonly client: Client,
    private readonly connection: Connection,
    private readonly taskQueue: string,
  ) {}

  /** Connects and checks that the namespace answers; fails with one line naming TEMPORAL_ADDRESS. */
  static async connect(cfg: TemporalConfig): Promise<TemporalFacade> {
    let connection: Connection;
    try {
      connection = await Connection.connect({ address: cfg.address, connectTimeout: '5s' });
      await connection.workflowService.describeNamespace({ namespace: cfg.namespace });
    } catch (err) {
      throw Object.assign(
        new Error(
          `cannot reach Temporal namespace "${cfg.namespace}" at ${cfg.address} (${(err as Error).message}); check TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE`,
        ),
        { expected: true },
      );
    }
    const client = new Client({
      connection,
      namespace: cfg.namespace,
      interceptors: { workflow: [new OpenTelemetryWorkflowClientInterceptor()] },
    });
    return new TemporalFacade(client, connection, cfg.taskQueue);
  }

  /**
   * Starts `coding-run-<runId>` with the methodology context as memo, typed search attributes and
   * user metadata (the Web UI's summary: work item, definition, trigger).
   * Idempotent: a workflow that already exists for the run is left as it is (returns false).
   */
  async startRun(workflowId: string, input: CodingRunInput): Promise<boolean> {
    const m = input.methodology;
    const attrs: SearchAttributePair[] = [
      { key: SA.tenantId, value: input.tenantId },
      { key: SA.definitionId, value: input.definitionId },
      ...(input.definitionName ? [{ key: SA.definitionName, value: input.definitionName }] : []),
      { key: SA.trigger, value: input.trigger },
      ...(m.profile ? [{ key: SA.profile, value: m.profile }] : []),
      { key: SA.runStatus, value: 'queued' },
      { key: SA.runPhase, value: 'pending' },
    ];
    const lists: Array<[typeof SA.workItemIds, string[]]> = [
      [SA.workItemIds, m.workItemIds],
      [SA.timeboxIds, m.timeboxIds],
      [SA.goalIds, m.goalIds],
    ];
    for (const [key, value] of lists) if (value.length) attrs.push({ key, value });
    if (m.elementIds.length) attrs.push({ key: SA.elementIds, value: m.elementIds.join(' ') });
    try {
      // Bounded: a Temporal that does not answer leaves the run to the reconciler instead of holding the caller.
      await this.connection.withDeadline(Date.now() + START_TIMEOUT_MS, () =>
        this.client.workflow.start(CODING_AGENT_RUN_WORKFLOW, {
          taskQueue: this.taskQueue,
          workflowId,
          args: [input],
          workflowIdConflictPolicy: 'FAIL',
          workflowIdReusePolicy: 'REJECT_DUPLICATE',
          memo: {
            methodology: m,
            definitionName: input.definitionName,
            planId: input.planId,
            workItems: input.workItems.map((w) => ({ id: w.id, title: w.title })),
          },
          typedSearchAttributes: attrs,
          ...runMetadata(input),
        }),
      );
      return true;
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) return false;
      throw new UnavailableError(`could not start the run on Temporal: ${(err as Error).message}`);
    }
  }

  /**
   * Starts the follow-up workflow of a run's event (`finalize-<runId>`, `announce-preview-<runId>`)
   * on the workers' task queue. Exactly once: a follow-up that exists, running or closed, is left as
   * it is (Temporal refuses a second start of the id). `workItemIds` (the run's) go into its summary.
   */
  async startFollowup(input: FollowupInput, workItemIds: readonly string[] = []): Promise<void> {
    try {
      await this.connection.withDeadline(Date.now() + START_TIMEOUT_MS, () =>
        this.client.workflow.start(RUN_FOLLOWUP_WORKFLOW, {
          taskQueue: this.taskQueue,
          workflowId: followupWorkflowId(input.runId, input.event),
          args: [input],
          workflowIdConflictPolicy: 'FAIL',
          workflowIdReusePolicy: 'REJECT_DUPLICATE',
          typedSearchAttributes: [{ key: SA.tenantId, value: input.tenantId }],
          ...followupMetadata(input, workItemIds),
        }),
      );
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) return;
      throw new UnavailableError(`could not start the follow-up of run ${input.runId} on Temporal: ${(err as Error).message}`);
    }
  }

  /**
   * Requests cancellation; a workflow that already finished is not an error. Returns false when
   * Temporal has no such workflow (a run whose start never reached it).
   */
  async cancelRun(workflowId: string): Promise<boolean> {
    try {
      await this.client.workflow.getHandle(workflowId).cancel();
      return true;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return false;
      throw new UnavailableError(`could not cancel the run on Temporal: ${(err as Error).message}`);
    }
  }

  /** Tells a run's workflow that its work item changed (it lands in the workflow's history); false when the workflow is gone or closed. */
  async signalWorkItemChange(workflowId: string, change: WorkItemChange): Promise<boolean> {
    try {
      await this.connection.withDeadline(Date.now() + START_TIMEOUT_MS, () =>
        this.client.workflow.getHandle(workflowId).signal(WORK_ITEM_CHANGED_SIGNAL, change),
      );
      return true;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return false;
      throw new UnavailableError(`could not signal the run's workflow: ${(err as Error).message}`);
    }
  }

  /**
   * Tells run `runId`'s preview workflow (`preview-<runId>`) that a newer preview of its work item,
   * run `byRunId`'s, is live: signal PREVIEW_SUPERSEDED_SIGNAL with `{ supersededBy: byRunId }`.
   * False when there is no such workflow or it has closed (a `command` preview has none).
   */
  signalPreviewSuperseded(runId: string, byRunId: string): Promise<boolean> {
    return this.signalPreview(runId, PREVIEW_SUPERSEDED_SIGNAL, { supersededBy: byRunId });
  }

  /**
   * Tells a run's preview workflow that its preview stopped without it (its worker restarted, its
   * server exited): it ends at once instead of at its TTL. False when there is no such workflow open.
   */
  signalPreviewLost(runId: string, reason: string): Promise<boolean> {
    return this.signalPreview(runId, PREVIEW_LOST_SIGNAL, reason);
  }

  private async signalPreview(runId: string, signal: string, arg: unknown): Promise<boolean> {
    try {
      await this.connection.withDeadline(Date.now() + START_TIMEOUT_MS, () => this.client.workflow.getHandle(previewWorkflowId(runId)).signal(signal, arg));
      return true;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return false;
      throw new UnavailableError(`could not signal the preview's workflow: ${(err as Error).message}`);
    }
  }

  /**
   * What Temporal knows about a run's workflow now: who executes it while it is open, how it ended
   * once it is closed; undefined when Temporal has no such workflow.
   */
  async inspectRun(workflowId: string): Promise<WorkflowInspection | undefined> {
    const handle = this.client.workflow.getHandle(workflowId);
    let d;
    try {
      d = await handle.describe();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return undefined;
      throw new UnavailableError(`could not read the run's workflow from Temporal: ${(err as Error).message}`);
    }
    if (d.status.name === 'RUNNING') return { open: true, execution: executionOf(d.raw, new Date()) };
    try {
      const result = (await handle.result()) as CodingRunResult;
      return { open: false, status: result.status, summary: result.summary };
    } catch (err) {
      const cause = err instanceof WorkflowFailedError ? err.cause : err;
      if (cause instanceof ApplicationFailure && cause.type === 'RunFailed') {
        const details = cause.details?.[0] as { status?: RunStatusName; summary?: RunSummaryResult } | undefined;
        return { open: false, status: details?.status ?? 'failed', summary: details?.summary, error: cause.message };
      }
      if (cause instanceof CancelledFailure) return { open: false, status: 'cancelled', error: 'run cancelled' };
      if (cause instanceof TerminatedFailure)
        return { open: false, status: 'failed', error: `the run's workflow was terminated in Temporal: ${cause.message}` };
      if (cause instanceof TimeoutFailure) return { open: false, status: 'failed', error: "the run's workflow timed out in Temporal" };
      return { open: false, status: 'failed', error: `the run's workflow ended ${d.status.name.toLowerCase()}: ${(cause as Error)?.message ?? ''}` };
    }
  }

  async close(): Promise<void> {
    await this.connection.close();
  }
}

/** What the handlers need from Temporal; tests of pure handler logic can use the real facade. */
export type RunLauncher = Pick<
  TemporalFacade,
  'startRun' | 'cancelRun' | 'inspectRun' | 'signalWorkItemChange' | 'signalPreviewSuperseded' | 'signalPreviewLost' | 'startFollowup'
>;

/** Who executes an open workflow (see RunExecution in the API). */
export interface ExecutionInfo {
  state: 'executing' | 'waiting_for_worker' | 'retrying';
  step: string;
  attempt: number;
  worker?: string;
  lastHeartbeat?: Date;
  waitingSince?: Date;
  lastFailure?: string;
}

/** An open workflow with who executes it, or how a closed one ended. */
export type WorkflowInspection = { open: true; execution?: ExecutionInfo } | { open: false; status: RunStatusName; summary?: RunSummaryResult; error?: string };

type Describe = Awaited<ReturnType<ReturnType<Client['workflow']['getHandle']>['describe']>>['raw'];

/**
 * The step an open workflow is at: its pending activity (other than status delivery when there is
 * one), else its pending workflow task. STARTED means a worker holds it; SCHEDULED means it waits:
 * for a worker when it is due, for its retry when its next attempt lies ahead.
 */
function executionOf(raw: Describe, now: Date): ExecutionInfo | undefined {
  const acts = raw.pendingActivities ?? [];
  const act = acts.find((a) => a.activityType?.name !== 'recordStatus') ?? acts[0];
  if (act) {
    const base = {
      step: act.activityType?.name ?? '',
      attempt: act.attempt ?? 1,
      worker: act.lastWorkerIdentity || undefined,
      lastFailure: act.lastFailure?.message || undefined,
    };
    if (act.state === 2 /* STARTED */) return { state: 'executing', ...base, lastHeartbeat: optionalTsToDate(act.lastHeartbeatTime ?? act.lastStartedTime) };
    const due = optionalTsToDate(act.scheduledTime);
    if (due && due > now) return { state: 'retrying', ...base, waitingSince: optionalTsToDate(act.lastAttemptCompleteTime) ?? now };
    return { state: 'waiting_for_worker', ...base, waitingSince: due };
  }
  const task = raw.pendingWorkflowTask;
  if (!task) return undefined;
  const since = optionalTsToDate(task.originalScheduledTime ?? task.scheduledTime);
  return task.state === 2 /* STARTED */
    ? { state: 'executing', step: 'workflow task', attempt: task.attempt ?? 1, lastHeartbeat: optionalTsToDate(task.startedTime) }
    : { state: 'waiting_for_worker', step: 'workflow task', attempt: task.attempt ?? 1, waitingSince: since };
}
