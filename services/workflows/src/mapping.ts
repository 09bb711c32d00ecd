import { fromJson, toJson, type JsonObject } from '@bufbuild/protobuf';
import { durationFromMs, timestampFromDate } from '@bufbuild/protobuf/wkt';
import {
  DefinitionSchema,
  PlanSchema,
  RunSchema,
  StatusUpdateSchema,
  compactJson,
  type Definition,
  type Plan,
  type Run,
  type RunExecution,
  type RunJson,
  type StatusUpdate,
  type StatusUpdateJson,
} from '@ameide/contracts';
import type { DefinitionRow, PlanRow, RunRow, StatusUpdateRow } from '@ameide/db';
import { branchOfLane } from './runs/lanes.js';

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : undefined);

export function definitionToProto(row: DefinitionRow): Definition {
  const msg = fromJson(DefinitionSchema, {
    id: row.id,
    tenantId: row.tenantId,
    name: row.name,
    version: row.version,
    spec: row.spec as JsonObject,
    annotations: row.annotations,
  });
  msg.createTime = timestampFromDate(row.createdAt);
  msg.updateTime = timestampFromDate(row.updatedAt);
  if (row.deletedAt) msg.deleteTime = timestampFromDate(row.deletedAt);
  return msg;
}

export function planToProto(row: PlanRow): Plan {
  const msg = fromJson(PlanSchema, {
    id: row.id,
    tenantId: row.tenantId,
    version: row.version,
    spec: row.spec as JsonObject,
    annotations: row.annotations,
    workItemId: row.workItemId ?? '',
    workItemRevision: String(row.workItemRevision ?? 0),
    approval: (row.approval as JsonObject | null) ?? { state: 'APPROVAL_STATE_NOT_REQUIRED' },
  });
  msg.createTime = timestampFromDate(row.createdAt);
  return msg;
}

/** A stored run as the API shows it; `queuedBehind` and `execution` are what the caller found out besides. */
export function runToProto(row: RunRow, extra: { queuedBehind?: string; execution?: RunExecution } = {}): Run {
  const json: RunJson = {
    id: row.id,
    tenantId: row.tenantId,
    planId: row.planId,
    planVersion: row.planVersion,
    definitionId: row.definitionId,
    definitionName: row.spec.definitionName,
    status: row.status as RunJson['status'],
    phase: row.phase as RunJson['phase'],
    workflowId: row.workflowId,
    methodology: row.spec.methodology,
    trigger: row.spec.trigger,
    phases: row.state.phases,
    summary: row.state.summary,
    error: row.state.error,
    lastSequence: String(row.lastSequence),
    createTime: iso(row.createdAt),
    startTime: iso(row.startedAt),
    endTime: iso(row.finishedAt),
    annotations: row.annotations,
    branch: branchOfLane(row.branchKey) || row.state.summary?.branch,
    queuedBehindRunId: extra.queuedBehind,
    readyTime: iso(row.readyAt),
    done: row.state.done,
  };
  const run = fromJson(RunSchema, compactJson(json) as JsonObject, { ignoreUnknownFields: true });
  run.execution = extra.execution;
  if (row.readyAt && row.finishedAt && row.status === 'RUN_STATUS_COMPLETED') run.leadTime = durationFromMs(row.finishedAt.getTime() - row.readyAt.getTime());
  return run;
}

/**
 * The stored form of a status update. Postgres text and JSONB cannot hold U+0000, which command
 * output may contain: it is stored as U+2400 (␀), so the update, and the run's outcome, never
 * depend on what bytes a command printed.
 */
export function statusUpdateToJson(u: StatusUpdate): StatusUpdateJson {
  return withoutNul(toJson(StatusUpdateSchema, u)) as StatusUpdateJson;
}

function withoutNul(v: unknown): unknown {
  if (typeof v === 'string') return v.includes('\0') ? v.replace(/\0/g, '\u2400') : v;
  if (Array.isArray(v)) return v.map(withoutNul);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [withoutNul(k) as string, withoutNul(x)]));
  return v;
}

export function statusUpdateToProto(row: StatusUpdateRow): StatusUpdate {
  return fromJson(StatusUpdateSchema, row.payload as JsonObject);
}
