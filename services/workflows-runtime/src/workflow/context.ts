/**
 * What the phases of a run share: the run's input, its summary, the workspace prepare made, the
 * budgets, and the activities. Workflow code (deterministic: no I/O, no Node built-ins).
 */
import { ActivityCancellationType, proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { CodingRunInput, PhaseName, PhaseStateName, RunSummaryResult, StatusUpdateInput } from '@ameide/temporal';
import type { Activities } from '../activities/index.js';

/** How a phase ended, as its phase_finished status update and the report carry it. */
export interface PhaseOutcome {
  state: PhaseStateName;
  exitCode?: number;
  durationMs?: number;
  outputTail?: string;
  message?: string;
}

/** The run's checkout, as prepare made it. */
export interface Workspace {
  worktreePath: string;
  branch: string;
  baseCommit: string;
  promptFile: string;
}

/** A status update before the outbox numbers and stamps it. */
export type StatusPost = Omit<StatusUpdateInput, 'runId' | 'sequence' | 'time'>;

/** One phase of the run: a new phase is a new file with one of these plus one line in pipeline.ts. */
export interface PhaseUnit {
  name: PhaseName;
  /** Whether the phase belongs to this run at all (e.g. a preview only when the definition has one); one that does not is left out of the run's phases. */
  applies?(ctx: RunContext): boolean;
  /** An outcome decided before the phase starts (no command, budget used up): recorded as is, without a phase_started update. */
  before?(ctx: RunContext): PhaseOutcome | undefined;
  /** Runs the phase and classifies its outcome; adds what it produced to `ctx.summary`. A thrown error fails the phase with its message. */
  run(ctx: RunContext): Promise<PhaseOutcome>;
}

/** A phase's entry in the run's report. */
export type PhaseRecord = { phase: PhaseName } & PhaseOutcome;

export interface RunContext {
  readonly input: CodingRunInput;
  readonly summary: RunSummaryResult;
  /** Set by prepare. */
  workspace?: Workspace;
  /** The phases recorded so far (without output tails). */
  readonly phases: PhaseRecord[];
  /** When the run's wall-clock budget runs out (workflow time, ms since the epoch). */
  readonly runDeadline: number;
  /** Commands started so far, against the run's max_commands budget. */
  commandsRun: number;
  /** Queues a status update; the outbox delivers them in order. */
  post(update: StatusPost): void;
  /** The activities, summarised with the phase that runs (set before each phase). */
  activities: RunActivities;
}

/** The prepared workspace; a phase after prepare may rely on it. */
export function workspaceOf(ctx: RunContext): Workspace {
  if (!ctx.workspace) throw new Error('the run has no workspace: prepare did not finish');
  return ctx.workspace;
}

export type RunActivities = ReturnType<typeof runActivities>;

/**
 * The activities of one run, each with the timeouts and retries that fit its work. `summary` (the
 * phase they run for, e.g. `agent phase`) is the activities' user metadata: the Web UI shows it
 * beside each activity of the run's history.
 */
export function runActivities(input: CodingRunInput, summary?: string) {
  const phaseMs = input.repo.phaseTimeoutSeconds * 1000;
  const s = summary ? { summary } : {};
  return {
    // Status updates are retried until the service takes them, however long it is away (backoff
    // capped at 30 s); only a permanent rejection ends the retries. A regular activity, so a long
    // outage holds no workflow task open: the run's own phases go on meanwhile.
    status: proxyActivities<Activities>({
      ...s,
      // A batch is sent one update after another: up to 50 (MAX_STATUS_BATCH).
      startToCloseTimeout: '30s',
      retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '30s' },
    }),
    // Writing the report is short and local to the worker: a local activity spares a server round trip.
    local: proxyLocalActivities<Activities>({
      ...s,
      startToCloseTimeout: '2m',
      retry: { initialInterval: '1s', maximumAttempts: 3 },
    }),
    // The report phase's evidence (the diff, the test report, … stored with their digests): local
    // like the report that follows it; a large diff may take minutes, which a local activity may (the
    // worker keeps the workflow task alive meanwhile).
    evidence: proxyLocalActivities<Activities>({
      ...s,
      startToCloseTimeout: '30m',
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      retry: { initialInterval: '1s', maximumAttempts: 3 },
    }),
    commands: proxyActivities<Activities>({
      ...s,
      startToCloseTimeout: phaseMs + 60_000,
      heartbeatTimeout: '30s',
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      retry: { initialInterval: '1s', maximumAttempts: 3 },
    }),
    // Git work (fetch and checkout, export and push, handoff) of a large repository can take long:
    // the heartbeat, every few seconds, tells a live worker from a dead one; each git command on the
    // worker is bounded by its AMEIDE_GIT_TIMEOUT_SECONDS (at most 2 h).
    git: proxyActivities<Activities>({
      ...s,
      startToCloseTimeout: '6h',
      heartbeatTimeout: '30s',
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      retry: { initialInterval: '1s', maximumAttempts: 3 },
    }),
    // A preview builds and waits for its health check: the phase budget, plus the ready timeout.
    preview: proxyActivities<Activities>({
      ...s,
      startToCloseTimeout: phaseMs + (input.repo.preview?.readyTimeoutSeconds ?? 0) * 1000 + 60_000,
      heartbeatTimeout: '30s',
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      retry: { initialInterval: '1s', maximumAttempts: 3 },
    }),
    // Forges answer rate limits with a time to wait (the activity passes it on as the next retry's
    // delay); other transient failures back off up to a minute.
    forge: proxyActivities<Activities>({
      ...s,
      startToCloseTimeout: '2m',
      retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 8 },
    }),
  };
}
