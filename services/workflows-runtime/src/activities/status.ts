import { create, fromJson, type JsonObject } from '@bufbuild/protobuf';
import { compactJson, RecordStatusUpdateRequestSchema, StatusUpdateSchema, type StatusUpdateJson } from '@ameide/contracts';
import { Code, ConnectError, type WorkflowServiceClient } from '@ameide/sdk';
import { agentRunJson, type StatusUpdateInput } from '@ameide/temporal';
import { ApplicationFailure } from '@temporalio/common';

const upper = (s: string) => s.toUpperCase();

/** Maps the workflow's plain status update to the API's StatusUpdate. */
export function toStatusUpdateJson(u: StatusUpdateInput): StatusUpdateJson {
  const s = u.summary;
  return compactJson<StatusUpdateJson>({
    runId: u.runId,
    sequence: String(u.sequence),
    kind: `STATUS_UPDATE_KIND_${upper(u.kind)}` as StatusUpdateJson['kind'],
    phase: u.phase ? (`PHASE_${upper(u.phase)}` as StatusUpdateJson['phase']) : undefined,
    phaseState: u.phaseState ? (`PHASE_STATE_${upper(u.phaseState)}` as StatusUpdateJson['phaseState']) : undefined,
    runStatus: u.runStatus ? (`RUN_STATUS_${upper(u.runStatus)}` as StatusUpdateJson['runStatus']) : undefined,
    exitCode: u.exitCode,
    durationMs: u.durationMs !== undefined ? String(Math.max(0, Math.round(u.durationMs))) : undefined,
    outputTail: u.outputTail,
    message: u.message,
    attributes: u.attributes,
    summary: s && {
      branch: s.branch,
      baseCommit: s.baseCommit,
      headCommit: s.headCommit,
      filesChanged: s.filesChanged,
      insertions: s.insertions,
      deletions: s.deletions,
      testExitCode: s.testExitCode,
      transcriptsUri: s.transcriptsUri,
      pushed: s.pushed,
      handoffUri: s.handoffUri,
      handoffSha256: s.handoffSha256,
      sandbox: s.sandbox,
      budgetExceeded: s.budgetExceeded,
      policyViolations: s.policyViolations,
      previewUrl: s.previewUrl,
      previewAliasUrl: s.previewAliasUrl,
      pullRequest: s.pullRequest,
      testReport: s.testReport && { ...s.testReport, durationMs: String(Math.max(0, Math.round(s.testReport.durationMs))) },
      evidence: s.evidence?.map((e) => ({
        kind: e.kind,
        name: e.name,
        uri: e.uri,
        sha256: e.sha256,
        sizeBytes: String(Math.max(0, Math.round(e.sizeBytes))),
        mediaType: e.mediaType,
      })),
      provenance: s.provenance && {
        workerIdentity: s.provenance.workerIdentity,
        workerVersion: s.provenance.workerVersion,
        temporalRunId: s.provenance.temporalRunId,
        toolVersions: s.provenance.toolVersions,
      },
      agent: s.agent && agentRunJson(s.agent),
      egress: s.egress,
    },
    time: u.time,
  });
}

// An update the service will never take (too large included) is not retried; the workflow goes on without it.
const PERMANENT = new Set([Code.InvalidArgument, Code.PermissionDenied, Code.Unauthenticated, Code.NotFound, Code.ResourceExhausted]);

/** Sends one status update with the worker's service credential; Temporal retries transient failures. */
export async function sendStatusUpdate(client: WorkflowServiceClient, u: StatusUpdateInput): Promise<boolean> {
  const update = fromJson(StatusUpdateSchema, toStatusUpdateJson(u) as JsonObject);
  try {
    const res = await client.recordStatusUpdate(create(RecordStatusUpdateRequestSchema, { update }));
    return res.duplicate;
  } catch (err) {
    const e = ConnectError.from(err);
    if (PERMANENT.has(e.code)) throw ApplicationFailure.create({ type: 'StatusUpdateRejected', message: e.message, nonRetryable: true });
    throw err;
  }
}

/** Sends a run's status updates in order; see the recordStatuses activity. */
export async function sendStatusUpdates(
  client: WorkflowServiceClient,
  updates: StatusUpdateInput[],
): Promise<{ refused: Array<{ sequence: number; message: string }> }> {
  const refused: Array<{ sequence: number; message: string }> = [];
  for (const u of updates) {
    try {
      await sendStatusUpdate(client, u);
    } catch (err) {
      if (!(err instanceof ApplicationFailure) || !err.nonRetryable) throw err;
      refused.push({ sequence: u.sequence, message: err.message });
    }
  }
  return { refused };
}
