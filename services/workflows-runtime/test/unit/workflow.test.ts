/**
 * The workflows themselves (codingAgentRun, runPreview) on Temporal's time-skipping test server,
 * with stub activities: what the service would receive as status updates, and how a run ends.
 * Timers are instant; the only real waiting is for activity cancellation to reach a stub.
 */
import { fileURLToPath } from 'node:url';
import { setTimeout as sleepMs } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Context } from '@temporalio/activity';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure, defaultPayloadConverter } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, makeTelemetryFilterString, Runtime, Worker } from '@temporalio/worker';
import {
  CODING_AGENT_RUN_WORKFLOW,
  DEFAULT_PULL_REQUEST,
  PREVIEW_LOST_SIGNAL,
  PREVIEW_SUPERSEDED_SIGNAL,
  previewWorkflowId,
  resolveGuardrails,
  RUN_PREVIEW_WORKFLOW,
  SEARCH_ATTRIBUTE_REGISTRATIONS,
  workflowIdForRun,
  type CodingRunInput,
  type CodingRunResult,
  type EvidenceFileResult,
  type GuardrailSettings,
  type PhaseName,
  type PreviewSettings,
  type PreviewWorkflowInput,
  type RepoSettings,
  type StatusUpdateInput,
} from '@ameide/temporal';
import type { Activities } from '../../src/activities/index.js';
import { timeSkippingServerPath } from './test-server.js';

const workflowsPath = fileURLToPath(new URL('../../src/workflows.ts', import.meta.url));
const QUEUE = 'workflow-unit';
const STOP_QUEUE = 'workflow-unit-preview-stop';
const MINUTE = 60_000;
/** A superseded preview's grace period. */
const GRACE_S = 120;

// ---------------------------------------------------------------------------------------------
// Stub activities: every call is recorded; each test may replace any of them (`stub({...})`).
// ---------------------------------------------------------------------------------------------

const STUBBED = [
  'recordStatus',
  'recordStatuses',
  'prepareWorkspace',
  'runCommandPhase',
  'publishBranch',
  'createHandoff',
  'writeEvidence',
  'writeReport',
  'openPullRequest',
  'markPreviewStopped',
  'startPreview',
  'stopPreview',
] as const;
type Stubbed = Pick<Activities, (typeof STUBBED)[number]>;
type StubName = keyof Stubbed;
type InputOf<K extends StubName> = Parameters<Stubbed[K]>[0];

interface Call {
  name: StubName;
  input: unknown;
  /** The run the call belongs to (from its input). */
  runId: string;
  attempt: number;
  /** When the attempt ran: the test server's clock, which time skipping moves. */
  atMs: number;
  taskQueue: string;
}

const calls: Call[] = [];
/** Status updates the service accepted, in the order it got them. */
const delivered: StatusUpdateInput[] = [];
let overrides: Partial<Stubbed> = {};

/** What the evidence stub says of who ran a run. */
const provenanceOf = (runId: string) => ({
  workerIdentity: '4242@worker-1',
  workerVersion: '0.1.0',
  temporalRunId: `temporal-${runId}`,
  toolVersions: { git: '2.43.0', node: 'v22.0.0', agent_command: 'codex exec "$(cat $AMEIDE_PROMPT)"' },
});

/** An evidence entry as the stubs list it. */
const evidenceEntry = (runId: string, kind: EvidenceFileResult['kind'], name: string, mediaType: string, sizeBytes = 100): EvidenceFileResult => ({
  kind,
  name,
  uri: `s3://artifacts/runs/acme/${runId}/${name}`,
  sha256: kind.length.toString(16).repeat(64),
  sizeBytes,
  mediaType,
});

const runIdOf = (input: unknown): string => {
  if (Array.isArray(input)) return runIdOf(input[0]);
  const i = input as { runId?: string; run?: { runId: string } };
  return i.runId ?? i.run?.runId ?? '';
};

const defaults: Stubbed = {
  /** One update, as the service takes it: once per run and sequence. Tests replace it to make the service fail. */
  async recordStatus(update) {
    if (!delivered.some((u) => u.runId === update.runId && u.sequence === update.sequence)) delivered.push(update);
  },
  /** A batch, as the worker's activity sends it: one update after another, each through `recordStatus`. */
  async recordStatuses(updates) {
    const one = overrides.recordStatus ?? defaults.recordStatus;
    const refused: Array<{ sequence: number; message: string }> = [];
    for (const u of updates) {
      try {
        await one(u);
      } catch (err) {
        if (!(err instanceof ApplicationFailure) || !err.nonRetryable) throw err;
        refused.push({ sequence: u.sequence, message: err.message });
      }
    }
    return { refused };
  },
  async prepareWorkspace(run) {
    return {
      worktreePath: `runs/${run.runId}/worktree`,
      branch: 'ameide/calc-1',
      baseCommit: 'a'.repeat(40),
      promptFile: `runs/${run.runId}/prompt.md`,
      durationMs: 120,
      outputTail: 'worktree on ameide/calc-1',
    };
  },
  async runCommandPhase(input) {
    return { exitCode: 0, durationMs: 50, outputTail: `${input.phase} ok`, transcriptUri: '', timedOut: false, truncated: false, skipped: false };
  },
  async publishBranch() {
    return { headCommit: 'b'.repeat(40), filesChanged: 2, insertions: 10, deletions: 1, pushed: true, durationMs: 80, outputTail: 'pushed ameide/calc-1' };
  },
  async createHandoff(input) {
    return { uri: `s3://artifacts/runs/acme/${input.run.runId}/handoff.tar.gz`, sha256: 'f'.repeat(64), size: 4096 };
  },
  async writeEvidence(input) {
    const { runId } = input.run;
    const s = input.summary;
    const evidence = [
      ...input.phases
        .filter((p) => ['install', 'agent', 'test', 'preview'].includes(p))
        .map((p) => evidenceEntry(runId, 'transcript', `transcripts/${p}.log`, 'text/plain')),
      ...(s.pushed ? [evidenceEntry(runId, 'diff', 'diff.patch', 'text/x-diff')] : []),
      ...(s.pullRequest ? [evidenceEntry(runId, 'pull_request', 'pull-request.json', 'application/json')] : []),
      ...(s.previewUrl ? [evidenceEntry(runId, 'preview_check', 'preview-check.json', 'application/json')] : []),
      ...(s.handoffUri
        ? [
            {
              kind: 'handoff_bundle' as const,
              name: 'handoff.tar.gz',
              uri: s.handoffUri,
              sha256: s.handoffSha256 ?? '',
              sizeBytes: input.handoffSizeBytes ?? -1,
              mediaType: 'application/gzip',
            },
          ]
        : []),
    ];
    return { evidence, provenance: provenanceOf(runId) };
  },
  async writeReport(input) {
    return {
      transcriptsUri: `s3://artifacts/runs/acme/${input.run.runId}/transcripts/`,
      reportUri: `s3://artifacts/runs/acme/${input.run.runId}/report.json`,
      evidence: evidenceEntry(input.run.runId, 'report', 'report.json', 'application/json', 512),
    };
  },
  async openPullRequest() {
    return {
      provider: 'github',
      number: 7,
      url: 'https://github.example/acme/calc/pull/7',
      state: 'open',
      action: 'opened',
      title: 'CALC-1: Add multiply',
      durationMs: 30,
    };
  },
  async markPreviewStopped() {},
  async startPreview(input) {
    return {
      provider: 'local',
      url: `https://${input.run.runId}.preview.example`,
      aliasUrl: 'https://calc-1.preview.example',
      health: '200 OK from /health after 1.2s',
      durationMs: 1500,
      outputTail: 'listening on 3000',
    };
  },
  async stopPreview() {},
};

function recorded<K extends StubName>(name: K): Stubbed[K] {
  const fn = async (input: InputOf<K>) => {
    const info = Context.current().info;
    const call: Call = { name, input, runId: runIdOf(input), attempt: info.attempt, atMs: 0, taskQueue: info.taskQueue };
    calls.push(call);
    call.atMs = await env.currentTimeMs();
    const impl = (overrides[name] ?? defaults[name]) as (i: InputOf<K>) => Promise<unknown>;
    return impl(input);
  };
  return fn as unknown as Stubbed[K];
}

function stub(o: Partial<Stubbed>): void {
  overrides = { ...overrides, ...o };
}

/** The calls of one activity for one run. */
function callsOf<K extends StubName>(runId: string, name: K): Array<Call & { input: InputOf<K> }> {
  return calls.filter((c) => c.runId === runId && c.name === name) as Array<Call & { input: InputOf<K> }>;
}

/** A gate a stub waits at: `entered` resolves once the stub is waiting. */
function gate() {
  let enter!: () => void;
  const entered = new Promise<void>((r) => (enter = r));
  return { entered, enter };
}

/** A stub body that heartbeats until its activity is cancelled (cancellation reaches an activity with a heartbeat's answer). */
async function untilCancelled(enter: () => void): Promise<never> {
  const ctx = Context.current();
  ctx.heartbeat();
  const beat = setInterval(() => ctx.heartbeat(), 20);
  enter();
  try {
    return await ctx.cancelled;
  } finally {
    clearInterval(beat);
  }
}

// ---------------------------------------------------------------------------------------------
// Runs: input fixture, and what the service saw.
// ---------------------------------------------------------------------------------------------

let runCounter = 0;

interface RunOptions {
  repo?: Partial<RepoSettings>;
  budgets?: Partial<GuardrailSettings['budgets']>;
}

function runInput(o: RunOptions = {}): CodingRunInput {
  const runId = `run-${++runCounter}`;
  return {
    runId,
    tenantId: 'acme',
    planId: 'plan-0001',
    planVersion: 1,
    definitionId: 'def-calc',
    definitionName: 'calculator',
    repo: {
      repoUrl: 'https://git.example/acme/calc.git',
      defaultBranch: 'main',
      installCommand: 'pnpm install',
      agentCommand: 'codex exec "$(cat $AMEIDE_PROMPT)"',
      testCommand: 'pnpm test',
      branchPrefix: 'ameide/',
      phaseTimeoutSeconds: 600,
      env: {},
      guardrails: resolveGuardrails({ budgets: o.budgets }),
      secrets: [],
      pullRequest: DEFAULT_PULL_REQUEST,
      ...o.repo,
    },
    workItems: [{ id: 'CALC-1', title: 'Add multiply', description: 'Users need it.', acceptanceCriteria: ['multiply(6,7)=42'], contextLinks: [] }],
    methodology: { profile: 'scrum', timeboxIds: ['s1'], goalIds: ['g1'], workItemIds: ['CALC-1'], elementIds: [] },
    trigger: 'manual',
  };
}

const LOCAL_PREVIEW: PreviewSettings = {
  provider: 'local',
  command: 'pnpm start',
  aliasCommand: '',
  healthPath: '/health',
  readyTimeoutSeconds: 60,
  ttlSeconds: 3600,
};

function startRun(input: CodingRunInput): Promise<WorkflowHandle> {
  return env.client.workflow.start(CODING_AGENT_RUN_WORKFLOW, { taskQueue: QUEUE, workflowId: workflowIdForRun(input.runId), args: [input] });
}

type Outcome = { result: CodingRunResult; failure?: undefined } | { result?: undefined; failure: WorkflowFailedError };

/** Waits for the run's end (time skips meanwhile): its result, or the failure it ended with. */
async function outcomeOf(handle: WorkflowHandle): Promise<Outcome> {
  try {
    return { result: (await handle.result()) as CodingRunResult };
  } catch (err) {
    if (err instanceof WorkflowFailedError) return { failure: err };
    throw err;
  }
}

async function run(input: CodingRunInput): Promise<Outcome> {
  return outcomeOf(await startRun(input));
}

/** The run's accepted status updates, checked to be numbered 1..n without gaps. */
function updatesOf(runId: string): StatusUpdateInput[] {
  const us = delivered.filter((u) => u.runId === runId);
  expect(us.map((u) => u.sequence)).toEqual(us.map((_, i) => i + 1));
  return us;
}

/** One line per update: `kind phase state`, as the service would list them. */
function timeline(runId: string): string[] {
  return updatesOf(runId).map((u) => [u.kind, u.phase, u.phaseState ?? u.runStatus].filter(Boolean).join(' '));
}

function phaseFinished(runId: string, phase: PhaseName): StatusUpdateInput {
  const u = updatesOf(runId).find((x) => x.kind === 'phase_finished' && x.phase === phase);
  if (!u) throw new Error(`no phase_finished update for ${phase}`);
  return u;
}

function runFinished(runId: string): StatusUpdateInput {
  const u = updatesOf(runId).find((x) => x.kind === 'run_finished');
  if (!u) throw new Error('no run_finished update');
  return u;
}

/** The RunFailed failure the workflow ends with: its message and details. */
function runFailure(o: Outcome): { message: string; status: string; failedPhase: string } {
  expect(o.failure).toBeInstanceOf(WorkflowFailedError);
  const cause = o.failure!.cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  const f = cause as ApplicationFailure;
  expect(f.type).toBe('RunFailed');
  const d = f.details?.[0] as { status: string; failedPhase: string };
  return { message: f.message, status: d.status, failedPhase: d.failedPhase };
}

const HAPPY = [
  'run_started running',
  'phase_started prepare running',
  'phase_finished prepare succeeded',
  'phase_started install running',
  'phase_finished install succeeded',
  'phase_started agent running',
  'phase_finished agent succeeded',
  'phase_started test running',
  'phase_finished test succeeded',
  'phase_started publish running',
  'phase_finished publish succeeded',
];

// ---------------------------------------------------------------------------------------------
// One time-skipping server, one workflow bundle, two workers (the run's queue, a preview stop queue).
// ---------------------------------------------------------------------------------------------

let env: TestWorkflowEnvironment;
let workers: Worker[] = [];
let running: Promise<unknown>;

const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };

beforeAll(async () => {
  try {
    Runtime.install({ logger: quiet, telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'ERROR' }) } } });
  } catch {
    /* installed already in this process */
  }
  const [e, bundle] = await Promise.all([
    TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path: timeSkippingServerPath() } } }),
    bundleWorkflowCode({ workflowsPath, logger: quiet }),
  ]);
  env = e;
  // The run keeps its search attributes current: the server must know them (IndexedValueType numbers).
  const INDEXED = { Text: 1, Keyword: 2, KeywordList: 7 } as const;
  await env.connection.operatorService.addSearchAttributes({
    namespace: 'default',
    searchAttributes: Object.fromEntries(SEARCH_ATTRIBUTE_REGISTRATIONS.map(([name, type]) => [name, INDEXED[type]])),
  });
  const activities = Object.fromEntries(STUBBED.map((name) => [name, recorded(name)]));
  // Cancellation reaches an activity with a heartbeat's answer: heartbeats go out at once.
  const heartbeats = { maxHeartbeatThrottleInterval: '20ms', defaultHeartbeatThrottleInterval: '20ms' } as const;
  workers = [
    await Worker.create({ connection: env.nativeConnection, taskQueue: QUEUE, workflowBundle: bundle, activities, ...heartbeats, shutdownGraceTime: '1s' }),
    await Worker.create({
      connection: env.nativeConnection,
      taskQueue: STOP_QUEUE,
      activities: { stopPreview: recorded('stopPreview') },
      ...heartbeats,
      shutdownGraceTime: '1s',
    }),
  ];
  running = Promise.all(workers.map((w) => w.run()));
}, 60_000);

afterEach(() => {
  overrides = {};
});

afterAll(async () => {
  for (const w of workers) w.shutdown();
  await running;
  await env?.teardown();
}, 30_000);

// ---------------------------------------------------------------------------------------------

describe('codingAgentRun: the phases', { timeout: 15_000 }, () => {
  it('walks prepare, install, agent, test, publish, pull_request and report, and completes', async () => {
    const input = runInput();
    const o = await run(input);
    expect(o.result?.status).toBe('completed');
    expect(timeline(input.runId)).toEqual([
      ...HAPPY,
      'phase_started pull_request running',
      'pull_request_opened pull_request',
      'phase_finished pull_request succeeded',
      'phase_started report running',
      'phase_finished report succeeded',
      'run_finished completed',
    ]);
    const end = runFinished(input.runId);
    expect(end.message).toBeUndefined();
    expect(end.summary).toMatchObject({
      branch: 'ameide/calc-1',
      headCommit: 'b'.repeat(40),
      pushed: true,
      testExitCode: 0,
      transcriptsUri: `s3://artifacts/runs/acme/${input.runId}/transcripts/`,
      pullRequest: { provider: 'github', number: 7, state: 'open' },
    });
    expect(phaseFinished(input.runId, 'report').outputTail).toBe(`report at s3://artifacts/runs/acme/${input.runId}/report.json`);
    expect(callsOf(input.runId, 'runCommandPhase').map((c) => [c.input.phase, c.input.command])).toEqual([
      ['install', 'pnpm install'],
      ['agent', input.repo.agentCommand],
      ['test', 'pnpm test'],
    ]);
    expect(callsOf(input.runId, 'createHandoff')).toHaveLength(0);
    const [report] = callsOf(input.runId, 'writeReport');
    expect(report!.input.removeWorktree).toBe(true);
    expect(report!.input.report).toMatchObject({ status: 'completed' });
  });

  it('adds the preview between publish and pull_request, and tells where it is live', async () => {
    const input = runInput({ repo: { preview: LOCAL_PREVIEW } });
    const o = await run(input);
    expect(o.result?.status).toBe('completed');
    expect(timeline(input.runId)).toEqual([
      ...HAPPY,
      'phase_started preview running',
      'preview_live preview',
      'phase_finished preview succeeded',
      'phase_started pull_request running',
      'pull_request_opened pull_request',
      'phase_finished pull_request succeeded',
      'phase_started report running',
      'phase_finished report succeeded',
      'run_finished completed',
    ]);
    const live = updatesOf(input.runId).find((u) => u.kind === 'preview_live')!;
    expect(live.message).toBe(`preview live at https://${input.runId}.preview.example`);
    expect(live.attributes).toMatchObject({ url: `https://${input.runId}.preview.example`, alias_url: 'https://calc-1.preview.example' });
    expect(callsOf(input.runId, 'startPreview')[0]!.input.headCommit).toBe('b'.repeat(40));
    expect(o.result?.summary).toMatchObject({ previewUrl: `https://${input.runId}.preview.example`, previewAliasUrl: 'https://calc-1.preview.example' });
  });

  it('says pull_request_updated when the branch has its pull request already', async () => {
    stub({
      openPullRequest: async () => ({
        provider: 'gitlab',
        number: 3,
        url: 'https://gl.example/mr/3',
        state: 'open',
        action: 'updated',
        title: 't',
        durationMs: 1,
      }),
    });
    const input = runInput();
    await run(input);
    const kinds = updatesOf(input.runId).map((u) => u.kind);
    expect(kinds).toContain('pull_request_updated');
    expect(kinds).not.toContain('pull_request_opened');
    const u = updatesOf(input.runId).find((x) => x.kind === 'pull_request_updated')!;
    expect(u.message).toBe('pull request #3 updated');
    expect(u.attributes).toMatchObject({ provider: 'gitlab', number: '3', action: 'updated' });
  });

  it('reports a merged pull request without reopening it: no pull request update, the phase says why', async () => {
    stub({
      openPullRequest: async () => ({
        provider: 'github',
        number: 9,
        url: 'https://gh.example/pull/9',
        state: 'merged',
        action: 'merged',
        title: 't',
        durationMs: 1,
      }),
    });
    const input = runInput();
    const o = await run(input);
    expect(o.result?.status).toBe('completed');
    const kinds = updatesOf(input.runId).map((u) => u.kind);
    expect(kinds.filter((k) => k.startsWith('pull_request'))).toEqual([]);
    expect(phaseFinished(input.runId, 'pull_request')).toMatchObject({
      phaseState: 'succeeded',
      outputTail: 'pull request #9 https://gh.example/pull/9 is merged already: not reopened',
    });
    expect(o.result?.summary?.pullRequest).toEqual({ provider: 'github', number: 9, url: 'https://gh.example/pull/9', state: 'merged' });
  });

  it('has no pull_request phase when the definition says provider none', async () => {
    const input = runInput({ repo: { pullRequest: { ...DEFAULT_PULL_REQUEST, provider: 'none' } } });
    const o = await run(input);
    expect(o.result?.status).toBe('completed');
    expect(timeline(input.runId)).toEqual([...HAPPY, 'phase_started report running', 'phase_finished report succeeded', 'run_finished completed']);
    expect(callsOf(input.runId, 'openPullRequest')).toHaveLength(0);
  });

  it('skips install without starting it when the definition has no install command', async () => {
    const input = runInput({ repo: { installCommand: '  ' } });
    const o = await run(input);
    expect(o.result?.status).toBe('completed');
    const lines = timeline(input.runId);
    expect(lines.slice(0, 5)).toEqual([
      'run_started running',
      'phase_started prepare running',
      'phase_finished prepare succeeded',
      'phase_finished install skipped',
      'phase_started agent running',
    ]);
    expect(lines).not.toContain('phase_started install running');
    expect(phaseFinished(input.runId, 'install').message).toBe('no install command in the definition');
    expect(callsOf(input.runId, 'runCommandPhase').map((c) => c.input.phase)).toEqual(['agent', 'test']);
  });
});

describe('codingAgentRun: failures', { timeout: 15_000 }, () => {
  it('a failing test command fails the test phase, hands off, and publishes nothing', async () => {
    stub({
      runCommandPhase: async (i) => ({
        exitCode: i.phase === 'test' ? 3 : 0,
        durationMs: 5,
        outputTail: i.phase === 'test' ? '1 failing: multiply' : 'ok',
        transcriptUri: '',
        timedOut: false,
        truncated: false,
        skipped: false,
      }),
    });
    const input = runInput();
    const o = await run(input);
    expect(runFailure(o)).toEqual({ message: 'test phase failed: test command failed with exit code 3', status: 'handed_off', failedPhase: 'test' });
    const test = phaseFinished(input.runId, 'test');
    expect(test).toMatchObject({ phaseState: 'failed', exitCode: 3, message: 'test command failed with exit code 3', outputTail: '1 failing: multiply' });
    expect(timeline(input.runId).slice(-4)).toEqual([
      'phase_finished test failed',
      'phase_started report running',
      'phase_finished report succeeded',
      'run_finished test handed_off',
    ]);
    expect(callsOf(input.runId, 'publishBranch')).toHaveLength(0);
    const [handoff] = callsOf(input.runId, 'createHandoff');
    expect(handoff!.input).toMatchObject({ failedPhase: 'test', reason: 'test command failed with exit code 3', lastOutput: '1 failing: multiply' });
    const end = runFinished(input.runId);
    expect(end).toMatchObject({ runStatus: 'handed_off', phase: 'test', message: 'test phase failed: test command failed with exit code 3' });
    expect(end.summary).toMatchObject({ testExitCode: 3, handoffUri: `s3://artifacts/runs/acme/${input.runId}/handoff.tar.gz`, pushed: false });
    expect(phaseFinished(input.runId, 'report').outputTail).toContain(`handoff bundle at s3://artifacts/runs/acme/${input.runId}/handoff.tar.gz`);
  });

  const timedOut = async (i: InputOf<'runCommandPhase'>) => ({
    exitCode: i.phase === 'agent' ? 124 : 0,
    durationMs: i.timeoutMs,
    outputTail: '',
    transcriptUri: '',
    timedOut: i.phase === 'agent',
    truncated: false,
    skipped: false,
  });

  it('a command that runs out of its phase budget is a phase_timeout', async () => {
    stub({ runCommandPhase: timedOut });
    const input = runInput();
    const o = await run(input);
    expect(runFailure(o).message).toBe('agent phase failed: agent command exceeded the 600s phase budget');
    expect(phaseFinished(input.runId, 'agent').message).toBe('agent command exceeded the 600s phase budget');
    expect(runFinished(input.runId).summary?.budgetExceeded).toBe('phase_timeout');
  });

  it('a command stopped because the run budget ran out is a run_timeout', async () => {
    stub({ runCommandPhase: timedOut });
    const input = runInput({ budgets: { runTimeoutSeconds: 300 } });
    const o = await run(input);
    expect(runFailure(o).message).toBe("agent phase failed: agent command stopped: the run's 300s budget ran out");
    expect(runFinished(input.runId).summary?.budgetExceeded).toBe('run_timeout');
    // The command was given what was left of the run's 300 s, not the 600 s phase budget.
    const agent = callsOf(input.runId, 'runCommandPhase').find((c) => c.input.phase === 'agent')!;
    expect(agent.input.timeoutMs).toBeLessThanOrEqual(300_000);
  });

  it('a max_commands budget of 2 fails the third command phase before it runs', async () => {
    const input = runInput({ budgets: { maxCommands: 2 } });
    const o = await run(input);
    const message = "the run's budget of 2 commands is used up";
    expect(runFailure(o)).toEqual({ message: `test phase failed: ${message}`, status: 'handed_off', failedPhase: 'test' });
    expect(phaseFinished(input.runId, 'test')).toMatchObject({ phaseState: 'failed', message });
    expect(timeline(input.runId)).not.toContain('phase_started test running');
    expect(callsOf(input.runId, 'runCommandPhase').map((c) => c.input.phase)).toEqual(['install', 'agent']);
    expect(runFinished(input.runId).summary?.budgetExceeded).toBe('max_commands');
  });

  it('a change with policy violations fails publish and is handed off', async () => {
    stub({
      publishBranch: async () => ({
        headCommit: 'c'.repeat(40),
        violations: ['.github/workflows/ci.yml (denied)'],
        filesChanged: 1,
        insertions: 1,
        deletions: 0,
        pushed: false,
        durationMs: 5,
        outputTail: '',
      }),
    });
    const input = runInput();
    const o = await run(input);
    const message = 'policy violation: the change touches paths the definition does not allow: .github/workflows/ci.yml (denied)';
    expect(runFailure(o)).toEqual({ message: `publish phase failed: ${message}`, status: 'handed_off', failedPhase: 'publish' });
    expect(phaseFinished(input.runId, 'publish')).toMatchObject({ phaseState: 'failed', message });
    expect(runFinished(input.runId).summary).toMatchObject({ policyViolations: ['.github/workflows/ci.yml (denied)'], pushed: false });
    expect(callsOf(input.runId, 'openPullRequest')).toHaveLength(0);
  });

  it('an activity failing for good (a forge answering 422) fails its phase with that message, and hands off', async () => {
    const forge = 'GitHub answered 422 Unprocessable Entity: A pull request already exists for acme:ameide/calc-1';
    stub({
      openPullRequest: async () => {
        throw ApplicationFailure.nonRetryable(forge, 'ForgeRejected');
      },
    });
    const input = runInput();
    const o = await run(input);
    expect(runFailure(o)).toEqual({ message: `pull_request phase failed: ${forge}`, status: 'handed_off', failedPhase: 'pull_request' });
    expect(callsOf(input.runId, 'openPullRequest')).toHaveLength(1);
    expect(timeline(input.runId).slice(-5)).toEqual([
      'phase_started pull_request running',
      'phase_finished pull_request failed',
      'phase_started report running',
      'phase_finished report succeeded',
      'run_finished pull_request handed_off',
    ]);
    expect(phaseFinished(input.runId, 'pull_request').message).toBe(forge);
    expect(callsOf(input.runId, 'createHandoff')[0]!.input).toMatchObject({ failedPhase: 'pull_request', reason: forge });
  });

  it('a preview that never became healthy fails the preview phase with its output', async () => {
    stub({
      startPreview: async () => ({
        provider: 'local',
        url: '',
        aliasUrl: '',
        health: '',
        durationMs: 60_000,
        outputTail: 'Error: listen EADDRINUSE :3000',
        failure: 'no answer from /health within 60s',
      }),
    });
    const input = runInput({ repo: { preview: LOCAL_PREVIEW } });
    const o = await run(input);
    expect(runFailure(o)).toEqual({
      message: 'preview phase failed: preview failed: no answer from /health within 60s',
      status: 'handed_off',
      failedPhase: 'preview',
    });
    expect(phaseFinished(input.runId, 'preview')).toMatchObject({
      phaseState: 'failed',
      message: 'preview failed: no answer from /health within 60s',
      outputTail: 'Error: listen EADDRINUSE :3000',
    });
    expect(updatesOf(input.runId).map((u) => u.kind)).not.toContain('preview_live');
    expect(callsOf(input.runId, 'openPullRequest')).toHaveLength(0);
    expect(callsOf(input.runId, 'createHandoff')[0]!.input.lastOutput).toBe('Error: listen EADDRINUSE :3000');
  });

  it('a handoff that fails leaves the run failed, and the report says why there is no bundle', async () => {
    stub({
      runCommandPhase: async (i) => ({
        exitCode: i.phase === 'test' ? 1 : 0,
        durationMs: 5,
        outputTail: '',
        transcriptUri: '',
        timedOut: false,
        truncated: false,
        skipped: false,
      }),
      createHandoff: async () => {
        throw new Error('artifact store unavailable');
      },
    });
    const input = runInput();
    const o = await run(input);
    expect(runFailure(o)).toEqual({ message: 'test phase failed: test command failed with exit code 1', status: 'failed', failedPhase: 'test' });
    expect(callsOf(input.runId, 'createHandoff')).toHaveLength(3);
    expect(phaseFinished(input.runId, 'report')).toMatchObject({ phaseState: 'succeeded' });
    expect(phaseFinished(input.runId, 'report').outputTail).toContain('no handoff bundle: artifact store unavailable');
    expect(runFinished(input.runId)).toMatchObject({ runStatus: 'failed' });
    expect(runFinished(input.runId).summary?.handoffUri).toBeUndefined();
    // Without a bundle, the workspace is kept for a person.
    expect(callsOf(input.runId, 'writeReport')[0]!.input.removeWorktree).toBe(false);
  });

  it('the report lists a phase that failed with an error, as the status updates do', async () => {
    stub({
      openPullRequest: async () => {
        throw ApplicationFailure.nonRetryable('GitHub answered 422', 'ForgeRejected');
      },
    });
    const input = runInput();
    await run(input);
    const report = callsOf(input.runId, 'writeReport')[0]!.input.report as { phases: Array<{ phase: string; state: string }> };
    expect(report.phases.map((p) => `${p.phase} ${p.state}`)).toContain('pull_request failed');
  });
});

describe('codingAgentRun: cancellation', { timeout: 15_000 }, () => {
  const cases: Array<{ phase: PhaseName; wait: (enter: () => void) => Partial<Stubbed>; repo?: Partial<RepoSettings> }> = [
    { phase: 'prepare', wait: (enter) => ({ prepareWorkspace: () => untilCancelled(enter) }) },
    ...(['install', 'agent', 'test'] as const).map((phase) => ({
      phase,
      wait: (enter: () => void): Partial<Stubbed> => ({
        runCommandPhase: (i) => (i.phase === phase ? untilCancelled(enter) : defaults.runCommandPhase(i)),
      }),
    })),
    { phase: 'publish', wait: (enter) => ({ publishBranch: () => untilCancelled(enter) }) },
    { phase: 'preview', wait: (enter) => ({ startPreview: () => untilCancelled(enter) }), repo: { preview: LOCAL_PREVIEW } },
    { phase: 'pull_request', wait: (enter) => ({ openPullRequest: () => untilCancelled(enter) }) },
  ];

  it.each(cases)('cancelled during $phase: the phase is cancelled, the service learns it, the work is handed off', async ({ phase, wait, repo }) => {
    const g = gate();
    stub(wait(g.enter));
    const input = runInput({ repo });
    const handle = await startRun(input);
    await g.entered;
    await handle.cancel();
    const o = await outcomeOf(handle);
    expect(o.failure?.cause).toBeInstanceOf(CancelledFailure);

    const lines = timeline(input.runId);
    expect(lines.slice(-3)).toEqual([`phase_started ${phase} running`, `phase_finished ${phase} cancelled`, `run_finished ${phase} cancelled`]);
    expect(phaseFinished(input.runId, phase).message).toBe('run cancelled');
    expect(runFinished(input.runId)).toMatchObject({ runStatus: 'cancelled', phase, message: `cancelled during ${phase}` });
    // Prepare made no workspace: nothing to hand off. After it, the work so far is bundled.
    const handoffs = callsOf(input.runId, 'createHandoff');
    if (phase === 'prepare') expect(handoffs).toHaveLength(0);
    else expect(handoffs.map((c) => c.input)).toEqual([expect.objectContaining({ failedPhase: phase, reason: 'the run was cancelled' })]);
    const [report] = callsOf(input.runId, 'writeReport');
    expect(report!.input.report).toMatchObject({ status: 'cancelled', failure: { phase, message: 'run cancelled' } });
    expect(runFinished(input.runId).summary?.transcriptsUri).toBe(`s3://artifacts/runs/acme/${input.runId}/transcripts/`);
  });
});

describe('codingAgentRun: evidence and provenance', { timeout: 15_000 }, () => {
  const order = (runId: string) =>
    calls.filter((c) => c.runId === runId && ['writeEvidence', 'writeReport', 'createHandoff'].includes(c.name)).map((c) => c.name);

  it('a completed run: run_finished lists the report, then the evidence the activity stored, with the provenance', async () => {
    const input = runInput();
    const o = await run(input);
    expect(o.result?.status).toBe('completed');
    // Evidence first (its diff needs the import repository that the report's clean-up removes), then the report.
    expect(order(input.runId)).toEqual(['writeEvidence', 'writeReport']);
    const [ev] = callsOf(input.runId, 'writeEvidence');
    expect(ev!.input.phases).toEqual(['prepare', 'install', 'agent', 'test', 'publish', 'pull_request']);
    expect(ev!.input.summary).toMatchObject({ pushed: true, headCommit: 'b'.repeat(40), pullRequest: { number: 7 } });
    const id = input.runId;
    const end = runFinished(id);
    expect(end.summary?.evidence).toEqual([
      evidenceEntry(id, 'report', 'report.json', 'application/json', 512),
      evidenceEntry(id, 'transcript', 'transcripts/install.log', 'text/plain'),
      evidenceEntry(id, 'transcript', 'transcripts/agent.log', 'text/plain'),
      evidenceEntry(id, 'transcript', 'transcripts/test.log', 'text/plain'),
      evidenceEntry(id, 'diff', 'diff.patch', 'text/x-diff'),
      evidenceEntry(id, 'pull_request', 'pull-request.json', 'application/json'),
    ]);
    expect(end.summary?.provenance).toEqual(provenanceOf(id));
    expect(o.result?.summary?.provenance).toEqual(provenanceOf(id));
    // The report carries the rest of the evidence and the provenance (it cannot carry its own digest).
    const [report] = callsOf(id, 'writeReport');
    const reported = (report!.input.report as { summary: { evidence: EvidenceFileResult[]; provenance: unknown } }).summary;
    expect(reported.evidence.map((e) => e.name)).toEqual([
      'transcripts/install.log',
      'transcripts/agent.log',
      'transcripts/test.log',
      'diff.patch',
      'pull-request.json',
    ]);
    expect(reported.provenance).toEqual(provenanceOf(id));
  });

  it('a run with a preview: the preview check gets what preview_live said of its health', async () => {
    const input = runInput({ repo: { preview: LOCAL_PREVIEW } });
    await run(input);
    const [ev] = callsOf(input.runId, 'writeEvidence');
    expect(ev!.input.previewLive).toMatchObject({ url: `https://${input.runId}.preview.example`, health: '200 OK from /health after 1.2s' });
    expect(runFinished(input.runId).summary?.evidence?.map((e) => e.kind)).toEqual([
      'report',
      'transcript',
      'transcript',
      'transcript',
      'transcript',
      'diff',
      'pull_request',
      'preview_check',
    ]);
    expect(ev!.input.phases).toContain('preview');
  });

  it('a run handed off: the handoff bundle is listed with the size createHandoff returned, nothing was pushed so no diff', async () => {
    stub({ runCommandPhase: async (i) => ({ ...(await defaults.runCommandPhase(i)), exitCode: i.phase === 'test' ? 1 : 0 }) });
    const input = runInput();
    const o = await run(input);
    expect(runFailure(o).status).toBe('handed_off');
    expect(order(input.runId)).toEqual(['createHandoff', 'writeEvidence', 'writeReport']);
    const id = input.runId;
    const end = runFinished(id);
    expect(end.summary?.evidence).toEqual([
      evidenceEntry(id, 'report', 'report.json', 'application/json', 512),
      evidenceEntry(id, 'transcript', 'transcripts/install.log', 'text/plain'),
      evidenceEntry(id, 'transcript', 'transcripts/agent.log', 'text/plain'),
      evidenceEntry(id, 'transcript', 'transcripts/test.log', 'text/plain'),
      {
        kind: 'handoff_bundle',
        name: 'handoff.tar.gz',
        uri: `s3://artifacts/runs/acme/${id}/handoff.tar.gz`,
        sha256: 'f'.repeat(64),
        sizeBytes: 4096,
        mediaType: 'application/gzip',
      },
    ]);
    expect(end.summary?.provenance).toEqual(provenanceOf(id));
    const details = (o.failure!.cause as ApplicationFailure).details?.[0] as { summary: { provenance: unknown } };
    expect(details.summary.provenance).toEqual(provenanceOf(id));
  });

  it('a cancelled run: the cancelled phase, its transcript and the bundle are in the evidence of run_finished', async () => {
    const g = gate();
    stub({ runCommandPhase: (i) => (i.phase === 'test' ? untilCancelled(g.enter) : defaults.runCommandPhase(i)) });
    const input = runInput();
    const handle = await startRun(input);
    await g.entered;
    await handle.cancel();
    const o = await outcomeOf(handle);
    expect(o.failure?.cause).toBeInstanceOf(CancelledFailure);
    expect(order(input.runId)).toEqual(['createHandoff', 'writeEvidence', 'writeReport']);
    const [ev] = callsOf(input.runId, 'writeEvidence');
    expect(ev!.input.phases).toEqual(['prepare', 'install', 'agent', 'test']);
    const end = runFinished(input.runId);
    expect(end).toMatchObject({ runStatus: 'cancelled', phase: 'test' });
    expect(end.summary?.evidence?.map((e) => [e.kind, e.name])).toEqual([
      ['report', 'report.json'],
      ['transcript', 'transcripts/install.log'],
      ['transcript', 'transcripts/agent.log'],
      ['transcript', 'transcripts/test.log'],
      ['handoff_bundle', 'handoff.tar.gz'],
    ]);
    expect(end.summary?.evidence?.at(-1)?.sizeBytes).toBe(4096);
    expect(end.summary?.provenance).toEqual(provenanceOf(input.runId));
  });

  it('evidence that cannot be stored is lost alone: the run completes, lists its report, and the report phase says why', async () => {
    stub({
      writeEvidence: async () => {
        throw ApplicationFailure.nonRetryable('the artifact store is read-only', 'StoreRefused');
      },
    });
    const input = runInput();
    const o = await run(input);
    expect(o.result?.status).toBe('completed');
    const end = runFinished(input.runId);
    expect(end.summary?.evidence).toEqual([evidenceEntry(input.runId, 'report', 'report.json', 'application/json', 512)]);
    expect(end.summary?.provenance).toBeUndefined();
    expect(phaseFinished(input.runId, 'report')).toMatchObject({ phaseState: 'succeeded' });
    expect(phaseFinished(input.runId, 'report').outputTail).toBe(
      `report at s3://artifacts/runs/acme/${input.runId}/report.json\nno evidence files: the artifact store is read-only`,
    );
  });
});

describe('codingAgentRun: the run budget', { timeout: 15_000 }, () => {
  /** Prepare's first attempt fails and asks to be retried after `delay`: the run's clock moves on meanwhile. */
  const slowPrepare = (delay: string): Partial<Stubbed> => ({
    prepareWorkspace: async (run) => {
      if (Context.current().info.attempt === 1) throw ApplicationFailure.create({ message: 'mirror busy', nextRetryDelay: delay });
      return defaults.prepareWorkspace(run);
    },
  });

  it('gives a command no more time than is left of the run budget', async () => {
    stub(slowPrepare('50m'));
    // Phase budget 30 min, run budget 60 min: after 50 min, a command gets the 10 min left.
    const input = runInput({ repo: { phaseTimeoutSeconds: 1800 }, budgets: { runTimeoutSeconds: 3600 } });
    const handle = await startRun(input);
    const o = await outcomeOf(handle);
    expect(o.result?.status).toBe('completed');
    const started = (await handle.describe()).startTime.getTime();
    const deadline = started + 3600_000;
    const commands = callsOf(input.runId, 'runCommandPhase');
    expect(commands.map((c) => c.input.phase)).toEqual(['install', 'agent', 'test']);
    // The workflow reads its clock when its task starts, a moment before the server schedules the activity.
    for (const c of commands) {
      expect(c.input.timeoutMs).toBeLessThanOrEqual(deadline - c.atMs + 1000);
    }
    expect(commands[0]!.input.timeoutMs).toBeLessThanOrEqual(10 * MINUTE);
    expect(commands[0]!.input.timeoutMs).toBeGreaterThan(9 * MINUTE);
  });

  it('does not start a command once the run budget is used up', async () => {
    stub(slowPrepare('61m'));
    const input = runInput({ repo: { phaseTimeoutSeconds: 1800 }, budgets: { runTimeoutSeconds: 3600 } });
    const handle = await startRun(input);
    const o = await outcomeOf(handle);
    expect(callsOf(input.runId, 'runCommandPhase')).toHaveLength(0);
    expect(runFailure(o).failedPhase).toBe('install');
    expect(runFinished(input.runId).summary?.budgetExceeded).toBe('run_timeout');
  });

  it('gives a retried command no more time than is left of the run budget', async () => {
    stub({
      runCommandPhase: async (i) => {
        if (i.phase === 'install' && Context.current().info.attempt === 1) {
          throw ApplicationFailure.create({ message: 'worker lost', nextRetryDelay: '50m' });
        }
        return defaults.runCommandPhase(i);
      },
    });
    const input = runInput({ repo: { phaseTimeoutSeconds: 1800 }, budgets: { runTimeoutSeconds: 3600 } });
    const handle = await startRun(input);
    await outcomeOf(handle);
    const deadline = (await handle.describe()).startTime.getTime() + 3600_000;
    const installs = callsOf(input.runId, 'runCommandPhase').filter((c) => c.input.phase === 'install');
    expect(installs.map((c) => c.attempt)).toEqual([1, 2]);
    // Each attempt runs for at most what is left of the run's budget when it starts (the activity
    // takes the smaller of the two it is given; the workflow reads its clock a moment before).
    for (const c of installs) {
      expect(c.input.runDeadline).toBeLessThanOrEqual(deadline + 1000);
      expect(Math.min(c.input.timeoutMs, c.input.runDeadline! - c.atMs)).toBeLessThanOrEqual(deadline - c.atMs + 1000);
    }
    expect(installs[1]!.input.runDeadline! - installs[1]!.atMs).toBeLessThan(11 * MINUTE);
  });
});

describe('runPreview', { timeout: 15_000 }, () => {
  async function startPreviewWorkflow(o: { ttlMs?: number; stopQueue?: string } = {}) {
    const runId = `run-${++runCounter}`;
    const now = await env.currentTimeMs();
    const input: PreviewWorkflowInput = {
      runId,
      tenantId: 'acme',
      stopQueue: o.stopQueue ?? STOP_QUEUE,
      expireTime: new Date(now + (o.ttlMs ?? 60 * MINUTE)).toISOString(),
      graceSeconds: GRACE_S,
    };
    const handle = await env.client.workflow.start(RUN_PREVIEW_WORKFLOW, { taskQueue: QUEUE, workflowId: previewWorkflowId(runId), args: [input] });
    return { runId, input, handle, startedMs: now };
  }

  it('stops the preview on its own stop queue once the TTL is over', async () => {
    const p = await startPreviewWorkflow({ ttlMs: 90 * MINUTE });
    expect(await p.handle.result()).toEqual({ reason: 'expired' });
    const stops = callsOf(p.runId, 'stopPreview');
    expect(stops).toHaveLength(1);
    expect(stops[0]).toMatchObject({ taskQueue: STOP_QUEUE, input: { runId: p.runId, tenantId: 'acme', reason: 'expired' } });
    expect(stops[0]!.atMs).toBeGreaterThanOrEqual(Date.parse(p.input.expireTime));
    expect(callsOf(p.runId, 'markPreviewStopped')).toHaveLength(0);
  });

  it('a superseded preview keeps running for the grace period, then is stopped', async () => {
    const p = await startPreviewWorkflow();
    await env.sleep(5 * MINUTE);
    const signalledMs = await env.currentTimeMs();
    await p.handle.signal(PREVIEW_SUPERSEDED_SIGNAL);
    await env.sleep((GRACE_S - 1) * 1000);
    expect(callsOf(p.runId, 'stopPreview')).toHaveLength(0);
    expect(await p.handle.result()).toEqual({ reason: 'superseded by a newer preview of its work item' });
    const [stop] = callsOf(p.runId, 'stopPreview');
    expect(stop!.input.reason).toBe('superseded by a newer preview of its work item');
    expect(stop!.atMs).toBeGreaterThanOrEqual(signalledMs + GRACE_S * 1000);
    expect(stop!.atMs).toBeLessThan(Date.parse(p.input.expireTime));
  });

  it('a superseded preview whose TTL ends within the grace period runs until its TTL: it expired', async () => {
    const p = await startPreviewWorkflow({ ttlMs: 2 * GRACE_S * 1000 });
    await env.sleep(GRACE_S * 1000 + MINUTE);
    await p.handle.signal(PREVIEW_SUPERSEDED_SIGNAL);
    expect(await p.handle.result()).toEqual({ reason: 'expired' });
    const [stop] = callsOf(p.runId, 'stopPreview');
    expect(stop!.input.reason).toBe('expired');
    expect(stop!.atMs).toBeGreaterThanOrEqual(Date.parse(p.input.expireTime));
  });

  it('a lost preview is stopped at once', async () => {
    const p = await startPreviewWorkflow();
    await env.sleep(MINUTE);
    const signalledMs = await env.currentTimeMs();
    await p.handle.signal(PREVIEW_LOST_SIGNAL, 'its worker restarted');
    expect(await p.handle.result()).toEqual({ reason: 'its worker restarted' });
    const [stop] = callsOf(p.runId, 'stopPreview');
    expect(stop!.input.reason).toBe('its worker restarted');
    expect(stop!.atMs - signalledMs).toBeLessThan(GRACE_S * 1000);
  });

  it('a preview whose TTL is over when its workflow starts is stopped at once', async () => {
    const p = await startPreviewWorkflow({ ttlMs: -MINUTE });
    expect(await p.handle.result()).toEqual({ reason: 'expired' });
    const [stop] = callsOf(p.runId, 'stopPreview');
    expect(stop!.input.reason).toBe('expired');
    expect(stop!.atMs - p.startedMs).toBeLessThan(MINUTE);
  });

  it('when its worker never stops it, the preview is marked stopped by the main queue', async () => {
    stub({
      stopPreview: async () => {
        throw new Error('no such preview process');
      },
    });
    const p = await startPreviewWorkflow({ ttlMs: MINUTE });
    expect(await p.handle.result()).toEqual({ reason: 'expired' });
    const stops = callsOf(p.runId, 'stopPreview');
    expect(stops.length).toBeGreaterThan(10);
    // Retried for its schedule-to-close timeout (1 h): the last attempt is the last one the hour has room for.
    const tried = stops.at(-1)!.atMs - stops[0]!.atMs;
    expect(tried).toBeLessThanOrEqual(60 * MINUTE);
    expect(tried).toBeGreaterThan(58 * MINUTE);
    const marks = callsOf(p.runId, 'markPreviewStopped');
    expect(marks).toHaveLength(1);
    expect(marks[0]).toMatchObject({ taskQueue: QUEUE, input: { runId: p.runId, reason: 'expired; its worker did not stop it: no such preview process' } });
    expect(marks[0]!.atMs).toBeGreaterThanOrEqual(stops.at(-1)!.atMs);
  });
});

describe('codingAgentRun: status delivery', { timeout: 15_000 }, () => {
  it('retries updates the service cannot take yet, and delivers every one in order, once', async () => {
    const failing = new Map<number, number>();
    const log: string[] = [];
    stub({
      recordStatus: async (u) => {
        // Every third update fails twice before the service takes it.
        const n = failing.get(u.sequence) ?? 0;
        log.push(`try ${u.sequence}`);
        if (u.sequence % 3 === 0 && n < 2) {
          failing.set(u.sequence, n + 1);
          throw new Error('service unavailable');
        }
        if (!delivered.some((d) => d.runId === u.runId && d.sequence === u.sequence)) delivered.push(u);
        log.push(`took ${u.sequence}`);
      },
    });
    const input = runInput();
    const o = await run(input);
    expect(o.result?.status).toBe('completed');
    const updates = updatesOf(input.runId);
    expect(updates).toHaveLength(17);
    expect(updates.at(-1)!.kind).toBe('run_finished');
    expect([...failing.values()].every((n) => n === 2)).toBe(true);
    // In order: update n+1 was first tried only after update n was taken.
    for (let seq = 2; seq <= 17; seq++) expect(log.indexOf(`try ${seq}`)).toBeGreaterThan(log.indexOf(`took ${seq - 1}`));
  });

  it('an update the service refuses for good is dropped; the run goes on', async () => {
    const tried: number[] = [];
    stub({
      recordStatus: async (u) => {
        tried.push(u.sequence);
        if (u.sequence === 4) throw ApplicationFailure.nonRetryable('sequence 4 is malformed', 'InvalidArgument');
        delivered.push(u);
      },
    });
    const input = runInput();
    const o = await run(input);
    expect(o.result?.status).toBe('completed');
    const updates = delivered.filter((u) => u.runId === input.runId);
    expect(updates.map((u) => u.sequence)).toEqual([1, 2, 3, ...Array.from({ length: 13 }, (_, i) => i + 5)]);
    expect(updates.at(-1)).toMatchObject({ kind: 'run_finished', runStatus: 'completed' });
    expect(tried.filter((n) => n === 4)).toHaveLength(1);
  });

  it('sends what the run posts at once in one batch: one activity for a phase end and the next start, and for the report and the run end', async () => {
    const input = runInput();
    const o = await run(input);
    expect(o.result?.status).toBe('completed');
    const batches = callsOf(input.runId, 'recordStatuses').map((c) => c.input.map((u) => `${u.sequence} ${u.kind}${u.phase ? ` ${u.phase}` : ''}`));
    expect(batches.flat()).toEqual(updatesOf(input.runId).map((u) => `${u.sequence} ${u.kind}${u.phase ? ` ${u.phase}` : ''}`));
    expect(batches.length).toBeLessThan(updatesOf(input.runId).length / 1.5);
    expect(batches).toContainEqual(expect.arrayContaining([expect.stringMatching(/ phase_finished install$/), expect.stringMatching(/ phase_started agent$/)]));
    expect(batches.at(-1)!.at(-1)).toMatch(/ run_finished$/);
    expect(callsOf(input.runId, 'recordStatus')).toHaveLength(0);
  });

  it("sends the last phase's updates with the run's end: the report's local activities hold the workflow task, so a batch of their own would only delay the end", async () => {
    stub({
      openPullRequest: async (i) => {
        // Nothing is under way when the pull request phase ends: its start was delivered (and the workflow heard back) before.
        while (!delivered.some((u) => u.runId === i.run.runId && u.kind === 'phase_started' && u.phase === 'pull_request')) await sleepMs(10);
        await sleepMs(200);
        return defaults.openPullRequest(i);
      },
    });
    const input = runInput();
    expect((await run(input)).result?.status).toBe('completed');
    const batches = callsOf(input.runId, 'recordStatuses').map((c) => c.input.map((u) => `${u.kind}${u.phase ? ` ${u.phase}` : ''}`));
    // The pull request phase's own update and its end, the report, the run's end: one batch, the last.
    expect(batches.at(-2)).toEqual(['phase_finished publish', 'phase_started pull_request']);
    expect(batches.at(-1)).toEqual([
      'pull_request_opened pull_request',
      'phase_finished pull_request',
      'phase_started report',
      'phase_finished report',
      'run_finished',
    ]);
  });
});

describe('codingAgentRun: what the Web UI shows', { timeout: 15_000 }, () => {
  /** The summaries (user metadata) of the activities the run scheduled, as `activity: summary`. */
  async function activitySummaries(handle: WorkflowHandle): Promise<string[]> {
    const { events } = await handle.fetchHistory();
    return (events ?? []).flatMap((e) => {
      const summary = e.userMetadata?.summary ? defaultPayloadConverter.fromPayload<string>(e.userMetadata.summary) : '';
      const a = e.activityTaskScheduledEventAttributes;
      if (a) return [`${a.activityType?.name}: ${summary}`];
      // A local activity is a marker in the history: its type is in the marker's data.
      const m = e.markerRecordedEventAttributes;
      const data = m?.markerName === 'core_local_activity' ? m.details?.data?.payloads?.[0] : undefined;
      if (!data) return [];
      return [`${defaultPayloadConverter.fromPayload<{ activity_type: string }>(data).activity_type} (local): ${summary}`];
    });
  }

  it("names each activity with its phase, and a handed-off run's memo says so", async () => {
    stub({
      runCommandPhase: async (i) => ({
        exitCode: i.phase === 'test' ? 3 : 0,
        durationMs: 5,
        outputTail: '',
        transcriptUri: '',
        timedOut: false,
        truncated: false,
        skipped: false,
      }),
    });
    const input = runInput();
    const handle = await startRun(input);
    expect(runFailure(await outcomeOf(handle)).status).toBe('handed_off');
    const summaries = await activitySummaries(handle);
    expect(summaries.filter((s) => !s.startsWith('recordStatuses'))).toEqual([
      'prepareWorkspace: prepare phase',
      'runCommandPhase: install phase',
      'runCommandPhase: agent phase',
      'runCommandPhase: test phase',
      'createHandoff: report phase',
      'writeEvidence (local): report phase',
      'writeReport (local): report phase',
    ]);
    expect(summaries).toContain('recordStatuses: status updates 1–2: run_started, phase_started prepare');
    expect(summaries).toContain('recordStatuses: status updates 5–6: phase_finished install, phase_started agent');
    expect((await handle.describe()).memo).toEqual({ runStatus: 'handed_off', handoffUri: `s3://artifacts/runs/acme/${input.runId}/handoff.tar.gz` });
    const { currentDetails } = await handle.query<{ currentDetails: string }>('__temporal_workflow_metadata');
    expect(currentDetails).toBe(
      `**handed off**: test phase failed: test command failed with exit code 3\n\nhandoff bundle: s3://artifacts/runs/acme/${input.runId}/handoff.tar.gz`,
    );
  });

  it("a completed run's memo says completed", async () => {
    const handle = await startRun(runInput());
    expect((await outcomeOf(handle)).result?.status).toBe('completed');
    expect((await handle.describe()).memo).toEqual({ runStatus: 'completed' });
  });
});

// Last in the file, in this order: after each of these tests the test server keeps time skipping
// locked for good, so that no timer of a later test fires before it is due in real time. The server
// locks time skipping while a child workflow's end is not yet taken by its parent, and while an
// activity is scheduled; an abandoned child's parent is gone, and a workflow that ends with an
// activity still scheduled never takes it. The first test needs time skipping, the second does not.
describe('last: tests after which the test server skips no more time', { timeout: 15_000 }, () => {
  it('is started by the preview phase when a local preview has a stop queue and a TTL', async () => {
    const input = runInput({ repo: { preview: LOCAL_PREVIEW } });
    let expireTime = '';
    stub({
      startPreview: async (i) => {
        expireTime = new Date((await env.currentTimeMs()) + 60 * MINUTE).toISOString();
        return { ...(await defaults.startPreview(i)), stopQueue: STOP_QUEUE, expireTime, graceSeconds: GRACE_S };
      },
    });
    const o = await run(input);
    expect(o.result?.status).toBe('completed');
    expect(updatesOf(input.runId).find((u) => u.kind === 'preview_live')!.attributes?.expire_time).toBe(expireTime);
    // The preview outlives the run; after its TTL the worker holding it stops it.
    const child = env.client.workflow.getHandle(previewWorkflowId(input.runId));
    expect(await child.result()).toEqual({ reason: 'expired' });
    const [stop] = callsOf(input.runId, 'stopPreview');
    expect(stop).toMatchObject({ taskQueue: STOP_QUEUE, input: { runId: input.runId, tenantId: 'acme', reason: 'expired' } });
    expect(stop!.atMs).toBeGreaterThanOrEqual(Date.parse(expireTime));
  });

  it('cancelled while the report phase hands off a failed run: the service still learns that the run ended', async () => {
    const g = gate();
    stub({
      runCommandPhase: async (i) => ({ ...(await defaults.runCommandPhase(i)), exitCode: i.phase === 'test' ? 1 : 0 }),
      // The first bundle is interrupted by the cancel; the run then bundles once more, as any cancelled run does.
      createHandoff: (i) => (callsOf(i.run.runId, 'createHandoff').length === 1 ? untilCancelled(g.enter) : defaults.createHandoff(i)),
    });
    const input = runInput();
    const handle = await startRun(input);
    await g.entered;
    await handle.cancel();
    const o = await outcomeOf(handle);
    expect(o.failure?.cause).toBeInstanceOf(CancelledFailure);
    expect(runFinished(input.runId)).toMatchObject({ runStatus: 'cancelled', phase: 'report' });
    expect(callsOf(input.runId, 'createHandoff')).toHaveLength(2);
    expect(runFinished(input.runId).summary?.handoffUri).toBeTruthy();
  });

  it('cancelled while the report phase stores the evidence: it is stored once more, and run_finished lists it', async () => {
    const g = gate();
    stub({
      writeEvidence: (i) => (callsOf(i.run.runId, 'writeEvidence').length === 1 ? untilCancelled(g.enter) : defaults.writeEvidence(i)),
    });
    const input = runInput();
    const handle = await startRun(input);
    await g.entered;
    await handle.cancel();
    const o = await outcomeOf(handle);
    expect(o.failure?.cause).toBeInstanceOf(CancelledFailure);
    const end = runFinished(input.runId);
    expect(end).toMatchObject({ runStatus: 'cancelled', phase: 'report' });
    expect(callsOf(input.runId, 'writeEvidence')).toHaveLength(2);
    expect(end.summary?.evidence?.map((e) => e.kind)).toEqual(['report', 'transcript', 'transcript', 'transcript', 'diff', 'pull_request', 'handoff_bundle']);
    expect(end.summary?.provenance).toEqual(provenanceOf(input.runId));
  });
});
