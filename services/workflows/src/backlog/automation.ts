import { randomUUID } from 'node:crypto';
import { create, fromJson, type JsonObject } from '@bufbuild/protobuf';
import { backlogV1, MethodologyContextSchema, Trigger, WorkItemSchema } from '@ameide/contracts';
import { DefinitionRepository, PlanRepository, RunRepository, WorkItemRepository, type Db, type RunRow } from '@ameide/db';
import { workflowIdForRun } from '@ameide/temporal';
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
      const runId = randomUUID();
      const input = codingRunInput(runId, plan);
      const { row, head } = await runs.insertInLane({
        id: runId,
        tenantId,
        planId: plan.id,
        planVersion: plan.version,
        definitionId: plan.definitionId,
        workflowId: workflowIdForRun(runId),
        status: 'RUN_STATUS_QUEUED',
        phase: 'PHASE_UNSPECIFIED',
        spec: { definitionName: plan.spec.definitionName ?? '', methodology: plan.spec.methodology ?? {}, workItemIds: [item.id], trigger: 'TRIGGER_AUTO' },
        state: { phases: [] },
        annotations: {},
        branchKey: laneOf(input).branchKey,
        requestId: autoRequestId(item.id, revision),
        readyAt: item.readyAt,
      });
      // Newest revision wins: runs of earlier revisions still waiting behind the current one go.
      // (The lane's lock is held until this transaction ends, so the head cannot change meanwhile.)
      for (const waiting of await runs.waitingAutoRuns(tenantId, item.id)) {
        if (waiting.id === row.id || waiting.id === head.id) continue;
        await runs.finishIfUnfinished(waiting.id, {
          status: 'RUN_STATUS_CANCELLED',
          finishedAt: new Date(),
          state: { ...waiting.state, error: `superseded by revision ${revision} of work item ${item.id}` },
        });
      }
      await items.markTriggered(tenantId, item.id, revision, plan.id, row.id);
      return { row, startNow: head.id === row.id, input };
    });
    if (!made) return undefined;
    if (made.startNow) {
      await this.launcher.startRun(made.row.workflowId, made.input).catch((err: Error) => {
        console.warn(`run ${made.row.id} stays queued until Temporal answers: ${err.message}`);
      });
    }
    return made.row;
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
