import type { PhaseResultJson, RunStatusJson, StatusUpdateJson } from '@ameide/contracts';
import type { RunChange, RunProgress, RunState } from '@ameide/db';

export const TERMINAL_STATUSES: ReadonlySet<string> = new Set<RunStatusJson>([
  'RUN_STATUS_COMPLETED',
  'RUN_STATUS_FAILED',
  'RUN_STATUS_CANCELLED',
  'RUN_STATUS_HANDED_OFF',
]);

export function isTerminal(status: string): boolean {
  return TERMINAL_STATUSES.has(status);
}

/**
 * Folds one status update into the run's stored progress. Pure: the same update applied to the same
 * state always gives the same result, and a terminal run never goes back to running.
 */
export function foldStatusUpdate(current: RunProgress, u: StatusUpdateJson): RunProgress {
  const at = u.time ? new Date(u.time) : new Date();
  const state: RunState = { ...current.state, phases: [...current.state.phases] };
  let { status, phase, startedAt, finishedAt } = current;
  const terminal = isTerminal(status);

  if (u.kind === 'STATUS_UPDATE_KIND_RUN_STARTED' && !terminal) {
    status = 'RUN_STATUS_RUNNING';
    startedAt ??= at;
  }

  if ((u.kind === 'STATUS_UPDATE_KIND_PHASE_STARTED' || u.kind === 'STATUS_UPDATE_KIND_PHASE_FINISHED') && u.phase) {
    const idx = state.phases.findIndex((p) => p.phase === u.phase);
    const prev: PhaseResultJson = idx >= 0 ? state.phases[idx]! : { phase: u.phase };
    const next: PhaseResultJson =
      u.kind === 'STATUS_UPDATE_KIND_PHASE_STARTED'
        ? { ...prev, state: 'PHASE_STATE_RUNNING', startTime: u.time }
        : {
            ...prev,
            state: u.phaseState ?? 'PHASE_STATE_SUCCEEDED',
            exitCode: u.exitCode,
            durationMs: u.durationMs,
            outputTail: u.outputTail,
            endTime: u.time,
          };
    if (idx >= 0) state.phases[idx] = next;
    else state.phases.push(next);
    if (!terminal) {
      phase = u.phase;
      if (status === 'RUN_STATUS_QUEUED') {
        status = 'RUN_STATUS_RUNNING';
        startedAt ??= at;
      }
    }
  }

  if (u.summary) state.summary = { ...state.summary, ...u.summary };

  if (u.kind === 'STATUS_UPDATE_KIND_RUN_FINISHED' && u.runStatus && !terminal) {
    status = u.runStatus;
    finishedAt = at;
    // A failed or cancelled run points at the phase where it stopped.
    if (u.phase) phase = u.phase;
    if (u.runStatus !== 'RUN_STATUS_COMPLETED' && u.message) state.error = u.message;
  }

  return { status, phase, state, startedAt, finishedAt };
}

/**
 * The same rules as {@link foldStatusUpdate}, as a change the repository applies in SQL to the run as it
 * stands (so recording an update neither reads nor sends the run's state).
 */
export function statusUpdateChange(u: StatusUpdateJson): RunChange {
  const change: RunChange = { at: u.time ? new Date(u.time) : new Date() };
  if (u.kind === 'STATUS_UPDATE_KIND_RUN_STARTED') change.start = true;
  if ((u.kind === 'STATUS_UPDATE_KIND_PHASE_STARTED' || u.kind === 'STATUS_UPDATE_KIND_PHASE_FINISHED') && u.phase) {
    const fields: Record<string, unknown> =
      u.kind === 'STATUS_UPDATE_KIND_PHASE_STARTED'
        ? { state: 'PHASE_STATE_RUNNING', startTime: u.time }
        : {
            state: u.phaseState ?? 'PHASE_STATE_SUCCEEDED',
            exitCode: u.exitCode,
            durationMs: u.durationMs,
            outputTail: u.outputTail,
            endTime: u.time,
          };
    // A field the update leaves out is removed from the phase's entry, as folding does.
    const unset = Object.keys(fields).filter((k) => fields[k] === undefined);
    for (const k of unset) delete fields[k];
    change.phase = { phase: u.phase, set: fields, unset };
  }
  if (u.summary) change.summary = u.summary;
  if (u.kind === 'STATUS_UPDATE_KIND_RUN_FINISHED' && u.runStatus) {
    change.finish = { status: u.runStatus, phase: u.phase, error: u.runStatus !== 'RUN_STATUS_COMPLETED' && u.message ? u.message : undefined };
  }
  return change;
}
