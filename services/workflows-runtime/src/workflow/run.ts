/**
 * The coding-agent run workflow: walks the phase pipeline, then reports. Deterministic: no I/O, no
 * secrets, no Node built-ins; every side effect is an activity. Status updates are numbered here, so
 * a retried activity re-sends the same sequence and the service stores it once.
 */
import {
  ApplicationFailure,
  CancellationScope,
  condition,
  defineQuery,
  defineSignal,
  isCancellation,
  log,
  patched,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import {
  SA,
  type CodingRunInput,
  type CodingRunResult,
  type EvidenceFileResult,
  type PhaseName,
  type RunStatusName,
  type RunSummaryResult,
  type StatusUpdateInput,
  type WorkItemChange,
  WORK_ITEM_CHANGED_SIGNAL,
  WORK_ITEM_CHANGES_QUERY,
} from '@ameide/temporal';
import { runActivities, type PhaseOutcome, type RunContext, type StatusPost } from './context.js';
import { PIPELINE } from './pipeline.js';

export function errorMessage(err: unknown): string {
  const e = err as { cause?: { message?: string }; message?: string };
  return e.cause?.message ?? e.message ?? String(err);
}

/** Marks runs whose status updates leave in batches (activity recordStatuses). */
export const STATUS_BATCHES_PATCH = 'status-update-batches';
/**
 * Marks runs whose report phase gathers its evidence in a local activity, as it writes the report: the
 * report phase is then one workflow task, without a round trip through the server between the two.
 */
export const LOCAL_EVIDENCE_PATCH = 'report-evidence-local';
/**
 * Marks runs whose status batches are cut once the workflow task's work has settled, and whose report
 * phase holds its updates back until the run's end:
 * - a batch holds everything the workflow posted while it handled one activation (a phase's own update,
 *   e.g. the pull request it opened, then its end and the next phase's start), not only what it posted
 *   in one step;
 * - the report phase runs only local activities, which hold the workflow task open: a batch scheduled
 *   meanwhile left only once they had finished, and the run's end then waited for it to come back. Its
 *   updates now leave with the run's end, in one batch.
 */
export const SETTLED_BATCHES_PATCH = 'status-batches-settled';
/** Updates one recordStatuses activity carries at most (each is at most a few kB: tails are cut to 4000 bytes). */
export const MAX_STATUS_BATCH = 50;

/**
 * Resolves once the workflow has done all it does in the current activation: a condition is checked
 * at once (here: not yet), then again after the activation's work has settled.
 */
function activationSettled(): Promise<void> {
  let first = true;
  return CancellationScope.nonCancellable(() =>
    condition(() => {
      if (!first) return true;
      first = false;
      return false;
    }),
  );
}

/** The activity's summary in the Web UI: `status update 5: phase_finished install`, or `status updates 5–6: …, …`. */
function statusSummary(batch: StatusUpdateInput[]): string {
  const what = batch.map((u) => `${u.kind}${u.phase ? ` ${u.phase}` : ''}`).join(', ');
  const first = batch[0]!.sequence;
  return batch.length === 1 ? `status update ${first}: ${what}` : `status updates ${first}–${batch.at(-1)!.sequence}: ${what}`;
}

/** The run's work item changed in the backlog: recorded in the workflow's history (and queryable), nothing else. */
export const workItemChanged = defineSignal<[WorkItemChange]>(WORK_ITEM_CHANGED_SIGNAL);
export const workItemChanges = defineQuery<WorkItemChange[]>(WORK_ITEM_CHANGES_QUERY);

/** Runs one coding-agent plan: the phases of PIPELINE in order, then the report. */
export async function codingAgentRun(input: CodingRunInput): Promise<CodingRunResult> {
  const changes: WorkItemChange[] = [];
  setHandler(workItemChanged, (change) => {
    changes.push(change);
    log.info(`work item ${change.workItemId} is now ${change.state} (revision ${change.revision})`);
  });
  setHandler(workItemChanges, () => changes);
  const activities = runActivities(input);
  // The report phase's activities (also when a cancelled run reports), named so in the Web UI.
  const reporting = runActivities(input, 'report phase');

  let sequence = 0;
  // Status updates leave through an outbox, in order: the run never waits for their delivery and its
  // outcome never depends on it; it ends only once every update is delivered. Delivery is never
  // cancelled half-way, so sequences have no gaps. What piled up while one delivery was under way
  // leaves together in the next (a phase's end and the next phase's start, the report and the run's
  // end): one activity, and one workflow task, per batch instead of per update. Runs started before
  // batches existed keep sending one update per activity (their histories say so).
  const batches = patched(STATUS_BATCHES_PATCH);
  const settled = batches && patched(SETTLED_BATCHES_PATCH);
  const outbox: StatusUpdateInput[] = [];
  let sender: Promise<void> | undefined;
  // While the report phase's local activities run, updates wait and leave with the run's end (SETTLED_BATCHES_PATCH).
  let held = false;
  const send = async () => {
    // Whatever the workflow posts in the same step (e.g. a phase's end and the next one's start) goes in the
    // same batch; in runs with SETTLED_BATCHES_PATCH, whatever it posts while it handles the same activation.
    if (batches && !settled) await Promise.resolve();
    while (outbox.length) {
      if (settled) {
        await activationSettled();
        if (held) {
          await CancellationScope.nonCancellable(() => condition(() => !held));
          await activationSettled();
        }
      }
      const batch = outbox.slice(0, batches ? MAX_STATUS_BATCH : 1);
      try {
        const summary = statusSummary(batch);
        if (batches) {
          const { refused } = await CancellationScope.nonCancellable(() => activities.status.recordStatuses.executeWithOptions({ summary }, [batch]));
          // Transient failures are retried without limit: only permanent rejections come back.
          for (const r of refused) log.warn(`status update ${r.sequence} of run ${input.runId} was refused: ${r.message}`);
        } else {
          await CancellationScope.nonCancellable(() => activities.status.recordStatus.executeWithOptions({ summary }, [batch[0]!]));
        }
      } catch (err) {
        // Transient failures are retried without limit: only a permanent rejection gets here.
        log.warn(`status update ${batch[0]!.sequence} of run ${input.runId} was refused: ${errorMessage(err)}`);
      }
      outbox.splice(0, batch.length);
    }
    sender = undefined;
  };
  // What the preview phase said of its preview (its health check): the report phase's preview check.
  let previewLive: Record<string, string> | undefined;
  const post = (u: StatusPost) => {
    if (u.kind === 'preview_live') previewLive = u.attributes;
    outbox.push({ ...u, runId: input.runId, sequence: ++sequence, time: new Date().toISOString() });
    sender ??= send();
  };
  const delivered = () => CancellationScope.nonCancellable(async () => sender);
  const markSearch = (status: RunStatusName, phase: PhaseName | 'pending' | 'done') =>
    upsertSearchAttributes([
      { key: SA.runStatus, value: status },
      { key: SA.runPhase, value: phase },
    ]);

  const summary: RunSummaryResult = {
    branch: '',
    baseCommit: '',
    headCommit: '',
    filesChanged: 0,
    insertions: 0,
    deletions: 0,
    transcriptsUri: '',
    pushed: false,
    sandbox: input.repo.guardrails.sandbox,
  };
  /**
   * The run's end, also in the memo and the current details: the Web UI shows a handed-off run and a
   * failed one both as "Failed" (each ends with a RunFailed failure); its page tells them apart.
   */
  const markEnd = (status: RunStatusName, phase: PhaseName | 'done', message?: string) => {
    markSearch(status, phase);
    upsertMemo({ runStatus: status, ...(summary.handoffUri ? { handoffUri: summary.handoffUri } : {}) });
    const said = status === 'handed_off' ? 'handed off' : status;
    const bundle = summary.handoffUri ? `\n\nhandoff bundle: ${summary.handoffUri}` : '';
    setCurrentDetails(`**${said}**${message ? `: ${message}` : ''}${bundle}`);
  };
  const ctx: RunContext = {
    input,
    summary,
    phases: [],
    runDeadline: Date.now() + input.repo.guardrails.budgets.runTimeoutSeconds * 1000,
    commandsRun: 0,
    post,
    activities,
  };

  let current: PhaseName = 'prepare';
  const started = (phase: PhaseName) => {
    current = phase;
    setCurrentDetails(`running: **${phase}** phase`);
    markSearch('running', phase);
    post({ kind: 'phase_started', phase, phaseState: 'running' });
  };
  const finished = (phase: PhaseName, o: PhaseOutcome) =>
    post({
      kind: 'phase_finished',
      phase,
      phaseState: o.state,
      exitCode: o.exitCode,
      durationMs: o.durationMs,
      outputTail: o.outputTail,
      message: o.message,
    });
  const record = (phase: PhaseName, o: PhaseOutcome) => {
    ctx.phases.push({ phase, ...o, outputTail: undefined });
    finished(phase, o);
  };
  let failure: { phase: PhaseName; message: string; lastOutput?: string } | undefined;

  let handoffError: string | undefined;
  let handoffSizeBytes: number | undefined;
  /** Bundles what the run did for a person to continue; a failure to bundle only loses the bundle (and says why in the report phase). */
  const handOff = async (phase: PhaseName, reason: string, lastOutput: string): Promise<void> => {
    if (!ctx.workspace) return;
    const { worktreePath, branch, baseCommit } = ctx.workspace;
    try {
      const h = await reporting.git.createHandoff({
        run: input,
        worktreePath,
        branch,
        baseCommit,
        failedPhase: phase,
        reason,
        lastOutput,
        commitTime: new Date().toISOString(),
      });
      summary.handoffUri = h.uri;
      summary.handoffSha256 = h.sha256;
      handoffSizeBytes = h.size;
    } catch (err) {
      if (isCancellation(err)) throw err;
      handoffError = errorMessage(err);
    }
  };
  let evidenceError: string | undefined;
  /**
   * Stores the run's evidence files (the diff, the test report, …) and lists them with the
   * transcripts and the handoff bundle, by their digests, into the summary, with the run's
   * provenance; the report (stored next) adds its own. A failure loses only the evidence, and the
   * report phase says why.
   */
  const writeEvidence = async (): Promise<void> => {
    try {
      // Runs that began gathering evidence in a regular activity keep doing so (their histories say so).
      const gather = patched(LOCAL_EVIDENCE_PATCH) ? reporting.evidence : reporting.git;
      const e = await gather.writeEvidence({
        run: input,
        summary,
        phases: ctx.phases.filter((p) => p.state !== 'skipped').map((p) => p.phase),
        handoffSizeBytes,
        previewLive,
      });
      summary.evidence = e.evidence;
      summary.provenance = e.provenance;
      evidenceError = undefined;
    } catch (err) {
      if (isCancellation(err)) throw err;
      evidenceError = errorMessage(err);
    }
  };
  /** The report's own entry goes first in the evidence list. */
  const addReport = ({ evidence }: { evidence?: EvidenceFileResult }) => {
    if (evidence) summary.evidence = [evidence, ...(summary.evidence ?? []).filter((e) => e.name !== evidence.name)];
  };
  // Whatever phase a cancellation hits, the service learns that the run ended; then Temporal does too.
  const reportCancelled = async (cancellation: unknown): Promise<never> => {
    held = false;
    await CancellationScope.nonCancellable(async () => {
      record(current, { state: 'cancelled', message: 'run cancelled' });
      await handOff(current, 'the run was cancelled', '');
      await writeEvidence();
      const report = await reporting.local
        .writeReport({
          run: input,
          report: { runId: input.runId, status: 'cancelled', failure: { phase: current, message: 'run cancelled' }, summary, phases: ctx.phases },
          removeWorktree: Boolean(summary.handoffUri),
        })
        .catch(() => undefined);
      if (report) {
        summary.transcriptsUri = report.transcriptsUri;
        addReport(report);
      }
      markEnd('cancelled', current, `during the ${current} phase`);
      post({ kind: 'run_finished', runStatus: 'cancelled', phase: current, message: `cancelled during ${current}`, summary });
      await delivered();
    });
    throw cancellation;
  };

  markSearch('running', 'prepare');
  post({ kind: 'run_started', runStatus: 'running' });
  try {
    for (const phase of PIPELINE) {
      if (phase.applies && !phase.applies(ctx)) continue;
      const decided = phase.before?.(ctx);
      ctx.activities = runActivities(input, `${phase.name} phase`);
      const outcome = decided ?? (started(phase.name), await phase.run(ctx));
      record(phase.name, outcome);
      if (outcome.state === 'failed') {
        failure = { phase: phase.name, message: outcome.message ?? `${phase.name} failed`, lastOutput: outcome.outputTail };
        break;
      }
    }
  } catch (err) {
    if (isCancellation(err)) return reportCancelled(err);
    failure = { phase: current, message: errorMessage(err) };
    record(current, { state: 'failed', message: failure.message });
  }

  started('report');
  try {
    if (failure) await handOff(failure.phase, failure.message, failure.lastOutput ?? '');
  } catch (err) {
    // handOff passes on only a cancellation: the run still reports that it ended.
    return reportCancelled(err);
  }
  const status: RunStatusName = !failure ? 'completed' : summary.handoffUri ? 'handed_off' : 'failed';
  // From here to the run's end the workflow runs only local activities: what it posted so far leaves with its end.
  held = settled;
  try {
    await writeEvidence();
  } catch (err) {
    // writeEvidence passes on only a cancellation.
    return reportCancelled(err);
  }
  try {
    const report = await reporting.local.writeReport({
      run: input,
      report: { runId: input.runId, status, failure, summary, phases: ctx.phases },
      removeWorktree: !failure || Boolean(summary.handoffUri),
    });
    summary.transcriptsUri = report.transcriptsUri;
    addReport(report);
    const handoff = summary.handoffUri
      ? `\nhandoff bundle at ${summary.handoffUri} (sha256 ${summary.handoffSha256})`
      : handoffError
        ? `\nno handoff bundle: ${handoffError}`
        : '';
    const evidence = evidenceError ? `\nno evidence files: ${evidenceError}` : '';
    finished('report', { state: 'succeeded', outputTail: `report at ${report.reportUri}${handoff}${evidence}` });
  } catch (err) {
    if (isCancellation(err)) return reportCancelled(err);
    finished('report', { state: 'failed', message: errorMessage(err) });
  }
  const message = failure ? `${failure.phase} phase failed: ${failure.message}` : undefined;
  markEnd(status, failure ? failure.phase : 'done', message);
  post({ kind: 'run_finished', runStatus: status, phase: failure?.phase, message, summary });
  held = false;
  await delivered();
  if (failure) {
    throw ApplicationFailure.create({ type: 'RunFailed', message: message!, nonRetryable: true, details: [{ status, failedPhase: failure.phase, summary }] });
  }
  return { status, summary };
}
