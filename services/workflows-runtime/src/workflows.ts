/**
 * The coding-agent run workflow. Deterministic: no I/O, no secrets, no Node built-ins; every side
 * effect is an activity. Status updates are numbered here, so a retried activity re-sends the same
 * sequence and the service stores it once.
 */
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  defineQuery,
  defineSignal,
  isCancellation,
  log,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import {
  SA,
  type CodingRunInput,
  type CodingRunResult,
  type PhaseName,
  type PhaseStateName,
  type RunStatusName,
  type RunSummaryResult,
  type StatusUpdateInput,
  type WorkItemChange,
  WORK_ITEM_CHANGED_SIGNAL,
  WORK_ITEM_CHANGES_QUERY,
} from '@ameide/temporal';
import type { Activities } from './activities/index.js';

// Status updates are retried until the service takes them, however long it is away (backoff capped
// at 30 s); only a permanent rejection ends the retries. A regular activity, so a long outage holds
// no workflow task open: the run's own phases go on meanwhile.
const { recordStatus } = proxyActivities<Activities>({
  startToCloseTimeout: '15s',
  retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '30s' },
});

// Writing the report is short and local to the worker: a local activity spares a server round trip.
const { writeReport } = proxyLocalActivities<Activities>({
  startToCloseTimeout: '2m',
  retry: { initialInterval: '1s', maximumAttempts: 3 },
});

type PhaseOutcome = { state: PhaseStateName; exitCode?: number; durationMs?: number; outputTail?: string; message?: string };

function errorMessage(err: unknown): string {
  const e = err as { cause?: { message?: string }; message?: string };
  return e.cause?.message ?? e.message ?? String(err);
}

/** The run's work item changed in the backlog: recorded in the workflow's history (and queryable), nothing else. */
export const workItemChanged = defineSignal<[WorkItemChange]>(WORK_ITEM_CHANGED_SIGNAL);
export const workItemChanges = defineQuery<WorkItemChange[]>(WORK_ITEM_CHANGES_QUERY);

/** Runs one coding-agent plan: prepare, install, agent, test, publish, report. */
export async function codingAgentRun(input: CodingRunInput): Promise<CodingRunResult> {
  const changes: WorkItemChange[] = [];
  setHandler(workItemChanged, (change) => {
    changes.push(change);
    log.info(`work item ${change.workItemId} is now ${change.state} (revision ${change.revision})`);
  });
  setHandler(workItemChanges, () => changes);
  const phaseMs = input.repo.phaseTimeoutSeconds * 1000;
  const commandPhases = proxyActivities<Activities>({
    startToCloseTimeout: phaseMs + 60_000,
    heartbeatTimeout: '30s',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { initialInterval: '1s', maximumAttempts: 3 },
  });
  // Git work (fetch and checkout, export and push, handoff) of a large repository can take long: the
  // heartbeat, every few seconds, tells a live worker from a dead one; each git command on the worker
  // is bounded by its AMEIDE_GIT_TIMEOUT_SECONDS (at most 2 h).
  const gitWork = proxyActivities<Activities>({
    startToCloseTimeout: '6h',
    heartbeatTimeout: '30s',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { initialInterval: '1s', maximumAttempts: 3 },
  });

  let sequence = 0;
  // Status updates leave through an outbox, one at a time and in order: the run never waits for their
  // delivery and its outcome never depends on it; it ends only once every update is delivered.
  // Delivery is never cancelled half-way, so sequences have no gaps.
  const outbox: StatusUpdateInput[] = [];
  let sender: Promise<void> | undefined;
  const send = async () => {
    while (outbox.length) {
      const update = outbox[0]!;
      try {
        await CancellationScope.nonCancellable(() => recordStatus(update));
      } catch (err) {
        // Transient failures are retried without limit: only a permanent rejection gets here.
        log.warn(`status update ${update.sequence} of run ${input.runId} was refused: ${errorMessage(err)}`);
      }
      outbox.shift();
    }
    sender = undefined;
  };
  const post = (u: Omit<StatusUpdateInput, 'runId' | 'sequence' | 'time'>) => {
    outbox.push({ ...u, runId: input.runId, sequence: ++sequence, time: new Date().toISOString() });
    sender ??= send();
  };
  const delivered = () => CancellationScope.nonCancellable(async () => sender);
  const markSearch = (status: RunStatusName, phase: PhaseName | 'pending' | 'done') =>
    upsertSearchAttributes([
      { key: SA.runStatus, value: status },
      { key: SA.runPhase, value: phase },
    ]);

  let current: PhaseName = 'prepare';
  const started = (phase: PhaseName) => {
    current = phase;
    markSearch('running', phase);
    post({ kind: 'phase_started', phase, phaseState: 'running' });
  };
  const finished = async (phase: PhaseName, o: PhaseOutcome) => {
    post({
      kind: 'phase_finished',
      phase,
      phaseState: o.state,
      exitCode: o.exitCode,
      durationMs: o.durationMs,
      outputTail: o.outputTail,
      message: o.message,
    });
  };

  const budgets = input.repo.guardrails.budgets;
  const runDeadline = Date.now() + budgets.runTimeoutSeconds * 1000;
  let commandsRun = 0;
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
  const phaseLog: Array<{ phase: PhaseName } & PhaseOutcome> = [];
  const record = async (phase: PhaseName, o: PhaseOutcome) => {
    phaseLog.push({ phase, ...o, outputTail: undefined });
    await finished(phase, o);
  };
  let failure: { phase: PhaseName; message: string; lastOutput?: string } | undefined;
  let workspace: { worktreePath: string; branch: string; baseCommit: string } | undefined;

  let handoffError: string | undefined;
  /** Bundles what the run did for a person to continue; a failure to bundle only loses the bundle (and says why in the report phase). */
  const handOff = async (phase: PhaseName, reason: string, lastOutput: string): Promise<void> => {
    if (!workspace) return;
    try {
      const h = await gitWork.createHandoff({ run: input, ...workspace, failedPhase: phase, reason, lastOutput, commitTime: new Date().toISOString() });
      summary.handoffUri = h.uri;
      summary.handoffSha256 = h.sha256;
    } catch (err) {
      if (isCancellation(err)) throw err;
      handoffError = errorMessage(err);
    }
  };
  // Whatever phase a cancellation hits, the service learns that the run ended; then Temporal does too.
  const reportCancelled = async (cancellation: unknown): Promise<never> => {
    await CancellationScope.nonCancellable(async () => {
      await finished(current, { state: 'cancelled', message: 'run cancelled' });
      await handOff(current, 'the run was cancelled', '');
      const report = await writeReport({
        run: input,
        report: { runId: input.runId, status: 'cancelled', failure: { phase: current, message: 'run cancelled' }, summary, phases: phaseLog },
        removeWorktree: Boolean(summary.handoffUri),
      }).catch(() => undefined);
      if (report) summary.transcriptsUri = report.transcriptsUri;
      markSearch('cancelled', current);
      post({ kind: 'run_finished', runStatus: 'cancelled', phase: current, message: `cancelled during ${current}`, summary });
      await delivered();
    });
    throw cancellation;
  };

  markSearch('running', 'prepare');
  post({ kind: 'run_started', runStatus: 'running' });
  try {
    started('prepare');
    const ws = await gitWork.prepareWorkspace(input);
    workspace = { worktreePath: ws.worktreePath, branch: ws.branch, baseCommit: ws.baseCommit };
    summary.branch = ws.branch;
    summary.baseCommit = ws.baseCommit;
    await record('prepare', { state: 'succeeded', durationMs: ws.durationMs, outputTail: ws.outputTail });

    const commands: Array<[Extract<PhaseName, 'install' | 'agent' | 'test'>, string]> = [
      ['install', input.repo.installCommand],
      ['agent', input.repo.agentCommand],
      ['test', input.repo.testCommand],
    ];
    for (const [phase, command] of commands) {
      if (!command.trim()) {
        await record(phase, { state: 'skipped', message: `no ${phase} command in the definition` });
        continue;
      }
      if (++commandsRun > budgets.maxCommands) {
        summary.budgetExceeded = 'max_commands';
        failure = { phase, message: `the run's budget of ${budgets.maxCommands} commands is used up` };
        await record(phase, { state: 'failed', message: failure.message });
        break;
      }
      // A command gets its phase budget, or what is left of the run's, whichever is less.
      const runLeftMs = runDeadline - Date.now();
      const timeoutMs = Math.max(1000, Math.min(phaseMs, runLeftMs));
      started(phase);
      const r = await commandPhases.runCommandPhase({
        run: input,
        phase,
        command,
        worktreePath: ws.worktreePath,
        promptFile: ws.promptFile,
        baseCommit: ws.baseCommit,
        timeoutMs,
      });
      if (phase === 'test') summary.testExitCode = r.exitCode;
      let message: string | undefined;
      if (r.timedOut && runLeftMs < phaseMs) {
        summary.budgetExceeded = 'run_timeout';
        message = `${phase} command stopped: the run's ${budgets.runTimeoutSeconds}s budget ran out`;
      } else if (r.timedOut) {
        summary.budgetExceeded = 'phase_timeout';
        message = `${phase} command exceeded the ${input.repo.phaseTimeoutSeconds}s phase budget`;
      } else if (r.exitCode !== 0) {
        message = `${phase} command failed with exit code ${r.exitCode}`;
      }
      await record(phase, { state: message ? 'failed' : 'succeeded', exitCode: r.exitCode, durationMs: r.durationMs, outputTail: r.outputTail, message });
      if (message) {
        failure = { phase, message, lastOutput: r.outputTail };
        break;
      }
    }

    if (!failure) {
      // The gate: the sandbox's work is exported, verified and reviewed (path policy, push
      // protection) as a whole, then exactly that is pushed.
      started('publish');
      // The commit time comes from the workflow, so every attempt of publish makes the same commit.
      const pub = await gitWork.publishBranch({
        run: input,
        worktreePath: ws.worktreePath,
        branch: ws.branch,
        baseCommit: ws.baseCommit,
        commitTime: new Date().toISOString(),
      });
      Object.assign(summary, {
        headCommit: pub.headCommit,
        filesChanged: pub.filesChanged,
        insertions: pub.insertions,
        deletions: pub.deletions,
        pushed: pub.pushed,
      });
      if (pub.violations?.length) {
        summary.policyViolations = pub.violations;
        failure = { phase: 'publish', message: `policy violation: the change touches paths the definition does not allow: ${pub.violations.join(', ')}` };
        await record('publish', { state: 'failed', durationMs: pub.durationMs, message: failure.message });
      } else {
        await record('publish', { state: 'succeeded', durationMs: pub.durationMs, outputTail: pub.outputTail });
      }
    }
  } catch (err) {
    if (isCancellation(err)) return reportCancelled(err);
    failure = { phase: current, message: errorMessage(err) };
    await finished(current, { state: 'failed', message: failure.message });
  }

  started('report');
  if (failure) await handOff(failure.phase, failure.message, failure.lastOutput ?? '');
  const status: RunStatusName = !failure ? 'completed' : summary.handoffUri ? 'handed_off' : 'failed';
  try {
    const report = await writeReport({
      run: input,
      report: { runId: input.runId, status, failure, summary, phases: phaseLog },
      removeWorktree: !failure || Boolean(summary.handoffUri),
    });
    summary.transcriptsUri = report.transcriptsUri;
    const handoff = summary.handoffUri
      ? `\nhandoff bundle at ${summary.handoffUri} (sha256 ${summary.handoffSha256})`
      : handoffError
        ? `\nno handoff bundle: ${handoffError}`
        : '';
    await finished('report', { state: 'succeeded', outputTail: `report at ${report.reportUri}${handoff}` });
  } catch (err) {
    if (isCancellation(err)) return reportCancelled(err);
    await finished('report', { state: 'failed', message: errorMessage(err) });
  }
  markSearch(status, failure ? failure.phase : 'done');
  const message = failure ? `${failure.phase} phase failed: ${failure.message}` : undefined;
  post({ kind: 'run_finished', runStatus: status, phase: failure?.phase, message, summary });
  await delivered();
  if (failure) {
    throw ApplicationFailure.create({ type: 'RunFailed', message: message!, nonRetryable: true, details: [{ status, failedPhase: failure.phase, summary }] });
  }
  return { status, summary };
}
