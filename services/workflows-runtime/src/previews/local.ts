import { existsSync } from 'node:fs';
import { appendFile, chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { CancelledFailure } from '@temporalio/common';
import type { WorkerConfig } from '@ameide/config';
import { Code, ConnectError, type WorkflowServiceClient } from '@ameide/sdk';
import type { CodingRunInput, PreviewResult } from '@ameide/temporal';
import type { ArtifactStore } from '../artifacts.js';
import { runCommand, OutputTail, type CommandResult } from '../activities/exec.js';
import { removeRun, remountRunDisk, unmountUnder } from '../activities/lifecycle.js';
import { freshStepDirs, stepExecution } from '../activities/sandboxing.js';
import { STATUS_TAIL_BYTES, type StepDeps } from '../activities/steps.js';
import { mirrorPath, runPaths, type RunPaths } from '../activities/workspace.js';
import { createCommandCgroup, killCommandCgroups, processAlive, type CommandCgroup } from '../guardrails/cgroups.js';
import type { Redactor } from '../guardrails/redact.js';
import { INBOUND_SOCKET, sandboxUserFor } from '../guardrails/sandbox.js';
import { forwardPort, freePort, hostPort, type PortForward } from './forward.js';
import { waitHealthy } from './health.js';
import { listStates, readState, removeState, statePath, writeState, type PreviewState } from './state.js';

/** What previews need from the worker: the step runner's needs, the API, the artifact store, the preview settings. */
export interface PreviewDeps extends StepDeps, Pick<WorkerConfig, 'previewHost' | 'previewGraceSeconds'> {
  api: WorkflowServiceClient;
  artifacts: ArtifactStore;
  /** This worker's own task queue for stopping the previews it holds (previewStopQueue). */
  previewStopQueue: string;
}

/** Port the preview's server listens on inside its sandbox ($PORT), on the sandbox's own loopback. */
export const SANDBOX_PREVIEW_PORT = 8080;
const FORWARDER = fileURLToPath(new URL('../guardrails/egress-forwarder.pl', import.meta.url));
/** A stop waits this long for the preview's processes to be gone (they are SIGKILLed at once). */
const STOP_WAIT_MS = 10_000;

/** The cgroup name fragment of a run's preview, as killCommandCgroups takes it. */
export function previewCgroup(runId: string): string {
  return `-${runId}-preview-`;
}

export function transcriptKey(tenantId: string, runId: string): string {
  return `runs/${tenantId}/${runId}/transcripts/preview.log`;
}

/** A live local preview this worker process holds: its process, cgroup and the listener the router reaches. */
interface Held {
  key: string;
  runId: string;
  tenantId: string;
  phase: 'starting' | 'live' | 'stopping';
  /** The command's first process, leader of its process group. */
  pid?: number;
  done: Promise<CommandResult>;
  transcript: string;
  exited?: CommandResult;
  forward?: PortForward;
  cgroup?: CommandCgroup;
  socketDir?: string;
  deps: PreviewDeps;
}

/** Previews held by this process, by state file path (so workers on different workspaces never meet). */
const held = new Map<string, Held>();
const locks = new Map<string, Promise<unknown>>();

/** Serialises start, stop and hold of one preview inside this process. */
async function withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const prev = locks.get(key) ?? Promise.resolve();
  const next = prev.catch(() => undefined).then(fn);
  locks.set(key, next);
  try {
    return await next;
  } finally {
    if (locks.get(key) === next) locks.delete(key);
  }
}

/** Start time of a process (field 22 of /proc/<pid>/stat), to tell it from a later one with the same pid. */
async function processStart(pid: number): Promise<string | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return stat?.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

/** Kills what a state names: its cgroup (whichever worker process made it) and, if it is still the same process, its process group. */
async function killByState(state: PreviewState): Promise<void> {
  await killCommandCgroups(state.cgroup);
  if (state.pid && state.pidStart && (await processStart(state.pid)) === state.pidStart) {
    try {
      process.kill(-state.pid, 'SIGKILL');
    } catch {
      /* gone already */
    }
  }
  if (state.socketDir) await rm(state.socketDir, { recursive: true, force: true });
}

/** Kills a held preview and everything it started (saying why in its transcript), closes its listener; returns how its command ended. */
async function stopHeld(h: Held, why: string): Promise<CommandResult | undefined> {
  const running = h.phase !== 'stopping' && !h.exited;
  h.phase = 'stopping';
  if (running) await appendFile(h.transcript, `\n[ameide] ${why}\n`).catch(() => undefined);
  if (h.pid) {
    try {
      process.kill(-h.pid, 'SIGKILL');
    } catch {
      /* gone already */
    }
  }
  await h.cgroup?.kill();
  await h.forward?.close();
  let timer: NodeJS.Timeout | undefined;
  const result = await Promise.race([h.done, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), STOP_WAIT_MS)))]);
  clearTimeout(timer);
  await h.cgroup?.remove();
  if (h.socketDir) await rm(h.socketDir, { recursive: true, force: true });
  if (held.get(h.key) === h) held.delete(h.key);
  return result;
}

// Rejections that a retry would not change: the stop is done as far as the worker can tell.
const PERMANENT = new Set([Code.InvalidArgument, Code.PermissionDenied, Code.Unauthenticated, Code.FailedPrecondition, Code.Unimplemented]);

/** Tells the service the preview stopped. A preview it does not know is fine; transient failures throw (the activity is retried). */
export async function recordStopped(api: WorkflowServiceClient, runId: string, reason: string, timeoutMs?: number): Promise<void> {
  try {
    await api.recordPreview({ runId, state: 'stopped', reason }, { timeoutMs });
  } catch (err) {
    const e = ConnectError.from(err);
    if (e.code === Code.NotFound) return;
    if (PERMANENT.has(e.code)) {
      console.warn(`preview of run ${runId} stopped, but the workflow service refused to record it: ${e.message}`);
      return;
    }
    throw err;
  }
}

/** The last bytes of a transcript, as text for a status update. */
async function transcriptTail(path: string): Promise<string> {
  const tail = new OutputTail(STATUS_TAIL_BYTES);
  const data = await readFile(path).catch(() => undefined);
  if (data) tail.push(data);
  return tail.toString();
}

async function storeTranscript(deps: Pick<PreviewDeps, 'artifacts'>, tenantId: string, runId: string, path: string): Promise<void> {
  if (!existsSync(path)) return;
  await deps.artifacts.put(transcriptKey(tenantId, runId), await readFile(path)).catch(() => undefined);
}

/**
 * After a preview's processes are gone: its transcript stored once more, the run's workspace removed
 * or unmounted as the run's report asked (holdForPreview), the state removed, and the stop recorded.
 */
async function finishStop(
  deps: PreviewDeps,
  ids: { tenantId: string; runId: string },
  state: PreviewState | undefined,
  reason: string,
  recordTimeoutMs?: number,
): Promise<void> {
  const paths = runPaths(deps.workspaceDir, ids.tenantId, ids.runId);
  await storeTranscript(deps, ids.tenantId, ids.runId, state?.transcript ?? join(paths.transcriptsDir, 'preview.log'));
  if (state?.workspace === 'remove') await removeRun(paths);
  else if (state?.workspace === 'keep') await unmountUnder(paths.runDir);
  await removeState(statePath(deps.workspaceDir, ids.tenantId, ids.runId));
  await recordStopped(deps.api, ids.runId, reason, recordTimeoutMs);
}

/** Kills a run's preview wherever this host has it (this process, an earlier attempt, another worker process), without recording anything. */
async function killPreview(deps: PreviewDeps, tenantId: string, runId: string): Promise<boolean> {
  const key = statePath(deps.workspaceDir, tenantId, runId);
  const h = held.get(key);
  if (h) await stopHeld(h, 'stopped: a new attempt starts the preview again');
  const state = await readState(key);
  if (state) await killByState(state);
  await killCommandCgroups(previewCgroup(runId));
  await removeState(key);
  return Boolean(h || state);
}

/** Stops a run's local preview (idempotent): processes, listener, workspace as asked, state, and the service's record. */
export function stopLocalPreview(deps: PreviewDeps, tenantId: string, runId: string, reason: string, recordTimeoutMs?: number): Promise<void> {
  const key = statePath(deps.workspaceDir, tenantId, runId);
  return withLock(key, async () => {
    const state = await readState(key);
    const h = held.get(key);
    if (h) await stopHeld(h, `stopped: ${reason}`);
    if (state) await killByState(state);
    await killCommandCgroups(previewCgroup(runId));
    await finishStop(deps, { tenantId, runId }, state, reason, recordTimeoutMs);
  });
}

/** A held preview's process ended by itself (it crashed, or outlived its lifetime): it is stopped and recorded so. */
function onExit(h: Held, result: CommandResult): void {
  h.exited = result;
  if (h.phase !== 'live') return;
  const reason = result.timedOut ? 'the preview ran past its lifetime' : `the preview exited with ${result.exitCode}`;
  void withLock(h.key, async () => {
    if (held.get(h.key) !== h || h.phase !== 'live') return;
    const state = await readState(h.key);
    await stopHeld(h, reason);
    await finishStop(h.deps, h, state, reason);
  }).catch((err: unknown) => console.warn(`preview of run ${h.runId}: ${(err as Error).message}`));
}

export interface LocalPreviewOptions {
  redactor: Redactor;
  signal: AbortSignal;
  /** Reports progress (a heartbeat). */
  progress: (step: string) => void;
  /** This is a retried attempt: an earlier one may have registered the preview. */
  retry: boolean;
  /** More variables for the command (they win over the step's). */
  extraEnv?: Record<string, string>;
}

/**
 * Starts a run's `local` preview: the definition's preview command in the run's sandbox (its own
 * step directories and cgroup, no network at all) serving on $PORT of its own loopback, reached
 * through one port the worker forwards into it; returns once the health check passes and the
 * service routes to it. The server keeps running after the activity, until stopLocalPreview (or
 * the worker's end) stops it. A preview that never gets healthy is killed, and the result says why.
 */
export async function startLocalPreview(deps: PreviewDeps, run: CodingRunInput, paths: RunPaths, opts: LocalPreviewOptions): Promise<PreviewResult> {
  const started = Date.now();
  const settings = run.repo.preview!;
  const key = statePath(deps.workspaceDir, run.tenantId, run.runId);
  const transcript = join(paths.transcriptsDir, 'preview.log');
  const sandboxed = run.repo.guardrails.sandbox === 'bubblewrap';
  const base = { provider: 'local' as const, url: '', aliasUrl: '', health: '' };

  const { h, state } = await withLock(key, async () => {
    // What an earlier attempt left (in this process or another on this host) goes first.
    const earlier = await killPreview(deps, run.tenantId, run.runId);
    if (earlier) opts.retry = true;
    await mkdir(paths.transcriptsDir, { recursive: true, mode: 0o700 });
    await writeFile(transcript, '', { mode: 0o600 });
    await remountRunDisk(paths);
    await freshStepDirs(run, paths, 'preview');
    const h: Held = {
      key,
      runId: run.runId,
      tenantId: run.tenantId,
      phase: 'starting',
      done: Promise.resolve({} as CommandResult),
      transcript,
      deps,
    };
    try {
      let port: number;
      if (sandboxed) {
        // A short path of its own (UNIX socket paths are limited to 107 bytes), where only the sandbox user may create the socket.
        h.socketDir = await mkdtemp(join(tmpdir(), 'ameide-preview-'));
        const { uid, gid } = sandboxUserFor(run.tenantId);
        await chown(h.socketDir, uid, gid);
        await chmod(h.socketDir, 0o700);
        // The socket is checked before the first connection (a symlink there would lead the worker anywhere on the host).
        h.forward = await forwardPort(deps.previewHost, join(h.socketDir, INBOUND_SOCKET), {
          owner: uid,
          onRefused: (why) => void appendFile(transcript, `[ameide] ${why}\n`).catch(() => undefined),
        });
        port = h.forward.port;
      } else {
        port = await freePort(deps.previewHost);
      }
      h.cgroup = await createCommandCgroup(`${run.runId}-preview-${Date.now().toString(36)}`, {
        maxProcesses: run.repo.guardrails.budgets.maxProcesses,
        cpus: deps.runCpus,
      });
      const { env, sandbox } = stepExecution(deps, run, 'preview', paths, {
        mirror: mirrorPath(deps.workspaceDir, run.tenantId, run.repo.repoUrl),
        inbound: h.socketDir ? { socketDir: h.socketDir, port: SANDBOX_PREVIEW_PORT, forwarder: FORWARDER } : undefined,
      });
      h.done = runCommand({
        command: settings.command,
        cwd: paths.worktree,
        env: { ...env, ...opts.extraEnv, PORT: String(sandboxed ? SANDBOX_PREVIEW_PORT : port), HOST: sandboxed ? '127.0.0.1' : deps.previewHost },
        sandbox,
        cgroup: h.cgroup,
        redactor: opts.redactor,
        // A safety net only: the preview's workflow stops it at its TTL (counted from when it is live).
        timeoutMs: Math.min(2 ** 31 - 1, (settings.readyTimeoutSeconds + settings.ttlSeconds + deps.previewGraceSeconds + 600) * 1000),
        killGraceMs: 2000,
        maxOutputBytes: run.repo.guardrails.budgets.maxOutputBytes,
        transcriptPath: transcript,
        tailBytes: STATUS_TAIL_BYTES,
        onStart: (pid) => (h.pid = pid),
      });
      void h.done.then((r) => onExit(h, r));
      held.set(key, h);
      const now = new Date();
      const state: PreviewState = {
        runId: run.runId,
        tenantId: run.tenantId,
        workerPid: process.pid,
        pid: h.pid,
        pidStart: h.pid ? await processStart(h.pid) : undefined,
        cgroup: previewCgroup(run.runId),
        host: deps.previewHost,
        port,
        socketDir: h.socketDir,
        transcript,
        expireTime: new Date(now.getTime() + settings.ttlSeconds * 1000).toISOString(),
        startTime: now.toISOString(),
      };
      await writeState(key, state);
      return { h, state };
    } catch (err) {
      await stopHeld(h, 'stopped: the preview could not be started');
      await removeState(key);
      throw err;
    }
  });

  /** Kills the preview and removes its state; the stop is recorded when an earlier attempt may have registered it. */
  const abandon = async (reason: string) => {
    const result = await withLock(key, async () => {
      const r = await stopHeld(h, `stopped: ${reason}`);
      await removeState(key);
      return r;
    });
    await storeTranscript(deps, run.tenantId, run.runId, transcript);
    if (opts.retry) await recordStopped(deps.api, run.runId, reason);
    return result;
  };

  const target = hostPort(state.host, state.port);
  let last: number | undefined;
  opts.progress('health');
  const outcome = await waitHealthy({
    url: `http://${target}${settings.healthPath}`,
    timeoutMs: settings.readyTimeoutSeconds * 1000,
    exited: h.done,
    signal: opts.signal,
    onPoll: (status) => {
      last = status ?? last;
      opts.progress('health');
    },
  });
  if (outcome.kind === 'cancelled') {
    await abandon('the run was cancelled');
    throw new CancelledFailure('preview stopped: the run was cancelled');
  }
  if (outcome.kind !== 'healthy') {
    const failure =
      outcome.kind === 'exited'
        ? `the preview command exited with ${outcome.exitCode} before it was healthy`
        : `the preview did not answer on ${settings.healthPath} within ${settings.readyTimeoutSeconds}s${last !== undefined ? ` (last answer: ${last})` : ''}`;
    const result = await abandon(failure);
    return { ...base, durationMs: Date.now() - started, outputTail: result?.outputTail ?? (await transcriptTail(transcript)), failure };
  }

  opts.progress('register');
  // The TTL counts from now, when the preview is live.
  const expireTime = new Date(Date.now() + settings.ttlSeconds * 1000).toISOString();
  await withLock(key, async () => {
    if (held.get(key) === h) await writeState(key, { ...state, expireTime });
  });
  let registered;
  try {
    registered = await deps.api.recordPreview({
      runId: run.runId,
      state: 'live',
      provider: 'local',
      target,
      expireTime: timestampFromDate(new Date(expireTime)),
    });
  } catch (err) {
    const e = ConnectError.from(err);
    const failure = `the workflow service did not take the preview: ${e.message}`;
    const result = await abandon(failure);
    if (!PERMANENT.has(e.code) && e.code !== Code.NotFound) throw err;
    return { ...base, durationMs: Date.now() - started, outputTail: result?.outputTail ?? '', failure };
  }
  h.phase = 'live';
  if (h.exited) onExit(h, h.exited);
  await storeTranscript(deps, run.tenantId, run.runId, transcript);
  return {
    provider: 'local',
    url: registered.preview?.url ?? '',
    aliasUrl: registered.preview?.aliasUrl ?? '',
    health: `${outcome.status} from ${settings.healthPath} after ${(outcome.afterMs / 1000).toFixed(1)}s`,
    durationMs: Date.now() - started,
    outputTail: await transcriptTail(transcript),
    expireTime,
    stopQueue: deps.previewStopQueue,
    graceSeconds: deps.previewGraceSeconds,
  };
}

/**
 * Whether a live local preview of the run holds its workspace. When it does, the workspace stays
 * (mounted) while the preview runs, and is removed (`removeWhenStopped`) or only unmounted when it
 * stops; the caller must then leave it alone.
 */
export function holdForPreview(workspaceDir: string, tenantId: string, runId: string, removeWhenStopped: boolean): Promise<boolean> {
  const key = statePath(workspaceDir, tenantId, runId);
  return withLock(key, async () => {
    const state = await readState(key);
    if (!state) return false;
    const h = held.get(key);
    const live = h
      ? h.phase === 'live'
      : state.workerPid !== process.pid && processAlive(state.workerPid) && state.pid !== undefined && (await processStart(state.pid)) === state.pidStart;
    if (!live) return false;
    await writeState(key, { ...state, workspace: removeWhenStopped ? 'remove' : 'keep' });
    return true;
  });
}

/**
 * On worker start, before it polls: stops every local preview a worker process that is gone left
 * on this workspace (its processes died with it, or are killed here by their cgroup), records it
 * stopped ("the worker restarted"), removes or unmounts the run's workspace as its report asked,
 * and removes the state. Previews of a worker process still alive on the same workspace are left
 * alone. Returns how many were stopped.
 */
export async function stopLeftoverPreviews(deps: PreviewDeps, reason = 'the worker restarted'): Promise<number> {
  const stopped = await Promise.all(
    (await listStates(deps.workspaceDir)).map(async ({ path, state }) => {
      if (!state) {
        await removeState(path);
        return false;
      }
      const owner = state.workerPid;
      if (owner === process.pid ? held.has(path) : processAlive(owner)) return false;
      await withLock(path, async () => {
        await killByState(state);
        try {
          // Bounded: the worker does not wait long for an away service before it polls.
          await finishStop(deps, state, state, reason, 10_000);
        } catch (err) {
          // The service is away: the preview's workflow records the stop when it ends.
          console.warn(`preview of run ${state.runId} stopped; recording it failed: ${(err as Error).message}`);
        }
      });
      return true;
    }),
  );
  return stopped.filter(Boolean).length;
}

/** Stops every local preview this process holds on the workspace (the worker is shutting down). */
export async function stopHeldPreviews(deps: PreviewDeps, reason: string): Promise<void> {
  const mine = [...held.values()].filter((h) => h.deps.workspaceDir === deps.workspaceDir);
  await Promise.all(
    mine.map((h) =>
      stopLocalPreview(deps, h.tenantId, h.runId, reason, 10_000).catch((err: unknown) =>
        console.warn(`preview of run ${h.runId} stopped; recording it failed: ${(err as Error).message}`),
      ),
    ),
  );
}
