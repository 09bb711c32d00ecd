import { execFileSync } from 'node:child_process';
import { describe, expect, inject, it } from 'vitest';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { ExecutionState, Phase, RunStatus, StatusUpdateKind } from '@ameide/contracts';
import { sandboxUserFor } from '../../services/workflows-runtime/src/guardrails/sandbox.js';
import { liveProcesses } from '../support/processes.js';
import { applySample, MULTIPLY, useHarnessWithOrigin, watchAll, type Harness } from '../support/harness.js';

/** What `runs get` tells about a run in progress: whether anything executes it, from Temporal. */
describe('a run in progress', () => {
  let h: Harness;
  let origin: string;
  useHarnessWithOrigin((started) => ({ h, origin } = started), { worker: false });

  it('reads as waiting for a worker while no worker polls, and as executing, with a recent heartbeat, once one does', async () => {
    await applySample(h.acme, origin, { agentCommand: 'sleep 8 && node "$AGENT_SCRIPT"' });
    const { run } = await h.acme.startWorkflowRun({ definition: 'sample', workItems: [MULTIPLY] });
    await new Promise((r) => setTimeout(r, 1500));
    const waiting = (await h.acme.getWorkflowRun({ id: run!.id })).run!;
    expect(waiting.status).toBe(RunStatus.QUEUED);
    expect(waiting.execution?.state).toBe(ExecutionState.WAITING_FOR_WORKER);
    expect(Date.now() - timestampDate(waiting.execution!.waitingSinceTime!).getTime()).toBeGreaterThan(1000);

    await h.startWorker();
    for await (const res of h.acme.watchWorkflowRun({ id: run!.id })) {
      if (res.update?.kind === StatusUpdateKind.PHASE_STARTED && res.update.phase === Phase.AGENT) break;
    }
    await new Promise((r) => setTimeout(r, 5500));
    const executing = (await h.acme.getWorkflowRun({ id: run!.id })).run!;
    expect(executing.execution?.state).toBe(ExecutionState.EXECUTING);
    expect(executing.execution!.step).toBe('runCommandPhase');
    expect(executing.execution!.worker).not.toBe('');
    // Commands heartbeat every few seconds: the last beat is recent, later than the phase's start.
    expect(Date.now() - timestampDate(executing.execution!.lastHeartbeatTime!).getTime()).toBeLessThan(10_000);

    await watchAll(h.acme, run!.id);
    const done = (await h.acme.getWorkflowRun({ id: run!.id })).run!;
    expect(done.status).toBe(RunStatus.COMPLETED);
    expect(done.execution).toBeUndefined();
  });

  it('whose workflow an operator terminates in Temporal ends FAILED saying so, and the next run of its branch starts', async () => {
    await applySample(h.acme, origin, { agentCommand: 'sleep 300' });
    const { run } = await h.acme.startWorkflowRun({ definition: 'sample', workItems: [MULTIPLY] });
    for await (const res of h.acme.watchWorkflowRun({ id: run!.id })) {
      if (res.update?.kind === StatusUpdateKind.PHASE_STARTED && res.update.phase === Phase.AGENT) break;
    }
    await applySample(h.acme, origin, { agentCommand: 'echo after >> notes.txt' });
    const { run: next } = await h.acme.startWorkflowRun({ definition: 'sample', workItems: [MULTIPLY] });
    expect(next!.queuedBehindRunId).toBe(run!.id);

    execFileSync(inject('temporalCli'), [
      'workflow',
      'terminate',
      '--address',
      inject('temporalAddress'),
      '--workflow-id',
      run!.workflowId,
      '--reason',
      'stuck, stopped by the operator',
    ]);
    const ended = (await h.acme.getWorkflowRun({ id: run!.id })).run!;
    expect(ended.status).toBe(RunStatus.FAILED);
    expect(ended.error).toBe("the run's workflow was terminated in Temporal: stuck, stopped by the operator");
    // The agent's command does not outlive its workflow: the worker's next heartbeat learns it is gone.
    const { uid } = sandboxUserFor('acme');
    const deadline = Date.now() + 30_000;
    while (liveProcesses((p) => p.uid === uid && p.text.includes(`AMEIDE_RUN_ID=${run!.id}`)).length && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 500));
    expect(liveProcesses((p) => p.uid === uid && p.text.includes(`AMEIDE_RUN_ID=${run!.id}`))).toEqual([]);
    // Watchers from the start end at the last update there is.
    const updates = await watchAll(h.acme, run!.id);
    expect(updates.map((u) => Number(u.sequence))).toEqual(Array.from({ length: updates.length }, (_, i) => i + 1));

    await watchAll(h.acme, next!.id);
    expect((await h.acme.getWorkflowRun({ id: next!.id })).run!.status).toBe(RunStatus.COMPLETED);
  });
});
