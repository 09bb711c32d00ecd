import type { PlanRepository, RunRepository } from '@ameide/db';
import type { RunLauncher } from '../temporal/facade.js';
import { codingRunInput } from './input.js';

/** Stale runs read per page. */
const PAGE = 100;

/**
 * Makes run start atomic in effect: `StartWorkflowRun` stores the run, then starts its workflow; a
 * service that stops in between leaves a QUEUED run with no workflow. Every pass, runs QUEUED for
 * longer than the grace period get their workflow started (idempotent: the workflow id is the run's,
 * and one that exists is left alone), or fail when their plan is gone. Safe on several replicas.
 */
export class RunReconciler {
  private timer: NodeJS.Timeout | undefined;
  private pass: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly runs: RunRepository,
    private readonly plans: PlanRepository,
    private readonly launcher: RunLauncher,
    private readonly graceMs: number,
  ) {}

  /** Runs one pass over every stale run; returns how many got their workflow started. */
  async reconcileOnce(now = new Date()): Promise<number> {
    const before = new Date(now.getTime() - this.graceMs);
    let started = 0;
    // Page by page. Runs merely waiting for a worker already have their workflow and cost one
    // idempotent start each; a run marked failed leaves the QUEUED set, so only kept runs advance the offset.
    for (let offset = 0; ;) {
      const page = await this.runs.listStale('RUN_STATUS_QUEUED', before, PAGE, offset);
      for (const run of page) {
        const plan = await this.plans.get(run.tenantId, run.planId);
        if (!plan) {
          await this.runs.setProgress(run.id, {
            status: 'RUN_STATUS_FAILED',
            finishedAt: new Date(),
            state: { ...run.state, error: 'its plan no longer exists' },
          });
          continue;
        }
        offset++;
        if (await this.launcher.startRun(run.workflowId, codingRunInput(run.id, plan))) started++;
      }
      if (page.length < PAGE) return started;
    }
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
