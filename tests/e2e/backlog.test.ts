import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { describe, expect, inject, it } from 'vitest';
import { ApprovalState, backlogV1, RunStatus, Trigger } from '@ameide/contracts';
import { loadServiceConfig } from '@ameide/config';
import { createBacklogServiceClient, createGovernanceServiceClient, type BacklogServiceClient } from '@ameide/sdk';
import { openDatabase } from '@ameide/db';
import { signDelivery, WEBHOOK_PATH } from '../../services/workflows/src/backlog/webhook.js';
import { startWorkflowService } from '../../services/workflows/src/index.js';
import { applySample, useHarnessWithOrigin, watchAll, type Harness } from '../support/harness.js';

const SECRET = 'whsec_4f9c2b7e1a8d3c6f';
const { WorkItemState } = backlogV1;

/** A work item revision as the backlog sends it (webhook JSON), ready under Scrum unless changed. */
const revision = (id: string, rev: number, spec: Record<string, unknown> = {}) => ({
  id,
  revision: String(rev),
  spec: {
    title: 'Add a multiply function',
    description: 'Users need to multiply.',
    acceptanceCriteria: ['multiply(6, 7) returns 42'],
    state: 'WORK_ITEM_STATE_READY',
    profile: 'scrum',
    timeboxIds: ['sprint-7'],
    goalIds: ['sprint-7-goal'],
    definition: 'sample',
    ...spec,
  },
});

/** Posts a delivery to the webhook, signed unless told otherwise. */
async function deliver(apiUrl: string, body: unknown, o: { secret?: string; timestamp?: number; delivery?: string; tenant?: string } = {}) {
  const raw = JSON.stringify(body);
  const timestamp = String(o.timestamp ?? Math.floor(Date.now() / 1000));
  const res = await fetch(apiUrl + WEBHOOK_PATH, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-ameide-tenant': o.tenant ?? 'acme',
      'x-ameide-timestamp': timestamp,
      'x-ameide-delivery': o.delivery ?? randomUUID(),
      'x-ameide-signature': signDelivery(o.secret ?? SECRET, timestamp, raw),
    },
    body: raw,
  });
  return { status: res.status, body: (await res.json()) as { error?: string; applied?: boolean; workItem?: { runId?: string; planId?: string } } };
}

describe('from backlog to run', () => {
  let h: Harness;
  let origin: string;
  let backlog: BacklogServiceClient;
  useHarnessWithOrigin(
    (started) => {
      ({ h, origin } = started);
      backlog = createBacklogServiceClient({ baseUrl: h.apiUrl, token: h.tokens.acme });
    },
    { worker: true, serviceEnv: { AMEIDE_WEBHOOK_SECRETS: `acme:${SECRET}` } },
  );

  it('refuses a delivery with a wrong signature, a stale timestamp or a replayed id, storing nothing', async () => {
    await applySample(h.acme, origin, { agentCommand: 'echo "refused" >> notes.txt' });
    const body = revision('REF-1', 1);
    const bad = await deliver(h.apiUrl, body, { secret: 'whsec_not_the_right_one' });
    expect([bad.status, bad.body.error]).toEqual([401, expect.stringContaining('x-ameide-signature does not match')]);
    const stale = await deliver(h.apiUrl, body, { timestamp: Math.floor(Date.now() / 1000) - 301 });
    expect([stale.status, stale.body.error]).toEqual([401, expect.stringContaining('within 5 minutes')]);
    const unknown = await deliver(h.apiUrl, body, { tenant: 'globex' });
    expect(unknown.status).toBe(401);
    await expect(backlog.getWorkItem({ id: 'REF-1' })).rejects.toThrow(/not found/);

    // A valid one is stored; the same delivery again is a replay.
    const delivery = randomUUID();
    const ok = await deliver(h.apiUrl, revision('REF-1', 1, { state: 'WORK_ITEM_STATE_BACKLOG' }), { delivery });
    expect([ok.status, ok.body.applied]).toEqual([200, true]);
    const replay = await deliver(h.apiUrl, revision('REF-1', 2, { state: 'WORK_ITEM_STATE_READY' }), { delivery });
    expect([replay.status, replay.body.error]).toEqual([409, expect.stringContaining('received before')]);
    const item = (await backlog.getWorkItem({ id: 'REF-1' })).workItem!;
    expect([item.revision, item.spec!.state, item.runId]).toEqual([1n, WorkItemState.BACKLOG, '']);
  });

  it("a signed revision that meets Scrum's DoR plans and runs by itself to COMPLETED, with its context in Temporal and its ready time", async () => {
    await applySample(h.acme, origin, { agentCommand: 'node "$AGENT_SCRIPT"' });
    const res = await deliver(h.apiUrl, revision('CALC-77', 1));
    expect(res.status).toBe(200);
    const item = (await backlog.getWorkItem({ id: 'CALC-77' })).workItem!;
    expect(item.readiness!.met).toBe(true);
    expect(item.runId).not.toBe('');
    await watchAll(h.acme, item.runId);
    const run = (await h.acme.getWorkflowRun({ id: item.runId })).run!;
    expect(run.status).toBe(RunStatus.COMPLETED);
    expect(run.trigger).toBe(Trigger.AUTO);
    expect(run.methodology).toMatchObject({ profile: 'scrum', workItemIds: ['CALC-77'], timeboxIds: ['sprint-7'], goalIds: ['sprint-7-goal'] });
    expect(timestampDate(run.readyTime!).getTime()).toBe(timestampDate(item.readyTime!).getTime());
    expect(timestampDate(run.endTime!).getTime()).toBeGreaterThan(timestampDate(run.readyTime!).getTime());
    // Lead time READY → done, per run (here and in lists) and, once the backlog says done, per work item.
    const ms = (d: { seconds: bigint; nanos: number }) => Number(d.seconds) * 1000 + Math.round(d.nanos / 1e6);
    expect(ms(run.leadTime!)).toBe(timestampDate(run.endTime!).getTime() - timestampDate(run.readyTime!).getTime());
    expect((await h.acme.listWorkflowRuns({ workItemId: 'CALC-77' })).runs[0]!.leadTime).toEqual(run.leadTime);
    expect(item.leadTime).toBeUndefined();
    await deliver(h.apiUrl, revision('CALC-77', 2, { state: 'WORK_ITEM_STATE_DONE' }));
    const done = (await backlog.getWorkItem({ id: 'CALC-77' })).workItem!;
    expect(ms(done.leadTime!)).toBe(timestampDate(done.doneTime!).getTime() - timestampDate(done.readyTime!).getTime());
    expect(ms(done.leadTime!)).toBeGreaterThan(0);
    // Operators find it in Temporal by work item, timebox and goal.
    const listed = execFileSync(
      inject('temporalCli'),
      [
        'workflow',
        'list',
        '--address',
        inject('temporalAddress'),
        '--query',
        `AmeideWorkItemIds = 'CALC-77' AND AmeideTimeboxIds = 'sprint-7' AND AmeideGoalIds = 'sprint-7-goal' AND AmeideTrigger = 'auto' AND AmeideProfile = 'scrum'`,
        '-o',
        'json',
      ],
      { encoding: 'utf8' },
    );
    expect(listed).toContain(run.workflowId);
  });

  it('a revision that does not meet its DoR shows the failing rules and plans nothing; a later one that does, runs', async () => {
    await applySample(h.acme, origin, { agentCommand: 'echo "dor" >> notes.txt' });
    await deliver(h.apiUrl, revision('DOR-1', 1, { acceptanceCriteria: [], goalIds: [] }));
    const notReady = (await backlog.getWorkItem({ id: 'DOR-1' })).workItem!;
    expect(notReady.readiness!.met).toBe(false);
    expect(notReady.readiness!.rules.filter((r) => !r.passed).map((r) => [r.rule, r.detail])).toEqual([
      ['acceptance_criteria', '0 acceptance criteria, needs at least 1'],
      ['goal', '0 goals, needs at least 1'],
    ]);
    expect(notReady.runId).toBe('');
    expect((await h.acme.listPlans({ workItemId: 'DOR-1' })).plans).toEqual([]);
    expect((await backlog.listWorkItems({ ready: false })).workItems.map((w) => w.id)).toContain('DOR-1');

    await deliver(h.apiUrl, revision('DOR-1', 2));
    const ready = (await backlog.getWorkItem({ id: 'DOR-1' })).workItem!;
    expect([ready.readiness!.met, ready.triggeredRevision]).toEqual([true, 2n]);
    await watchAll(h.acme, ready.runId);
    expect((await h.acme.getWorkflowRun({ id: ready.runId })).run!.status).toBe(RunStatus.COMPLETED);

    // Promoted, then broken: a newer revision without acceptance criteria needs a person. One
    // impediment for that promotion, however many broken revisions follow.
    const gov = createGovernanceServiceClient({ baseUrl: h.apiUrl, token: h.tokens.acme });
    await deliver(h.apiUrl, revision('DOR-1', 3, { acceptanceCriteria: [] }));
    await deliver(h.apiUrl, revision('DOR-1', 4, { acceptanceCriteria: [], description: '' }));
    const raised = (await gov.listImpediments({ workItemId: 'DOR-1' })).impediments.filter((i) => i.cause === 'dor_broken');
    expect(raised).toHaveLength(1);
    expect(raised[0]).toMatchObject({ runId: ready.runId, timeboxIds: ['sprint-7'], goalIds: ['sprint-7-goal'] });
    expect(raised[0]!.reason).toBe(
      'work item DOR-1 revision 3 no longer meets its Definition of Ready (acceptance_criteria: 0 acceptance criteria, needs at least 1)',
    );
  });

  it('duplicate and out-of-order deliveries, also to two service processes at once, make one plan version and one run', async () => {
    await applySample(h.acme, origin, { agentCommand: 'echo "once" >> notes.txt' });
    const second = await startWorkflowService(
      loadServiceConfig({
        DATABASE_URL: h.databaseUrl,
        AMEIDE_API_PORT: '0',
        TEMPORAL_ADDRESS: inject('temporalAddress'),
        TEMPORAL_TASK_QUEUE: h.taskQueue,
        AMEIDE_API_KEYS: `${h.tokens.acme}:acme`,
        AMEIDE_WEBHOOK_SECRETS: `acme:${SECRET}`,
        AMEIDE_HOME: h.dir,
      }),
    );
    try {
      const rev3 = revision('DUP-1', 3);
      // The same revision to both replicas at the same moment (two deliveries of it), twice over,
      // then an older revision late.
      const answers = await Promise.all([h.apiUrl, second.server.url, h.apiUrl, second.server.url].map((url) => deliver(url, rev3)));
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
      expect(answers.filter((a) => a.body.applied)).toHaveLength(1);
      const late = await deliver(h.apiUrl, revision('DUP-1', 2, { title: 'an older title' }));
      expect([late.status, late.body.applied]).toEqual([200, false]);
    } finally {
      await second.stop();
    }
    const item = (await backlog.getWorkItem({ id: 'DUP-1' })).workItem!;
    expect([item.revision, item.spec!.title]).toEqual([3n, 'Add a multiply function']);
    const db = await openDatabase(h.databaseUrl, { migrate: false });
    try {
      const plans = await db.pool.query(`select version from plans where tenant_id = 'acme' and work_item_id = 'DUP-1'`);
      const runs = await db.pool.query(`select id from runs where tenant_id = 'acme' and request_id like 'auto:DUP-1@%'`);
      expect(plans.rows).toEqual([{ version: 1 }]);
      expect(runs.rows.map((r: { id: string }) => r.id)).toEqual([item.runId]);
    } finally {
      await db.close();
    }
    await watchAll(h.acme, item.runId);
    expect((await h.acme.getWorkflowRun({ id: item.runId })).run!.status).toBe(RunStatus.COMPLETED);
    // And one workflow in Temporal.
    const workflows = execFileSync(
      inject('temporalCli'),
      ['workflow', 'list', '--address', inject('temporalAddress'), '--query', `AmeideWorkItemIds = 'DUP-1'`, '-o', 'json'],
      { encoding: 'utf8' },
    );
    expect((JSON.parse(workflows || '[]') as Array<{ execution: { workflowId: string } }>).map((w) => w.execution.workflowId)).toEqual([
      (await h.acme.getWorkflowRun({ id: item.runId })).run!.workflowId,
    ]);
  });

  it('revisions arriving mid-run queue exactly one rerun, of the newest; removing the item cancels it', async () => {
    await applySample(h.acme, origin, { agentCommand: 'sleep 4 && echo "mid $AMEIDE_RUN_ID" >> notes.txt' });
    await deliver(h.apiUrl, revision('MID-1', 1));
    const first = (await backlog.getWorkItem({ id: 'MID-1' })).workItem!.runId;
    await deliver(h.apiUrl, revision('MID-1', 2, { title: 'second' }));
    const second = (await backlog.getWorkItem({ id: 'MID-1' })).workItem!.runId;
    await deliver(h.apiUrl, revision('MID-1', 3, { title: 'third' }));
    const third = (await backlog.getWorkItem({ id: 'MID-1' })).workItem!;
    expect(new Set([first, second, third.runId]).size).toBe(3);
    // The second revision's run was waiting behind the first: the third replaced it.
    const superseded = (await h.acme.getWorkflowRun({ id: second })).run!;
    expect([superseded.status, superseded.error]).toEqual([RunStatus.CANCELLED, 'superseded by revision 3 of work item MID-1']);
    const queued = (await h.acme.getWorkflowRun({ id: third.runId })).run!;
    expect([queued.status, queued.queuedBehindRunId, queued.planVersion]).toEqual([RunStatus.QUEUED, first, 3]);

    await watchAll(h.acme, third.runId);
    expect((await h.acme.getWorkflowRun({ id: first })).run!.status).toBe(RunStatus.COMPLETED);
    const rerun = (await h.acme.getWorkflowRun({ id: third.runId })).run!;
    expect(rerun.status).toBe(RunStatus.COMPLETED);
    expect((await h.acme.listWorkflowRuns({ workItemId: 'MID-1' })).runs.map((r) => r.status).sort()).toEqual(
      [RunStatus.COMPLETED, RunStatus.COMPLETED, RunStatus.CANCELLED].sort(),
    );

    // A revision queued behind a running one, then the item is removed: the queued run is cancelled.
    await applySample(h.acme, origin, { agentCommand: 'sleep 4 && echo "again" >> notes.txt' });
    await deliver(h.apiUrl, revision('MID-1', 4));
    const running = (await backlog.getWorkItem({ id: 'MID-1' })).workItem!.runId;
    await deliver(h.apiUrl, revision('MID-1', 5, { title: 'fifth' }));
    const waiting = (await backlog.getWorkItem({ id: 'MID-1' })).workItem!.runId;
    await deliver(h.apiUrl, revision('MID-1', 6, { state: 'WORK_ITEM_STATE_REMOVED' }));
    const removed = (await h.acme.getWorkflowRun({ id: waiting })).run!;
    expect([removed.status, removed.error]).toEqual([RunStatus.CANCELLED, 'work item MID-1 was removed from the backlog']);
    await watchAll(h.acme, running);
  });

  it('with a profile that requires approval, the plan waits: a rejected plan never runs, an approved one does, and who decided is recorded', async () => {
    await applySample(h.acme, origin, { agentCommand: 'echo "approved" >> notes.txt' });
    await backlog.applyProfile({
      name: 'gated',
      spec: { readyRules: [{ kind: 'acceptance_criteria' }], approvalRequired: true, triggerState: WorkItemState.READY },
    });
    await deliver(h.apiUrl, revision('GATE-1', 1, { profile: 'gated' }));
    const waiting = (await backlog.getWorkItem({ id: 'GATE-1' })).workItem!;
    expect([waiting.readiness!.met, waiting.runId, waiting.triggeredRevision]).toEqual([true, '', 1n]);
    const first = (await h.acme.getPlan({ id: waiting.planId })).plan!;
    expect([first.approval!.state, first.workItemId, first.workItemRevision, first.version]).toEqual([ApprovalState.PENDING, 'GATE-1', 1n, 1]);
    expect((await h.acme.listWorkflowRuns({ workItemId: 'GATE-1' })).runs).toEqual([]);

    const rejected = (await h.acme.rejectPlan({ id: first.id, reason: 'not this sprint' })).plan!;
    expect([rejected.approval!.state, rejected.approval!.decidedBy, rejected.approval!.reason]).toEqual([
      ApprovalState.REJECTED,
      'apikey:acme',
      'not this sprint',
    ]);
    await expect(h.acme.approvePlan({ id: first.id })).rejects.toThrow(/not waiting for approval \(approval: rejected\)/);
    expect((await h.acme.listWorkflowRuns({ workItemId: 'GATE-1' })).runs).toEqual([]);

    await deliver(h.apiUrl, revision('GATE-1', 2, { profile: 'gated', title: 'now, please' }));
    const second = (await backlog.getWorkItem({ id: 'GATE-1' })).workItem!.planId;
    const approved = await h.acme.approvePlan({ id: second, reason: 'go' });
    expect([approved.plan!.version, approved.plan!.approval!.state, approved.plan!.approval!.decidedBy]).toEqual([2, ApprovalState.APPROVED, 'apikey:acme']);
    await watchAll(h.acme, approved.run!.id);
    expect((await h.acme.getWorkflowRun({ id: approved.run!.id })).run!.status).toBe(RunStatus.COMPLETED);
    expect((await backlog.getWorkItem({ id: 'GATE-1' })).workItem!.runId).toBe(approved.run!.id);
    expect((await h.acme.listWorkflowRuns({ workItemId: 'GATE-1' })).runs.map((r) => r.id)).toEqual([approved.run!.id]);
  });

  it("the work item's state changes land in its running run's workflow history", async () => {
    await applySample(h.acme, origin, { agentCommand: 'sleep 5 && echo "history" >> notes.txt' });
    await deliver(h.apiUrl, revision('HIST-1', 1));
    const runId = (await backlog.getWorkItem({ id: 'HIST-1' })).workItem!.runId;
    const run = (await h.acme.getWorkflowRun({ id: runId })).run!;
    await deliver(h.apiUrl, revision('HIST-1', 2, { state: 'WORK_ITEM_STATE_IN_PROGRESS' }));
    await watchAll(h.acme, runId);
    const history = execFileSync(
      inject('temporalCli'),
      ['workflow', 'show', '--address', inject('temporalAddress'), '--workflow-id', run.workflowId, '-o', 'json'],
      { encoding: 'utf8' },
    );
    const signals = (
      JSON.parse(history) as { events: Array<{ eventType: string; workflowExecutionSignaledEventAttributes?: { signalName: string; input: unknown } }> }
    ).events.filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'workItemChanged');
    expect(signals).toHaveLength(1);
    // The history keeps the payload as JSON, base64-encoded.
    const input = signals[0]!.workflowExecutionSignaledEventAttributes!.input as { payloads: Array<{ data: string }> };
    expect(JSON.parse(Buffer.from(input.payloads[0]!.data, 'base64').toString('utf8'))).toMatchObject({
      workItemId: 'HIST-1',
      revision: 2,
      state: 'WORK_ITEM_STATE_IN_PROGRESS',
      previousState: 'WORK_ITEM_STATE_READY',
    });
  });
});
