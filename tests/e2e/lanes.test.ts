import { describe, expect, it } from 'vitest';
import { Phase, RunStatus, StatusUpdateKind } from '@ameide/contracts';
import { git } from '@ameide/devstack';
import { applySample, MULTIPLY, sampleOrigin, useHarnessWithOrigin, watchAll, type Harness } from '../support/harness.js';

const BRANCH = 'refs/heads/ameide/calc-1';

/** One active run per work branch: reruns of a work item queue behind each other instead of racing on the push. */
describe('runs of one work item', () => {
  let h: Harness;
  let origin: string;
  useHarnessWithOrigin((started) => ({ h, origin } = started));

  it('five runs started at once execute one after another, each building on the branch the one before pushed', async () => {
    await applySample(h.acme, origin, { agentCommand: 'echo "line from $AMEIDE_RUN_ID" >> notes.txt' });
    const started = await Promise.all(Array.from({ length: 5 }, () => h.acme.startWorkflowRun({ definition: 'sample', workItems: [MULTIPLY] })));
    const ids = started.map((s) => s.run!.id);
    // Exactly one run executes; each of the others names the run it waits for.
    const behind = started.filter((s) => s.run!.queuedBehindRunId);
    expect(behind.length).toBe(4);
    for (const s of started) expect(s.run!.branch).toBe('ameide/calc-1');
    const waiting = (await h.acme.getWorkflowRun({ id: behind[0]!.run!.id })).run!;
    expect(waiting.status).toBe(RunStatus.QUEUED);
    expect(ids).toContain(waiting.queuedBehindRunId);

    const finished = await Promise.all(ids.map(async (id) => (await watchAll(h.acme, id), (await h.acme.getWorkflowRun({ id })).run!)));
    expect(finished.map((r) => r.status)).toEqual(Array(5).fill(RunStatus.COMPLETED));
    // In the order they started: each run's base is the head the previous one pushed.
    const order = [...finished].sort((a, b) => Number(a.startTime!.seconds - b.startTime!.seconds) || a.startTime!.nanos - b.startTime!.nanos);
    const main = git(origin, 'rev-parse', 'main');
    expect(order[0]!.summary!.baseCommit).toBe(main);
    for (let i = 1; i < 5; i++) expect(order[i]!.summary!.baseCommit).toBe(order[i - 1]!.summary!.headCommit);
    expect(git(origin, 'rev-parse', BRANCH)).toBe(order[4]!.summary!.headCommit);
    expect(git(origin, 'rev-list', '--count', `main..${BRANCH}`)).toBe('5');
    const notes = git(origin, 'show', `${BRANCH}:notes.txt`).split('\n');
    expect(notes).toEqual(order.map((r) => `line from ${r.id}`));
  });

  it('a run cancelled mid-agent does not block the rerun, and a queued run can be cancelled before it starts', async () => {
    await applySample(h.acme, origin, { agentCommand: 'sleep 300' });
    const { run: first } = await h.acme.startWorkflowRun({ definition: 'sample', workItems: [MULTIPLY] });
    for await (const res of h.acme.watchWorkflowRun({ id: first!.id })) {
      if (res.update?.kind === StatusUpdateKind.PHASE_STARTED && res.update.phase === Phase.AGENT) break;
    }
    const { run: queued } = await h.acme.startWorkflowRun({ definition: 'sample', workItems: [MULTIPLY] });
    expect(queued!.queuedBehindRunId).toBe(first!.id);
    const cancelledQueued = (await h.acme.cancelWorkflowRun({ id: queued!.id })).run!;
    expect(cancelledQueued.status).toBe(RunStatus.CANCELLED);

    await applySample(h.acme, origin, { agentCommand: 'echo "after the cancelled run" >> notes.txt' });
    const { run: rerun } = await h.acme.startWorkflowRun({ definition: 'sample', workItems: [MULTIPLY] });
    expect(rerun!.queuedBehindRunId).toBe(first!.id);
    await h.acme.cancelWorkflowRun({ id: first!.id });
    await watchAll(h.acme, first!.id);
    expect((await h.acme.getWorkflowRun({ id: first!.id })).run!.status).toBe(RunStatus.CANCELLED);

    await watchAll(h.acme, rerun!.id);
    const done = (await h.acme.getWorkflowRun({ id: rerun!.id })).run!;
    expect(done.status).toBe(RunStatus.COMPLETED);
    expect(git(origin, 'show', `${BRANCH}:notes.txt`).split('\n').at(-1)).toBe('after the cancelled run');
  });

  it('a start repeated with its request id returns the run the first call made, per tenant', async () => {
    await applySample(h.acme, origin, { agentCommand: 'echo "once" >> notes.txt' });
    const requestId = 'start-once-7f3c';
    const [a, b] = await Promise.all(
      [1, 2].map(() => h.acme.startWorkflowRun({ definition: 'sample', workItems: [{ ...MULTIPLY, id: 'CALC-9' }], requestId })),
    );
    expect(b!.run!.id).toBe(a!.run!.id);
    const again = await h.acme.startWorkflowRun({ definition: 'sample', workItems: [{ ...MULTIPLY, id: 'CALC-9' }], requestId });
    expect(again.run!.id).toBe(a!.run!.id);
    expect((await h.acme.listWorkflowRuns({ workItemId: 'CALC-9' })).runs.map((r) => r.id)).toEqual([a!.run!.id]);
    // The key is the tenant's own: another tenant using it starts its own run.
    await applySample(h.globex, sampleOrigin(h, 'globex'), { agentCommand: 'echo "once" >> notes.txt' });
    const theirs = await h.globex.startWorkflowRun({ definition: 'sample', workItems: [{ ...MULTIPLY, id: 'CALC-9' }], requestId });
    expect(theirs.run!.id).not.toBe(a!.run!.id);
    await Promise.all([watchAll(h.acme, a!.run!.id), watchAll(h.globex, theirs.run!.id)]);
    for (const [client, id] of [
      [h.acme, a!.run!.id],
      [h.globex, theirs.run!.id],
    ] as const) {
      expect((await client.getWorkflowRun({ id })).run!.status).toBe(RunStatus.COMPLETED);
    }
  });
});
