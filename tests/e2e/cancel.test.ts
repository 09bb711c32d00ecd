import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Phase, PhaseState, RunStatus } from '@ameide/contracts';
import { applySample, MULTIPLY, sampleOrigin, startHarness, watchAll, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ worker: true });
});
afterAll(() => h?.stop());

/** Running (a killed process whose parent is gone may linger as a zombie until init reaps it). */
const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

it('cancelling a run kills the running command, its children included, and ends CANCELLED', async () => {
  const pidFile = join(h.dir, 'agent.pids');
  // The agent starts a child that ignores SIGTERM and then sleeps: only killing the group stops both.
  await applySample(h.acme, sampleOrigin(h), {
    agentCommand: `(trap '' TERM; sleep 300) & echo "$$ $!" > ${pidFile}; sleep 300`,
  });
  const { run } = await h.acme.startWorkflowRun({ definition: 'sample', workItems: [MULTIPLY] });
  const deadline = Date.now() + 60_000;
  while (!existsSync(pidFile) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  const pids = readFileSync(pidFile, 'utf8').trim().split(' ').map(Number);
  expect(pids.every(alive)).toBe(true);

  await h.acme.cancelWorkflowRun({ id: run!.id });
  await watchAll(h.acme, run!.id);

  const done = (await h.acme.getWorkflowRun({ id: run!.id })).run!;
  expect(done.status).toBe(RunStatus.CANCELLED);
  expect(done.phases.find((p) => p.phase === Phase.AGENT)!.state).toBe(PhaseState.CANCELLED);
  expect(pids.some(alive)).toBe(false);
  await expect(h.acme.cancelWorkflowRun({ id: run!.id })).rejects.toThrow(/already finished/);
});
