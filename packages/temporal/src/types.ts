/**
 * Plain types shared by the Temporal client (service) and the worker. Protobuf stops at the API edge:
 * these are what travels through Temporal history. They hold no secrets.
 */

export type PhaseName = 'prepare' | 'install' | 'agent' | 'test' | 'publish' | 'preview' | 'pull_request' | 'report';
/** Every phase in the order a run executes them. */
export const PHASES: readonly PhaseName[] = ['prepare', 'install', 'agent', 'test', 'publish', 'preview', 'pull_request', 'report'];

export type RunStatusName = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled' | 'handed_off';
export type PhaseStateName = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'cancelled';

export interface MethodologyContextInput {
  profile: string;
  timeboxIds: string[];
  goalIds: string[];
  workItemIds: string[];
  elementIds: string[];
}

export interface WorkItemInput {
  id: string;
  title: string;
  description: string;
  acceptanceCriteria: string[];
  contextLinks: string[];
}

import type { GuardrailSettings, SecretReference } from './guardrails.js';

export interface RepoSettings {
  repoUrl: string;
  defaultBranch: string;
  installCommand: string;
  agentCommand: string;
  testCommand: string;
  branchPrefix: string;
  phaseTimeoutSeconds: number;
  env: Record<string, string>;
  guardrails: GuardrailSettings;
  secrets: SecretReference[];
  /** The preview phase's settings, defaults filled in; absent: no preview. */
  preview?: PreviewSettings;
  /** Repo-relative globs of the JUnit XML reports the test command writes. */
  testReports?: string[];
  /**
   * The pull request phase's settings, defaults filled in (the git provider unless the definition
   * says otherwise). Absent in the input of runs started before pull requests existed: the git provider.
   */
  pullRequest?: PullRequestSettings;
  /** The coding agent the agent phase runs instead of `agentCommand`; absent: the command. */
  agent?: AgentSettings;
  /**
   * The model endpoint the agent phase may reach: with `network.agent` off, the only destination
   * (network mode `model`); with it on, one besides the allowlist. Absent: none.
   */
  modelEndpoint?: { host: string; port: number };
}

/** `spec.agent` with defaults filled in (see AgentSpec in workflows.proto). */
export interface AgentSettings {
  kind: 'codex' | 'claude-code' | 'langchain';
  model: string;
  endpoint: string;
  api: 'responses' | 'chat' | 'messages';
  /** The secret (by its name in `secrets`, so the variable the agent phase sees) holding the API key. */
  apiKeyEnv?: string;
  maxTurns: number;
  instructions?: string;
}

/** The default of AgentSpec.max_turns. */
export const DEFAULT_AGENT_MAX_TURNS = 50;

export interface PreviewSettings {
  provider: 'local' | 'command';
  command: string;
  aliasCommand: string;
  healthPath: string;
  readyTimeoutSeconds: number;
  ttlSeconds: number;
}

export interface PullRequestSettings {
  provider: 'git' | 'github' | 'gitlab' | 'none';
  draft: boolean;
  labels: string[];
  reviewers: string[];
  /** Empty: the definition's default branch. */
  baseBranch: string;
  /** The worker reads the token from AMEIDE_SECRET_<TENANT>__<tokenFromEnv>. */
  tokenFromEnv: string;
  apiUrl: string;
  /** Empty: derived from the repository URL. */
  repository: string;
}

export const DEFAULT_PULL_REQUEST: PullRequestSettings = {
  provider: 'git',
  draft: false,
  labels: [],
  reviewers: [],
  baseBranch: '',
  tokenFromEnv: '',
  apiUrl: '',
  repository: '',
};

/** Input of the `codingAgentRun` workflow. */
export interface CodingRunInput {
  runId: string;
  tenantId: string;
  planId: string;
  planVersion: number;
  definitionId: string;
  definitionName: string;
  repo: RepoSettings;
  workItems: WorkItemInput[];
  methodology: MethodologyContextInput;
  trigger: 'manual' | 'auto';
  /** A rerun an impediment handed back to the agent: the attempt before it, which its prompt names. */
  previousAttempt?: PreviousAttempt;
}

/** The run a rerun retries: why it stopped and where its handoff bundle is. */
export interface PreviousAttempt {
  runId: string;
  reason: string;
  /** The handoff bundle (`ameide runs handoff <runId>` restores its branch); empty when none was stored. */
  handoffUri: string;
  /** What the person who handed it back added, if anything. */
  note?: string;
}

export interface RunSummaryResult {
  branch: string;
  baseCommit: string;
  headCommit: string;
  filesChanged: number;
  insertions: number;
  deletions: number;
  testExitCode?: number;
  transcriptsUri: string;
  pushed: boolean;
  handoffUri?: string;
  handoffSha256?: string;
  sandbox?: string;
  budgetExceeded?: string;
  policyViolations?: string[];
  previewUrl?: string;
  previewAliasUrl?: string;
  pullRequest?: PullRequestRef;
  testReport?: TestReportResult;
  /** The files the run left in the artifact store, with the digests of their stored bytes (set by the report phase). */
  evidence?: EvidenceFileResult[];
  /** Who ran the run, and with which tools (set by the report phase). */
  provenance?: RunProvenanceResult;
  /** What the coding agent did (agent kinds only). */
  agent?: AgentRunResult;
  /** Where online phases went through the egress proxy. */
  egress?: EgressDestinationResult[];
}

export interface AgentRunResult {
  kind: string;
  model: string;
  endpoint: string;
  turns: number;
  toolCalls: number;
  inputTokens: number;
  outputTokens: number;
  calls: Array<{ model: string; inputTokens: number; outputTokens: number }>;
  transcriptUri: string;
  /** Why the worker stopped the agent, if it did. */
  stopped?: string;
  finalMessage?: string;
}

export interface EgressDestinationResult {
  phase: string;
  destination: string;
  allowed: boolean;
  count: number;
  reason?: string;
}

/** What an evidence file is: the service registers each as an evidence row of its kind. */
export type EvidenceKind = 'report' | 'transcript' | 'diff' | 'test_report' | 'pull_request' | 'preview_check' | 'handoff_bundle';

/** One file of a run's evidence, as stored: its digest and size are of the exact bytes in the artifact store. */
export interface EvidenceFileResult {
  kind: EvidenceKind;
  /** Its key below the run's artifact prefix (e.g. `transcripts/test.log`): unique per run. */
  name: string;
  uri: string;
  /** Hex SHA-256 of the stored bytes. */
  sha256: string;
  sizeBytes: number;
  mediaType: string;
}

/** What the worker says about how it ran a run. */
export interface RunProvenanceResult {
  /** The Temporal worker's identity. */
  workerIdentity: string;
  workerVersion: string;
  /** The Temporal run id of the run's workflow. */
  temporalRunId: string;
  /** e.g. `git`, `node`, `bubblewrap`, `agent_command` (redacted). */
  toolVersions: Record<string, string>;
}

/** What the test phase's JUnit reports or TAP output say. */
export interface TestReportResult {
  format: 'junit' | 'tap' | '';
  passed: number;
  failed: number;
  skipped: number;
  durationMs: number;
  failingTests: string[];
  sources: string[];
  /** Why the definition's report files could not be read. */
  error?: string;
}

export interface PullRequestRef {
  provider: PullRequestSettings['provider'];
  number: number;
  url: string;
  state: 'open' | 'draft' | 'closed' | 'merged';
}

/** One status update as the worker sends it; the service assigns nothing, sequence comes from the workflow. */
export interface StatusUpdateInput {
  runId: string;
  sequence: number;
  kind: 'run_started' | 'phase_started' | 'phase_finished' | 'run_finished' | 'preview_live' | 'pull_request_opened' | 'pull_request_updated';
  phase?: PhaseName;
  phaseState?: PhaseStateName;
  runStatus?: RunStatusName;
  exitCode?: number;
  durationMs?: number;
  outputTail?: string;
  message?: string;
  attributes?: Record<string, string>;
  summary?: RunSummaryResult;
  time: string;
}

/** What a command phase (install, agent, test) returns to the workflow. */
export interface CommandPhaseResult {
  exitCode: number;
  durationMs: number;
  outputTail: string;
  transcriptUri: string;
  timedOut: boolean;
  /** Output beyond the budget was cut from the transcript. */
  truncated: boolean;
  skipped: boolean;
  /** The wall-clock the command was given: the phase budget, or less when the run's budget was nearly spent. */
  timeoutMs?: number;
  /** The test phase: its reports (JUnit) or output (TAP), counted. */
  testReport?: TestReportResult;
  /** The agent phase with a coding agent: what it did. */
  agent?: AgentRunResult;
  /** Where the command went through the egress proxy (online phases). */
  egress?: EgressDestinationResult[];
}

/** What the prepare phase returns. */
export interface PreparedWorkspace {
  worktreePath: string;
  branch: string;
  baseCommit: string;
  promptFile: string;
  durationMs: number;
  outputTail: string;
}

/** What the publish phase returns. */
export interface PublishResult {
  /** The verified head of the run's work: what was pushed (or would have been). */
  headCommit: string;
  /** Changed paths the definition does not allow, as `path (reason)`; when set, nothing was pushed. */
  violations?: string[];
  filesChanged: number;
  insertions: number;
  deletions: number;
  pushed: boolean;
  durationMs: number;
  outputTail: string;
}

/** Final result of the workflow. */
export interface CodingRunResult {
  status: RunStatusName;
  failedPhase?: PhaseName;
  error?: string;
  summary?: RunSummaryResult;
}

/**
 * A change of the run's work item in the backlog (a new revision, e.g. its state went to
 * in_progress or done), signalled to the run's workflow so that its history shows it.
 */
export interface WorkItemChange {
  workItemId: string;
  revision: number;
  /** The item's state in that revision, e.g. `WORK_ITEM_STATE_IN_PROGRESS`. */
  state: string;
  /** The state before it. */
  previousState: string;
  time: string;
}

/** What the preview phase returns: the preview is live (or was deployed) at these URLs. */
export interface PreviewResult {
  provider: PreviewSettings['provider'];
  url: string;
  aliasUrl: string;
  /** The health check's outcome, e.g. `200 OK from /health after 1.2s`. */
  health: string;
  durationMs: number;
  outputTail: string;
  /** When a local preview is stopped, and the worker's task queue its stop must run on. */
  expireTime?: string;
  stopQueue?: string;
  /** How long a superseded local preview keeps running (the worker's setting). */
  graceSeconds?: number;
  /** Set when the preview never became healthy (or the deploy failed): why; nothing is left running. */
  failure?: string;
}

/** What the pull request phase returns. */
export interface PullRequestResult extends PullRequestRef {
  /** opened (or reopened) by this run, updated, or found merged and left alone. */
  action: 'opened' | 'reopened' | 'updated' | 'merged';
  title: string;
  durationMs: number;
}

/** Input of the `runPreview` workflow that keeps a run's local preview until its TTL (or a newer preview of its work item) ends it. */
export interface PreviewWorkflowInput {
  runId: string;
  tenantId: string;
  /** Task queue of the worker that holds the preview's process. */
  stopQueue: string;
  expireTime: string;
  /** How long a preview superseded by a newer one of its work item keeps running. */
  graceSeconds: number;
}
