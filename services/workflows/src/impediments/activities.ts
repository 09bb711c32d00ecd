import type { FollowupActivities } from '@ameide/temporal';
import { ImpedimentRepository, isUuid, RunRepository, type ImpedimentRow, type RunRow } from '@ameide/db';
import type { GovernanceDeps } from '../governance/deps.js';
import { findImpediment, RERUN_IMPEDIMENT, RERUN_OF, succeeded } from './cause.js';

/** How far back a chain of reruns (a rerun's rerun's …) is resolved when the last one succeeds. */
const MAX_CHAIN = 50;

/** The follow-up's impediment step. */
export function impedimentActivities(deps: GovernanceDeps): Pick<FollowupActivities, 'raiseImpediment'> {
  const runs = new RunRepository(deps.db);
  const impediments = new ImpedimentRepository(deps.db);

  /**
   * A rerun that succeeded resolves the impediment it was queued for (its annotation, or the one
   * that recorded it as its rerun), and with it the impediments handed back to the agent before,
   * whose reruns failed into that one.
   */
  async function resolveHandedBack(run: RunRow): Promise<void> {
    const resolution = `rerun ${run.id} completed`;
    const queue: ImpedimentRow[] = await impediments.unresolvedByRerun(run.tenantId, run.id);
    const named = run.annotations[RERUN_IMPEDIMENT];
    if (named && isUuid(named)) {
      const row = await impediments.get(run.tenantId, named);
      // Only the impediment of the run this one reran (an annotation alone does not resolve another).
      if (row && row.state !== 'resolved' && row.runId === run.annotations[RERUN_OF]) queue.push(row);
    }
    const seen = new Set<string>();
    while (queue.length && seen.size < MAX_CHAIN) {
      const row = queue.shift()!;
      if (seen.has(row.id)) continue;
      seen.add(row.id);
      await impediments.resolve(run.tenantId, row.id, resolution);
      if (row.runId) queue.push(...(await impediments.unresolvedByRerun(run.tenantId, row.runId)));
    }
  }

  return {
    /**
     * Raises the impediment of a finished run when automation could not finish its work, once per run
     * (cause key `run:<id>`: a repeat returns the first). A rerun that succeeded resolves instead.
     */
    async raiseImpediment({ runId, tenantId }) {
      const run = isUuid(runId) ? await runs.get(tenantId, runId) : undefined;
      if (!run) return {};
      const found = findImpediment(run);
      if (!found) {
        if (succeeded(run)) await resolveHandedBack(run);
        return {};
      }
      const m = run.spec.methodology ?? {};
      const { row } = await impediments.raise({
        tenantId: run.tenantId,
        causeKey: `run:${run.id}`,
        cause: found.cause,
        reason: found.reason,
        phase: found.phase,
        runId: run.id,
        workItemId: run.spec.workItemIds?.[0] ?? m.workItemIds?.[0] ?? '',
        timeboxIds: m.timeboxIds ?? [],
        goalIds: m.goalIds ?? [],
        handoffUri: run.state.summary?.handoffUri ?? '',
      });
      return { impedimentId: row.id };
    },
  };
}
