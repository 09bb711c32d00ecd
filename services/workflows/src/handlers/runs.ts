import { randomUUID } from 'node:crypto';
import { create, fromJson, type JsonObject } from '@bufbuild/protobuf';
import type { SandboxPolicy } from '@ameide/config';
import { Code, ConnectError, type HandlerContext } from '@connectrpc/connect';
import {
  CancelWorkflowRunResponseSchema,
  DefinitionSpecSchema,
  GetWorkflowRunResponseSchema,
  ListWorkflowRunsResponseSchema,
  RecordStatusUpdateResponseSchema,
  RecordStatusUpdatesResponseSchema,
  RunStatus,
  RunView,
  RunStatusSchema,
  StartWorkflowRunResponseSchema,
  WatchWorkflowRunResponseSchema,
  type CancelWorkflowRunRequest,
  type GetWorkflowRunRequest,
  type ListWorkflowRunsRequest,
  type RecordStatusUpdateRequest,
  type RecordStatusUpdatesRequest,
  type StatusUpdate,
  type StartWorkflowRunRequest,
  type WatchWorkflowRunRequest,
  type RunExecution,
  type WatchWorkflowRunResponse,
} from '@ameide/contracts';
import { isUniqueViolation, type PlanRepository, type RunRepository, type RunRow } from '@ameide/db';
import { workflowIdForRun } from '@ameide/temporal';
import { FailedPreconditionError, InvalidFieldError, NotFoundError, toConnectError } from '../errors.js';
import { runToProto, statusUpdateToJson, statusUpdateToProto } from '../mapping.js';
import { foldStatusUpdate, isTerminal, statusUpdateChange } from '../runs/fold.js';
import { codingRunInput } from '../runs/input.js';
import { laneOf, type RunLanes } from '../runs/lanes.js';
import { executionToProto, observeRun } from '../runs/observe.js';
import { decodeRunPageToken, encodeRunPageToken } from '../runs/page-token.js';
import type { RunNotifier } from '../runs/notifier.js';
import type { Followups } from '../governance/followups.js';
import type { RunLauncher } from '../temporal/facade.js';
import { checkSandboxPolicy, isUuid, pageSize, requireId, resolveId } from '../validation.js';
import { ALL_TENANTS } from '../auth.js';
import { MAX_STATUS_UPDATES_PER_CALL } from '../limits.js';
import { handle, principalOf, requireWorkerFor } from './context.js';
import type { Planner } from './plans.js';

const WATCH_POLL_MS = 1000;
const WATCH_PAGE = 500;
/** How long GetWorkflowRun waits for Temporal to say who executes a run. */
const OBSERVE_MS = 2000;

/** The promise's value, or undefined when it fails or takes longer than `ms`. */
async function withinMs<T>(ms: number, p: Promise<T>): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  try {
    return await Promise.race([p.catch(() => undefined), late]);
  } finally {
    clearTimeout(timer);
  }
}

function runStatusJsonName(s: RunStatus): string {
  return RunStatusSchema.values.find((v) => v.number === s)?.name ?? '';
}

/** Refuses a caller without the worker's service credential. */
function requireWorkerCredential(ctx: HandlerContext): void {
  if (!principalOf(ctx).service) throw new ConnectError('only the worker service credential may record status updates', Code.PermissionDenied);
}

/** Run RPCs: start, read, list, cancel, watch, and the worker's status updates. */
export class RunHandlers {
  constructor(
    private readonly planner: Planner,
    private readonly plans: PlanRepository,
    private readonly runs: RunRepository,
    private readonly launcher: RunLauncher,
    private readonly notifier: RunNotifier,
    private readonly policy: SandboxPolicy,
    private readonly lanes: RunLanes,
    /** Starts what follows a run's end and its preview going live (the reconciler retries what this misses). */
    private readonly followups?: Followups,
  ) {}

  /** Starts what follows a run's events (see storeStatusUpdates); never throws: the reconciler retries. */
  private async afterEvents(runId: string, events: string[]): Promise<void> {
    try {
      const row = await this.runs.get(undefined, runId);
      if (!row) return;
      if (events.includes('preview_live')) await this.followups?.startQuietly(row, 'preview_live');
      if (events.includes('finished')) await this.runFinished(row);
    } catch (err) {
      console.warn(`what follows run ${runId}'s ${events.join(' and ')} waits for the reconciler: ${(err as Error).message}`);
    }
  }

  /** After a run finished: the next run of its branch may start (the reconciler retries on failure). */
  private async runFinished(row: RunRow): Promise<void> {
    this.notifier.publish(row.id);
    await this.followups?.startQuietly(row, 'finished');
    await this.lanes.advance(row).catch((err: Error) => console.warn(`could not start the next run of ${row.branchKey?.replace('\n', ' ')}: ${err.message}`));
  }

  /** The tenant's run an `id` field names: its id or a short id (a unique prefix). */
  private async runOf(tenantId: string, id: string): Promise<RunRow> {
    const full = await resolveId(this.runs, 'run', tenantId, 'id', id);
    const row = full ? await this.runs.get(tenantId, full) : undefined;
    if (!row) throw new NotFoundError('run', id);
    return row;
  }

  startWorkflowRun = (req: StartWorkflowRunRequest, ctx: HandlerContext) => handle(() => this.start(principalOf(ctx).tenantId, req));

  /** StartWorkflowRun for a tenant (also used by the service itself, e.g. to rerun a run an impediment hands back to the agent). */
  start = async (tenantId: string, req: StartWorkflowRunRequest) => {
    // A repeated call (its answer was lost, say) gets the run the first call made.
    const earlier = req.requestId ? await this.runs.getByRequestId(tenantId, req.requestId) : undefined;
    if (earlier) return create(StartWorkflowRunResponseSchema, { run: runToProto(earlier, { queuedBehind: await this.queuedBehind(earlier) }) });
    let plan;
    if (req.planId) {
      const planId = await resolveId(this.plans, 'plan', tenantId, 'plan_id', req.planId);
      plan = planId ? await this.plans.get(tenantId, planId) : undefined;
      if (!plan) throw new NotFoundError('plan', req.planId);
    } else {
      if (!req.definition) throw new InvalidFieldError('plan_id', 'set plan_id, or definition to plan and run in one call');
      plan = await this.planner.createPlan(tenantId, req);
    }
    // A plan made before the operator tightened the policy does not run outside it.
    checkSandboxPolicy(fromJson(DefinitionSpecSchema, (plan.spec.repo ?? {}) as JsonObject, { ignoreUnknownFields: true }), this.policy, 'plan.spec.repo');
    const runId = randomUUID();
    const workflowId = workflowIdForRun(runId);
    const input = codingRunInput(runId, plan, req.annotations);
    const m = plan.spec.methodology ?? {};
    // The run joins its branch's lane; it executes now only if no earlier run of the branch is unfinished.
    let inserted;
    try {
      inserted = await this.runs.insertInLane({
        id: runId,
        tenantId,
        planId: plan.id,
        planVersion: plan.version,
        definitionId: plan.definitionId,
        workflowId,
        status: 'RUN_STATUS_QUEUED',
        phase: 'PHASE_UNSPECIFIED',
        spec: {
          definitionName: plan.spec.definitionName ?? '',
          methodology: m,
          workItemIds: m.workItemIds ?? [],
          trigger: plan.spec.trigger === 'TRIGGER_AUTO' ? 'TRIGGER_AUTO' : 'TRIGGER_MANUAL',
        },
        state: { phases: [] },
        annotations: req.annotations,
        branchKey: laneOf(input).branchKey,
        requestId: req.requestId || null,
      });
    } catch (err) {
      // The same key, sent twice at once: the other call made the run.
      const other = req.requestId && isUniqueViolation(err) ? await this.runs.getByRequestId(tenantId, req.requestId) : undefined;
      if (other) return create(StartWorkflowRunResponseSchema, { run: runToProto(other, { queuedBehind: await this.queuedBehind(other) }) });
      throw err;
    }
    const { row, head } = inserted;
    if (head.id !== runId) return create(StartWorkflowRunResponseSchema, { run: runToProto(row, { queuedBehind: head.id }) });
    try {
      await this.launcher.startRun(workflowId, input);
    } catch (err) {
      // Temporal is away or slow: the run is stored and stays QUEUED; the reconciler starts its
      // workflow once Temporal answers (every AMEIDE_RECONCILE_SECONDS). The call did its part.
      console.warn(`run ${runId} stays queued until Temporal answers: ${(err as Error).message}`);
    }
    return create(StartWorkflowRunResponseSchema, { run: runToProto(row) });
  };

  /** The run a QUEUED run waits for (the head of its lane), when it waits for one. */
  private async queuedBehind(row: RunRow): Promise<string | undefined> {
    if (row.status !== 'RUN_STATUS_QUEUED' || !row.branchKey) return undefined;
    const head = await this.runs.laneHead(row.tenantId, row.branchKey);
    return head && head.id !== row.id ? head.id : undefined;
  }

  getWorkflowRun = (req: GetWorkflowRunRequest, ctx: HandlerContext) =>
    handle(async () => {
      let row = await this.runOf(principalOf(ctx).tenantId, req.id);
      const queuedBehind = await this.queuedBehind(row);
      let execution: RunExecution | undefined;
      if (!isTerminal(row.status) && !queuedBehind) {
        // Who executes it, from Temporal; without an answer in time, the stored run is the answer.
        const seen = await withinMs(
          OBSERVE_MS,
          observeRun(row, { runs: this.runs, launcher: this.launcher, lanes: this.lanes, onSettled: (r) => this.notifier.publish(r.id) }),
        );
        if (seen) {
          row = seen.row;
          execution = seen.execution && executionToProto(seen.execution);
        }
      }
      return create(GetWorkflowRunResponseSchema, { run: runToProto(row, { queuedBehind, execution }) });
    });

  listWorkflowRuns = (req: ListWorkflowRunsRequest, ctx: HandlerContext) =>
    handle(async () => {
      const { tenantId } = principalOf(ctx);
      const definitionId = req.definition ? (await this.planner.resolveDefinition(tenantId, req.definition)).id : undefined;
      const statuses = req.statuses.map((s, i) => {
        if (s === RunStatus.UNSPECIFIED) throw new InvalidFieldError(`statuses[${i}]`, 'must be a run status');
        return runStatusJsonName(s);
      });
      const filter = { tenantId, statuses, workItemId: req.workItemId || undefined, definitionId };
      const after = req.pageToken ? decodeRunPageToken(req.pageToken, filter) : undefined;
      const size = pageSize(req.pageSize);
      // One more than the page: whether there is a next page.
      const view = req.view === RunView.FULL ? 'full' : 'basic';
      const rows = await this.runs.list(tenantId, { ...filter, limit: size + 1, after, view });
      const page = rows.slice(0, size);
      const last = page.at(-1);
      return create(ListWorkflowRunsResponseSchema, {
        runs: page.map((r) => runToProto(r)),
        nextPageToken: rows.length > size && last ? encodeRunPageToken(last.listKey, filter) : '',
      });
    });

  cancelWorkflowRun = (req: CancelWorkflowRunRequest, ctx: HandlerContext) =>
    handle(async () => {
      const row = await this.runOf(principalOf(ctx).tenantId, req.id);
      if (isTerminal(row.status)) throw new FailedPreconditionError(`run ${row.id} already finished (${row.status.replace('RUN_STATUS_', '').toLowerCase()})`);
      if (!(await this.launcher.cancelRun(row.workflowId))) {
        // No workflow ever started for it (the service stopped between storing the run and starting
        // it): nothing runs, so the run is cancelled here and now.
        const cancelled = await this.runs.setProgress(row.id, {
          status: 'RUN_STATUS_CANCELLED',
          finishedAt: new Date(),
          state: { ...row.state, error: 'cancelled before it started' },
        });
        await this.runFinished(cancelled ?? row);
        return create(CancelWorkflowRunResponseSchema, { run: runToProto(cancelled ?? row) });
      }
      return create(CancelWorkflowRunResponseSchema, { run: runToProto(row) });
    });

  recordStatusUpdate = (req: RecordStatusUpdateRequest, ctx: HandlerContext) =>
    handle(async () => {
      requireWorkerCredential(ctx);
      if (!req.update) throw new InvalidFieldError('update', 'is required');
      const [duplicate] = await this.storeStatusUpdates(ctx, [req.update], () => 'update');
      return create(RecordStatusUpdateResponseSchema, { duplicate });
    });

  recordStatusUpdates = (req: RecordStatusUpdatesRequest, ctx: HandlerContext) =>
    handle(async () => {
      requireWorkerCredential(ctx);
      // More than MAX_STATUS_UPDATES_PER_CALL: refused before the handler (limits.ts).
      if (!req.updates.length) throw new InvalidFieldError('updates', `must hold 1 to ${MAX_STATUS_UPDATES_PER_CALL} updates of one run`);
      const duplicate = await this.storeStatusUpdates(ctx, req.updates, (i) => `updates[${i}]`);
      return create(RecordStatusUpdatesResponseSchema, { duplicate });
    });

  /**
   * RecordStatusUpdate(s): checks every update (`field(i)` names update i in a refusal) before any is
   * stored, then stores them in order (several in one transaction), each once per sequence, applied to
   * the run, its follow-ups queued; only for a run of the credential's tenant. Whether each was a
   * duplicate, in order.
   */
  private async storeStatusUpdates(ctx: HandlerContext, updates: StatusUpdate[], field: (i: number) => string): Promise<boolean[]> {
    const principal = principalOf(ctx);
    const runId = updates[0]!.runId;
    updates.forEach((u, i) => {
      if (u.sequence < 1n) throw new InvalidFieldError(`${field(i)}.sequence`, 'must be 1 or more');
      requireId(`${field(i)}.run_id`, u.runId);
      if (u.runId !== runId) throw new InvalidFieldError(`${field(i)}.run_id`, `must be the run id of the first update (${runId}): one run's updates a call`);
      if (i > 0 && u.sequence <= updates[i - 1]!.sequence) throw new InvalidFieldError(`${field(i)}.sequence`, 'must be greater than the one before');
    });
    if (!isUuid(runId)) throw new NotFoundError('run', runId);
    const scope = { id: runId, tenantId: principal.tenantId === ALL_TENANTS ? undefined : principal.tenantId };
    const stored = await this.runs.recordStatusUpdates(
      scope,
      updates.map((u) => {
        const json = statusUpdateToJson(u);
        return { sequence: Number(u.sequence), update: json, change: statusUpdateChange(json) };
      }),
      foldStatusUpdate,
    );
    if (!stored) throw new NotFoundError('run', runId);
    // A run of another tenant: refused (nothing was stored).
    requireWorkerFor(ctx, stored.tenantId, 'record status updates');
    if (stored.results.some((r) => !r.duplicate)) this.notifier.publish(runId);
    // Rare (a preview went live, the run ended): what follows (its follow-up workflow, the lane's next
    // run) starts after the answer, so the worker's next update never waits for Temporal. The
    // follow-up rows stored with the update keep it from being lost: the reconciler starts what a
    // service that stopped meanwhile left.
    const followups = [...new Set(stored.results.flatMap((r) => r.followups))];
    if (followups.length) void this.afterEvents(runId, followups);
    return stored.results.map((r) => r.duplicate);
  }

  /** Replays stored updates from `from_sequence`, then follows live; ends after the run's final update. */
  async *watchWorkflowRun(req: WatchWorkflowRunRequest, ctx: HandlerContext): AsyncGenerator<WatchWorkflowRunResponse> {
    let run: RunRow;
    try {
      run = await this.runOf(principalOf(ctx).tenantId, req.id);
    } catch (err) {
      throw toConnectError(err);
    }
    try {
      yield* this.follow(run, Math.max(1, Number(req.fromSequence)), ctx.signal);
    } catch (err) {
      throw toConnectError(err);
    }
  }

  private async *follow(run: RunRow, from: number, signal: AbortSignal): AsyncGenerator<WatchWorkflowRunResponse> {
    let next = from;
    while (!signal.aborted) {
      const rows = await this.runs.statusUpdatesFrom(run.id, next, WATCH_PAGE);
      let gap = false;
      for (const row of rows) {
        if (row.sequence !== next) {
          // A gap means an update is still in flight: wait for it rather than skip it. Once the run
          // has ended nothing more can arrive (updates are delivered in order, the final one last), so
          // a gap left then is an update the service refused for good: skip it.
          if (!isTerminal((await this.runs.get(undefined, run.id))!.status)) {
            gap = true;
            break;
          }
          next = row.sequence;
        }
        yield create(WatchWorkflowRunResponseSchema, { update: statusUpdateToProto(row) });
        next++;
      }
      if (rows.length === WATCH_PAGE && !gap) continue;
      const current = (await this.runs.get(undefined, run.id))!;
      if (isTerminal(current.status) && current.lastSequence < next) return;
      await this.notifier.wait(run.id, WATCH_POLL_MS, signal);
    }
  }
}
