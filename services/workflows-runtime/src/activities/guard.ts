import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { Redactor } from '../guardrails/redact.js';

/** Activities heartbeat this often while they run (the heartbeat timeout is 30 s). */
export const HEARTBEAT_MS = 5000;

/** A failure Temporal must not retry: the same input fails the same way. */
export function permanent(type: string, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true });
}

/** An activity error with every secret of the run taken out of its message (it lands in history). */
export function redactError(err: unknown, redactor: Redactor): unknown {
  if (redactor.empty || err instanceof CancelledFailure) return err;
  if (err instanceof ApplicationFailure) {
    return ApplicationFailure.create({ type: err.type ?? undefined, message: redactor.redact(err.message), nonRetryable: err.nonRetryable ?? undefined });
  }
  return new Error(redactor.redact(err instanceof Error ? err.message : String(err)));
}

/**
 * Runs an activity body so that no secret of the run can leave it, in an error or in its result.
 * Long work (a first clone, an export, a push, a preview's build) must not look like a dead worker:
 * unless `heartbeat` is false it heartbeats every few seconds, naming the step it is at (`step`),
 * which also brings the activity's cancellation. A local activity has no heartbeat (its cancellation
 * comes with the workflow's task).
 */
export async function guarded<T>(
  redactor: Redactor,
  body: (redactor: Redactor, step: (name: string) => void) => Promise<T>,
  opts: { heartbeat?: boolean } = {},
): Promise<T> {
  const ctx = Context.current();
  const beats = opts.heartbeat !== false && !ctx.info.isLocal;
  let progress = { step: 'starting', since: new Date().toISOString() };
  const step = (name: string) => {
    if (name !== progress.step) progress = { step: name, since: new Date().toISOString() };
    if (beats) ctx.heartbeat(progress);
  };
  const beat = !beats ? undefined : setInterval(() => ctx.heartbeat(progress), HEARTBEAT_MS);
  try {
    return redactor.redactDeep(await body(redactor, step));
  } catch (err) {
    if (ctx.cancellationSignal.aborted && !(err instanceof ApplicationFailure)) throw new CancelledFailure(`${progress.step} stopped: the run was cancelled`);
    throw redactError(err, redactor);
  } finally {
    clearInterval(beat);
  }
}
