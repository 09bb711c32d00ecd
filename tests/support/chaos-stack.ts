import { randomInt, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';
import { toolEnv } from '@ameide/config';
import {
  createOrigin,
  generatePassword,
  git,
  PortInUseError,
  portFree,
  SAMPLE_REPO,
  startPostgres,
  startTemporal,
  type PostgresHandle,
} from '@ameide/devstack';
import { createWorkflowServiceClient, type WorkflowServiceClient } from '@ameide/sdk';
import { logSince, startProcess, type ManagedProcess } from '../../packages/devstack/src/process.js';
import { startServerProcess } from '../../packages/devstack/src/server-process.js';
import { testServiceEnv, testTokens, testWorkerEnv, type TestTokens } from './harness.js';

/**
 * A stack of REAL processes for one test file, so that a test can kill any part of it by PID, as a
 * machine that loses a process would, and relaunch it on the same ports and data: its own Postgres
 * (own data directory), its own Temporal dev server (with a db file, so a restart keeps the workflow
 * histories), the workflow service and the worker (each `node --import tsx …/main.ts`). The shared
 * Postgres and Temporal of the test run are never touched.
 *
 * Its servers listen on ports below the kernel's ephemeral range: while one of them is down, no other
 * process gets its port for an outgoing connection (or from a "free port" of its own), so it can come
 * back on the same one.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = {
  service: join(ROOT, 'services/workflows/src/main.ts'),
  worker: join(ROOT, 'services/workflows-runtime/src/main.ts'),
};

export type ChaosProcessName = 'postgres' | 'temporal' | 'service' | 'worker';

/** What a kill did: the process, the processes below it then, and those of them still alive 10 s later. */
export interface KillReport {
  pid: number;
  descendants: number[];
  /** Descendants that outlived the process by 10 s (they are then killed, so that nothing leaks, unless `leaveSurvivors`). */
  survivors: number[];
}

export interface ChaosStack {
  dir: string;
  apiUrl: string;
  databaseUrl: string;
  temporalAddress: string;
  taskQueue: string;
  /** Log files of every process (appended to across restarts). */
  logs: Record<ChaosProcessName, string>;
  tokens: TestTokens;
  /** Tenant acme's user, tenant globex's user, the operator-wide worker credential, globex's service credential. */
  acme: WorkflowServiceClient;
  globex: WorkflowServiceClient;
  service: WorkflowServiceClient;
  globexService: WorkflowServiceClient;
  /** The PID of the running process, or undefined while it is down. */
  pid(name: ChaosProcessName): number | undefined;
  /** The processes below the running process now (its command sandboxes, Postgres' backends, …). */
  descendants(name: ChaosProcessName): number[];
  /**
   * Sends `signal` to the process by PID and waits until it is gone. The service, the worker and the
   * Temporal dev server lead their own process group, which gets the signal as a whole; Postgres'
   * postmaster (in this process's group) is signalled with its backends. Whatever ran below it in
   * other groups (the worker's sandboxed commands) is expected to die with it: the report names any
   * that did not.
   */
  kill(name: ChaosProcessName, signal?: NodeJS.Signals, opts?: { leaveSurvivors?: boolean }): Promise<KillReport>;
  /** Relaunches the process on the same ports and data and waits until it serves. */
  start(name: ChaosProcessName): Promise<void>;
  /** The last `lines` lines of a process's log. */
  logTail(name: ChaosProcessName, lines?: number): string;
  /** Kills everything this stack started. */
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** State and parent of a process, from /proc; undefined when it is gone. */
function procStat(pid: number): { ppid: number; state: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: the fields after it follow the last ")".
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: state!, ppid: Number(ppid) };
  } catch {
    return undefined;
  }
}

/** Whether `pid` is a live process (a zombie, killed and not yet reaped, is not). */
export function processAlive(pid: number): boolean {
  const s = procStat(pid);
  return s !== undefined && s.state !== 'Z';
}

/** Every live process below `pid`, parents before children. */
export function descendantsOf(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = procStat(Number(name));
    if (!s || s.state === 'Z') continue;
    children.set(s.ppid, [...(children.get(s.ppid) ?? []), Number(name)]);
  }
  const out: number[] = [];
  for (const queue = [pid]; queue.length;) {
    const next = children.get(queue.shift()!) ?? [];
    out.push(...next);
    queue.push(...next);
  }
  return out;
}

/** The command line of `pid`, arguments separated by NUL; empty when it is gone. */
export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone already */
  }
}

/** Waits until `ok()`; false if it did not come within `ms`. */
async function until(ok: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  for (const deadline = Date.now() + ms; !(await ok()); await sleep(100)) if (Date.now() > deadline) return false;
  return true;
}

function tail(file: string, lines: number): string {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n') : '';
}

/** A free port below the kernel's ephemeral port range (so never handed out for outgoing connections). */
async function stablePort(taken: Set<number>): Promise<number> {
  const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  const top = Math.min(low ?? 32768, 32768);
  for (let i = 0; i < 200; i++) {
    const port = randomInt(20_000, top);
    if (!taken.has(port) && (await portFree(port))) {
      taken.add(port);
      return port;
    }
  }
  throw new Error('no free port below the ephemeral range');
}

/** Tries `start` again while another process holds the port it binds (a moment later, at most `attempts` times). */
async function retryPortInUse<T>(start: () => Promise<T>, attempts: number, before: () => Promise<void>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      if (!(err instanceof PortInUseError) || attempt >= attempts) throw err;
      await before();
    }
  }
}

/** Starts the whole stack; `serviceEnv` and `workerEnv` add settings (AMEIDE_RECONCILE_SECONDS, …). */
export async function startChaosStack(opts: { serviceEnv?: Record<string, string>; workerEnv?: Record<string, string> } = {}): Promise<ChaosStack> {
  const dir = join(inject('scratchDir'), `chaos-${randomUUID().slice(0, 8)}`);
  const logDir = join(dir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const logs: Record<ChaosProcessName, string> = {
    postgres: join(logDir, 'postgres.log'),
    temporal: join(logDir, 'temporal.log'),
    service: join(logDir, 'service.log'),
    worker: join(logDir, 'worker.log'),
  };
  const taken = new Set<number>();
  const ports = { postgres: 0, temporal: 0, ui: 0, api: 0 };
  const password = generatePassword();
  const taskQueue = `chaos-${randomUUID().slice(0, 8)}`;
  const tokens = testTokens();
  const temporalAddress = () => `127.0.0.1:${ports.temporal}`;
  const apiUrl = () => `http://127.0.0.1:${ports.api}`;

  let postgres: PostgresHandle | undefined;
  let databaseUrl = '';
  const procs: Partial<Record<'temporal' | 'service' | 'worker', ManagedProcess>> = {};

  const pidOf = (name: ChaosProcessName): number | undefined => {
    const pid = name === 'postgres' ? postgres?.pid : procs[name]?.pid;
    return pid !== undefined && pid > 0 && processAlive(pid) ? pid : undefined;
  };

  const starters: Record<ChaosProcessName, () => Promise<void>> = {
    async postgres() {
      postgres = await startPostgres({ dataDir: join(dir, 'postgres'), port: ports.postgres, password, logFile: logs.postgres });
      databaseUrl = postgres.url;
    },
    async temporal() {
      const t = await startTemporal({
        cli: inject('temporalCli'),
        dbFile: join(dir, 'temporal.db'),
        port: ports.temporal,
        uiPort: ports.ui,
        namespace: 'default',
        logFile: logs.temporal,
      });
      procs.temporal = t.process;
    },
    async service() {
      procs.service = await startServerProcess({
        what: 'workflow service',
        cmd: process.execPath,
        args: ['--import', 'tsx', MAIN.service],
        env: toolEnv({
          ...testServiceEnv({ databaseUrl, port: ports.api, temporalAddress: temporalAddress(), taskQueue, tokens, dir }),
          ...opts.serviceEnv,
        }),
        logFile: logs.service,
        port: ports.api,
        // services/workflows/src/main.ts prints this once the API listens.
        ready: /workflow service listening on/,
        timeoutMs: 120_000,
      });
    },
    async worker() {
      const p = startProcess(process.execPath, ['--import', 'tsx', MAIN.worker], {
        env: toolEnv({
          ...testWorkerEnv({ apiUrl: apiUrl(), serviceToken: tokens.service, temporalAddress: temporalAddress(), taskQueue, dir }),
          ...opts.workerEnv,
        }),
        logFile: logs.worker,
        cwd: ROOT,
      });
      procs.worker = p;
      // Ready once it polls (bundling the workflow code takes a while on a busy machine).
      const ready = await until(() => !p.alive() || logSince(logs.worker, p.logOffset).includes('worker polling task queue'), 180_000);
      if (!p.alive()) throw new Error(`the worker exited at start:\n${logSince(logs.worker, p.logOffset).slice(-4000)}`);
      if (!ready) throw new Error(`the worker did not poll its task queue within 180s (log: ${logs.worker})`);
    },
  };

  const kill = async (name: ChaosProcessName, sig: NodeJS.Signals = 'SIGKILL', opts: { leaveSurvivors?: boolean } = {}): Promise<KillReport> => {
    const pid = pidOf(name);
    if (pid === undefined) throw new Error(`${name} is not running`);
    const descendants = descendantsOf(pid);
    if (name === 'postgres') {
      // The postmaster shares this process's group: it is signalled with its own backends only.
      signal(pid, sig);
      if (sig === 'SIGKILL') for (const d of descendants) signal(d, sig);
    } else {
      // Started detached: the process leads its own group.
      signal(-pid, sig);
    }
    if (!(await until(() => !processAlive(pid), 60_000))) throw new Error(`${name} (pid ${pid}) did not exit after ${sig}`);
    await until(() => !descendants.some(processAlive), 10_000);
    const survivors = descendants.filter(processAlive);
    // Unless a test wants to see who cleans them up.
    if (!opts.leaveSurvivors) for (const s of survivors) signal(s, 'SIGKILL');
    if (name === 'postgres') postgres = undefined;
    else procs[name] = undefined;
    return { pid, descendants, survivors };
  };

  const stop = async () => {
    for (const name of ['worker', 'service'] as const) if (pidOf(name) !== undefined) await kill(name);
    await procs.temporal?.stop();
    procs.temporal = undefined;
    // A clean stop; a Postgres that does not answer goes as in a kill.
    const pg = postgres;
    if (pg && !(await Promise.race([pg.stop().then(() => true), sleep(20_000).then(() => false)])) && pidOf('postgres') !== undefined) await kill('postgres');
    postgres = undefined;
  };

  try {
    // First start: a port another process took since it was picked is replaced by a fresh one.
    const fresh = async (...names: Array<keyof typeof ports>) => {
      for (const n of names) ports[n] = await stablePort(taken);
    };
    await fresh('postgres', 'temporal', 'ui', 'api');
    await retryPortInUse(starters.postgres, 4, () => fresh('postgres'));
    await retryPortInUse(starters.temporal, 4, () => fresh('temporal', 'ui'));
    await retryPortInUse(starters.service, 4, () => fresh('api'));
    await starters.worker();
  } catch (err) {
    await stop();
    throw err;
  }

  const client = (token: string) => createWorkflowServiceClient({ baseUrl: apiUrl(), token });
  return {
    dir,
    apiUrl: apiUrl(),
    get databaseUrl() {
      return databaseUrl;
    },
    temporalAddress: temporalAddress(),
    taskQueue,
    logs,
    tokens,
    acme: client(tokens.acme),
    globex: client(tokens.globex),
    service: client(tokens.service),
    globexService: client(tokens.globexService),
    pid: pidOf,
    descendants(name) {
      const pid = pidOf(name);
      return pid === undefined ? [] : descendantsOf(pid);
    },
    kill,
    async start(name) {
      if (pidOf(name) !== undefined) throw new Error(`${name} is running already`);
      // The port is the stack's; should another process hold it for a moment, it is tried again.
      await retryPortInUse(starters[name], 10, () => sleep(3000));
    },
    logTail: (name, lines = 40) => tail(logs[name], lines),
    stop,
  };
}

/**
 * A bare origin holding the sample repository in the stack's directory. Every update of its refs is
 * logged (`core.logAllRefUpdates`), so a test can count the pushes of a branch from outside.
 */
export function chaosOrigin(stack: Pick<ChaosStack, 'dir'>, name = 'origin'): string {
  const origin = createOrigin(SAMPLE_REPO, join(stack.dir, `${name}.git`));
  git(origin, 'config', 'core.logAllRefUpdates', 'always');
  return origin;
}

/** How often `branch` of `origin` was updated by a push (0 when it does not exist). */
export function pushesOf(origin: string, branch: string): number {
  try {
    return git(origin, 'reflog', 'show', '--format=%H', `refs/heads/${branch}`).split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
}
