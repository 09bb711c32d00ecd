import { Client, Connection, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry';
import type { SearchAttributePair } from '@temporalio/common';
import type { TemporalConfig } from '@ameide/config';
import { CODING_AGENT_RUN_WORKFLOW, SA, type CodingRunInput } from '@ameide/temporal';
import { UnavailableError } from '../errors.js';

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
   * Starts `coding-run-<runId>` with the methodology context as memo and typed search attributes.
   * Idempotent: a workflow that already exists for the run is left as it is (returns false).
   */
  async startRun(workflowId: string, input: CodingRunInput): Promise<boolean> {
    const m = input.methodology;
    const attrs: SearchAttributePair[] = [
      { key: SA.tenantId, value: input.tenantId },
      { key: SA.definitionId, value: input.definitionId },
      { key: SA.trigger, value: input.trigger },
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
      await this.client.workflow.start(CODING_AGENT_RUN_WORKFLOW, {
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
      });
      return true;
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) return false;
      throw new UnavailableError(`could not start the run on Temporal: ${(err as Error).message}`);
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

  async close(): Promise<void> {
    await this.connection.close();
  }
}

/** What the handlers need from Temporal; tests of pure handler logic can use the real facade. */
export type RunLauncher = Pick<TemporalFacade, 'startRun' | 'cancelRun'>;
