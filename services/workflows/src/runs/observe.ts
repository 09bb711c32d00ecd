import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { compactJson, ExecutionState, RunExecutionSchema, type RunExecution, type RunSummaryJson } from '@ameide/contracts';
import type { RunRepository, RunRow } from '@ameide/db';
import { agentRunJson, type RunSummaryResult } from '@ameide/temporal';
import type { ExecutionInfo, RunLauncher } from '../temporal/facade.js';
import { isTerminal } from './fold.js';
import type { RunLanes } from './lanes.js';

/**
 * Reads an unfinished run's workflow from Temporal. While it is open: who executes it. Once it has
 * closed without the service hearing the end (terminated or timed out in Temporal, its final update
 * refused), the run is settled from the workflow's own outcome: status, summary and error, so no
 * run stays RUNNING after its workflow is gone; the next run of its branch then starts.
 * Returns the run as it now stands; `undefined` execution when there is nothing to tell.
 */
export async function observeRun(
  row: RunRow,
  deps: { runs: RunRepository; launcher: RunLauncher; lanes: RunLanes; onSettled?: (row: RunRow) => void },
): Promise<{ row: RunRow; execution?: ExecutionInfo }> {
  if (isTerminal(row.status)) return { row };
  const seen = await deps.launcher.inspectRun(row.workflowId);
  if (!seen) return { row };
  if (seen.open) return { row, execution: seen.execution };
  const settled = await deps.runs.finishIfUnfinished(row.id, {
    status: `RUN_STATUS_${seen.status.toUpperCase()}`,
    finishedAt: new Date(),
    state: {
      ...row.state, // The workflow's summary has the API's field names.
      summary: seen.summary ? compactJson<RunSummaryJson>(summaryJson(seen.summary)) : row.state.summary,
      error: seen.error ?? row.state.error,
    },
  });
  if (!settled) return { row: (await deps.runs.get(row.tenantId, row.id)) ?? row };
  deps.onSettled?.(settled);
  await deps.lanes.advance(settled);
  return { row: settled };
}

/** The workflow's summary in the API's JSON form (64-bit numbers as strings). */
function summaryJson(s: RunSummaryResult): RunSummaryJson {
  const { testReport, evidence, agent, ...rest } = s;
  return {
    ...rest,
    agent: agent && agentRunJson(agent),
    testReport: testReport && { ...testReport, durationMs: String(Math.round(testReport.durationMs)) },
    evidence: evidence?.map((e) => ({ ...e, sizeBytes: String(e.sizeBytes) })),
  };
}

const STATES: Record<ExecutionInfo['state'], ExecutionState> = {
  executing: ExecutionState.EXECUTING,
  waiting_for_worker: ExecutionState.WAITING_FOR_WORKER,
  retrying: ExecutionState.RETRYING,
};

export function executionToProto(e: ExecutionInfo): RunExecution {
  return create(RunExecutionSchema, {
    state: STATES[e.state],
    step: e.step,
    attempt: e.attempt,
    worker: e.worker ?? '',
    lastHeartbeatTime: e.lastHeartbeat ? timestampFromDate(e.lastHeartbeat) : undefined,
    waitingSinceTime: e.waitingSince ? timestampFromDate(e.waitingSince) : undefined,
    lastFailure: e.lastFailure ?? '',
  });
}
