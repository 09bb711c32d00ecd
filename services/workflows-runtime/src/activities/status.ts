import { create, fromJson, type JsonObject } from '@bufbuild/protobuf';
import { compactJson, RecordStatusUpdateRequestSchema, RecordStatusUpdatesRequestSchema, StatusUpdateSchema, type StatusUpdateJson } from '@ameide/contracts';
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

/** Updates of one RecordStatusUpdates call, at most (the service's limit). */
export const STATUS_BATCH = 100;

/**
 * Sends a run's status updates in order; see the recordStatuses activity. Each chunk of at most
 * STATUS_BATCH goes in one RecordStatusUpdates call (stored all or none). When the service refuses a
 * chunk for good (one bad update, too large a request) or does not know the call (an older service),
 * the chunk's updates go one at a time: the good ones are stored, a refused one is named and skipped.
 * Transient failures are thrown (Temporal retries the activity; what was stored comes back a duplicate).
 */
export async function sendStatusUpdates(
  client: WorkflowServiceClient,
  updates: StatusUpdateInput[],
): Promise<{ refused: Array<{ sequence: number; message: string }> }> {
  const refused: Array<{ sequence: number; message: string }> = [];
  for (let i = 0; i < updates.length; i += STATUS_BATCH) {
    const chunk = updates.slice(i, i + STATUS_BATCH);
    if (chunk.length > 1 && (await sendBatch(client, chunk))) continue;
    for (const u of chunk) {
      try {
        await sendStatusUpdate(client, u);
      } catch (err) {
        if (!(err instanceof ApplicationFailure) || !err.nonRetryable) throw err;
        refused.push({ sequence: u.sequence, message: err.message });
      }
    }
  }
  return { refused };
}

/** One RecordStatusUpdates call: true when stored, false when it must go one at a time; transient failures thrown. */
async function sendBatch(client: WorkflowServiceClient, chunk: StatusUpdateInput[]): Promise<boolean> {
  const updates = chunk.map((u) => fromJson(StatusUpdateSchema, toStatusUpdateJson(u) as JsonObject));
  try {
    await client.recordStatusUpdates(create(RecordStatusUpdatesRequestSchema, { updates }));
    return true;
  } catch (err) {
    const e = ConnectError.from(err);
    if (e.code === Code.Unimplemented || PERMANENT.has(e.code)) return false;
    throw err;
  }
}
