/**
 * Every limit the API holds requests to, in one place: `validation.ts` enforces them (`checkRequest`,
 * run on every request before its handler), `server.ts` gives Connect the request size, and
 * docs/definitions.md#limits lists them. They are far above what a real definition, plan or run
 * needs, and keep whatever is accepted usable: a definition's commands and environment fit the
 * kernel's limits of a process's arguments and environment (128 KiB per string, 2 MiB together), and
 * a plan (definition snapshot + work items + methodology), which travels as workflow input, stays well
 * below Temporal's 2 MiB payload limit.
 */

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

/** Largest request message the API reads, in bytes (Connect's `readMaxBytes`); a larger one answers resource_exhausted. */
export const MAX_REQUEST_BYTES = 4 * MiB;

/** `page_size` of the list calls: 0 means the default. */
export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

/** Status updates of one RecordStatusUpdates call, at most. */
export const MAX_STATUS_UPDATES_PER_CALL = 100;

/** Wall-clock budget of one command phase (`spec.phase_timeout_seconds`), at most 24 h. */
export const MAX_PHASE_TIMEOUT_SECONDS = 24 * 3600;

/** What one request field may hold. Sizes of strings are UTF-8 bytes. */
export interface FieldLimit {
  /** Strings (each entry of a list, each value of a map): the most bytes. */
  bytes?: number;
  /** Lists and maps: the most entries. */
  entries?: number;
  /** Map keys: the most bytes. */
  keyBytes?: number;
  /** Numbers: the smallest and largest value. */
  min?: number;
  max?: number;
  /** The whole field (a message, list or map) in its stored JSON form: the most bytes. */
  jsonBytes?: number;
  /** Strings may hold NUL bytes (the worker's reports of command output; stored as U+2400). */
  nulAllowed?: boolean;
}

/** Fields of other services (server reflection), and 64-bit numbers nothing else bounds. */
export const DEFAULT_LIMIT: Required<Pick<FieldLimit, 'bytes' | 'entries' | 'keyBytes'>> = { bytes: 4 * KiB, entries: 1000, keyBytes: 4 * KiB };

const ID: FieldLimit = { bytes: 256 };
const ANNOTATIONS: FieldLimit = { entries: 64, keyBytes: 256, bytes: 4 * KiB };
const PAGE_SIZE: FieldLimit = { max: MAX_PAGE_SIZE };
/** The worker's reports: bounded by the request size only, NUL bytes allowed (command output may hold them). */
const REPORT: FieldLimit = { bytes: MAX_REQUEST_BYTES, nulAllowed: true };
const REPORT_LIST: FieldLimit = { ...REPORT, entries: MAX_REQUEST_BYTES };

const V1 = 'ameide.workflows.v1';
const BACKLOG = 'ameide.backlog.v1';

/**
 * Limits by field (`<package>.<Message>.<field>`, proto names) or by message type (`<package>.<Message>`,
 * wherever it appears). Every string, list and map field of the WorkflowService requests has an
 * entry (a unit test checks it); 64-bit numbers without one stay within ±(2^53 - 1).
 */
export const LIMITS: Record<string, FieldLimit> = {
  // Definitions
  [`${V1}.CreateDefinitionRequest.name`]: ID,
  [`${V1}.CreateDefinitionRequest.annotations`]: ANNOTATIONS,
  [`${V1}.ApplyDefinitionRequest.name`]: ID,
  [`${V1}.ApplyDefinitionRequest.annotations`]: ANNOTATIONS,
  [`${V1}.GetDefinitionRequest.id_or_name`]: ID,
  [`${V1}.ListDefinitionsRequest.page_size`]: PAGE_SIZE,
  [`${V1}.ListDefinitionsRequest.page_token`]: ID,
  [`${V1}.DeleteDefinitionRequest.id_or_name`]: ID,
  [`${V1}.DefinitionSpec`]: { jsonBytes: 256 * KiB },
  [`${V1}.DefinitionSpec.repo_url`]: { bytes: 4 * KiB },
  [`${V1}.DefinitionSpec.default_branch`]: { bytes: 256 },
  [`${V1}.DefinitionSpec.install_command`]: { bytes: 64 * KiB },
  [`${V1}.DefinitionSpec.agent_command`]: { bytes: 64 * KiB },
  [`${V1}.DefinitionSpec.test_command`]: { bytes: 64 * KiB },
  [`${V1}.DefinitionSpec.branch_prefix`]: { bytes: 256 },
  [`${V1}.DefinitionSpec.phase_timeout_seconds`]: { max: MAX_PHASE_TIMEOUT_SECONDS },
  [`${V1}.DefinitionSpec.env`]: { entries: 128, keyBytes: 256, bytes: 32 * KiB },
  [`${V1}.DefinitionSpec.secrets`]: { entries: 64 },
  [`${V1}.Guardrails.sandbox`]: { bytes: 64 },
  [`${V1}.Guardrails.allowed_paths`]: { entries: 256, bytes: 1 * KiB },
  [`${V1}.Guardrails.denied_paths`]: { entries: 256, bytes: 1 * KiB },
  [`${V1}.Guardrails.package_caches`]: { entries: 16, bytes: 64 },
  [`${V1}.Guardrails.read_only_paths`]: { entries: 64, bytes: 4 * KiB },
  [`${V1}.Guardrails.egress_hosts`]: { entries: 256, bytes: 255 },
  [`${V1}.PhaseNetwork.agent_mode`]: { bytes: 64 },
  [`${V1}.AgentSpec.kind`]: { bytes: 64 },
  [`${V1}.AgentSpec.model`]: { bytes: 256 },
  [`${V1}.AgentSpec.endpoint`]: { bytes: 4 * KiB },
  [`${V1}.AgentSpec.api`]: { bytes: 64 },
  [`${V1}.AgentSpec.api_key_secret`]: ID,
  [`${V1}.AgentSpec.max_turns`]: { max: 10_000 },
  [`${V1}.AgentSpec.instructions`]: { bytes: 64 * KiB },
  [`${V1}.Budgets.max_commands`]: { max: 1000 },
  [`${V1}.Budgets.run_timeout_seconds`]: { max: 7 * 24 * 3600 },
  [`${V1}.Budgets.max_output_bytes`]: { max: 1 * GiB },
  [`${V1}.Budgets.max_processes`]: { max: 32768 },
  [`${V1}.Budgets.max_file_bytes`]: { max: 1024 * GiB },
  [`${V1}.SecretRef.name`]: ID,
  [`${V1}.SecretRef.from_env`]: ID,
  [`${V1}.SecretRef.phases`]: { entries: 8 },
  [`${V1}.PreviewSpec.provider`]: { bytes: 64 },
  [`${V1}.PreviewSpec.command`]: { bytes: 64 * KiB },
  [`${V1}.PreviewSpec.alias_command`]: { bytes: 64 * KiB },
  [`${V1}.PreviewSpec.health_path`]: { bytes: 1 * KiB },
  [`${V1}.PreviewSpec.ready_timeout_seconds`]: { max: MAX_PHASE_TIMEOUT_SECONDS },
  [`${V1}.PreviewSpec.ttl_seconds`]: { max: 30 * 24 * 3600 },
  [`${V1}.PullRequestSpec.provider`]: { bytes: 64 },
  [`${V1}.PullRequestSpec.labels`]: { entries: 100, bytes: 256 },
  [`${V1}.PullRequestSpec.reviewers`]: { entries: 100, bytes: 256 },
  [`${V1}.PullRequestSpec.base_branch`]: { bytes: 256 },
  [`${V1}.PullRequestSpec.token_from_env`]: ID,
  [`${V1}.PullRequestSpec.api_url`]: { bytes: 4 * KiB },
  [`${V1}.PullRequestSpec.repository`]: { bytes: 1 * KiB },
  [`${V1}.DefinitionSpec.test_reports`]: { entries: 32, bytes: 1 * KiB },

  // Plans and runs
  [`${V1}.CreatePlanRequest.definition`]: ID,
  [`${V1}.CreatePlanRequest.work_items`]: { entries: 100, jsonBytes: 256 * KiB },
  [`${V1}.CreatePlanRequest.annotations`]: ANNOTATIONS,
  [`${V1}.GetPlanRequest.id`]: ID,
  [`${V1}.ListPlansRequest.definition`]: ID,
  [`${V1}.ListPlansRequest.work_item_id`]: ID,
  [`${V1}.ListPlansRequest.page_size`]: PAGE_SIZE,
  [`${V1}.ListPlansRequest.page_token`]: ID,
  [`${V1}.DiffPlansRequest.plan_id`]: ID,
  [`${V1}.DiffPlansRequest.other_plan_id`]: ID,
  [`${V1}.StartWorkflowRunRequest.plan_id`]: ID,
  [`${V1}.StartWorkflowRunRequest.definition`]: ID,
  [`${V1}.StartWorkflowRunRequest.work_items`]: { entries: 100, jsonBytes: 256 * KiB },
  [`${V1}.StartWorkflowRunRequest.annotations`]: ANNOTATIONS,
  [`${V1}.StartWorkflowRunRequest.request_id`]: ID,
  [`${V1}.ApprovePlanRequest.id`]: ID,
  [`${V1}.ApprovePlanRequest.reason`]: { bytes: 4 * KiB },
  [`${V1}.RejectPlanRequest.id`]: ID,
  [`${V1}.RejectPlanRequest.reason`]: { bytes: 4 * KiB },
  [`${V1}.GetWorkflowRunRequest.id`]: ID,
  [`${V1}.ListWorkflowRunsRequest.statuses`]: { entries: 16 },
  [`${V1}.ListWorkflowRunsRequest.work_item_id`]: ID,
  [`${V1}.ListWorkflowRunsRequest.definition`]: ID,
  [`${V1}.ListWorkflowRunsRequest.page_size`]: PAGE_SIZE,
  [`${V1}.ListWorkflowRunsRequest.page_token`]: ID,
  [`${V1}.CancelWorkflowRunRequest.id`]: ID,
  [`${V1}.CancelWorkflowRunRequest.reason`]: { bytes: 4 * KiB },
  [`${V1}.WatchWorkflowRunRequest.id`]: ID,
  [`${V1}.GetRunDiffRequest.id`]: ID,
  [`${V1}.GetRunDiffRequest.page_size`]: PAGE_SIZE,
  [`${V1}.GetRunDiffRequest.page_token`]: ID,
  [`${V1}.ListPullRequestsRequest.work_item_id`]: ID,
  [`${V1}.ListPullRequestsRequest.state`]: { bytes: 64 },
  [`${V1}.ListPullRequestsRequest.page_size`]: PAGE_SIZE,
  [`${V1}.ListPullRequestsRequest.page_token`]: ID,
  [`${V1}.GetPullRequestRequest.id`]: ID,
  [`${V1}.ListPreviewsRequest.work_item_id`]: ID,
  [`${V1}.ListPreviewsRequest.run_id`]: ID,
  [`${V1}.ListPreviewsRequest.state`]: { bytes: 64 },
  [`${V1}.ListPreviewsRequest.page_size`]: PAGE_SIZE,
  [`${V1}.ListPreviewsRequest.page_token`]: ID,
  [`${V1}.WorkItem.id`]: ID,
  [`${V1}.WorkItem.title`]: { bytes: 1 * KiB },
  [`${V1}.WorkItem.description`]: { bytes: 64 * KiB },
  [`${V1}.WorkItem.acceptance_criteria`]: { entries: 100, bytes: 4 * KiB },
  [`${V1}.WorkItem.context_links`]: { entries: 100, bytes: 4 * KiB },
  [`${V1}.MethodologyContext.profile`]: ID,
  [`${V1}.MethodologyContext.timebox_ids`]: { entries: 100, ...ID },
  [`${V1}.MethodologyContext.goal_ids`]: { entries: 100, ...ID },
  [`${V1}.MethodologyContext.work_item_ids`]: { entries: 100, ...ID },
  [`${V1}.MethodologyContext.element_ids`]: { entries: 100, ...ID },

  // The worker's status updates
  [`${V1}.RecordStatusUpdatesRequest.updates`]: { entries: MAX_STATUS_UPDATES_PER_CALL },
  [`${V1}.StatusUpdate.run_id`]: ID,
  [`${V1}.StatusUpdate.output_tail`]: REPORT,
  [`${V1}.StatusUpdate.message`]: REPORT,
  [`${V1}.StatusUpdate.attributes`]: { ...REPORT_LIST, keyBytes: MAX_REQUEST_BYTES },
  [`${V1}.RunSummary.branch`]: REPORT,
  [`${V1}.RunSummary.base_commit`]: REPORT,
  [`${V1}.RunSummary.head_commit`]: REPORT,
  [`${V1}.RunSummary.transcripts_uri`]: REPORT,
  [`${V1}.RunSummary.handoff_uri`]: REPORT,
  [`${V1}.RunSummary.handoff_sha256`]: REPORT,
  [`${V1}.RunSummary.sandbox`]: REPORT,
  [`${V1}.RunSummary.budget_exceeded`]: REPORT,
  [`${V1}.RunSummary.policy_violations`]: REPORT_LIST,
  [`${V1}.RunSummary.preview_url`]: REPORT,
  [`${V1}.RunSummary.preview_alias_url`]: REPORT,
  [`${V1}.PullRequestRef.provider`]: REPORT,
  [`${V1}.PullRequestRef.url`]: REPORT,
  [`${V1}.PullRequestRef.state`]: REPORT,
  [`${V1}.TestReport.format`]: REPORT,
  [`${V1}.TestReport.failing_tests`]: REPORT_LIST,
  [`${V1}.TestReport.sources`]: REPORT_LIST,
  [`${V1}.TestReport.error`]: REPORT,
  [`${V1}.RunSummary.evidence`]: REPORT_LIST,
  [`${V1}.EvidenceFile.kind`]: REPORT,
  [`${V1}.EvidenceFile.name`]: REPORT,
  [`${V1}.EvidenceFile.uri`]: REPORT,
  [`${V1}.EvidenceFile.sha256`]: REPORT,
  [`${V1}.EvidenceFile.media_type`]: REPORT,
  [`${V1}.RunProvenance.worker_identity`]: REPORT,
  [`${V1}.RunProvenance.worker_version`]: REPORT,
  [`${V1}.RunProvenance.temporal_run_id`]: REPORT,
  [`${V1}.RunProvenance.tool_versions`]: REPORT_LIST,
  [`${V1}.AgentRun.kind`]: REPORT,
  [`${V1}.AgentRun.model`]: REPORT,
  [`${V1}.AgentRun.endpoint`]: REPORT,
  [`${V1}.AgentRun.calls`]: REPORT_LIST,
  [`${V1}.AgentRun.transcript_uri`]: REPORT,
  [`${V1}.AgentRun.stopped`]: REPORT,
  [`${V1}.AgentRun.final_message`]: REPORT,
  [`${V1}.ModelCall.model`]: REPORT,
  [`${V1}.RunSummary.egress`]: REPORT_LIST,
  [`${V1}.EgressDestination.phase`]: REPORT,
  [`${V1}.EgressDestination.destination`]: REPORT,
  [`${V1}.EgressDestination.reason`]: REPORT,
  [`${V1}.RecordPullRequestRequest.run_id`]: ID,
  [`${V1}.RecordPullRequestRequest.provider`]: { bytes: 64 },
  [`${V1}.RecordPullRequestRequest.url`]: { bytes: 4 * KiB },
  [`${V1}.RecordPullRequestRequest.title`]: { bytes: 4 * KiB },
  [`${V1}.RecordPullRequestRequest.body`]: { bytes: 256 * KiB },
  [`${V1}.RecordPullRequestRequest.base_branch`]: { bytes: 256 },
  [`${V1}.RecordPullRequestRequest.head_branch`]: { bytes: 256 },
  [`${V1}.RecordPullRequestRequest.head_commit`]: { bytes: 64 },
  [`${V1}.RecordPullRequestRequest.state`]: { bytes: 64 },
  [`${V1}.RecordPullRequestRequest.repository`]: { bytes: 4 * KiB },
  [`${V1}.RecordPreviewRequest.run_id`]: ID,
  [`${V1}.RecordPreviewRequest.state`]: { bytes: 64 },
  [`${V1}.RecordPreviewRequest.provider`]: { bytes: 64 },
  [`${V1}.RecordPreviewRequest.target`]: { bytes: 256 },
  [`${V1}.RecordPreviewRequest.url`]: { bytes: 4 * KiB },
  [`${V1}.RecordPreviewRequest.alias_url`]: { bytes: 4 * KiB },
  [`${V1}.RecordPreviewRequest.reason`]: { bytes: 4 * KiB },
  // Run output: the worker's chunks (at most 64 KiB each), and what readers ask for
  [`${V1}.RecordRunOutputRequest.run_id`]: ID,
  [`${V1}.RecordRunOutputRequest.offset`]: { min: 0, max: 1024 * GiB },
  [`${V1}.RecordRunOutputRequest.data`]: { bytes: 256 * KiB },
  [`${V1}.StreamRunOutputRequest.run_id`]: ID,
  [`${V1}.StreamRunOutputRequest.tail_lines`]: { max: 100_000 },
  // What JSON (and so the database) can hold: 0001-01-01 to 9999-12-31.
  ['google.protobuf.Timestamp.seconds']: { min: -62135596800, max: 253402300799 },
  ['google.protobuf.Timestamp.nanos']: { min: 0, max: 999_999_999 },
  // Backlog (ameide.backlog.v1)
  [`${BACKLOG}.UpsertWorkItemRequest.id`]: ID,
  [`${BACKLOG}.UpsertWorkItemRequest.annotations`]: ANNOTATIONS,
  [`${BACKLOG}.WorkItemSpec.title`]: { bytes: KiB },
  [`${BACKLOG}.WorkItemSpec.description`]: { bytes: 64 * KiB },
  [`${BACKLOG}.WorkItemSpec.acceptance_criteria`]: { entries: 100, bytes: 4 * KiB },
  [`${BACKLOG}.WorkItemSpec.context_links`]: { entries: 100, bytes: 4 * KiB },
  [`${BACKLOG}.WorkItemSpec.profile`]: ID,
  [`${BACKLOG}.WorkItemSpec.timebox_ids`]: { entries: 100, bytes: 256 },
  [`${BACKLOG}.WorkItemSpec.goal_ids`]: { entries: 100, bytes: 256 },
  [`${BACKLOG}.WorkItemSpec.element_ids`]: { entries: 100, bytes: 256 },
  [`${BACKLOG}.WorkItemSpec.definition`]: ID,
  [`${BACKLOG}.WorkItemSpec.requester`]: ID,
  [`${BACKLOG}.WorkItemSpec.subscribers`]: { entries: 100, bytes: 256 },
  [`${BACKLOG}.GetWorkItemRequest.id`]: ID,
  [`${BACKLOG}.ListWorkItemsRequest.timebox_id`]: ID,
  [`${BACKLOG}.ListWorkItemsRequest.goal_id`]: ID,
  [`${BACKLOG}.ListWorkItemsRequest.profile`]: ID,
  [`${BACKLOG}.ListWorkItemsRequest.page_size`]: PAGE_SIZE,
  [`${BACKLOG}.ListWorkItemsRequest.page_token`]: ID,
  [`${BACKLOG}.ApplyProfileRequest.name`]: ID,
  [`${BACKLOG}.GetProfileRequest.name`]: ID,
  [`${BACKLOG}.ListProfilesRequest.page_size`]: PAGE_SIZE,
  [`${BACKLOG}.ListProfilesRequest.page_token`]: ID,
  [`${BACKLOG}.ProfileSpec.description`]: { bytes: 4 * KiB },
  [`${BACKLOG}.ProfileSpec.ready_rules`]: { entries: 64 },
  [`${BACKLOG}.ProfileSpec.done_rules`]: { entries: 64 },
  [`${BACKLOG}.ProfileSpec.evidence_targets`]: { entries: 16 },
  [`${BACKLOG}.Rule.kind`]: { bytes: 64 },
  [`${BACKLOG}.Rule.min`]: { max: 100 },
  [`${BACKLOG}.EvidenceTarget.artifact`]: { bytes: 64 },
  [`${BACKLOG}.EvidenceTarget.from`]: { bytes: 64 },
  // Evidence (ameide.governance.v1)
  ['ameide.governance.v1.ListEvidenceRequest.run_id']: ID,
  ['ameide.governance.v1.ListEvidenceRequest.work_item_id']: ID,
  ['ameide.governance.v1.ListEvidenceRequest.timebox_id']: ID,
  ['ameide.governance.v1.ListEvidenceRequest.goal_id']: ID,
  ['ameide.governance.v1.ListEvidenceRequest.page_size']: PAGE_SIZE,
  ['ameide.governance.v1.ListEvidenceRequest.page_token']: ID,
  ['ameide.governance.v1.ArtifactRef.kind']: { bytes: 64 },
  ['ameide.governance.v1.ArtifactRef.id']: ID,
  // Impediments (ameide.governance.v1)
  ['ameide.governance.v1.ListImpedimentsRequest.work_item_id']: ID,
  ['ameide.governance.v1.ListImpedimentsRequest.run_id']: ID,
  ['ameide.governance.v1.ListImpedimentsRequest.assignee']: ID,
  ['ameide.governance.v1.ListImpedimentsRequest.page_size']: PAGE_SIZE,
  ['ameide.governance.v1.ListImpedimentsRequest.page_token']: ID,
  ['ameide.governance.v1.GetImpedimentRequest.id']: ID,
  ['ameide.governance.v1.ResolveImpedimentRequest.id']: ID,
  ['ameide.governance.v1.ResolveImpedimentRequest.resolution']: { bytes: 4 * KiB },
  ['ameide.governance.v1.ReassignImpedimentRequest.id']: ID,
  ['ameide.governance.v1.ReassignImpedimentRequest.assignee']: ID,
  ['ameide.governance.v1.ReassignImpedimentRequest.note']: { bytes: 4 * KiB },
  // Notifications (ameide.governance.v1)
  ['ameide.governance.v1.ListNotificationsRequest.person']: ID,
  ['ameide.governance.v1.ListNotificationsRequest.page_size']: PAGE_SIZE,
  ['ameide.governance.v1.ListNotificationsRequest.page_token']: ID,
  ['ameide.governance.v1.MarkNotificationsReadRequest.person']: ID,
  ['ameide.governance.v1.MarkNotificationsReadRequest.ids']: { entries: 1000, bytes: 64 },
  ['ameide.governance.v1.WatchNotificationsRequest.person']: ID,
  ['ameide.governance.v1.PutSubscriptionRequest.person']: ID,
  ['ameide.governance.v1.PutSubscriptionRequest.channel']: { bytes: 64 },
  ['ameide.governance.v1.PutSubscriptionRequest.address']: { bytes: 4 * KiB },
  ['ameide.governance.v1.PutSubscriptionRequest.work_item_id']: ID,
  ['ameide.governance.v1.PutSubscriptionRequest.secret']: { bytes: 1 * KiB },
  ['ameide.governance.v1.ListSubscriptionsRequest.person']: ID,
  ['ameide.governance.v1.ListSubscriptionsRequest.work_item_id']: ID,
  ['ameide.governance.v1.ListSubscriptionsRequest.page_size']: PAGE_SIZE,
  ['ameide.governance.v1.ListSubscriptionsRequest.page_token']: ID,
  ['ameide.governance.v1.DeleteSubscriptionRequest.id']: ID,
  ['ameide.governance.v1.ListDeliveriesRequest.state']: { bytes: 64 },
  ['ameide.governance.v1.ListDeliveriesRequest.channel']: { bytes: 64 },
  ['ameide.governance.v1.ListDeliveriesRequest.run_id']: ID,
  ['ameide.governance.v1.ListDeliveriesRequest.page_size']: PAGE_SIZE,
  ['ameide.governance.v1.ListDeliveriesRequest.page_token']: ID,
};
