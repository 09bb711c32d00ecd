import type { PlanRepository, RunRepository, RunRow } from '@ameide/db';
import { workBranchName } from '@ameide/temporal';
import type { RunLauncher } from '../temporal/facade.js';
import { codingRunInput } from './input.js';

/**
 * One active run per work branch. Every run belongs to a lane: its repository and the branch it
 * pushes to (`<repo url>\n<branch>`). Only the lane's head, its oldest unfinished run, has a
 * workflow; the others stay QUEUED behind it and start, in order, as the runs ahead of them finish.
 * So a rerun builds on what the run before it pushed instead of racing it. Every step is idempotent
 * (starting a workflow that exists changes nothing), and the reconciler repeats it for any lane a
 * stopped service left waiting.
 */
export class RunLanes {
  constructor(
    private readonly runs: RunRepository,
    private readonly plans: PlanRepository,
    private readonly launcher: RunLauncher,
  ) {}

  /** Starts the workflow of the lane's head if it has none yet; returns whether one was started. */
  async advance(run: Pick<RunRow, 'tenantId' | 'branchKey'>): Promise<boolean> {
    if (!run.branchKey) return false;
    for (;;) {
      const head = await this.runs.laneHead(run.tenantId, run.branchKey);
      if (!head || head.status !== 'RUN_STATUS_QUEUED') return false;
      const started = await this.startHead(head);
      // A head whose plan is gone has failed: the next run moves up.
      if (started !== undefined) return started;
    }
  }

  /**
   * Starts a QUEUED run's workflow (idempotent): true when started now, false when it already had
   * one, undefined when its plan no longer exists and the run failed instead.
   */
  async startHead(run: RunRow): Promise<boolean | undefined> {
    const plan = await this.plans.get(run.tenantId, run.planId);
    if (!plan) {
      await this.runs.setProgress(run.id, { status: 'RUN_STATUS_FAILED', finishedAt: new Date(), state: { ...run.state, error: 'its plan no longer exists' } });
      return undefined;
    }
    return this.launcher.startRun(run.workflowId, codingRunInput(run.id, plan, run.annotations));
  }

  /** Whether `run` may execute now: it has no lane, or it is its lane's head. */
  async isHead(run: RunRow): Promise<boolean> {
    if (!run.branchKey) return true;
    return (await this.runs.laneHead(run.tenantId, run.branchKey))?.id === run.id;
  }
}

/** The lane of a run of `plan`: its repository URL and work branch. */
export function laneOf(input: ReturnType<typeof codingRunInput>): { branchKey: string; branch: string } {
  const branch = workBranchName(input.repo.branchPrefix, input.workItems[0]?.id, input.planId);
  return { branchKey: `${input.repo.repoUrl.trim()}\n${branch}`, branch };
}

/** The branch of a lane key. */
export function branchOfLane(branchKey: string | null): string {
  return branchKey?.slice(branchKey.lastIndexOf('\n') + 1) ?? '';
}
