import { create, fromJson, toJson, type DescMessage, type JsonObject, type MessageShape } from '@bufbuild/protobuf';
import { durationFromMs, timestampFromDate, TimestampSchema, type Timestamp } from '@bufbuild/protobuf/wkt';
import {
  DefinitionSchema,
  MethodologyContextSchema,
  PhaseResultSchema,
  PhaseSchema,
  PhaseStateSchema,
  PlanSchema,
  RunSchema,
  RunStatusSchema,
  RunSummarySchema,
  StatusUpdateSchema,
  TriggerSchema,
  compactJson,
  governanceV1,
  type Definition,
  type Plan,
  type PhaseResult,
  type PhaseResultJson,
  type Run,
  type RunExecution,
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

/** Enum values by their JSON name (as runs store them). */
function enumByName(e: { values: readonly { name: string; number: number }[] }): Map<string, number> {
  return new Map(e.values.map((v) => [v.name, v.number]));
}
const RUN_STATUS = enumByName(RunStatusSchema);
const PHASE = enumByName(PhaseSchema);
const PHASE_STATE = enumByName(PhaseStateSchema);
const TRIGGER = enumByName(TriggerSchema);

function enumValue(names: Map<string, number>, v: unknown): number {
  if (typeof v === 'number') return v;
  return (typeof v === 'string' && names.get(v)) || 0;
}

/** A stored RFC 3339 time (as toJson writes a Timestamp) to the nanosecond, or undefined when absent or not a time. */
function timestampFromJson(v: unknown): Timestamp | undefined {
  if (typeof v !== 'string') return undefined;
  const m = /^([^.]*?)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/i.exec(v);
  const ms = m ? Date.parse(m[1]! + m[3]!) : NaN;
  if (Number.isNaN(ms)) return undefined;
  // A message is a plain object: every field given, as create() would fill it (a page has thousands of these).
  return { $typeName: TimestampSchema.typeName, seconds: BigInt(Math.floor(ms / 1000)), nanos: m![2] ? Number(m![2].padEnd(9, '0')) : 0 };
}

/**
 * A JSON part of a stored run as its message. JSON read from Postgres has no undefined values, so it
 * goes to fromJson as it is; one made in memory may have them, and is compacted first.
 */
function storedJsonToProto<Desc extends DescMessage>(schema: Desc, json: object): MessageShape<Desc> {
  try {
    return fromJson(schema, json as JsonObject, { ignoreUnknownFields: true });
  } catch {
    return fromJson(schema, compactJson(json) as JsonObject, { ignoreUnknownFields: true });
  }
}

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

function phaseToProto(p: PhaseResultJson): PhaseResult {
  return {
    $typeName: PhaseResultSchema.typeName,
    phase: enumValue(PHASE, p.phase),
    state: enumValue(PHASE_STATE, p.state),
    exitCode: typeof p.exitCode === 'number' ? p.exitCode : undefined,
    durationMs: p.durationMs == null ? 0n : BigInt(p.durationMs),
    outputTail: p.outputTail ?? '',
    startTime: timestampFromJson(p.startTime),
    endTime: timestampFromJson(p.endTime),
  };
}

/**
 * A stored run as the API shows it; `queuedBehind` and `execution` are what the caller found out besides.
 * Built field by field from the row (a list builds a hundred of these): only the summary and the Definition
 * of Done, free-form and rarely large in a list, go through the JSON mapping.
 */
export function runToProto(row: RunRow, extra: { queuedBehind?: string; execution?: RunExecution } = {}): Run {
  const { spec, state } = row;
  const m = spec.methodology;
  const run = create(RunSchema, {
    id: row.id,
    tenantId: row.tenantId,
    planId: row.planId,
    planVersion: row.planVersion,
    definitionId: row.definitionId,
    definitionName: spec.definitionName ?? '',
    status: enumValue(RUN_STATUS, row.status),
    phase: enumValue(PHASE, row.phase),
    workflowId: row.workflowId,
    methodology: m
      ? create(MethodologyContextSchema, {
          profile: m.profile ?? '',
          timeboxIds: strings(m.timeboxIds),
          goalIds: strings(m.goalIds),
          workItemIds: strings(m.workItemIds),
          elementIds: strings(m.elementIds),
        })
      : undefined,
    trigger: enumValue(TRIGGER, spec.trigger),
    phases: Array.isArray(state.phases) ? state.phases.map(phaseToProto) : [],
    summary: state.summary ? storedJsonToProto(RunSummarySchema, state.summary) : undefined,
    error: state.error ?? '',
    lastSequence: BigInt(row.lastSequence),
    createTime: timestampFromDate(row.createdAt),
    startTime: row.startedAt ? timestampFromDate(row.startedAt) : undefined,
    endTime: row.finishedAt ? timestampFromDate(row.finishedAt) : undefined,
    annotations: { ...row.annotations },
    branch: branchOfLane(row.branchKey) || state.summary?.branch || '',
    queuedBehindRunId: extra.queuedBehind ?? '',
    execution: extra.execution,
    readyTime: row.readyAt ? timestampFromDate(row.readyAt) : undefined,
    done: state.done ? storedJsonToProto(governanceV1.DoneEvaluationSchema, state.done) : undefined,
  });
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
