import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { Code, ConnectError } from '@ameide/sdk';
import type { CodingRunInput, PreviewResult } from '@ameide/temporal';
import { killCommandCgroups } from '../guardrails/cgroups.js';
import { Redactor } from '../guardrails/redact.js';
import { previewCgroup, recordStopped, startLocalPreview, stopLocalPreview, transcriptKey, type PreviewDeps } from '../previews/local.js';
import { parsePreviewUrls } from '../previews/urls.js';
import { guarded as guardedBody, HEARTBEAT_MS } from './guard.js';
import { allSecretValues } from './sandboxing.js';
import { createStepRunner } from './steps.js';
import { runPaths, type RunPaths } from './workspace.js';

export type { PreviewDeps } from '../previews/local.js';

/** Input of startPreview: the run, and the commit its pushed change is at. */
export interface StartPreviewInput {
  run: CodingRunInput;
  worktreePath: string;
  headCommit: string;
}

/** Input of stopPreview (it runs on the stop queue of the worker that holds the preview). */
export interface StopPreviewInput {
  runId: string;
  tenantId: string;
  /** Why, as the service records it: "expired", "superseded", …. */
  reason: string;
}

// Rejections a retry would not change: the preview fails with the service's reason.
const PERMANENT = new Set([Code.InvalidArgument, Code.PermissionDenied, Code.Unauthenticated, Code.NotFound, Code.FailedPrecondition, Code.Unimplemented]);

/** Runs an activity body so that no secret of the run leaves it (see guard.ts). */
const guarded = <T>(deps: PreviewDeps, run: CodingRunInput, body: Parameters<typeof guardedBody<T>>[1]): Promise<T> =>
  guardedBody(new Redactor(allSecretValues(deps, run)), body);

/**
 * The preview activities. `startPreview` starts a `local` preview (a long-lived server in the run's
 * sandbox, forwarded to one port of the worker; see previews/local.ts) or runs a `command`
 * provider's deploy; `stopPreview` stops a local preview and must run on the worker holding it
 * (`PreviewResult.stopQueue`).
 */
export function createPreviewActivities(deps: PreviewDeps) {
  const runStep = createStepRunner(deps);

  /**
   * The `command` provider: the deploy command (then the alias command) runs to completion as the
   * sandbox step `preview`, online through the egress proxy, with the secrets scoped to `preview`;
   * the URLs come from its `AMEIDE_PREVIEW_URL=` / `AMEIDE_PREVIEW_ALIAS_URL=` lines.
   */
  const commandPreview = async (
    run: CodingRunInput,
    paths: RunPaths,
    headCommit: string,
    redactor: Redactor,
    step: (name: string) => void,
  ): Promise<PreviewResult> => {
    const started = Date.now();
    const settings = run.repo.preview!;
    const ctx = Context.current();
    const transcript = join(paths.transcriptsDir, 'preview.log');
    await mkdir(paths.transcriptsDir, { recursive: true, mode: 0o700 });
    if (ctx.info.attempt > 1) await killCommandCgroups(previewCgroup(run.runId));
    await writeFile(transcript, '', { mode: 0o600 });
    // The deploy and the alias command share one phase budget.
    const budget = run.repo.phaseTimeoutSeconds;
    const deadline = started + budget * 1000;
    const store = () => readFile(transcript).then((b) => deps.artifacts.put(transcriptKey(run.tenantId, run.runId), b));
    const runOne = async (command: string, extraEnv: Record<string, string>) => {
      const from = (await stat(transcript)).size;
      const r = await runStep(run, paths, 'preview', command, {
        timeoutMs: Math.max(1000, deadline - Date.now()),
        redactor,
        transcript,
        signal: ctx.cancellationSignal,
        onProgress: () => step(progressName),
        online: true,
        extraEnv: { AMEIDE_HEAD_COMMIT: headCommit, ...extraEnv },
      });
      if (r.aborted) throw new CancelledFailure('preview command killed: run cancelled');
      // The transcript is redacted already; the tail covers output beyond the transcript's budget.
      const output = (await readFile(transcript)).subarray(from).toString('utf8');
      return { r, urls: parsePreviewUrls(`${output}\n${r.outputTail}`) };
    };
    const failed = async (failure: string, outputTail: string): Promise<PreviewResult> => {
      await store();
      return { provider: 'command', url: '', aliasUrl: '', health: '', durationMs: Date.now() - started, outputTail, failure };
    };
    const exitFailure = (what: string, r: { exitCode: number; timedOut: boolean }) =>
      r.timedOut ? `the ${what} ran out of the preview's ${budget}s budget` : `the ${what} exited with ${r.exitCode}`;

    let progressName = 'deploy';
    step(progressName);
    const deploy = await runOne(settings.command, {});
    if (deploy.r.exitCode !== 0) return failed(exitFailure('preview command', deploy.r), deploy.r.outputTail);
    const url = deploy.urls.url;
    if (!url) return failed('the preview command printed no AMEIDE_PREVIEW_URL=<url> line', deploy.r.outputTail);
    let aliasUrl = deploy.urls.aliasUrl ?? '';
    let outputTail = deploy.r.outputTail;
    if (settings.aliasCommand.trim()) {
      progressName = 'alias';
      step(progressName);
      const alias = await runOne(settings.aliasCommand, { AMEIDE_PREVIEW_URL: url });
      if (alias.r.exitCode !== 0) return failed(exitFailure('preview alias command', alias.r), alias.r.outputTail);
      aliasUrl = alias.urls.aliasUrl ?? '';
      if (!aliasUrl) return failed('the preview alias command printed no AMEIDE_PREVIEW_ALIAS_URL=<url> line', alias.r.outputTail);
      outputTail = alias.r.outputTail;
    }
    step('register');
    let registered;
    try {
      registered = await deps.api.recordPreview({ runId: run.runId, state: 'live', provider: 'command', url, aliasUrl });
    } catch (err) {
      const e = ConnectError.from(err);
      if (!PERMANENT.has(e.code)) throw err;
      return failed(`the workflow service did not take the preview: ${e.message}`, outputTail);
    }
    await store();
    return {
      provider: 'command',
      url: registered.preview?.url || url,
      aliasUrl: registered.preview?.aliasUrl || aliasUrl,
      health: `deployed by the preview command in ${((Date.now() - started) / 1000).toFixed(1)}s`,
      durationMs: Date.now() - started,
      outputTail,
    };
  };

  return {
    /**
     * Starts the run's preview of its pushed change. `local`: returns once the server answers its
     * health check and the service routes to it (the server keeps running, until stopPreview on
     * `stopQueue`); `command`: returns once the deploy printed its URL. A preview that never gets
     * healthy, or a deploy that fails, returns `failure` with the transcript's tail; nothing is
     * left running. A retried attempt first kills what an earlier one started.
     */
    startPreview: (input: StartPreviewInput): Promise<PreviewResult> =>
      guarded(deps, input.run, async (redactor, step) => {
        const { run } = input;
        if (!run.repo.preview) throw ApplicationFailure.create({ type: 'PreviewNotConfigured', message: 'the definition has no preview', nonRetryable: true });
        const paths = runPaths(deps.workspaceDir, run.tenantId, run.runId);
        if (run.repo.preview.provider === 'command') return commandPreview(run, paths, input.headCommit, redactor, step);
        const ctx = Context.current();
        return startLocalPreview(deps, run, paths, {
          redactor,
          signal: ctx.cancellationSignal,
          progress: step,
          retry: ctx.info.attempt > 1,
          extraEnv: { AMEIDE_HEAD_COMMIT: input.headCommit },
        });
      }),

    /**
     * Stops a run's local preview (idempotent, retry-safe): kills its processes, closes the
     * worker's listener, removes or unmounts the run's workspace as its report asked, removes its
     * state, and records it stopped (a preview the service does not know is fine).
     */
    /** Drops a preview's routes when the worker that held it could not stop it (its host is gone). */
    async markPreviewStopped(input: { runId: string; reason: string }): Promise<void> {
      await recordStopped(deps.api, input.runId, input.reason);
    },

    async stopPreview(input: StopPreviewInput): Promise<void> {
      const ctx = Context.current();
      const beat = setInterval(() => ctx.heartbeat('stopping'), HEARTBEAT_MS);
      try {
        await stopLocalPreview(deps, input.tenantId, input.runId, input.reason);
      } finally {
        clearInterval(beat);
      }
    },
  };
}
