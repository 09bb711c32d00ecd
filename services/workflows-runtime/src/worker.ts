import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { NativeConnection, Worker, bundleWorkflowCode, makeTelemetryFilterString, Runtime, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { OpenTelemetryActivityInboundInterceptor, makeWorkflowExporter } from '@temporalio/interceptors-opentelemetry';
import type { WorkerConfig } from '@ameide/config';
import { createWorkflowServiceClient } from '@ameide/sdk';
import type { Telemetry } from '@ameide/telemetry';
import { openArtifactStore } from './artifacts.js';
import { createActivities } from './activities/index.js';

const require = createRequire(import.meta.url);
const workflowsPath = fileURLToPath(new URL('./workflows.ts', import.meta.url));

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
/** Bundles the workflow code once per process (webpack is slow; tests start several workers). */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({ workflowsPath, logger: quietLogger });
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

/** A worker connected to Temporal, not yet running. */
export interface CodingWorker {
  worker: Worker;
  connection: NativeConnection;
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
  const activities = createActivities({
    api,
    artifacts: openArtifactStore(cfg.artifactStoreUrl),
    workspaceDir: cfg.workspaceDir,
    commandPath: cfg.commandPath,
    commandHome: cfg.commandHome,
  });
  const tracing = Boolean(telemetry?.exporter);
  const worker = await Worker.create({
    connection,
    namespace: cfg.temporal.namespace,
    taskQueue: cfg.temporal.taskQueue,
    workflowBundle: await workflowBundle(),
    activities,
    // Cancellation reaches an activity on its next heartbeat: keep that within about a second.
    maxHeartbeatThrottleInterval: '1s',
    defaultHeartbeatThrottleInterval: '1s',
    interceptors: {
      activity: [(ctx) => ({ inbound: new OpenTelemetryActivityInboundInterceptor(ctx) })],
      workflowModules: tracing ? [require.resolve('@temporalio/interceptors-opentelemetry/lib/workflow')] : [],
    },
    sinks: tracing ? { exporter: makeWorkflowExporter(telemetry!.exporter as never, undefined as never) } : undefined,
  });
  return { worker, connection };
}
