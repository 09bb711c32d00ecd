import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { WorkflowServiceClient } from '@ameide/sdk';
import {
  workBranchName,
  type CodingRunInput,
  type CommandPhaseResult,
  type PhaseName,
  type PreparedWorkspace,
  type PublishResult,
  type StatusUpdateInput,
} from '@ameide/temporal';
import type { ArtifactStore } from '../artifacts.js';
import { runCommand } from './exec.js';
import { gitAt } from './git.js';
import { sendStatusUpdate } from './status.js';
import { createHandoffBundle } from './handoff.js';
import { removeWorktree, requireFreeDisk } from './lifecycle.js';
import { changedPathViolations } from './policy.js';
import { Redactor } from '../guardrails/redact.js';
import { allSecretValues, phaseExecution, prepareSandbox, type SandboxDeps } from './sandboxing.js';
import { addWorktree, ensureMirror, mirrorPath, normaliseRepoUrl, runPaths, writePrompt } from './workspace.js';

/** What activities need from the worker process. */
export interface ActivityDeps extends SandboxDeps {
  api: WorkflowServiceClient;
  artifacts: ArtifactStore;
  /** New runs are refused below this much free disk (MB). */
  minFreeDiskMb: number;
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
}

const STATUS_TAIL_BYTES = 4000;

function artifactPrefix(run: Pick<CodingRunInput, 'tenantId' | 'runId'>): string {
  return `runs/${run.tenantId}/${run.runId}/`;
}

function permanent(type: string, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true });
}

/** An activity error with every secret of the run taken out of its message (it lands in history). */
function redactError(err: unknown, redactor: Redactor): unknown {
  if (redactor.empty || err instanceof CancelledFailure) return err;
  if (err instanceof ApplicationFailure) {
    return ApplicationFailure.create({ type: err.type ?? undefined, message: redactor.redact(err.message), nonRetryable: err.nonRetryable ?? undefined });
  }
  return new Error(redactor.redact(err instanceof Error ? err.message : String(err)));
}

/** Builds the activities with their real dependencies (git, processes, the API, the artifact store). */
export function createActivities(deps: ActivityDeps) {
  const redactorFor = (run: CodingRunInput) => new Redactor(allSecretValues(deps, run));
  /** Runs an activity body so that no secret of the run can leave it in an error message. */
  const guarded = async <T>(run: CodingRunInput, body: (redactor: Redactor) => Promise<T>): Promise<T> => {
    const redactor = redactorFor(run);
    try {
      return await body(redactor);
    } catch (err) {
      throw redactError(err, redactor);
    }
  };
  return {
    /** Posts a status update to the workflow service (idempotent on run id + sequence). */
    async recordStatus(update: StatusUpdateInput): Promise<void> {
      await sendStatusUpdate(deps.api, update);
    },

    /** Mirror (clone once, fetch per run), then a worktree on the run branch and the agent's prompt file. */
    prepareWorkspace: (run: CodingRunInput): Promise<PreparedWorkspace> => guarded(run, async () => {
      const started = Date.now();
      await requireFreeDisk(deps.workspaceDir, deps.minFreeDiskMb);
      const paths = runPaths(deps.workspaceDir, run.tenantId, run.runId);
      await mkdir(paths.transcriptsDir, { recursive: true });
      const branch = workBranchName(run.repo.branchPrefix, run.workItems[0]?.id, run.planId);
      let mirror: string;
      try {
        mirror = await ensureMirror(deps.workspaceDir, run.tenantId, run.repo.repoUrl);
      } catch (err) {
        throw permanent('RepositoryUnavailable', `cannot clone or fetch ${run.repo.repoUrl}: ${(err as Error).message.trim()}`);
      }
      let baseCommit: string;
      try {
        baseCommit = await addWorktree(mirror, paths, branch, run.repo.defaultBranch);
      } catch (err) {
        if ((err as { permanent?: boolean }).permanent) throw permanent('BranchNotFound', (err as Error).message);
        throw err;
      }
      await writePrompt(paths, run, branch);
      await prepareSandbox(deps, run, paths, mirror);
      return {
        worktreePath: paths.worktree,
        branch,
        baseCommit,
        promptFile: paths.promptFile,
        durationMs: Date.now() - started,
        outputTail: `worktree ${paths.worktree} on ${branch} at ${baseCommit.slice(0, 12)}`,
      };
    }),

    /**
     * Runs the phase's shell command in the worktree, in the run's sandbox; heartbeats; cancellation
     * kills the process group. After the agent phase, checks the changed paths against the policy.
     */
    runCommandPhase: (input: CommandPhaseInput): Promise<CommandPhaseResult> => guarded(input.run, async (redactor) => {
      const { run, phase } = input;
      const ctx = Context.current();
      const paths = runPaths(deps.workspaceDir, run.tenantId, run.runId);
      await mkdir(paths.transcriptsDir, { recursive: true });
      const transcriptPath = join(paths.transcriptsDir, `${phase}.log`);
      const { env, sandbox } = phaseExecution(deps, run, phase, paths, mirrorPath(deps.workspaceDir, run.tenantId, run.repo.repoUrl));
      const result = await runCommand({
        command: input.command,
        cwd: input.worktreePath,
        env,
        sandbox,
        redactor,
        timeoutMs: input.timeoutMs,
        maxOutputBytes: run.repo.guardrails.budgets.maxOutputBytes,
        transcriptPath,
        tailBytes: STATUS_TAIL_BYTES,
        signal: ctx.cancellationSignal,
        onProgress: (bytes) => ctx.heartbeat({ phase, bytes }),
      });
      const stored = await deps.artifacts.put(`${artifactPrefix(run)}transcripts/${phase}.log`, await readFile(transcriptPath));
      if (result.aborted) throw new CancelledFailure(`${phase} command killed: run cancelled`);
      const violations = phase === 'agent' && result.exitCode === 0 ? await changedPathViolations(input.worktreePath, input.baseCommit, run) : [];
      return {
        exitCode: result.exitCode,
        durationMs: result.durationMs,
        outputTail: result.outputTail,
        transcriptUri: stored.uri,
        timedOut: result.timedOut,
        truncated: result.truncated,
        skipped: false,
        violations,
      };
    }),

    /** Commits everything the agent changed and pushes the run branch to the repository's remote. */
    publishBranch: (input: { run: CodingRunInput; worktreePath: string; branch: string; baseCommit: string }): Promise<PublishResult> => guarded(input.run, async () => {
      const started = Date.now();
      const git = gitAt(input.worktreePath);
      await git.raw(['add', '--all', '--verbose']);
      // Agents may commit their own work; whatever is left uncommitted is committed here.
      if (!(await git.status()).isClean()) {
        const item = input.run.workItems[0];
        const subject = item ? `${item.id}: ${item.title || 'change by coding agent'}` : `Coding agent run ${input.run.runId}`;
        await git.commit([subject, '', `Ameide-Run: ${input.run.runId}`, `Ameide-Plan: ${input.run.planId}`].join('\n'));
      }
      const headCommit = (await git.revparse(['HEAD'])).trim();
      if (headCommit === input.baseCommit) throw permanent('NoChanges', 'the agent made no changes to commit');
      const diff = await git.diffSummary([input.baseCommit, headCommit]);
      try {
        await git.push(normaliseRepoUrl(input.run.repo.repoUrl), `${headCommit}:refs/heads/${input.branch}`, ['--verbose']);
      } catch (err) {
        throw permanent('PushRejected', `push of ${input.branch} failed: ${(err as Error).message.trim()}`);
      }
      return {
        headCommit,
        filesChanged: diff.changed,
        insertions: diff.insertions,
        deletions: diff.deletions,
        pushed: true,
        durationMs: Date.now() - started,
        outputTail: `pushed ${input.branch} at ${headCommit.slice(0, 12)}: ${diff.changed} files changed, +${diff.insertions} -${diff.deletions}`,
      };
    }),

    /**
     * Packages what a run that could not finish leaves behind (git bundle of the branch, the diff,
     * the transcripts and `.codex/followup.md`) as one tar.gz in the artifact store.
     */
    createHandoff: (input: {
      run: CodingRunInput;
      worktreePath: string;
      branch: string;
      baseCommit: string;
      failedPhase: string;
      reason: string;
      lastOutput: string;
    }): Promise<{ uri: string; sha256: string }> => guarded(input.run, async (redactor) => {
      const { run } = input;
      const paths = runPaths(deps.workspaceDir, run.tenantId, run.runId);
      const stored = await createHandoffBundle({
        worktree: input.worktreePath,
        baseCommit: input.baseCommit,
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
      });
      return { uri: stored.uri, sha256: stored.sha256 };
    }),

    /**
     * Stores the run report beside the transcripts and returns where they are. The worktree goes when
     * nobody needs it any more (the run completed, or its work is in a handoff bundle); otherwise it is
     * kept until the TTL prunes it.
     */
    writeReport: (input: { run: CodingRunInput; report: Record<string, unknown>; removeWorktree: boolean }): Promise<{ transcriptsUri: string; reportUri: string }> => guarded(input.run, async (redactor) => {
      const prefix = artifactPrefix(input.run);
      const stored = await deps.artifacts.put(`${prefix}report.json`, JSON.stringify(redactor.redactDeep(input.report), null, 2) + '\n');
      if (input.removeWorktree) {
        // Off the run's critical path: the run is done once its report is stored.
        const { run } = input;
        void removeWorktree(runPaths(deps.workspaceDir, run.tenantId, run.runId), mirrorPath(deps.workspaceDir, run.tenantId, run.repo.repoUrl)).catch(() => undefined);
      }
      return { transcriptsUri: deps.artifacts.uri(`${prefix}transcripts/`), reportUri: stored.uri };
    }),
  };
}

export type Activities = ReturnType<typeof createActivities>;
