import { lookup } from 'node:dns/promises';
import { appendFile, chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { egressPatternAllowed, type WorkerConfig } from '@ameide/config';
import type { CodingRunInput, EgressDestinationResult } from '@ameide/temporal';
import { createCommandCgroup, type CommandCgroup } from '../guardrails/cgroups.js';
import { publicUnicastOr, startEgressProxy, type EgressProxy } from '../guardrails/egress.js';
import type { Redactor } from '../guardrails/redact.js';
import type { Postlude, SandboxEgress } from '../guardrails/sandbox.js';
import { runCommand, type TranscriptNotes } from './exec.js';
import { remountRunDisk } from './lifecycle.js';
import { freshStepDirs, isCommandStep, stepExecution, type SandboxDeps, type SandboxStep } from './sandboxing.js';
import { mirrorPath, type RunPaths } from './workspace.js';

/** What running a step needs from the worker. */
export type StepDeps = SandboxDeps & Pick<WorkerConfig, 'runCpus' | 'egressExtraNetworks'> & Partial<Pick<WorkerConfig, 'outputTailLines' | 'egressResolve'>>;

/** Output bytes of a command that status updates carry. */
export const STATUS_TAIL_BYTES = 4000;
/** Lines of those bytes they carry when the worker's settings do not say (AMEIDE_OUTPUT_TAIL_LINES). */
export const STATUS_TAIL_LINES = 40;
/** The system resolver, except for the names the operator pinned to an address (AMEIDE_EGRESS_RESOLVE). */
function pinnedResolver(pinned: Record<string, string> | undefined): ((host: string) => Promise<string[]>) | undefined {
  if (!pinned || !Object.keys(pinned).length) return undefined;
  return async (host) => {
    const ip = pinned[host.toLowerCase().replace(/\.$/, '')];
    return ip ? [ip] : (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);
  };
}

/** Destinations a step's egress summary keeps (each with its count). */
const MAX_EGRESS_DESTINATIONS = 50;
/** Port of the egress forwarder inside an online sandbox. */
const EGRESS_PORT = 3128;
const FORWARDER = fileURLToPath(new URL('../guardrails/egress-forwarder.pl', import.meta.url));

/**
 * Runs one step in the run's sandbox with fresh HOME and TMPDIR, its own cgroup and, for online
 * phases, the egress proxy. Output goes (redacted) to the step's transcript.
 */
export function createStepRunner(deps: StepDeps) {
  const mirrorOf = (run: CodingRunInput) => mirrorPath(deps.workspaceDir, run.tenantId, run.repo.repoUrl);
  return async (
    run: CodingRunInput,
    paths: RunPaths,
    step: SandboxStep,
    command: string,
    opts: {
      timeoutMs: number;
      redactor: Redactor;
      transcript: string;
      extraEnv?: Record<string, string>;
      signal?: AbortSignal;
      onProgress?: (bytes: number) => void;
      /** Every chunk written to the step's transcript (redacted), with its offset in it (see CommandSpec.onOutput). */
      onOutput?: (chunk: Buffer, offset: number) => void;
      prelude?: string;
      postlude?: Postlude;
      /** More directories the step may write (host paths, mounted at the same path). */
      writable?: string[];
      /** Whether the step goes online through the egress proxy; default: the phase's `guardrails.network` setting. */
      online?: boolean;
      /** Lets the caller write notes into the transcript while the command runs (the agent's turns). */
      notes?: TranscriptNotes;
      /** Readies the step's fresh HOME and TMPDIR (host paths) before the command starts. */
      beforeStart?: (dirs: { home: string; tmp: string }) => Promise<void>;
      /** More read-only host directories for the sandbox (an agent's CLI). */
      readOnly?: string[];
    },
  ) => {
    await remountRunDisk(paths);
    const dirs = await freshStepDirs(run, paths, step);
    await opts.beforeStart?.(dirs);
    // The agent phase's model endpoint: its only destination in network mode `model`, or one beside the allowlist.
    const model = step === 'agent' ? run.repo.modelEndpoint : undefined;
    const listed = (step === 'install' || step === 'agent' || step === 'test') && run.repo.guardrails.network[step];
    const online = opts.online ?? (listed || model !== undefined);
    // Network mode `model`: the endpoint and nothing else.
    const modelOnly = opts.online === undefined && !listed && model !== undefined;
    const egressSeen = new Map<string, EgressDestinationResult>();
    let proxy: EgressProxy | undefined;
    let egress: SandboxEgress | undefined;
    let socketDir: string | undefined;
    let cgroup: CommandCgroup | undefined;
    // The proxy's log goes into the transcript in order with the command's output while it runs.
    const notes: TranscriptNotes = opts.notes ?? {};
    try {
      if (online && run.repo.guardrails.sandbox === 'bubblewrap') {
        // A short path of its own: UNIX socket paths are limited to 107 bytes.
        socketDir = await mkdtemp(join(tmpdir(), 'ameide-egress-'));
        await chmod(socketDir, 0o711);
        const hosts = modelOnly ? [] : run.repo.guardrails.egressHosts.length ? run.repo.guardrails.egressHosts : deps.policy.egressAllowedHosts;
        proxy = await startEgressProxy({
          socketPath: join(socketDir, 'egress.sock'),
          // The plan's list, held again to the operator's (the plan may predate a change of it).
          allowedHosts: hosts.filter((h) => egressPatternAllowed(h, deps.policy.egressAllowedHosts)),
          extraTargets: model && egressPatternAllowed(model.host, deps.policy.egressAllowedHosts) ? [model] : [],
          onDecision: (d) => {
            const key = `${d.destination} ${d.outcome}`;
            const seen = egressSeen.get(key);
            if (seen) seen.count++;
            else if (egressSeen.size < MAX_EGRESS_DESTINATIONS)
              egressSeen.set(key, {
                phase: step,
                destination: d.destination,
                allowed: d.outcome === 'allowed',
                count: 1,
                // A destination that was admitted but could not be reached says so: it was not refused.
                ...(d.reason ? { reason: d.outcome === 'failed' ? `failed: ${d.reason}` : d.reason } : {}),
              });
          },
          addressAllowed: deps.egressExtraNetworks.length ? publicUnicastOr(deps.egressExtraNetworks) : undefined,
          resolve: pinnedResolver(deps.egressResolve),
          log: (line) => {
            const text = `[ameide] ${opts.redactor.redact(line)}\n`;
            if (notes.write) notes.write(text);
            else void appendFile(opts.transcript, text).catch(() => undefined);
          },
        });
        egress = { socketDir, port: EGRESS_PORT, forwarder: FORWARDER };
      }
      // The definition's commands get a cgroup of their own, with or without a sandbox (joining one
      // costs about 10 ms); the worker's short git steps stay under the per-user process limit and
      // their time budget.
      if (isCommandStep(step)) {
        cgroup = await createCommandCgroup(`${run.runId}-${step}-${Date.now().toString(36)}`, {
          maxProcesses: run.repo.guardrails.budgets.maxProcesses,
          cpus: deps.runCpus,
        });
      }
      const { env, sandbox } = stepExecution(deps, run, step, paths, { mirror: mirrorOf(run), egress });
      if (opts.readOnly?.length) sandbox.readOnly.push(...opts.readOnly);
      if (opts.writable?.length) sandbox.writable.push(...opts.writable);
      const result = await runCommand({
        command,
        cwd: paths.worktree,
        env: { ...env, ...opts.extraEnv },
        sandbox,
        cgroup,
        redactor: opts.redactor,
        timeoutMs: opts.timeoutMs,
        maxOutputBytes: run.repo.guardrails.budgets.maxOutputBytes,
        transcriptPath: opts.transcript,
        tailBytes: STATUS_TAIL_BYTES,
        tailLines: deps.outputTailLines ?? STATUS_TAIL_LINES,
        signal: opts.signal,
        onProgress: opts.onProgress,
        onOutput: opts.onOutput,
        notes,
        prelude: opts.prelude,
        postlude: opts.postlude,
      });
      return { ...result, egress: [...egressSeen.values()].map((e) => ({ ...e, destination: opts.redactor.redact(e.destination) })) };
    } finally {
      await cgroup?.remove();
      await proxy?.close();
      if (socketDir) await rm(socketDir, { recursive: true, force: true });
    }
  };
}
