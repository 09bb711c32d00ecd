import type { ServiceConfig } from '@ameide/config';
import type { RunRepository } from '@ameide/db';
import { followupTaskQueue, type FollowupEvent } from '@ameide/temporal';
import type { RunLauncher } from '../temporal/facade.js';

/**
 * Drains the follow-up outbox (`run_followups`): a run's final status or its preview going live is
 * stored together with a follow-up row in one transaction; this starts the row's workflow
 * (`runFollowup`, exactly once per run and event: Temporal refuses a second start of its id) and
 * marks the row started. Right after the event, and again from the reconciler for rows a stopped
 * service or an unreachable Temporal left pending.
 */
export class Followups {
  constructor(
    private readonly runs: RunRepository,
    private readonly launcher: Pick<RunLauncher, 'startFollowup'>,
    private readonly settings: { taskQueue: string; notifications: ServiceConfig['notifications'] },
  ) {}

  /** Starts the follow-up of one event; a failure leaves it pending for the reconciler. */
  async start(run: { id: string; tenantId: string; spec?: { workItemIds?: string[] } }, event: FollowupEvent): Promise<void> {
    const n = this.settings.notifications;
    // The run's work items name the follow-up in the Web UI (read when the caller has only the id).
    const spec = run.spec ?? (await this.runs.get(run.tenantId, run.id))?.spec;
    await this.launcher.startFollowup(
      {
        runId: run.id,
        tenantId: run.tenantId,
        event,
        activityQueue: followupTaskQueue(this.settings.taskQueue),
        delivery: { maxAttempts: n.maxAttempts, initialIntervalMs: n.retryInitialMs, maximumIntervalMs: n.retryMaxMs },
      },
      spec?.workItemIds ?? [],
    );
    await this.runs.followupStarted(run.id, event);
  }

  /** `start`, logging instead of throwing: the reconciler retries. */
  async startQuietly(run: { id: string; tenantId: string; spec?: { workItemIds?: string[] } }, event: FollowupEvent): Promise<void> {
    await this.start(run, event).catch((err: Error) => console.warn(`the ${event} follow-up of run ${run.id} waits for the reconciler: ${err.message}`));
  }

  /** Starts every pending follow-up; returns how many were started. */
  async drain(batch = 100): Promise<number> {
    let started = 0;
    for (;;) {
      const rows = await this.runs.pendingFollowups(batch);
      for (const row of rows) {
        await this.start({ id: row.runId, tenantId: row.tenantId }, row.event as FollowupEvent);
        started++;
      }
      if (rows.length < batch) return started;
    }
  }
}
