import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Phase, PhaseState, RunStatus } from '@ameide/contracts';
import { sandboxUserFor } from '../../services/workflows-runtime/src/guardrails/sandbox.js';
import { liveProcesses } from '../support/processes.js';
import { applySample, MULTIPLY, sampleOrigin, startHarness, watchAll, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ worker: true });
});
afterAll(() => h?.stop());

it('cancelling a run kills the running command, its children included, and ends CANCELLED', async () => {
  // The agent starts a child that ignores SIGTERM and then sleeps: only killing the whole sandbox
  // (its process group and PID namespace) stops both.
  await applySample(h.acme, sampleOrigin(h), {
    agentCommand: `(trap '' TERM; sleep 300) & echo started > "$HOME/agent.started"; sleep 300`,
  });
  const { run } = await h.acme.startWorkflowRun({ definition: 'sample', workItems: [MULTIPLY] });
  const runDir = join(h.dir, 'workspaces', 'runs', 'acme', run!.id);
  // The agent phase's own HOME (every step gets a fresh one).
  const marker = join(runDir, 'box', 'steps', 'agent', 'home', 'agent.started');
  const deadline = Date.now() + 60_000;
  while (!existsSync(marker) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  expect(existsSync(marker)).toBe(true);
  const { uid } = sandboxUserFor('acme');
  expect(liveProcesses((p) => p.uid === uid && p.text.includes(`AMEIDE_RUN_ID=${run!.id}`)).length).toBeGreaterThanOrEqual(2);

  await h.acme.cancelWorkflowRun({ id: run!.id });
  await watchAll(h.acme, run!.id);

  const done = (await h.acme.getWorkflowRun({ id: run!.id })).run!;
  expect(done.status).toBe(RunStatus.CANCELLED);
  expect(done.phases.find((p) => p.phase === Phase.AGENT)!.state).toBe(PhaseState.CANCELLED);
  expect(liveProcesses((p) => p.uid === uid && p.text.includes(`AMEIDE_RUN_ID=${run!.id}`))).toEqual([]);
  await expect(h.acme.cancelWorkflowRun({ id: run!.id })).rejects.toThrow(/already finished/);
});
