import type { PlanRepository, RunRepository, RunRow, WorkItemRepository } from '@ameide/db';
import type { BacklogAutomation } from '../backlog/automation.js';
import type { Followups } from '../governance/followups.js';
import type { RunLauncher } from '../temporal/facade.js';
import { RunLanes } from './lanes.js';
import { observeRun } from './observe.js';

/** Stale runs read per page. */
const PAGE = 100;

/**
 * Makes run start atomic in effect: `StartWorkflowRun` stores the run, then starts its workflow; a
 * service that stops in between leaves a QUEUED run with no workflow. Every pass, runs QUEUED for
 * longer than the grace period get their workflow started when they head their branch's lane
 * (idempotent: the workflow id is the run's, and one that exists is left alone), or fail when their
 * plan is gone. A lane whose head finished while the service was away moves on here. Runs RUNNING
 * for longer than the grace period are read from Temporal: a workflow that closed without the
 * service hearing the end (terminated or timed out in Temporal) settles its run. Safe on several replicas.
 */
export class RunReconciler {
  private timer: NodeJS.Timeout | undefined;
  private pass: Promise<unknown> = Promise.resolve();

  private readonly lanes: RunLanes;

  constructor(
    private readonly runs: RunRepository,
    plans: PlanRepository,
    private readonly launcher: RunLauncher,
    private readonly graceMs: number,
    /** Work items whose triggering revision still lacks its plan and run (the service stopped half-way). */
    private readonly backlog?: { items: WorkItemRepository; automation: BacklogAutomation },
    /** Follow-ups (evidence, notifications, …) whose workflow a stopped service or an unreachable Temporal left unstarted. */
    private readonly followups?: Followups,
  ) {
    this.lanes = new RunLanes(runs, plans, launcher);
  }

  /** Runs one pass over every stale run; returns how many got their workflow started. */
  async reconcileOnce(now = new Date()): Promise<number> {
    const before = new Date(now.getTime() - this.graceMs);
    let started = 0;
    // Page by page. Runs merely waiting for a worker already have their workflow and cost one
    // idempotent start each; runs queued behind another run of their branch wait for it. A run marked
    // failed leaves the QUEUED set, so only kept runs advance the offset.
    for (let offset = 0; ;) {
      const page = await this.runs.listStale('RUN_STATUS_QUEUED', before, PAGE, offset);
      for (const run of page) {
        const head = await this.lanes.isHead(run);
        const result = head ? await this.lanes.startHead(run) : false;
        if (result === undefined) {
          await this.lanes.advance(run);
          continue;
        }
        offset++;
        if (result) started++;
        // Its workflow existed already: one that closed unheard settles the run.
        else if (head) await this.settle(run);
      }
      if (page.length < PAGE) break;
    }
    // Work item revisions that triggered but whose plan and run were not made (idempotent: at most one each).
    if (this.backlog) {
      for (const item of await this.backlog.items.pendingTriggers(PAGE)) {
        await this.backlog.automation.trigger(item.tenantId, item.id).catch((err: Error) => console.warn(`work item ${item.id}: ${err.message}`));
      }
    }
    // Runs whose workflow closed without the service hearing the end (terminated in Temporal, say).
    for (let offset = 0; ;) {
      const page = await this.runs.listStale('RUN_STATUS_RUNNING', before, PAGE, offset);
      for (const run of page) if (!(await this.settle(run))) offset++;
      if (page.length < PAGE) break;
    }
    // Runs that ended (also those settled just now) whose follow-up has not started.
    await this.followups?.drain(PAGE);
    return started;
  }

  /** Settles a run from its workflow if that has closed; returns whether it did. */
  private async settle(run: RunRow): Promise<boolean> {
    const seen = await observeRun(run, { runs: this.runs, launcher: this.launcher, lanes: this.lanes });
    return seen.row.status !== run.status;
  }

  /** Reconciles now and then every `intervalMs`; a failed pass (Temporal or Postgres away) is retried at the next. */
  start(intervalMs: number): void {
    const tick = () => {
      this.pass = this.reconcileOnce().catch((err: Error) => console.warn(`run reconciler: ${err.message}`));
    };
    tick();
    this.timer = setInterval(tick, intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.pass;
  }
}
