import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Phase, PhaseState, RunStatus, StatusUpdateKind, type StatusUpdate } from '@ameide/contracts';
import { git } from '@ameide/devstack';
import { Code, ConnectError, type WorkflowServiceClient } from '@ameide/sdk';
import { chaosOrigin, commandLine, processAlive, pushesOf, startChaosStack, type ChaosStack, type KillReport } from '../support/chaos-stack.js';
import { applySample, COMPLETED_RUN_UPDATES, MULTIPLY, refusal } from '../support/harness.js';

/**
 * Chaos with real processes: parts of a stack (its own Postgres, Temporal dev server, workflow
 * service and worker, see chaos-stack.ts) are SIGKILLed by PID in the middle of runs and relaunched.
 * Everything is judged from outside: the API, the stored status updates and the git origin. A run
 * must end with its correct status, its updates numbered 1..N without gaps or duplicates, one commit
 * on its branch and that branch pushed once.
 *
 * Two stacks, two suites run side by side (`concurrent` on the suites; the tests of each run one after
 * another): the kills, and a slow 3-minute Postgres outage. So the outage overlaps the kills, and this
 * file the other chaos file, within the suite's time.
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const seq = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
/** The work item the scripted agent does (multiply), under another id and so on another branch. */
const item = (id: string) => ({ ...MULTIPLY, id });
const branchOf = (id: string) => `ameide/${id.toLowerCase()}`;

/** Every update of a run, replayed from 0 and followed to its end, within `ms`. */
async function watchWithin(client: WorkflowServiceClient, id: string, ms: number): Promise<StatusUpdate[]> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), ms);
  const updates: StatusUpdate[] = [];
  try {
    for await (const res of client.watchWorkflowRun({ id, fromSequence: 0n }, { signal: ctl.signal })) updates.push(res.update!);
  } catch (err) {
    const run = (await client.getWorkflowRun({ id }).catch(() => undefined))?.run;
    throw new Error(
      `watching run ${id} ended after ${updates.length} updates (${ctl.signal.aborted ? `not finished within ${ms / 1000}s` : (err as Error).message}); ` +
        `status ${run ? RunStatus[run.status] : '?'}, phase ${run ? Phase[run.phase] : '?'}, last sequence ${run?.lastSequence}`,
    );
  } finally {
    clearTimeout(timer);
  }
  return updates;
}

/** Waits until the run has posted `kind` for `phase`. */
async function waitForUpdate(client: WorkflowServiceClient, id: string, kind: StatusUpdateKind, phase: Phase, ms = 180_000): Promise<void> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), ms);
  try {
    for await (const res of client.watchWorkflowRun({ id, fromSequence: 0n }, { signal: ctl.signal })) {
      if (res.update?.kind === kind && res.update.phase === phase) return;
    }
    throw new Error(`run ${id} ended without ${StatusUpdateKind[kind]} ${Phase[phase]}`);
  } finally {
    clearTimeout(timer);
  }
}

/** The PID of the sandboxed agent command (`sleep <seconds>` inside bubblewrap), once it runs. */
async function sandboxedSleep(s: ChaosStack, seconds: number): Promise<number> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const pid = s.descendants('worker').find((p) => commandLine(p) === `sleep\0${seconds}\0`);
    if (pid) return pid;
    if (Date.now() > deadline) throw new Error(`the agent's "sleep ${seconds}" did not start within 60s`);
    await sleep(200);
  }
}

/**
 * The run ended COMPLETED, as seen from outside: its updates (a watch from 0) are 1..N, N the final
 * RUN_FINISHED, and a second replay gives the same; every phase succeeded (or was skipped); its
 * branch holds one commit on top of main, the one the run reports, pushed once.
 */
async function expectCompleted(s: ChaosStack, origin: string, id: string, o: { updates?: number; withinMs?: number } = {}) {
  const updates = await watchWithin(s.acme, id, o.withinMs ?? 240_000);
  expect(updates.map((u) => Number(u.sequence))).toEqual(seq(updates.length));
  if (o.updates) expect(updates.length).toBe(o.updates);
  expect(updates.at(-1)!.kind).toBe(StatusUpdateKind.RUN_FINISHED);
  expect(updates.at(-1)!.runStatus).toBe(RunStatus.COMPLETED);
  expect(updates.filter((u) => u.kind === StatusUpdateKind.RUN_FINISHED)).toHaveLength(1);
  const replay = await watchWithin(s.acme, id, 30_000);
  expect(replay.map((u) => [Number(u.sequence), u.kind, u.phase, u.phaseState])).toEqual(
    updates.map((u) => [Number(u.sequence), u.kind, u.phase, u.phaseState]),
  );
  const run = (await s.acme.getWorkflowRun({ id })).run!;
  expect(run.status).toBe(RunStatus.COMPLETED);
  expect(Number(run.lastSequence)).toBe(updates.length);
  expect(run.phases.map((p) => p.phase)).toEqual([Phase.PREPARE, Phase.INSTALL, Phase.AGENT, Phase.TEST, Phase.PUBLISH, Phase.PULL_REQUEST, Phase.REPORT]);
  expect(run.phases.filter((p) => p.state !== PhaseState.SUCCEEDED && p.state !== PhaseState.SKIPPED)).toEqual([]);
  const branch = run.summary!.branch;
  expect(run.summary!.pushed).toBe(true);
  expect(git(origin, 'rev-list', '--count', `main..refs/heads/${branch}`)).toBe('1');
  expect(git(origin, 'rev-parse', `refs/heads/${branch}`)).toBe(run.summary!.headCommit);
  expect(pushesOf(origin, branch)).toBe(1);
  return { run, updates };
}

describe('real processes SIGKILLed by PID in the middle of runs, then relaunched', { concurrent: true }, () => {
  let s: ChaosStack;
  let origin: string;
  beforeAll(async () => {
    // The operator allows sandbox: none here, for the test that kills an unsandboxed command's worker.
    s = await startChaosStack({
      serviceEnv: { AMEIDE_RECONCILE_SECONDS: '2', AMEIDE_SANDBOX_ALLOW_NONE: 'true' },
      workerEnv: { AMEIDE_SANDBOX_ALLOW_NONE: 'true' },
    });
    origin = chaosOrigin(s);
    // The agent sleeps first, so a test can kill something while the agent phase runs.
    await applySample(s.acme, origin, { agentCommand: 'sleep 15 && node "$AGENT_SCRIPT"' }, 'slow-agent');
  });
  afterAll(() => s?.stop());

  it.sequential('a service credential of tenant globex forging status updates of an acme run is refused and changes nothing', async () => {
    const { run } = await s.acme.startWorkflowRun({ definition: 'slow-agent', workItems: [item('CALC-50')] });
    const id = run!.id;
    // Someone watches the run from its start, through the forgeries.
    const watching = watchWithin(s.acme, id, 240_000);
    await waitForUpdate(s.acme, id, StatusUpdateKind.PHASE_STARTED, Phase.AGENT);
    await sandboxedSleep(s, 15);
    const before = (await s.acme.getWorkflowRun({ id })).run!;
    const forgeries = [
      // The next update: the run failed.
      { runId: id, sequence: before.lastSequence + 1n, kind: StatusUpdateKind.RUN_FINISHED, runStatus: RunStatus.FAILED, message: 'forged: failed' },
      // An update stored already, told differently.
      { runId: id, sequence: 1n, kind: StatusUpdateKind.RUN_FINISHED, runStatus: RunStatus.CANCELLED, message: 'forged: cancelled' },
      // One far ahead, that a watcher would wait for.
      { runId: id, sequence: 99n, kind: StatusUpdateKind.PHASE_FINISHED, phase: Phase.PUBLISH, phaseState: PhaseState.SUCCEEDED, message: 'forged: pushed' },
    ];
    for (const update of forgeries) expect((await refusal(s.globexService.recordStatusUpdate({ update }))).code).toBe(Code.PermissionDenied);
    // Users of either tenant may not record updates at all.
    for (const user of [s.globex, s.acme]) expect((await refusal(user.recordStatusUpdate({ update: forgeries[0] }))).code).toBe(Code.PermissionDenied);

    const after = (await s.acme.getWorkflowRun({ id })).run!;
    expect([after.status, after.phase, after.error, after.lastSequence]).toEqual([RunStatus.RUNNING, Phase.AGENT, '', before.lastSequence]);
    const seen = await watching;
    expect(seen.map((u) => Number(u.sequence))).toEqual(seq(COMPLETED_RUN_UPDATES));
    expect(seen.filter((u) => u.message.startsWith('forged'))).toEqual([]);
    await expectCompleted(s, origin, id, { updates: COMPLETED_RUN_UPDATES });
    // Tenant globex does not even see the run.
    expect((await refusal(s.globex.getWorkflowRun({ id }))).code).toBe(Code.NotFound);
  });

  it.sequential('the worker, killed with its sandboxed agent during the agent phase and relaunched: the run completes', async () => {
    const { run } = await s.acme.startWorkflowRun({ definition: 'slow-agent', workItems: [item('CALC-10')] });
    await waitForUpdate(s.acme, run!.id, StatusUpdateKind.PHASE_STARTED, Phase.AGENT);
    const agent = await sandboxedSleep(s, 15);

    const killed = await s.kill('worker');
    // Its sandboxed commands run in sessions of their own, yet die with it.
    expect(killed.descendants).toContain(agent);
    expect(killed.survivors).toEqual([]);
    expect(processAlive(agent)).toBe(false);
    expect((await s.acme.getWorkflowRun({ id: run!.id })).run!.status).toBe(RunStatus.RUNNING);

    await s.start('worker');
    const { run: done, updates } = await expectCompleted(s, origin, run!.id, { updates: COMPLETED_RUN_UPDATES });
    // The agent phase was run again from the start on the new worker, and reported once.
    expect(updates.filter((u) => u.phase === Phase.AGENT).map((u) => u.kind)).toEqual([StatusUpdateKind.PHASE_STARTED, StatusUpdateKind.PHASE_FINISHED]);
    expect(done.phases.find((p) => p.phase === Phase.AGENT)!.outputTail).toContain('added multiply()');
    expect(git(origin, 'show', `${branchOf('CALC-10')}:src/calc.js`)).toContain('export function multiply(a, b)');
  });

  it.sequential(
    'the worker, killed after the agent appended a line: the retried agent starts from the checkout as it was, and the line is pushed once',
    async () => {
      await applySample(s.acme, origin, { agentCommand: 'echo "appended by the agent" >> README.md && git add README.md && sleep 16' }, 'append');
      const { run } = await s.acme.startWorkflowRun({ definition: 'append', workItems: [item('CALC-20')] });
      await waitForUpdate(s.acme, run!.id, StatusUpdateKind.PHASE_STARTED, Phase.AGENT);
      await sandboxedSleep(s, 16);
      await s.kill('worker');
      await s.start('worker');
      await expectCompleted(s, origin, run!.id, { updates: COMPLETED_RUN_UPDATES });
      const readme = git(origin, 'show', `${branchOf('CALC-20')}:README.md`).split('\n');
      expect(readme.filter((l) => l === 'appended by the agent')).toHaveLength(1);
    },
  );

  it.sequential('the worker of an unsandboxed command, killed: the command outlives it only until a worker starts again, and the retry is clean', async () => {
    await applySample(s.acme, origin, { agentCommand: 'echo "unsandboxed" >> README.md && sleep 17', guardrails: { sandbox: 'none' } }, 'unsandboxed');
    const { run } = await s.acme.startWorkflowRun({ definition: 'unsandboxed', workItems: [item('CALC-30')] });
    await waitForUpdate(s.acme, run!.id, StatusUpdateKind.PHASE_STARTED, Phase.AGENT);
    const deadline = Date.now() + 60_000;
    let agent: number | undefined;
    while (!(agent = s.descendants('worker').find((p) => commandLine(p) === 'sleep\u000017\u0000')) && Date.now() < deadline) await sleep(200);
    expect(agent).toBeDefined();
    // Nothing ties a command without a sandbox to the worker's life: it goes on after the worker died.
    const killed = await s.kill('worker', 'SIGKILL', { leaveSurvivors: true });
    expect(killed.survivors).toContain(agent);
    // The next worker to start stops it (its cgroup belonged to a worker that is gone), before it retries the phase.
    await s.start('worker');
    expect(processAlive(agent!)).toBe(false);
    await expectCompleted(s, origin, run!.id, { updates: COMPLETED_RUN_UPDATES });
    expect(
      git(origin, 'show', `${branchOf('CALC-30')}:README.md`)
        .split('\n')
        .filter((l) => l === 'unsandboxed'),
    ).toHaveLength(1);
  });

  it.sequential(
    'the worker, killed after its push landed but before it was acknowledged: the relaunched worker completes the run, pushing nothing new',
    async () => {
      // The origin acknowledges a push only after its post-receive hook, 20 s later.
      const slow = chaosOrigin(s, 'slow-ack');
      writeFileSync(join(slow, 'hooks', 'post-receive'), '#!/bin/sh\nsleep 20\n', { mode: 0o755 });
      await applySample(s.acme, slow, {}, 'slow-ack');
      const { run } = await s.acme.startWorkflowRun({ definition: 'slow-ack', workItems: [item('CALC-60')] });
      for (const deadline = Date.now() + 120_000; pushesOf(slow, branchOf('CALC-60')) === 0; await sleep(100)) {
        if (Date.now() > deadline) throw new Error('no push within 120s');
      }
      const pushed = git(slow, 'rev-parse', `refs/heads/${branchOf('CALC-60')}`);
      await s.kill('worker');
      await s.start('worker');
      // The retried publish makes the same commit (its date comes from the workflow) and finds it pushed.
      const { run: done } = await expectCompleted(s, slow, run!.id, { updates: COMPLETED_RUN_UPDATES });
      expect(done.summary!.headCommit).toBe(pushed);
    },
  );

  it.sequential(
    'the workflow service, killed during a burst of 20 StartWorkflowRun calls and relaunched: retried with their request ids, every item has one run, and it ends',
    async () => {
      // Each run writes its id into notes.txt on a branch of its own; the test finds it there.
      await applySample(
        s.acme,
        origin,
        { installCommand: '', agentCommand: 'echo "$AMEIDE_RUN_ID $AMEIDE_WORK_ITEM_IDS" >> notes.txt', testCommand: 'grep -q "$AMEIDE_RUN_ID" notes.txt' },
        'burst',
      );
      const items = Array.from({ length: 20 }, (_, i) => `CALC-${101 + i}`);
      let answered = 0;
      let killing: Promise<KillReport> | undefined;
      const outcomes = await Promise.all(
        items.map(async (id, i) => {
          await sleep(i * 40);
          try {
            const { run } = await s.acme.startWorkflowRun({
              definition: 'burst',
              workItems: [{ id, title: `Note ${id}`, description: 'Add a note.' }],
              requestId: `burst-${id}`,
            });
            // The service dies the moment the fifth start is answered: later calls are in flight or not yet made.
            if (++answered === 5) killing = s.kill('service');
            return { id, runId: run!.id };
          } catch (err) {
            return { id, error: ConnectError.from(err) };
          }
        }),
      );
      expect(killing).toBeDefined();
      expect((await killing!).survivors).toEqual([]);
      const started = outcomes.filter((o) => o.runId);
      const failed = outcomes.filter((o) => o.error);
      expect(started.length).toBeGreaterThanOrEqual(5);
      expect(failed.length).toBeGreaterThan(0);
      // A call the dead service could not answer fails with a connection error: refused (unavailable), or
      // cut in flight (the client reports aborted, or internal for its own write to the closed socket,
      // EPIPE). Never as an answer of the service.
      for (const o of failed) {
        if (o.error!.code === Code.Unavailable) continue;
        const cut = [o.id, Code[o.error!.code], o.error!.rawMessage];
        if (o.error!.code === Code.Internal) expect(cut).toEqual([o.id, 'Internal', expect.stringMatching(/^write EPIPE$/)]);
        else expect(cut).toEqual([o.id, 'Aborted', expect.stringMatching(/socket hang up|ECONNRESET/)]);
      }
      // Down for a moment longer, then back on its port.
      await sleep(3000);
      await s.start('service');

      // Every failed call is sent again with its request id: a call that had made its run gets that run,
      // one that had not makes it now. An answered call sent again gets its run too.
      const retried = await Promise.all(
        outcomes.map(async (o) => {
          const { run } = await s.acme.startWorkflowRun({
            definition: 'burst',
            workItems: [{ id: o.id, title: `Note ${o.id}`, description: 'Add a note.' }],
            requestId: `burst-${o.id}`,
          });
          if (o.runId) expect(run!.id).toBe(o.runId);
          return { ...o, runId: run!.id };
        }),
      );
      // Exactly one run per item, and each completes.
      await Promise.all(
        retried.map(async (o) => {
          const runs = (await s.acme.listWorkflowRuns({ workItemId: o.id })).runs;
          expect(runs.map((r) => r.id)).toEqual([o.runId]);
          const { run } = await expectCompleted(s, origin, o.runId, { updates: COMPLETED_RUN_UPDATES - 1, withinMs: 300_000 });
          expect(git(origin, 'show', `${run.summary!.branch}:notes.txt`)).toBe(`${run.id} ${o.id}`);
        }),
      );
      // None is left waiting or running.
      expect((await s.acme.listWorkflowRuns({ statuses: [RunStatus.QUEUED, RunStatus.RUNNING] })).runs).toEqual([]);
    },
  );

  it.sequential('the Temporal dev server, killed mid-run and relaunched on its port and db file: the run completes', async () => {
    const { run } = await s.acme.startWorkflowRun({ definition: 'slow-agent', workItems: [item('CALC-40')] });
    await waitForUpdate(s.acme, run!.id, StatusUpdateKind.PHASE_STARTED, Phase.AGENT);
    await sandboxedSleep(s, 15);
    const killed = await s.kill('temporal');
    expect(killed.survivors).toEqual([]);
    const outage = Date.now();
    // What the service keeps itself goes on; a run started now is stored, answered QUEUED within
    // seconds, and waits for Temporal.
    expect((await s.acme.getWorkflowRun({ id: run!.id })).run!.status).toBe(RunStatus.RUNNING);
    const asked = Date.now();
    const { run: queued } = await s.acme.startWorkflowRun({ definition: 'slow-agent', workItems: [item('CALC-41')] });
    expect(Date.now() - asked).toBeLessThan(15_000);
    expect(queued!.status).toBe(RunStatus.QUEUED);
    // The agent command ends while Temporal is away.
    await sleep(Math.max(0, 20_000 - (Date.now() - outage)));
    await s.start('temporal');

    // The workflow's history survived the kill: the run goes on where it was.
    await expectCompleted(s, origin, run!.id, { updates: COMPLETED_RUN_UPDATES });
    // The run started during the outage gets its workflow once Temporal is back, and completes.
    await expectCompleted(s, origin, queued!.id, { updates: COMPLETED_RUN_UPDATES });
    expect((await s.acme.listWorkflowRuns({ workItemId: 'CALC-41' })).runs.map((r) => r.id)).toEqual([queued!.id]);
  });
});

/** Longer than any retry window of a status update (capped at 30 s between attempts). */
const POSTGRES_OUTAGE_MS = 180_000;

describe('slow: Postgres SIGKILLed mid-run and back after a 3-minute outage', { concurrent: true }, () => {
  let s: ChaosStack;
  let origin: string;
  beforeAll(async () => {
    s = await startChaosStack();
    origin = chaosOrigin(s);
  });
  afterAll(() => s?.stop());

  it.sequential(
    'the run completes and no update is lost; meanwhile the API answers unavailable, never internal',
    async () => {
      await applySample(s.acme, origin, { agentCommand: 'sleep 3 && node "$AGENT_SCRIPT"' });
      const { run } = await s.acme.startWorkflowRun({ definition: 'sample', workItems: [MULTIPLY] });
      const id = run!.id;
      await waitForUpdate(s.acme, id, StatusUpdateKind.PHASE_STARTED, Phase.AGENT);
      const killed = await s.kill('postgres');
      expect(killed.survivors).toEqual([]);
      const outage = Date.now();

      // Every kind of call, again and again through the outage.
      const probes: Record<string, () => Promise<unknown>> = {
        get: () => s.acme.getWorkflowRun({ id }),
        list: () => s.acme.listWorkflowRuns({}),
        start: () => s.acme.startWorkflowRun({ definition: 'sample', workItems: [{ ...MULTIPLY, id: 'CALC-2' }] }),
        watch: async () => {
          for await (const res of s.acme.watchWorkflowRun({ id, fromSequence: 0n })) void res;
        },
        apply: () => applySample(s.acme, origin, {}, 'during-outage'),
        cancel: () => s.acme.cancelWorkflowRun({ id }),
        record: () => s.service.recordStatusUpdate({ update: { runId: id, sequence: 99n, kind: StatusUpdateKind.RUN_STARTED } }),
      };
      const answers: string[] = [];
      let pushedDuringOutage = false;
      while (Date.now() - outage < POSTGRES_OUTAGE_MS) {
        for (const [name, call] of Object.entries(probes)) {
          const err = await refusal(call());
          answers.push(`${name}: ${Code[err.code]}${err.code === Code.Unavailable ? '' : ` (${err.rawMessage})`}`);
        }
        pushedDuringOutage ||= pushesOf(origin, 'ameide/calc-1') > 0;
        await sleep(10_000);
      }
      // The service stayed up all along; Postgres comes back on its port and data.
      expect(s.pid('service')).toBeDefined();
      await s.start('postgres');

      expect(answers.length).toBeGreaterThan(7 * 10);
      expect(answers.filter((a) => !a.endsWith(': Unavailable'))).toEqual([]);
      // The work does not wait for the database: the branch was pushed during the outage.
      expect(pushedDuringOutage).toBe(true);
      await expectCompleted(s, origin, id, { updates: COMPLETED_RUN_UPDATES });
      // Nothing the refused calls asked for happened.
      expect((await s.acme.listWorkflowRuns({})).runs.map((r) => r.id)).toEqual([id]);
    },
    POSTGRES_OUTAGE_MS + 240_000,
  );
});
