import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Phase, PhaseState, RunStatus, StatusUpdateKind } from '@ameide/contracts';
import { git } from '@ameide/devstack';
import { applySample, MULTIPLY, sampleOrigin, startHarness, watchAll, type Harness } from '../support/harness.js';

describe('coding-agent run end to end (real Postgres, Temporal, git, processes)', () => {
  let h: Harness;
  let origin: string;

  beforeAll(async () => {
    h = await startHarness({ worker: true });
    origin = sampleOrigin(h);
    await applySample(h.acme, origin);
  });
  afterAll(() => h?.stop());

  it('completes, pushes the agent change, records the test exit code and replays every update', async () => {
    const { run } = await h.acme.startWorkflowRun({
      definition: 'sample',
      workItems: [MULTIPLY],
      methodology: { profile: 'scrum', timeboxIds: ['sprint-7'], goalIds: ['goal-1'], elementIds: ['el-1', 'el-2'] },
    });
    expect(run!.workflowId).toBe(`coding-run-${run!.id}`);

    const updates = await watchAll(h.acme, run!.id);
    expect(updates.map((u) => Number(u.sequence))).toEqual(updates.map((_, i) => i + 1));
    expect(updates.at(-1)!.kind).toBe(StatusUpdateKind.RUN_FINISHED);
    expect(updates.at(-1)!.runStatus).toBe(RunStatus.COMPLETED);

    const done = (await h.acme.getWorkflowRun({ id: run!.id })).run!;
    expect(done.status).toBe(RunStatus.COMPLETED);
    expect(done.phases.map((p) => p.phase)).toEqual([Phase.PREPARE, Phase.INSTALL, Phase.AGENT, Phase.TEST, Phase.PUBLISH, Phase.PULL_REQUEST, Phase.REPORT]);
    expect(done.phases.every((p) => p.state === PhaseState.SUCCEEDED)).toBe(true);
    const test = done.phases.find((p) => p.phase === Phase.TEST)!;
    expect(test.exitCode).toBe(0);
    expect(test.outputTail).toContain('multiply');
    expect(done.summary!.testExitCode).toBe(0);
    expect(done.summary!.filesChanged).toBe(2);

    // The branch is on origin, with the agent's change on top of main.
    const branch = done.summary!.branch;
    expect(branch).toBe('ameide/calc-1');
    expect(git(origin, 'rev-parse', `refs/heads/${branch}`)).toBe(done.summary!.headCommit);
    expect(git(origin, 'show', `${branch}:src/calc.js`)).toContain('export function multiply(a, b)');
    expect(git(origin, 'log', '--format=%s', '-1', branch)).toBe('CALC-1: Add a multiply function');
    expect(git(origin, 'rev-parse', `${branch}~1`)).toBe(git(origin, 'rev-parse', 'main'));

    // Replaying from the middle gives exactly the tail.
    const tail = await watchAll(h.acme, run!.id, 5n);
    expect(tail.map((u) => Number(u.sequence))).toEqual(updates.slice(4).map((u) => Number(u.sequence)));

    // Ops find the run in Temporal by work item id, and the workflow kept the status attribute current.
    const query = (q: string) =>
      execFileSync(inject('temporalCli'), ['workflow', 'list', '--address', inject('temporalAddress'), '--query', q, '-o', 'json'], { encoding: 'utf8' });
    const found = JSON.parse(query(`AmeideWorkItemIds='CALC-1' AND AmeideRunStatus='completed'`) || '[]') as Array<{ execution: { workflowId: string } }>;
    expect(found.map((w) => w.execution.workflowId)).toContain(run!.workflowId);
    const byElement = JSON.parse(query(`AmeideElementIds='el-2' AND AmeideTenantId='acme'`) || '[]') as Array<{ execution: { workflowId: string } }>;
    expect(byElement.map((w) => w.execution.workflowId)).toContain(run!.workflowId);

    // Listing by work item uses the stored methodology context.
    const listed = await h.acme.listWorkflowRuns({ workItemId: 'CALC-1', statuses: [RunStatus.COMPLETED] });
    expect(listed.runs.map((r) => r.id)).toContain(run!.id);
    expect((await h.acme.listWorkflowRuns({ workItemId: 'CALC-999' })).runs).toHaveLength(0);
  });

  it('updates the same branch when the same work runs again', async () => {
    const first = (await h.acme.listWorkflowRuns({ workItemId: 'CALC-1', statuses: [RunStatus.COMPLETED] })).runs.at(-1)!;
    const before = git(origin, 'rev-parse', 'refs/heads/ameide/calc-1');
    const { run } = await h.acme.startWorkflowRun({ planId: first.planId });
    await watchAll(h.acme, run!.id);
    const again = (await h.acme.getWorkflowRun({ id: run!.id })).run!;
    expect(again.phases.find((p) => p.phase === Phase.AGENT)!.outputTail).toContain('exists already');
    expect(again.status).toBe(RunStatus.COMPLETED);
    expect(again.summary!.branch).toBe('ameide/calc-1');
    expect(git(origin, 'rev-parse', 'refs/heads/ameide/calc-1~1')).toBe(before);
    expect(git(origin, 'for-each-ref', '--format=%(refname:short)', 'refs/heads/ameide/')).toBe('ameide/calc-1');
  });

  it('hands off at the test phase when the test command fails, keeping its exit code and output', async () => {
    await applySample(h.acme, origin, { testCommand: 'echo "2 tests, 1 failing: expected 42"; exit 3' }, 'sample-failing');
    const { run } = await h.acme.startWorkflowRun({ definition: 'sample-failing', workItems: [{ ...MULTIPLY, id: 'CALC-2' }] });
    await watchAll(h.acme, run!.id);
    const done = (await h.acme.getWorkflowRun({ id: run!.id })).run!;
    expect(done.status).toBe(RunStatus.HANDED_OFF);
    expect(done.error).toMatch(/^test phase failed: test command failed with exit code 3/);
    expect(done.summary!.handoffUri).toMatch(/handoff\.tar\.gz$/);
    expect(done.summary!.handoffSha256).toMatch(/^[0-9a-f]{64}$/);
    const test = done.phases.find((p) => p.phase === Phase.TEST)!;
    expect(test.state).toBe(PhaseState.FAILED);
    expect(test.exitCode).toBe(3);
    expect(test.outputTail).toContain('expected 42');
    expect(done.phases.map((p) => p.phase)).not.toContain(Phase.PUBLISH);
    expect(done.summary!.testExitCode).toBe(3);
    expect(() => git(origin, 'rev-parse', '--verify', `refs/heads/${done.summary!.branch}`)).toThrow();
  });

  it('publishes commits the agent made itself', async () => {
    await applySample(
      h.acme,
      origin,
      { agentCommand: 'node "$AGENT_SCRIPT" && git add -A && git -c user.name=Agent -c user.email=agent@example.com commit -qm "feat: multiply"' },
      'sample-committing',
    );
    const { run } = await h.acme.startWorkflowRun({ definition: 'sample-committing', workItems: [{ ...MULTIPLY, id: 'CALC-4' }] });
    await watchAll(h.acme, run!.id);
    const done = (await h.acme.getWorkflowRun({ id: run!.id })).run!;
    expect(done.status).toBe(RunStatus.COMPLETED);
    expect(git(origin, 'log', '--format=%s', '-1', done.summary!.branch)).toBe('feat: multiply');
    expect(done.summary!.filesChanged).toBe(2);
  });

  it('hands off at the agent phase when the agent cannot do the task', async () => {
    const { run } = await h.acme.startWorkflowRun({
      definition: 'sample',
      workItems: [{ ...MULTIPLY, id: 'CALC-3', title: 'Paint it blue', description: '', acceptanceCriteria: [] }],
    });
    await watchAll(h.acme, run!.id);
    const done = (await h.acme.getWorkflowRun({ id: run!.id })).run!;
    expect(done.status).toBe(RunStatus.HANDED_OFF);
    expect(done.phase).toBe(Phase.AGENT);
    expect(done.phases.find((p) => p.phase === Phase.AGENT)!.outputTail).toContain('knows how to do');
  });
});
