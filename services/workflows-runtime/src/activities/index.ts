import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';
import type { WorkerConfig } from '@ameide/config';
import type { WorkflowServiceClient } from '@ameide/sdk';
import {
  workBranchName,
  type AgentRunResult,
  type CodingRunInput,
  type CommandPhaseResult,
  type EvidenceFileResult,
  type PhaseName,
  type PreparedWorkspace,
  type TestReportResult,
  type PublishResult,
  type RunProvenanceResult,
  type StatusUpdateInput,
} from '@ameide/temporal';
import type { ArtifactStore } from '../artifacts.js';
import { EVIDENCE_NAMES, evidenceFile, gatherEvidence, MEDIA_TYPES, type EvidenceInput } from '../evidence/files.js';
import { runProvenance } from '../evidence/provenance.js';
import { findBubblewrap } from '../guardrails/sandbox.js';
import { killCommandCgroups } from '../guardrails/cgroups.js';
import { Redactor } from '../guardrails/redact.js';
import { CHECKOUT_SCRIPT, EXPORT_SCRIPT, exchangeEnv, HEAD_REF, ImportRefused, importExport, RESTORE_SCRIPT, SNAPSHOT_SCRIPT } from './exchange.js';
import { workerGit } from './git.js';
import { createHandoffBundle } from './handoff.js';
import { diskTemplateDir, enforceCacheQuota, HeldCleanups, mountRunDisk, removeRun, requireFreeDisk, unmountUnder } from './lifecycle.js';
import { reviewWork } from './review.js';
import { allSecrets, allSecretValues, cacheDir, prepareSandbox, stepDirs, type SandboxDeps } from './sandboxing.js';
import { AGENT_SPANS_FILE_NAME, AgentUnavailableError, exportAgentSpans } from '../agents/index.js';
import { AgentMonitor, agentVersion, prepareAgent } from './agent.js';
import type { TranscriptNotes } from './exec.js';
import { currentTraceparent } from './tracing.js';
import { guarded as guardedBody, permanent } from './guard.js';
import { runOutputSender } from './output.js';
import { sendStatusUpdate, sendStatusUpdates } from './status.js';
import { holdForPreview } from '../previews/index.js';
import { createPreviewActivities } from './previews.js';
import { createPullRequestActivities } from './pull-request.js';
import { createStepRunner } from './steps.js';
import {
  COLLECT_SCRIPT,
  COLLECT_STATUS,
  collectEnv,
  MAX_REPORT_BYTES,
  readCollected,
  readCollectStatus,
  readTail,
  ReportsUnreadable,
} from '../reports/collect.js';
import { parseJUnit, parseTap, ReportUnreadable } from '../reports/parse.js';
import { commitMessage, createImportRepo, ensureMirror, mirrorPath, normaliseRepoUrl, resolveBase, runPaths, writePrompt, type RunPaths } from './workspace.js';

/** What activities need from the worker process: its clients, and its settings (see WorkerConfig). */
export interface ActivityDeps
  extends
    SandboxDeps,
    Pick<
      WorkerConfig,
      | 'minFreeDiskMb'
      | 'runCpus'
      | 'runDiskMb'
      | 'cacheQuotaMb'
      | 'gitConfig'
      | 'gitTimeoutSeconds'
      | 'egressExtraNetworks'
      | 'egressResolve'
      | 'previewHost'
      | 'previewGraceSeconds'
    >,
    Partial<Pick<WorkerConfig, 'outputTailLines'>> {
  api: WorkflowServiceClient;
  artifacts: ArtifactStore;
  /** This worker's own task queue for stopping the previews it holds (previewStopQueue). */
  previewStopQueue: string;
  /** The Temporal worker's identity, for the runs' provenance. */
  workerIdentity?: string;
  /** Where the LangChain agent's spans go (OTLP/HTTP traces URL); undefined: they are not sent. */
  agentSpansUrl?: string;
}

export interface CommandPhaseInput {
  run: CodingRunInput;
  phase: Extract<PhaseName, 'install' | 'agent' | 'test'>;
  command: string;
  worktreePath: string;
  promptFile: string;
  /** Where the run branch started; the path policy looks at everything since. */
  baseCommit: string;
  /** Wall-clock for this command: the phase budget, or less when the run budget is nearly spent. */
  timeoutMs: number;
  /** When the run's budget ends (ms since the epoch): every attempt gets at most what is left of it. */
  runDeadline?: number;
}

function artifactPrefix(run: Pick<CodingRunInput, 'tenantId' | 'runId'>): string {
  return `runs/${run.tenantId}/${run.runId}/`;
}

/** Builds the activities with their real dependencies (git, processes, the API, the artifact store). */
export function createActivities(deps: ActivityDeps) {
  const redactorFor = (run: CodingRunInput) => new Redactor(allSecretValues(deps, run));
  /** Runs an activity body so that no secret of the run can leave it (see guard.ts). */
  const guarded = <T>(run: CodingRunInput, body: Parameters<typeof guardedBody<T>>[1], opts?: { heartbeat?: boolean }): Promise<T> =>
    guardedBody(redactorFor(run), body, opts);
  /** The worker's git limits for this activity: its cancellation, and AMEIDE_GIT_TIMEOUT_SECONDS. */
  const gitLimits = () => ({ signal: Context.current().cancellationSignal, timeoutMs: deps.gitTimeoutSeconds * 1000 });
  const mirrorOf = (run: CodingRunInput) => mirrorPath(deps.workspaceDir, run.tenantId, run.repo.repoUrl);
  const branchOf = (run: CodingRunInput) => workBranchName(run.repo.branchPrefix, run.workItems[0]?.id, run.planId);

  const runStep = createStepRunner(deps);
  const afterRun = new HeldCleanups();

  /**
   * The agent phase with a coding agent: the adapter's command, files and mounts for the step, its
   * events read while it runs (and written into the transcript as `[agent] …` lines), a stop once it
   * exceeds its turn budget; after the step, its transcript artifact and, for the LangChain runtime,
   * its spans sent on to the worker's collector.
   */
  const startAgent = (run: CodingRunInput, paths: RunPaths, redactor: Redactor, cancelled: AbortSignal) => {
    const settings = run.repo.agent;
    if (!settings) return undefined;
    const dirs = stepDirs(paths, 'agent');
    let prepared;
    try {
      prepared = prepareAgent(run, settings, {
        promptFile: paths.promptFile,
        hostDirs: { ...dirs, worktree: paths.worktree },
        traceparent: currentTraceparent(),
      });
    } catch (err) {
      if (err instanceof AgentUnavailableError) throw permanent('AgentUnavailable', `the ${settings.kind} agent cannot run on this worker: ${err.message}`);
      throw err;
    }
    const stopper = new AbortController();
    const notes: TranscriptNotes = { beforeEnd: () => monitor.poll() };
    const monitor = new AgentMonitor(settings, redactor, {
      note: (line) => notes.write?.(`${line}\n`),
      stop: (reason) => {
        notes.stopReason = reason;
        stopper.abort();
      },
      maxEventBytes: run.repo.guardrails.budgets.maxOutputBytes,
    });
    let timer: NodeJS.Timeout | undefined;
    return {
      prepared,
      signal: AbortSignal.any([cancelled, stopper.signal]),
      stepOptions: {
        notes,
        readOnly: prepared.launch.readOnly,
        extraEnv: prepared.launch.env,
        beforeStart: async (d: { home: string; tmp: string }) => {
          await prepared.beforeStart(d);
          monitor.open(prepared.eventsFile(d));
          timer = setInterval(() => monitor.poll(), 250);
        },
      },
      stopWatching: () => clearInterval(timer),
      /** The step failed before the agent's end could be read: closes what was opened. */
      abandon: () => {
        clearInterval(timer);
        monitor.finish();
      },
      finish: async (): Promise<AgentRunResult> => {
        const summary = monitor.finish();
        const stored = await deps.artifacts.put(`${artifactPrefix(run)}${EVIDENCE_NAMES.agentTranscript}`, Buffer.from(monitor.transcript()));
        summary.transcriptUri = stored.uri;
        if (settings.kind === 'langchain' && deps.agentSpansUrl) {
          // Best effort, like every span export: a run never fails for its telemetry.
          await exportAgentSpans(join(dirs.tmp, AGENT_SPANS_FILE_NAME), deps.agentSpansUrl).catch((err: Error) =>
            console.warn(`could not send the agent's spans of run ${run.runId}: ${err.message}`),
          );
        }
        return summary;
      },
    };
  };

  /**
   * Has the sandbox export its work (see exchange.ts), verifies it into the import repository and
   * reviews it. Throws ImportRefused when the work cannot be accepted.
   */
  const exportWork = async (run: CodingRunInput, paths: RunPaths, base: string, commit: { message: string; time?: string }, redactor: Redactor) => {
    const transcript = join(paths.transcriptsDir, 'export.log');
    const out = stepDirs(paths, 'export').out;
    const limits = gitLimits();
    const r = await runStep(run, paths, 'export', EXPORT_SCRIPT, {
      timeoutMs: limits.timeoutMs,
      signal: limits.signal,
      redactor,
      transcript,
      extraEnv: exchangeEnv({
        base,
        branch: branchOf(run),
        mirrorObjects: join(mirrorOf(run), 'objects'),
        commitMessage: commit.message,
        commitTime: commit.time,
        outDir: out,
      }),
    });
    if (r.aborted) throw new CancelledFailure('export stopped: the run was cancelled');
    if (r.exitCode !== 0)
      throw new ImportRefused(`the sandbox could not export the run's work (exit ${r.exitCode}): ${r.outputTail.trim().split('\n').at(-1) ?? ''}`);
    const imported = await importExport({
      outDir: out,
      importRepo: paths.importRepo,
      base,
      maxBundleBytes: run.repo.guardrails.budgets.maxFileBytes,
      scratch: paths.runDir,
      limits,
    });
    const review = await reviewWork({ importRepo: paths.importRepo, base, head: imported.head, run, secrets: allSecrets(deps, run) });
    return { ...imported, review };
  };

  /**
   * What the test phase's reports say: the JUnit files the definition names, collected in the
   * sandbox and read as data (never from the checkout), or else TAP in the command's output. The
   * test command's own sandbox collects them right after it (`collected`: where to, and the
   * collect's exit code); when that never ran (the command was killed), a step of its own does.
   */
  const testReportOf = async (
    run: CodingRunInput,
    paths: RunPaths,
    transcript: string,
    redactor: Redactor,
    collected: { out: string; statusFile: string } | undefined,
  ): Promise<TestReportResult | undefined> => {
    const globs = run.repo.testReports ?? [];
    if (!globs.length) {
      const tap = parseTap((await readTail(transcript, MAX_REPORT_BYTES)).toString('utf8'));
      return tap && { ...tap, error: undefined };
    }
    const none: TestReportResult = { format: '', passed: 0, failed: 0, skipped: 0, durationMs: 0, failingTests: [], sources: [] };
    let out = collected?.out;
    let status = collected && (await readCollectStatus(collected.statusFile));
    if (!out || status === undefined) {
      out = stepDirs(paths, 'reports').out;
      const r = await runStep(run, paths, 'reports', COLLECT_SCRIPT, {
        timeoutMs: 60_000,
        signal: Context.current().cancellationSignal,
        redactor,
        transcript: join(paths.transcriptsDir, 'reports.log'),
        extraEnv: collectEnv(globs, out),
      });
      if (r.aborted) throw new CancelledFailure('collecting the test reports stopped: the run was cancelled');
      status = { exitCode: r.exitCode, detail: r.outputTail.trim().split('\n').at(-1) ?? '' };
    }
    try {
      if (status.exitCode !== 0)
        throw new ReportsUnreadable(`collecting the test reports failed (exit ${status.exitCode})${status.detail ? `: ${status.detail}` : ''}`);
      const files = await readCollected(out);
      if (!files.length) return { ...none, error: `no file matches ${globs.join(', ')}` };
      return parseJUnit(files.map((f) => ({ path: f.path, xml: f.text })));
    } catch (err) {
      if (err instanceof ReportsUnreadable || err instanceof ReportUnreadable) return { ...none, error: err.message };
      throw err;
    }
  };

  return {
    ...createPullRequestActivities(deps),
    ...createPreviewActivities(deps),
    /** Posts a status update to the workflow service (idempotent on run id + sequence). Runs started before batches use it. */
    async recordStatus(update: StatusUpdateInput): Promise<void> {
      await sendStatusUpdate(deps.api, update);
    },

    /**
     * Posts a batch of a run's status updates to the workflow service, in order (each idempotent on
     * run id + sequence, so a retried batch stores nothing twice). An update the service refuses for
     * good is skipped and named in `refused`; any other failure fails the batch, which Temporal retries.
     */
    recordStatuses: async (updates: StatusUpdateInput[]): Promise<{ refused: Array<{ sequence: number; message: string }> }> => {
      const sent = await sendStatusUpdates(deps.api, updates);
      // The run's end has left: its workspace and caches may be cleaned up now (see writeReport).
      if (updates.some((u) => u.kind === 'run_finished')) afterRun.release(updates[0]!.runId);
      return sent;
    },

    /**
     * The worker's mirror (created once, fetched per run), the run's import repository, its sandbox
     * area (own disk where the worker can mount one), and the checkout, made by the sandbox itself.
     */
    prepareWorkspace: (run: CodingRunInput): Promise<PreparedWorkspace> =>
      guarded(run, async (redactor, step) => {
        const started = Date.now();
        await requireFreeDisk(deps.workspaceDir, deps.minFreeDiskMb);
        const paths = runPaths(deps.workspaceDir, run.tenantId, run.runId);
        // A retried prepare starts over (a first attempt finds nothing to remove: checking is cheaper than removing).
        if (existsSync(paths.runDir)) await removeRun(paths);
        await mkdir(paths.box, { recursive: true, mode: 0o711 });
        await mkdir(paths.transcriptsDir, { recursive: true, mode: 0o700 });
        const branch = branchOf(run);
        // The run's disk is made while the mirror fetches.
        const disk =
          run.repo.guardrails.sandbox === 'bubblewrap' ? mountRunDisk(paths, deps.runDiskMb, diskTemplateDir(deps.workspaceDir)) : Promise.resolve(false);
        let mirror: string;
        let baseCommit: string;
        const limits = gitLimits();
        try {
          try {
            step('fetch');
            mirror = await ensureMirror(
              deps.workspaceDir,
              run.tenantId,
              normaliseRepoUrl(run.repo.repoUrl),
              { branch, defaultBranch: run.repo.defaultBranch },
              deps.gitConfig,
              limits,
            );
          } catch (err) {
            if (limits.signal.aborted) throw err;
            if ((err as { permanent?: boolean }).permanent) throw permanent('BranchNotFound', (err as Error).message);
            throw permanent('RepositoryUnavailable', `cannot clone or fetch ${run.repo.repoUrl}: ${(err as Error).message.trim()}`);
          }
          try {
            baseCommit = await resolveBase(mirror, branch, run.repo.defaultBranch);
          } catch (err) {
            if ((err as { permanent?: boolean }).permanent) throw permanent('BranchNotFound', (err as Error).message);
            throw err;
          }
        } finally {
          await disk;
        }
        const quota = await disk;
        await chmod(paths.box, 0o711);
        await Promise.all([writePrompt(paths, run, branch), prepareSandbox(deps, run, paths)]);
        // The worker's import repository is made while the sandbox checks out.
        step('checkout');
        const [r] = await Promise.all([
          runStep(run, paths, 'checkout', CHECKOUT_SCRIPT, {
            timeoutMs: limits.timeoutMs,
            signal: limits.signal,
            redactor,
            transcript: join(paths.transcriptsDir, 'prepare.log'),
            extraEnv: exchangeEnv({ base: baseCommit, branch, mirrorObjects: join(mirror, 'objects'), commitMessage: '' }),
          }),
          createImportRepo(paths, mirror).then(() => workerGit(paths.importRepo).raw(['update-ref', HEAD_REF, baseCommit])),
        ]);
        if (r.aborted) throw new CancelledFailure('checkout stopped: the run was cancelled');
        if (r.exitCode !== 0) throw new Error(`checkout of ${baseCommit.slice(0, 12)} failed (exit ${r.exitCode}): ${r.outputTail.trim()}`);
        return {
          worktreePath: paths.worktree,
          branch,
          baseCommit,
          promptFile: paths.promptFile,
          durationMs: Date.now() - started,
          outputTail: `worktree ${paths.worktree} on ${branch} at ${baseCommit.slice(0, 12)}${quota ? `, ${deps.runDiskMb} MB disk` : ''}`,
        };
      }),

    /**
     * Runs the phase's shell command in the run's sandbox; heartbeats; cancellation kills it. A
     * retried attempt starts where the first one did: whatever is left of an earlier attempt is
     * killed, and the checkout is put back as the phase found it (see SNAPSHOT_SCRIPT).
     */
    runCommandPhase: (input: CommandPhaseInput): Promise<CommandPhaseResult> =>
      guarded(input.run, async (redactor) => {
        const { run, phase } = input;
        const ctx = Context.current();
        const paths = runPaths(deps.workspaceDir, run.tenantId, run.runId);
        await mkdir(paths.transcriptsDir, { recursive: true, mode: 0o700 });
        const transcriptPath = join(paths.transcriptsDir, `${phase}.log`);
        const retry = ctx.info.attempt > 1;
        const timeoutMs = input.runDeadline === undefined ? input.timeoutMs : Math.max(1000, Math.min(input.timeoutMs, input.runDeadline - Date.now()));
        if (retry) await killCommandCgroups(`-${run.runId}-${phase}-`);
        // The service shows the output while the command runs (`ameide runs logs`): sent on the side,
        // never holding the command up; the transcript stored below stays the whole record.
        const live = runOutputSender(deps.api, run, phase);
        const agent = phase === 'agent' ? startAgent(run, paths, redactor, ctx.cancellationSignal) : undefined;
        // The test command's sandbox collects its reports right after it: no second sandbox for that.
        const reportsOut = stepDirs(paths, phase).out;
        const collect = phase === 'test' && run.repo.testReports?.length ? { out: reportsOut, statusFile: join(reportsOut, COLLECT_STATUS) } : undefined;
        const result = await runStep(run, paths, phase, agent?.prepared.command ?? input.command, {
          ...agent?.stepOptions,
          ...(collect && {
            postlude: { script: COLLECT_SCRIPT, statusFile: collect.statusFile },
            writable: [collect.out],
            extraEnv: collectEnv(run.repo.testReports!, collect.out),
          }),
          // In the phase's own sandbox, before its command: the first attempt records the checkout,
          // a retry puts it back as it was.
          prelude: retry ? RESTORE_SCRIPT : SNAPSHOT_SCRIPT,
          timeoutMs,
          redactor,
          transcript: transcriptPath,
          signal: agent?.signal ?? ctx.cancellationSignal,
          onProgress: (bytes) => ctx.heartbeat({ phase, bytes }),
          onOutput: (chunk, offset) => live.push(chunk, offset),
        })
          .catch((err: unknown) => {
            void live.close(0);
            agent?.abandon();
            throw err;
          })
          .finally(() => agent?.stopWatching());
        // The last output goes out before the phase's end is reported (while the transcript is stored; 3 s at most).
        const sent = live.close(3000);
        const stored = await deps.artifacts.put(`${artifactPrefix(run)}transcripts/${phase}.log`, await readFile(transcriptPath));
        await sent;
        if (result.aborted && ctx.cancellationSignal.aborted) throw new CancelledFailure(`${phase} command killed: run cancelled`);
        const testReport = phase === 'test' ? await testReportOf(run, paths, transcriptPath, redactor, collect) : undefined;
        const agentRun = agent ? await agent.finish() : undefined;
        return {
          ...(agentRun ? { agent: agentRun } : {}),
          ...(result.egress.length ? { egress: result.egress } : {}),
          // An agent the worker stopped (its turn budget) failed, whatever its exit code.
          exitCode: agentRun?.stopped && result.exitCode === 0 ? 1 : result.exitCode,
          durationMs: result.durationMs,
          outputTail: result.outputTail,
          transcriptUri: stored.uri,
          timedOut: result.timedOut,
          truncated: result.truncated,
          skipped: false,
          timeoutMs,
          testReport,
        };
      }),

    /**
     * The gate before the push: the sandbox exports its work, which is verified into the import
     * repository and reviewed as a whole (the path policy over every phase's changes, push
     * protection). Exactly that verified head is pushed, as the run branch, to the definition's URL.
     */
    publishBranch: (input: {
      run: CodingRunInput;
      worktreePath: string;
      branch: string;
      baseCommit: string;
      /**
       * Date of the commit that carries uncommitted work, chosen by the workflow: every attempt makes
       * the same commit, so an attempt retried after its push landed pushes nothing new.
       */
      commitTime?: string;
    }): Promise<PublishResult> =>
      guarded(input.run, async (redactor, step) => {
        const started = Date.now();
        const { run } = input;
        const paths = runPaths(deps.workspaceDir, run.tenantId, run.runId);
        let work;
        step('export');
        try {
          work = await exportWork(run, paths, input.baseCommit, { message: commitMessage(run), time: input.commitTime }, redactor);
        } catch (err) {
          if (err instanceof ImportRefused) throw permanent('ExportRefused', err.message);
          throw err;
        }
        const { head: headCommit, review } = work;
        const stats = { headCommit, filesChanged: review.filesChanged, insertions: review.insertions, deletions: review.deletions };
        if (headCommit === input.baseCommit) throw permanent('NoChanges', 'the agent made no changes to commit');
        if (review.violations.length) return { ...stats, violations: review.violations, pushed: false, durationMs: Date.now() - started, outputTail: '' };
        if (review.secretFinding) throw permanent('PushProtection', `push protection: ${review.secretFinding}`);
        step('push');
        const limits = gitLimits();
        try {
          await workerGit(paths.importRepo, deps.gitConfig, limits).raw([
            'push',
            '--quiet',
            '--no-verify',
            normaliseRepoUrl(run.repo.repoUrl),
            `${headCommit}:refs/heads/${input.branch}`,
          ]);
        } catch (err) {
          if (limits.signal.aborted) throw err;
          throw permanent('PushRejected', `push of ${input.branch} failed: ${(err as Error).message.trim()}`);
        }
        return {
          ...stats,
          pushed: true,
          durationMs: Date.now() - started,
          outputTail: `pushed ${input.branch} at ${headCommit.slice(0, 12)}: ${review.filesChanged} files changed, +${review.insertions} -${review.deletions}`,
        };
      }),

    /**
     * Packages what a run that could not finish leaves behind (git bundle of the branch, the diff,
     * the transcripts and `.codex/followup.md`) as one tar.gz in the artifact store. The sandbox
     * exports its latest work first (uncommitted work as `WIP: handoff of run …`); when it cannot,
     * the last verified work is used. A branch carrying a secret is withheld.
     */
    createHandoff: (input: {
      run: CodingRunInput;
      worktreePath: string;
      branch: string;
      baseCommit: string;
      failedPhase: string;
      reason: string;
      lastOutput: string;
      /** Date of the WIP commit, chosen by the workflow (the same in every attempt). */
      commitTime?: string;
    }): Promise<{ uri: string; sha256: string; size: number }> =>
      guarded(input.run, async (redactor, step) => {
        const { run } = input;
        const paths = runPaths(deps.workspaceDir, run.tenantId, run.runId);
        step('export');
        let head = await workerGit(paths.importRepo).text(['rev-parse', '--verify', HEAD_REF]);
        let wipCommit = false;
        let withheld: string | undefined;
        try {
          const work = await exportWork(run, paths, input.baseCommit, { message: `WIP: handoff of run ${run.runId}`, time: input.commitTime }, redactor);
          head = work.head;
          wipCommit = work.head !== work.sandboxHead;
          if (work.review.secretFinding) withheld = `push protection: ${work.review.secretFinding}`;
        } catch (err) {
          if (!(err instanceof ImportRefused)) throw err;
          const review = await reviewWork({ importRepo: paths.importRepo, base: input.baseCommit, head, run, secrets: allSecrets(deps, run) });
          if (review.secretFinding) withheld = `push protection: ${review.secretFinding}`;
        }
        step('bundle');
        const stored = await createHandoffBundle({
          repo: paths.importRepo,
          gitLimits: gitLimits(),
          baseCommit: input.baseCommit,
          headCommit: head,
          wipCommit,
          withheld,
          branch: input.branch,
          transcriptsDir: paths.transcriptsDir,
          runId: run.runId,
          followup: {
            attempted: run.workItems.map((w) => `${w.id}: ${w.title}`).join('; ') || `run ${run.runId} of ${run.definitionName}`,
            failedPhase: input.failedPhase,
            reason: redactor.redact(input.reason),
            lastOutput: redactor.redact(input.lastOutput),
            workItems: run.workItems.map((w) => ({ id: w.id, title: w.title })),
          },
          artifacts: deps.artifacts,
          key: `${artifactPrefix(run)}handoff.tar.gz`,
          workDir: paths.runDir,
          redactBytes: (b) => redactor.redactBuffer(b),
        });
        return { uri: stored.uri, sha256: stored.sha256, size: stored.size };
      }),

    /**
     * Stores the run's evidence files beside its transcripts (the diff of what was pushed, the test
     * report, the pull request, the preview check; see evidence/files.ts) and lists every evidence
     * file of the run but the report, with the digests of their stored bytes; says who ran the run
     * and with which tools. Runs before writeReport: the diff is made in the run's import repository.
     */
    writeEvidence: (input: EvidenceInput): Promise<{ evidence: EvidenceFileResult[]; provenance: RunProvenanceResult }> =>
      guarded(input.run, async (redactor, step) => {
        const { run } = input;
        const ctx = Context.current();
        const paths = runPaths(deps.workspaceDir, run.tenantId, run.runId);
        const limits = gitLimits();
        const evidence = await gatherEvidence(
          {
            artifacts: deps.artifacts,
            prefix: artifactPrefix(run),
            redactor,
            signal: ctx.cancellationSignal,
            step,
            // The worker's own repository of the run, never the sandbox's checkout.
            diff: (base, head) =>
              workerGit(paths.importRepo, undefined, limits).raw(['diff', '-M', '--no-color', '--no-ext-diff', '--no-textconv', base, head, '--']),
          },
          input,
        );
        step('provenance');
        const provenance = await runProvenance({
          workerIdentity: deps.workerIdentity ?? '',
          temporalRunId: ctx.info.workflowExecution?.runId ?? '',
          agentCommand: redactor.redact(run.repo.agentCommand),
          agent: run.repo.agent && {
            kind: run.repo.agent.kind,
            version: agentVersion(run.repo.agent.kind),
            model: run.repo.agent.model,
            endpoint: redactor.redact(run.repo.agent.endpoint),
          },
          bubblewrap: run.repo.guardrails.sandbox === 'bubblewrap' ? findBubblewrap(deps.commandPath) : undefined,
        });
        return { evidence, provenance };
      }),

    /**
     * Stores the run report beside the transcripts and returns where they are, and the report's
     * evidence entry (its digest: the report cannot list its own). The workspace goes
     * when nobody needs it any more (the run completed, or its work is in a handoff bundle);
     * otherwise it is kept until the TTL prunes it. The tenant's caches are trimmed to their quota.
     */
    writeReport: (input: {
      run: CodingRunInput;
      report: Record<string, unknown>;
      removeWorktree: boolean;
    }): Promise<{ transcriptsUri: string; reportUri: string; evidence: EvidenceFileResult }> =>
      guarded(
        input.run,
        async (redactor) => {
          const prefix = artifactPrefix(input.run);
          const stored = await deps.artifacts.put(`${prefix}${EVIDENCE_NAMES.report}`, JSON.stringify(redactor.redactDeep(input.report), null, 2) + '\n');
          const { run } = input;
          // Off the run's critical path: the run is done once its report is stored. It waits until
          // the run's last status updates have left this worker (they follow the report at once), so
          // that removing files and listing caches does not hold up their delivery.
          // A workspace kept for a person keeps its disk image (box.img) but releases the mount.
          afterRun.hold(run.runId, async () => {
            const paths = runPaths(deps.workspaceDir, run.tenantId, run.runId);
            // A live preview serves from the workspace: its stop removes (or unmounts) it instead.
            if (!(await holdForPreview(deps.workspaceDir, run.tenantId, run.runId, input.removeWorktree))) {
              if (input.removeWorktree) await removeRun(paths);
              else await unmountUnder(paths.runDir);
            }
            await enforceCacheQuota(cacheDir(deps.workspaceDir, run.tenantId), deps.cacheQuotaMb * 1024 * 1024);
          });
          return {
            transcriptsUri: deps.artifacts.uri(`${prefix}transcripts/`),
            reportUri: stored.uri,
            evidence: evidenceFile('report', EVIDENCE_NAMES.report, stored, MEDIA_TYPES.json),
          };
        },
        { heartbeat: false },
      ),
  };
}

export type Activities = ReturnType<typeof createActivities>;
export type { WarmUpActivities, WarmUpResult } from './warm-up.js';
