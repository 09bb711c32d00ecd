import { sql } from 'drizzle-orm';
import { bigint, bigserial, boolean, index, integer, jsonb, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import type { DefinitionSpecJson, PlanSpecJson, RunSummaryJson, PhaseResultJson, StatusUpdateJson, MethodologyContextJson } from '@ameide/contracts';

export type Annotations = Record<string, string>;

/**
 * Repo adapters. `spec` is the DefinitionSpec JSON; the row's version goes up when it changes. A deleted
 * definition keeps its row (plans and runs refer to it) with `deleted_at` set, and frees its name.
 */
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
    deletedAt: timestamp('deleted_at', { withTimezone: true }),
  },
  (t) => [
    uniqueIndex('definitions_tenant_name_uq')
      .on(t.tenantId, t.name)
      .where(sql`${t.deletedAt} is null`),
    index('definitions_spec_gin').using('gin', t.spec),
  ],
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
    /** For a plan automation made: the backlog work item and the revision it was made for (one plan per revision). */
    workItemId: text('work_item_id'),
    workItemRevision: bigint('work_item_revision', { mode: 'number' }),
    /** The approval gate (PlanApproval JSON); null when the plan needs none. */
    approval: jsonb('approval').$type<{ state: string; decidedBy?: string; decideTime?: string; reason?: string }>(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    // The list order (newest first, then id): each page is read from the index in order.
    index('plans_tenant_created_id_idx').on(t.tenantId, t.createdAt, t.id),
    index('plans_spec_gin').using('gin', t.spec.op('jsonb_path_ops')),
    uniqueIndex('plans_work_item_revision_uq').on(t.tenantId, t.workItemId, t.workItemRevision),
  ],
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
  /** The Definition of Done checklist (governance.v1.DoneEvaluation JSON), once evaluated after the run. */
  done?: { profile?: string; met?: boolean; rules?: { rule?: string; passed?: boolean; detail?: string }[]; evaluateTime?: string };
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
    /**
     * The state as a list shows it (RUN_VIEW_BASIC): without the phases' output tails, and without the
     * summary's evidence files, egress record and per-call token counts. Postgres computes it
     * (`ameide_basic_state`, migration 0012) whenever `state` is written, so a list reads it as stored
     * instead of cutting every listed run's state at read time. Never written by the service.
     */
    basicState: jsonb('basic_state')
      .$type<RunState>()
      .generatedAlwaysAs(sql`ameide_basic_state(state)`),
    annotations: jsonb('annotations').$type<Annotations>().notNull().default({}),
    lastSequence: bigint('last_sequence', { mode: 'number' }).notNull().default(0),
    /**
     * The run's lane: its repository URL and work branch (`<url>\n<branch>`). Runs of one lane run one
     * at a time, in `queue_seq` order. Null for runs made before lanes existed (each its own lane).
     */
    branchKey: text('branch_key'),
    /** When the run's work item revision became ready (for a run automation started): lead time starts there. */
    readyAt: timestamp('ready_at', { withTimezone: true }),
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
    // The list order (created_at desc, id desc) under each filter: a page is a short index scan.
    index('runs_tenant_created_id_idx').on(t.tenantId, t.createdAt, t.id),
    index('runs_tenant_status_created_idx').on(t.tenantId, t.status, t.createdAt, t.id),
    index('runs_tenant_definition_created_idx').on(t.tenantId, t.definitionId, t.createdAt, t.id),
    index('runs_lane_idx').on(t.tenantId, t.branchKey, t.queueSeq),
    uniqueIndex('runs_request_id_uq').on(t.tenantId, t.requestId),
  ],
);

/**
 * The work items of each run (its `spec.workItemIds`), with the run's creation time: the work item filter
 * of the run list reads a page of a work item's runs, in list order, from one index. Filled by a trigger
 * on runs (migration 0010), so every way of inserting a run fills it.
 */
export const runWorkItems = pgTable(
  'run_work_items',
  {
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    tenantId: text('tenant_id').notNull(),
    workItemId: text('work_item_id').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.workItemId] }), index('run_work_items_list_idx').on(t.tenantId, t.workItemId, t.createdAt, t.runId)],
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

/** Work items mirrored from the team's backlog: the newest revision of each, and what automation did for it. */
export const workItems = pgTable(
  'work_items',
  {
    tenantId: text('tenant_id').notNull(),
    id: text('id').notNull(),
    revision: bigint('revision', { mode: 'number' }).notNull(),
    /** The WorkItemSpec JSON of the newest revision. */
    spec: jsonb('spec').$type<Record<string, unknown>>().notNull(),
    annotations: jsonb('annotations').$type<Annotations>().notNull().default({}),
    /** The Readiness JSON of the newest revision (each DoR rule and why). */
    readiness: jsonb('readiness').$type<Record<string, unknown>>().notNull(),
    state: text('state').notNull(),
    profile: text('profile').notNull(),
    ready: boolean('ready').notNull(),
    /** The newest revision that reached its trigger state meeting its DoR and is still to get (or got) its plan and run. */
    triggerRevision: bigint('trigger_revision', { mode: 'number' }),
    /** The revision automation made its plan and run for, and those. */
    triggeredRevision: bigint('triggered_revision', { mode: 'number' }),
    planId: uuid('plan_id'),
    runId: uuid('run_id'),
    readyAt: timestamp('ready_at', { withTimezone: true }),
    /** When a revision first said the item is done, after it was ready (lead time READY → DONE). */
    doneAt: timestamp('done_at', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.id] }),
    index('work_items_tenant_updated_id_idx').on(t.tenantId, t.updatedAt, t.id),
    index('work_items_spec_gin').using('gin', t.spec.op('jsonb_path_ops')),
  ],
);

/** Custom methodology profiles of a tenant; the version goes up when the spec changes. */
export const profiles = pgTable(
  'profiles',
  {
    tenantId: text('tenant_id').notNull(),
    name: text('name').notNull(),
    version: integer('version').notNull().default(1),
    spec: jsonb('spec').$type<Record<string, unknown>>().notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.name] })],
);

/** Webhook deliveries seen, so that a replayed delivery id is refused. */
export const webhookDeliveries = pgTable(
  'webhook_deliveries',
  {
    tenantId: text('tenant_id').notNull(),
    deliveryId: text('delivery_id').notNull(),
    receivedAt: timestamp('received_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.deliveryId] })],
);

/**
 * Pull requests: one per work branch (the run's lane), opened by its first run that pushed and updated
 * by every rerun. For the git provider this record is the pull request; for forges it mirrors theirs.
 */
export const pullRequests = pgTable(
  'pull_requests',
  {
    id: uuid('id').primaryKey(),
    tenantId: text('tenant_id').notNull(),
    /** The lane (`<url>\n<branch>`, as runs.branch_key): the pull request's identity. */
    branchKey: text('branch_key').notNull(),
    provider: text('provider').notNull(),
    /** The forge's number, or for the git provider one given per tenant and repository. */
    number: integer('number').notNull(),
    repository: text('repository').notNull(),
    title: text('title').notNull(),
    body: text('body').notNull(),
    baseBranch: text('base_branch').notNull(),
    headBranch: text('head_branch').notNull(),
    headCommit: text('head_commit').notNull(),
    state: text('state').notNull(),
    url: text('url').notNull().default(''),
    workItemId: text('work_item_id').notNull().default(''),
    firstRunId: uuid('first_run_id').notNull(),
    lastRunId: uuid('last_run_id').notNull(),
    revisions: integer('revisions').notNull().default(1),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('pull_requests_branch_uq').on(t.tenantId, t.branchKey),
    index('pull_requests_tenant_updated_id_idx').on(t.tenantId, t.updatedAt, t.id),
    index('pull_requests_work_item_idx').on(t.tenantId, t.workItemId),
  ],
);

/** Previews of runs: what the preview router routes (live ones) and their history. */
export const previews = pgTable(
  'previews',
  {
    runId: uuid('run_id')
      .primaryKey()
      .references(() => runs.id, { onDelete: 'cascade' }),
    tenantId: text('tenant_id').notNull(),
    workItemId: text('work_item_id').notNull().default(''),
    provider: text('provider').notNull(),
    /** local: host:port on the worker the router sends traffic to. */
    target: text('target').notNull().default(''),
    /** command: the URLs the deploy printed (local previews' URLs are the router's). */
    url: text('url').notNull().default(''),
    aliasUrl: text('alias_url').notNull().default(''),
    state: text('state').notNull(),
    liveAt: timestamp('live_at', { withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp('expires_at', { withTimezone: true }),
    stoppedAt: timestamp('stopped_at', { withTimezone: true }),
    stopReason: text('stop_reason').notNull().default(''),
  },
  (t) => [index('previews_alias_idx').on(t.tenantId, t.workItemId, t.state, t.liveAt), index('previews_tenant_live_idx').on(t.tenantId, t.liveAt, t.runId)],
);

/**
 * What must follow an event of a run (`finished`: evidence, attestations, DoD, impediment,
 * notifications; `preview_live`: notifications): a transactional outbox written in the same
 * transaction as the event, drained by starting the event's Temporal workflow (`started_at`).
 */
export const runFollowups = pgTable(
  'run_followups',
  {
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    event: text('event').notNull(),
    tenantId: text('tenant_id').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    startedAt: timestamp('started_at', { withTimezone: true }),
  },
  (t) => [
    primaryKey({ columns: [t.runId, t.event] }),
    index('run_followups_pending_idx')
      .on(t.createdAt)
      .where(sql`${t.startedAt} is null`),
  ],
);

/** Evidence: one checksummed file of a run (governance.v1.Evidence), unique by name per run. */
export const evidence = pgTable(
  'evidence',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tenantId: text('tenant_id').notNull(),
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    kind: text('kind').notNull(),
    name: text('name').notNull(),
    uri: text('uri').notNull(),
    sha256: text('sha256').notNull(),
    sizeBytes: bigint('size_bytes', { mode: 'number' }).notNull(),
    mediaType: text('media_type').notNull(),
    /** governance.v1.Provenance JSON. */
    provenance: jsonb('provenance').$type<Record<string, unknown>>().notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex('evidence_run_name_uq').on(t.runId, t.name)],
);

/** Signed attestations of a run (DSSE envelopes), one per predicate type. */
export const attestations = pgTable(
  'attestations',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tenantId: text('tenant_id').notNull(),
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    predicateType: text('predicate_type').notNull(),
    subjects: jsonb('subjects').$type<{ name: string; sha256: string }[]>().notNull(),
    artifacts: jsonb('artifacts').$type<{ kind: string; id: string }[]>().notNull(),
    keyId: text('key_id').notNull(),
    development: boolean('development').notNull(),
    envelope: jsonb('envelope').$type<{ payloadType: string; payload: string; signatures: { keyid: string; sig: string }[] }>().notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex('attestations_run_predicate_uq').on(t.runId, t.predicateType)],
);

/** Nodes of the methodology graph: work items, timeboxes, goals, artifacts (increment, ...), evidence, attestations. */
export const elements = pgTable(
  'elements',
  {
    tenantId: text('tenant_id').notNull(),
    kind: text('kind').notNull(),
    id: text('id').notNull(),
    attributes: jsonb('attributes').$type<Record<string, unknown>>().notNull().default({}),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.kind, t.id] })],
);

/** Edges of the methodology graph, e.g. evidence `attached_to` an increment. */
export const relationships = pgTable(
  'relationships',
  {
    tenantId: text('tenant_id').notNull(),
    fromKind: text('from_kind').notNull(),
    fromId: text('from_id').notNull(),
    kind: text('kind').notNull(),
    toKind: text('to_kind').notNull(),
    toId: text('to_id').notNull(),
    attributes: jsonb('attributes').$type<Record<string, unknown>>().notNull().default({}),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.fromKind, t.fromId, t.kind, t.toKind, t.toId] }),
    index('relationships_to_idx').on(t.tenantId, t.toKind, t.toId, t.kind),
  ],
);

/** Impediments automation raised: one per cause (`cause_key`, unique per tenant). */
export const impediments = pgTable(
  'impediments',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tenantId: text('tenant_id').notNull(),
    /** What makes it one impediment, e.g. `run:<runId>`: a repeated raise finds the first. */
    causeKey: text('cause_key').notNull(),
    cause: text('cause').notNull(),
    reason: text('reason').notNull(),
    phase: text('phase').notNull().default(''),
    runId: uuid('run_id').references(() => runs.id, { onDelete: 'set null' }),
    workItemId: text('work_item_id').notNull().default(''),
    timeboxIds: jsonb('timebox_ids').$type<string[]>().notNull().default([]),
    goalIds: jsonb('goal_ids').$type<string[]>().notNull().default([]),
    handoffUri: text('handoff_uri').notNull().default(''),
    /** open, resolved or reassigned_to_agent. */
    state: text('state').notNull().default('open'),
    assignee: text('assignee').notNull().default(''),
    resolution: text('resolution').notNull().default(''),
    rerunId: uuid('rerun_id'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('impediments_cause_uq').on(t.tenantId, t.causeKey),
    index('impediments_tenant_state_idx').on(t.tenantId, t.state, t.createdAt),
    index('impediments_tenant_created_id_idx').on(t.tenantId, t.createdAt, t.id),
    index('impediments_work_item_idx').on(t.tenantId, t.workItemId),
  ],
);

/** Who wants which notifications where: per person, channel and address, for a work item or all ("*"). */
export const subscriptions = pgTable(
  'subscriptions',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tenantId: text('tenant_id').notNull(),
    person: text('person').notNull(),
    /** in_app, webhook or email. */
    channel: text('channel').notNull(),
    address: text('address').notNull().default(''),
    workItemId: text('work_item_id').notNull().default('*'),
    /** The webhook's HMAC secret. */
    secret: text('secret').notNull().default(''),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex('subscriptions_uq').on(t.tenantId, t.person, t.channel, t.address, t.workItemId)],
);

/** The notification center: one row per person and event of a run (`dedupe_key` makes it once). */
export const notifications = pgTable(
  'notifications',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tenantId: text('tenant_id').notNull(),
    person: text('person').notNull(),
    event: text('event').notNull(),
    runId: uuid('run_id'),
    workItemId: text('work_item_id').notNull().default(''),
    /** `<runId>:<event>:<person>`. */
    dedupeKey: text('dedupe_key').notNull(),
    subject: text('subject').notNull(),
    body: text('body').notNull(),
    /** The NotificationContent it was rendered from (webhook payloads are made from it). */
    content: jsonb('content').$type<Record<string, unknown>>().notNull(),
    read: boolean('read').notNull().default(false),
    /** Ordered for WatchNotifications (resume after the last seen). */
    seq: bigserial('seq', { mode: 'number' }).notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex('notifications_dedupe_uq').on(t.tenantId, t.dedupeKey), index('notifications_person_idx').on(t.tenantId, t.person, t.seq)],
);

/** Webhook and e-mail deliveries of notifications: one per notification and subscription. */
export const notificationDeliveries = pgTable(
  'notification_deliveries',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    tenantId: text('tenant_id').notNull(),
    notificationId: uuid('notification_id')
      .notNull()
      .references(() => notifications.id, { onDelete: 'cascade' }),
    subscriptionId: uuid('subscription_id').notNull(),
    channel: text('channel').notNull(),
    address: text('address').notNull(),
    /** pending, delivered, failed (retrying) or dead_lettered. */
    state: text('state').notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    lastError: text('last_error').notNull().default(''),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    deliveredAt: timestamp('delivered_at', { withTimezone: true }),
    /** From the notification's creation to its delivery. */
    latencyMs: integer('latency_ms'),
  },
  (t) => [
    uniqueIndex('notification_deliveries_uq').on(t.notificationId, t.subscriptionId),
    index('notification_deliveries_state_idx').on(t.tenantId, t.state, t.createdAt),
    index('notification_deliveries_tenant_created_id_idx').on(t.tenantId, t.createdAt, t.id),
  ],
);

/**
 * The newest output of runs' command phases, as the worker sends it while they run (RecordRunOutput):
 * chunks of the phase's redacted transcript by their byte offset in it, so a resent chunk is stored
 * once. Only the newest part of each phase is kept (`RUN_OUTPUT_KEEP_BYTES`, output.ts); the whole
 * transcript is in the artifact store.
 */
export const runOutput = pgTable(
  'run_output',
  {
    runId: uuid('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    /** The Phase JSON name (`PHASE_AGENT`). */
    phase: text('phase').notNull(),
    offset: bigint('offset', { mode: 'number' }).notNull(),
    tenantId: text('tenant_id').notNull(),
    data: text('data').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.phase, t.offset] })],
);
