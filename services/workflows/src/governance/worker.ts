import { NativeConnection, Runtime, Worker, makeTelemetryFilterString } from '@temporalio/worker';
import type { TemporalConfig } from '@ameide/config';
import { followupTaskQueue, type FollowupActivities } from '@ameide/temporal';

/** Temporal's own log lines: warnings and errors only, one line each (this worker has no workflows on purpose). */
const quietLogger = {
  log() {},
  trace() {},
  debug() {},
  info() {},
  warn(message: string) {
    if (!message.startsWith('No workflows registered')) console.warn(message);
  },
  error(message: string) {
    console.error(message);
  },
};

/** The service's Temporal worker: only the follow-up activities (no workflows), on the follow-up task queue. */
export interface FollowupWorker {
  stop(): Promise<void>;
}

/**
 * Serves the follow-up activities on `followupTaskQueue(taskQueue)`. This process owns Postgres, so
 * what follows a run (evidence, attestations, DoD, impediments, notifications) executes here while
 * Temporal keeps its progress: a service that dies mid-step has the step retried on the next one.
 */
export async function startFollowupWorker(cfg: TemporalConfig, activities: FollowupActivities): Promise<FollowupWorker> {
  try {
    Runtime.install({ logger: quietLogger, telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN' }) } } });
  } catch {
    /* installed already (tests start several services in one process) */
  }
  const connection = await NativeConnection.connect({ address: cfg.address });
  const worker = await Worker.create({
    connection,
    namespace: cfg.namespace,
    taskQueue: followupTaskQueue(cfg.taskQueue),
    activities,
    shutdownGraceTime: '10s',
  });
  const running = worker.run();
  return {
    async stop() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running.catch(() => undefined);
      await connection.close();
    },
  };
}
