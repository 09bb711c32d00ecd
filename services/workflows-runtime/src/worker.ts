import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { NativeConnection, Worker, bundleWorkflowCode, makeTelemetryFilterString, Runtime, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { OpenTelemetryActivityInboundInterceptor, makeWorkflowExporter } from '@temporalio/interceptors-opentelemetry';
import type { WorkerConfig } from '@ameide/config';
import { createGovernanceServiceClient, createWorkflowServiceClient } from '@ameide/sdk';
import type { Telemetry } from '@ameide/telemetry';
import { openArtifactStore } from './artifacts.js';
import { createActivities } from './activities/index.js';
import { pruneStaleWorkspaces } from './activities/lifecycle.js';
import { createPreviewActivities } from './activities/previews.js';
import { createWarmUpActivities } from './activities/warm-up.js';
import { pruneCommandCgroups } from './guardrails/cgroups.js';
import { killOrphanedGit } from './activities/git.js';
import { previewStopQueue, stopHeldPreviews, stopLeftoverPreviews } from './previews/index.js';
import { warmUpWorker } from './warm-up.js';

const workflowsPath = fileURLToPath(new URL('./workflows.ts', import.meta.url));
const tracingInterceptorsPath = fileURLToPath(new URL('./workflow-tracing.ts', import.meta.url));

const bundles = new Map<boolean, Promise<WorkflowBundleWithSourceMap>>();
/**
 * Bundles the workflow code once per process and tracing setting (webpack is slow; tests start
 * several workers). With tracing, the OpenTelemetry workflow interceptors are bundled in.
 */
export function workflowBundle(tracing = false): Promise<WorkflowBundleWithSourceMap> {
  let bundle = bundles.get(tracing);
  if (!bundle) {
    const workflowInterceptorModules = tracing ? [tracingInterceptorsPath] : [];
    bundle = bundleWorkflowCode({ workflowsPath, workflowInterceptorModules, logger: quietLogger });
    bundles.set(tracing, bundle);
  }
  return bundle;
}

/** A failed run is an expected outcome, not a crash: log one line, no stack trace. */
function oneLine(message: string, meta?: Record<string, unknown>): string {
  const err = meta?.error as { message?: string } | undefined;
  const where = meta?.workflowId ?? meta?.activityType ?? '';
  return [message, where, err?.message].filter(Boolean).join(': ');
}

const quietLogger = {
  log() {},
  trace() {},
  debug() {},
  info() {},
  warn(message: string, meta?: Record<string, unknown>) {
    console.warn(oneLine(message, meta));
  },
  error(message: string, meta?: Record<string, unknown>) {
    console.error(oneLine(message, meta));
  },
};

let runtimeInstalled = false;
function installRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    Runtime.install({ logger: quietLogger, telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN' }) } } });
  } catch {
    /* already installed by the host process */
  }
}

/** A worker connected to Temporal, not yet running: the coding-agent worker, and the one stopping this host's previews. */
export interface CodingWorker {
  /** Workflows and activities, on the task queue. */
  worker: Worker;
  /** Only `stopPreview`, on this worker's own preview stop queue (previewStopQueue). */
  previewWorker: Worker;
  connection: NativeConnection;
  /** Runs both until they shut down (when one stops, so does the other); then stops the previews this process holds. */
  run(): Promise<void>;
  /** Asks both to shut down; `run()` settles once they have. */
  shutdown(): void;
  /**
   * Once `run()` polls: runs a warm-up workflow on the task queue (workflow/warm-up.ts), so that the
   * first run does not pay for a cold worker. Never fails: says what it did, or why it could not.
   */
  warmUp(timeoutMs?: number): Promise<string>;
}

/** Connects to Temporal and builds the coding-agent worker with real activities. */
export async function createCodingWorker(cfg: WorkerConfig, telemetry?: Telemetry): Promise<CodingWorker> {
  installRuntime();
  let connection: NativeConnection;
  try {
    connection = await NativeConnection.connect({ address: cfg.temporal.address });
  } catch (err) {
    throw Object.assign(new Error(`cannot reach Temporal at ${cfg.temporal.address} (${(err as Error).message}); check TEMPORAL_ADDRESS`), { expected: true });
  }
  const api = createWorkflowServiceClient({ baseUrl: cfg.apiUrl, token: cfg.serviceToken });
  const stopQueue = previewStopQueue(cfg.temporal.taskQueue, cfg.workspaceDir);
  // Temporal's own default identity, set explicitly so that the runs' provenance can name it.
  const identity = `${process.pid}@${hostname()}`;
  const deps = {
    api,
    artifacts: openArtifactStore(cfg),
    workspaceDir: cfg.workspaceDir,
    commandPath: cfg.commandPath,
    secrets: cfg.secrets,
    minFreeDiskMb: cfg.minFreeDiskMb,
    policy: cfg.policy,
    runCpus: cfg.runCpus,
    runDiskMb: cfg.runDiskMb,
    cacheQuotaMb: cfg.cacheQuotaMb,
    gitConfig: cfg.gitConfig,
    gitTimeoutSeconds: cfg.gitTimeoutSeconds,
    egressExtraNetworks: cfg.egressExtraNetworks,
    egressResolve: cfg.egressResolve,
    previewHost: cfg.previewHost,
    previewGraceSeconds: cfg.previewGraceSeconds,
    outputTailLines: cfg.outputTailLines,
    previewStopQueue: stopQueue,
    workerIdentity: identity,
    agentSpansUrl: cfg.agentSpansUrl,
  };
  const activities = {
    ...createActivities(deps),
    ...createWarmUpActivities({
      governance: createGovernanceServiceClient({ baseUrl: cfg.apiUrl, token: cfg.serviceToken }),
      workspaceDir: cfg.workspaceDir,
      runDiskMb: cfg.runDiskMb,
    }),
  };
  // Previews a worker process that is gone left on this workspace: stopped, never re-adopted.
  const leftover = await stopLeftoverPreviews(deps);
  if (leftover) console.log(`stopped ${leftover} previews left by a worker that is gone`);
  const pruned = await pruneStaleWorkspaces(cfg.workspaceDir, cfg.worktreeTtlHours);
  // What workers that died left running: commands (in their cgroups) and the worker's own git.
  await pruneCommandCgroups();
  const orphans = await killOrphanedGit();
  if (orphans) console.log(`stopped ${orphans} git processes left by a worker that is gone`);
  if (pruned) console.log(`pruned ${pruned} run workspaces older than ${cfg.worktreeTtlHours}h`);
  const exporter = telemetry?.exporter;
  const worker = await Worker.create({
    connection,
    namespace: cfg.temporal.namespace,
    taskQueue: cfg.temporal.taskQueue,
    identity,
    workflowBundle: await workflowBundle(Boolean(exporter)),
    activities,
    // Cancellation reaches an activity on its next heartbeat: keep that within about a second.
    maxHeartbeatThrottleInterval: '1s',
    defaultHeartbeatThrottleInterval: '1s',
    // On shutdown (deploy, scale-in) running commands get time to finish before they are cancelled.
    shutdownGraceTime: '30s',
    interceptors: {
      activity: [(ctx) => ({ inbound: new OpenTelemetryActivityInboundInterceptor(ctx) })],
    },
    // Workflow spans leave the sandbox through a sink: only when there is somewhere to send them.
    sinks: exporter ? { exporter: makeWorkflowExporter(exporter, telemetry!.resource) } : undefined,
  });
  // A local preview's process and listener live in this process: its stop comes to this worker's own queue.
  const previewWorker = await Worker.create({
    connection,
    namespace: cfg.temporal.namespace,
    taskQueue: stopQueue,
    identity,
    activities: { stopPreview: createPreviewActivities(deps).stopPreview },
    maxHeartbeatThrottleInterval: '1s',
    defaultHeartbeatThrottleInterval: '1s',
    shutdownGraceTime: '30s',
    interceptors: {
      activity: [(ctx) => ({ inbound: new OpenTelemetryActivityInboundInterceptor(ctx) })],
    },
  });
  const shutdown = () => {
    for (const w of [worker, previewWorker]) if (w.getState() === 'RUNNING') w.shutdown();
  };
  return {
    worker,
    previewWorker,
    connection,
    shutdown,
    warmUp: (timeoutMs) => warmUpWorker(connection, { namespace: cfg.temporal.namespace, taskQueue: cfg.temporal.taskQueue, identity, timeoutMs }),
    async run() {
      try {
        const ended = await Promise.allSettled([worker, previewWorker].map((w) => w.run().finally(shutdown)));
        const failed = ended.find((r) => r.status === 'rejected');
        if (failed) throw failed.reason;
      } finally {
        await stopHeldPreviews(deps, 'the worker stopped');
      }
    },
  };
}
