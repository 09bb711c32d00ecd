import { bigint, bigserial, index, integer, jsonb, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import type { DefinitionSpecJson, PlanSpecJson, RunSummaryJson, PhaseResultJson, StatusUpdateJson, MethodologyContextJson } from '@ameide/contracts';

export type Annotations = Record<string, string>;

/** Repo adapters. `spec` is the DefinitionSpec JSON; the row's version goes up when it changes. */
export const definitions = pgTable(
  'definitions',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tenantId: text('tenant_id').notNull(),
    name: text('name').notNull(),
    version: integer('version').notNull().default(1),
    spec: jsonb('spec').$type<DefinitionSpecJson>().notNull(),
    annotations: jsonb('annotations').$type<Annotations>().notNull().default({}),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex('definitions_tenant_name_uq').on(t.tenantId, t.name), index('definitions_spec_gin').using('gin', t.spec)],
);

/** Plans: a snapshot of a definition plus work items and methodology context. */
export const plans = pgTable(
  'plans',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tenantId: text('tenant_id').notNull(),
    definitionId: uuid('definition_id')
      .notNull()
      .references(() => definitions.id),
    version: integer('version').notNull().default(1),
    spec: jsonb('spec').$type<PlanSpecJson>().notNull(),
    annotations: jsonb('annotations').$type<Annotations>().notNull().default({}),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('plans_tenant_created_idx').on(t.tenantId, t.createdAt), index('plans_spec_gin').using('gin', t.spec.op('jsonb_path_ops'))],
);

/** What a run was asked to do; queryable with JSONB containment (work item ids, methodology). */
export interface RunSpec {
  definitionName: string;
  methodology: MethodologyContextJson;
  workItemIds: string[];
  trigger: 'TRIGGER_MANUAL' | 'TRIGGER_AUTO';
}

/** What a run has done so far, folded from its status updates. */
export interface RunState {
  phases: PhaseResultJson[];
  summary?: RunSummaryJson;
  error?: string;
}

/** Runs: one execution of a plan version. */
export const runs = pgTable(
  'runs',
  {
    id: uuid('id').primaryKey(),
    tenantId: text('tenant_id').notNull(),
    planId: uuid('plan_id')
      .notNull()
      .references(() => plans.id),
    planVersion: integer('plan_version').notNull(),
    definitionId: uuid('definition_id')
      .notNull()
      .references(() => definitions.id),
    workflowId: text('workflow_id').notNull(),
    status: text('status').notNull(),
    phase: text('phase').notNull(),
    spec: jsonb('spec').$type<RunSpec>().notNull(),
    state: jsonb('state').$type<RunState>().notNull(),
    annotations: jsonb('annotations').$type<Annotations>().notNull().default({}),
    lastSequence: bigint('last_sequence', { mode: 'number' }).notNull().default(0),
    /**
     * The run's lane: its repository URL and work branch (`<url>\n<branch>`). Runs of one lane run one
     * at a time, in `queue_seq` order. Null for runs made before lanes existed (each its own lane).
     */
    branchKey: text('branch_key'),
    /** The caller's idempotency key of the StartWorkflowRun call that made the run, unique per tenant. */
    requestId: text('request_id'),
    /** Order in the lane, taken under the lane's lock. */
    queueSeq: bigserial('queue_seq', { mode: 'number' }).notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    startedAt: timestamp('started_at', { withTimezone: true }),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
  },
  (t) => [
    uniqueIndex('runs_workflow_id_uq').on(t.workflowId),
    index('runs_tenant_status_idx').on(t.tenantId, t.status),
    index('runs_tenant_definition_idx').on(t.tenantId, t.definitionId),
    index('runs_tenant_created_idx').on(t.tenantId, t.createdAt),
    index('runs_spec_gin').using('gin', t.spec.op('jsonb_path_ops')),
    index('runs_lane_idx').on(t.tenantId, t.branchKey, t.queueSeq),
    uniqueIndex('runs_request_id_uq').on(t.tenantId, t.requestId),
  ],
);

/** Status updates, one row per run id + sequence (the idempotency key). */
export const statusUpdates = pgTable(
  'status_updates',
  {
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    sequence: bigint('sequence', { mode: 'number' }).notNull(),
    tenantId: text('tenant_id').notNull(),
    kind: text('kind').notNull(),
    payload: jsonb('payload').$type<StatusUpdateJson>().notNull(),
    recordedAt: timestamp('recorded_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.sequence] })],
);
