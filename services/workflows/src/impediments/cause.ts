import type { RunRow } from '@ameide/db';

/** Why automation could not finish a run's work, in the order they are checked. */
export type ImpedimentCause = 'policy_violation' | 'budget_exceeded' | 'run_handed_off' | 'run_failed' | 'dod_failed';

/** What an impediment says about the run it was raised for. */
export interface ImpedimentFinding {
  cause: ImpedimentCause;
  reason: string;
  /** The phase that failed (prepare, install, agent, test, publish, …), or empty. */
  phase: string;
}

/** Annotations of a rerun an impediment handed back to the agent (ReassignImpediment). */
export const RERUN_OF = 'ameide.dev/rerun-of';
export const RERUN_IMPEDIMENT = 'ameide.dev/impediment';
export const RERUN_HANDOFF_URI = 'ameide.dev/handoff-uri';
export const RERUN_HANDOFF_REASON = 'ameide.dev/handoff-reason';
export const RERUN_NOTE = 'ameide.dev/handoff-note';

/** `PHASE_TEST` → `test`; empty for no phase. */
export function phaseName(phase: string | undefined): string {
  if (!phase || phase === 'PHASE_UNSPECIFIED') return '';
  return phase.replace(/^PHASE_/, '').toLowerCase();
}

/** The phase where the run stopped: the one that failed, else the run's last phase. */
function failingPhase(run: Pick<RunRow, 'phase' | 'state'>): string {
  const failed = run.state.phases?.find((p) => p.state === 'PHASE_STATE_FAILED');
  return phaseName(failed?.phase ?? run.phase);
}

/** The failing Definition of Done rules, as `rule: detail` lines. */
function failedRules(run: Pick<RunRow, 'state'>): string {
  const rules = (run.state.done?.rules ?? []).filter((r) => !r.passed);
  if (!rules.length) return 'the Definition of Done is not met';
  return rules.map((r) => (r.detail ? `${r.rule ?? ''}: ${r.detail}` : (r.rule ?? ''))).join('\n');
}

/**
 * Whether a finished run needs an impediment, and which: the first cause that applies. A run that
 * completed meeting its Definition of Done (or without one) needs none, nor does a cancelled run
 * (a person cancelled it), nor one that has not finished.
 */
export function findImpediment(run: Pick<RunRow, 'status' | 'phase' | 'state'>): ImpedimentFinding | undefined {
  if (!FINISHED_UNATTENDED.has(run.status)) return undefined;
  const s = run.state.summary ?? {};
  const error = run.state.error?.trim() ?? '';
  const stopped = (cause: ImpedimentCause, fallback: string): ImpedimentFinding => ({ cause, reason: error || fallback, phase: failingPhase(run) });
  if (s.policyViolations?.length) return stopped('policy_violation', `policy violation: ${s.policyViolations.join(', ')}`);
  if (s.budgetExceeded) return stopped('budget_exceeded', `budget exceeded: ${s.budgetExceeded}`);
  if (run.status === 'RUN_STATUS_HANDED_OFF') return stopped('run_handed_off', 'the run was handed off');
  if (run.status === 'RUN_STATUS_FAILED') return stopped('run_failed', 'the run failed');
  if (run.state.done?.met === false) return { cause: 'dod_failed', reason: failedRules(run), phase: '' };
  return undefined;
}

/** Finished statuses no person chose (a cancelled run was cancelled by someone: no impediment). */
const FINISHED_UNATTENDED = new Set(['RUN_STATUS_COMPLETED', 'RUN_STATUS_HANDED_OFF', 'RUN_STATUS_FAILED']);

/** Whether a finished run counts as a success for the impediment it was a rerun of: completed, Definition of Done met (or none). */
export function succeeded(run: Pick<RunRow, 'status' | 'state'>): boolean {
  return run.status === 'RUN_STATUS_COMPLETED' && run.state.done?.met !== false;
}
