import { randomUUID } from 'node:crypto';
import { create, fromJson, type JsonObject } from '@bufbuild/protobuf';
import { backlogV1, MethodologyContextSchema, Trigger, WorkItemSchema } from '@ameide/contracts';
import {
  DefinitionRepository,
  PlanApprovalRepository,
  PlanRepository,
  RunRepository,
  WorkItemRepository,
  type Db,
  type PlanRow,
  type RunRow,
} from '@ameide/db';
import { workflowIdForRun, type CodingRunInput, type WorkItemChange } from '@ameide/temporal';
import { Planner } from '../handlers/plans.js';
import { codingRunInput } from '../runs/input.js';
import { laneOf } from '../runs/lanes.js';
import type { RunLauncher } from '../temporal/facade.js';

/** The idempotency key of the run automation starts for a work item revision. */
export const autoRequestId = (itemId: string, revision: number) => `auto:${itemId}@${revision}`;

/**
 * Auto-plan and auto-run, exactly once per triggering revision. A work item revision that reaches
 * its profile's trigger state meeting its DoR is recorded as the item's `trigger_revision` by the
 * same statement that stores it. This procedure then, in ONE transaction under the item's advisory
 * lock: makes the plan (the item's next plan version, trigger AUTO), adds the run to its branch's
 * lane (request id `auto:<item>@<revision>`), cancels runs of earlier revisions still waiting in
 * the lane (newest revision wins), and records that the revision was handled. Nothing of it exists
 * unless all of it does, and a second caller (another replica, the reconciler, a redelivery) finds
 * the revision handled. The workflow is started after the commit; the reconciler starts it if the
 * service stops in between. Returns the run, when one was made now.
 */
export class BacklogAutomation {
  constructor(
    private readonly db: Db,
    private readonly launcher: RunLauncher,
  ) {}

  async trigger(tenantId: string, itemId: string): Promise<RunRow | undefined> {
    const made = await this.db.transaction(async (tx) => {
      const t = tx as unknown as Db;
      const items = new WorkItemRepository(t);
      await items.lock(tenantId, itemId);
      const item = await items.get(tenantId, itemId);
      if (!item || item.triggerRevision === null || (item.triggeredRevision ?? 0) >= item.triggerRevision) return undefined;
      const revision = item.triggerRevision;
      const spec = fromJson(backlogV1.WorkItemSpecSchema, item.spec as JsonObject, { ignoreUnknownFields: true });
      const runs = new RunRepository(t);
      const planner = new Planner(new DefinitionRepository(t), new PlanRepository(t));
      const plan = await planner.createPlan(
        tenantId,
        {
          definition: spec.definition,
          workItems: [
            create(WorkItemSchema, {
              id: item.id,
              title: spec.title,
              description: spec.description,
              acceptanceCriteria: spec.acceptanceCriteria,
              contextLinks: spec.contextLinks,
            }),
          ],
          methodology: create(MethodologyContextSchema, {
            profile: item.profile,
            timeboxIds: spec.timeboxIds,
            goalIds: spec.goalIds,
            elementIds: spec.elementIds,
            workItemIds: [item.id],
          }),
          trigger: Trigger.AUTO,
          annotations: { 'ameide.dev/work-item-revision': String(revision) },
        },
        { id: item.id, revision },
      );
      const approvals = new PlanApprovalRepository(t);
      const readiness = fromJson(backlogV1.ReadinessSchema, item.readiness as JsonObject, { ignoreUnknownFields: true });
      if (readiness.approvalRequired) {
        // The gate: the plan waits for a person; a plan of an earlier revision still waiting is superseded.
        for (const older of await approvals.pending(tenantId, item.id)) {
          await approvals.set(tenantId, older.id, { state: 'APPROVAL_STATE_REJECTED', reason: `superseded by revision ${revision}` }, 'APPROVAL_STATE_PENDING');
        }
        await approvals.set(tenantId, plan.id, { state: 'APPROVAL_STATE_PENDING' });
        await items.markTriggered(tenantId, item.id, revision, plan.id, null);
        return undefined;
      }
      const { row, head, input } = await addRun(t, plan, item.id, revision, item.readyAt);
      await items.markTriggered(tenantId, item.id, revision, plan.id, row.id);
      return { row, startNow: head.id === row.id, input };
    });
    return made && this.start(made);
  }

  /**
   * Approves a plan that waits for approval and adds its run (in one transaction with the
   * decision, under the item's lock); the run starts when it heads its lane. Undefined when the plan
   * is not waiting (approved, rejected or superseded already, or never gated).
   */
  async approve(tenantId: string, planId: string, by: string, reason: string): Promise<{ plan: PlanRow; run: RunRow } | undefined> {
    const made = await this.db.transaction(async (tx) => {
      const t = tx as unknown as Db;
      const plan = await new PlanRepository(t).get(tenantId, planId);
      if (!plan?.workItemId) return undefined;
      const items = new WorkItemRepository(t);
      await items.lock(tenantId, plan.workItemId);
      const decided = await new PlanApprovalRepository(t).set(
        tenantId,
        planId,
        { state: 'APPROVAL_STATE_APPROVED', decidedBy: by, decideTime: new Date().toISOString(), reason },
        'APPROVAL_STATE_PENDING',
      );
      if (!decided) return undefined;
      const item = await items.get(tenantId, plan.workItemId);
      const run = await addRun(t, decided, plan.workItemId, plan.workItemRevision ?? 0, item?.readyAt ?? null);
      await items.setRun(tenantId, plan.workItemId, plan.id, run.row.id);
      return { ...run, plan: decided, startNow: run.head.id === run.row.id };
    });
    if (!made) return undefined;
    return { plan: made.plan, run: await this.start(made) };
  }

  /** Starts the workflow of a run automation made, when it heads its lane (the reconciler otherwise, or later). */
  private async start(made: { row: RunRow; startNow: boolean; input: CodingRunInput }): Promise<RunRow> {
    if (made.startNow) {
      await this.launcher.startRun(made.row.workflowId, made.input).catch((err: Error) => {
        console.warn(`run ${made.row.id} stays queued until Temporal answers: ${err.message}`);
      });
    }
    return made.row;
  }

  /**
   * Records a work item's change of state in the history of its current run's workflow (a signal),
   * so operators read it in the Web UI beside the run. Best effort: a run that ended is left alone.
   */
  async recordChange(runId: string, change: WorkItemChange): Promise<void> {
    await this.launcher.signalWorkItemChange(workflowIdForRun(runId), change).catch((err: Error) => {
      console.warn(`could not record work item ${change.workItemId}'s change in run ${runId}: ${err.message}`);
    });
  }

  /** Rejects a plan that waits for approval; undefined when it is not waiting. */
  async reject(tenantId: string, planId: string, by: string, reason: string): Promise<PlanRow | undefined> {
    return new PlanApprovalRepository(this.db).set(
      tenantId,
      planId,
      { state: 'APPROVAL_STATE_REJECTED', decidedBy: by, decideTime: new Date().toISOString(), reason },
      'APPROVAL_STATE_PENDING',
    );
  }

  /** A work item removed from the backlog: its runs still waiting (not started) are cancelled. */
  async cancelWaiting(tenantId: string, itemId: string, why: string): Promise<number> {
    return this.db.transaction(async (tx) => {
      const runs = new RunRepository(tx as unknown as Db);
      let cancelled = 0;
      for (const waiting of await runs.waitingAutoRuns(tenantId, itemId)) {
        if (waiting.branchKey) {
          await runs.lockLane(tenantId, waiting.branchKey);
          if ((await runs.laneHeadLocked(tenantId, waiting.branchKey))?.id === waiting.id) continue;
        }
        if (await runs.finishIfUnfinished(waiting.id, { status: 'RUN_STATUS_CANCELLED', finishedAt: new Date(), state: { ...waiting.state, error: why } }))
          cancelled++;
      }
      return cancelled;
    });
  }
}

/**
 * Adds the run of a plan automation made to its branch's lane (request id `auto:<item>@<revision>`),
 * and cancels runs of earlier revisions still waiting in that lane (newest revision wins; the lane's
 * lock is held until the caller's transaction ends, so its head cannot change meanwhile).
 */
async function addRun(t: Db, plan: PlanRow, itemId: string, revision: number, readyAt: Date | null) {
  const runs = new RunRepository(t);
  const runId = randomUUID();
  const input = codingRunInput(runId, plan);
  const { row, head } = await runs.insertInLane({
    id: runId,
    tenantId: plan.tenantId,
    planId: plan.id,
    planVersion: plan.version,
    definitionId: plan.definitionId,
    workflowId: workflowIdForRun(runId),
    status: 'RUN_STATUS_QUEUED',
    phase: 'PHASE_UNSPECIFIED',
    spec: { definitionName: plan.spec.definitionName ?? '', methodology: plan.spec.methodology ?? {}, workItemIds: [itemId], trigger: 'TRIGGER_AUTO' },
    state: { phases: [] },
    annotations: {},
    branchKey: laneOf(input).branchKey,
    requestId: autoRequestId(itemId, revision),
    readyAt,
  });
  for (const waiting of await runs.waitingAutoRuns(plan.tenantId, itemId)) {
    if (waiting.id === row.id || waiting.id === head.id) continue;
    await runs.finishIfUnfinished(waiting.id, {
      status: 'RUN_STATUS_CANCELLED',
      finishedAt: new Date(),
      state: { ...waiting.state, error: `superseded by revision ${revision} of work item ${itemId}` },
    });
  }
  return { row, head, input };
}
