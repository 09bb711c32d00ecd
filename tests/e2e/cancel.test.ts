import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Phase, PhaseState, RunStatus } from '@ameide/contracts';
import { sandboxUserFor } from '../../services/workflows-runtime/src/guardrails/sandbox.js';
import { applySample, MULTIPLY, sampleOrigin, startHarness, watchAll, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ worker: true });
});
afterAll(() => h?.stop());

/** Live (non-zombie) processes of a user working in `dir` (other runs of the tenant may be running). */
function processesOf(uid: number, dir: string): number[] {
  const out: number[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      if (Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]) !== uid || /^State:\s+Z/m.test(status)) continue;
      if (readlinkSync(`/proc/${pid}/cwd`).startsWith(dir)) out.push(Number(pid));
    } catch {
      /* gone */
    }
  }
  return out;
}

it('cancelling a run kills the running command, its children included, and ends CANCELLED', async () => {
  // The agent starts a child that ignores SIGTERM and then sleeps: only killing the whole sandbox
  // (its process group and PID namespace) stops both.
  await applySample(h.acme, sampleOrigin(h), {
    agentCommand: `(trap '' TERM; sleep 300) & echo started > "$HOME/agent.started"; sleep 300`,
  });
  const { run } = await h.acme.startWorkflowRun({ definition: 'sample', workItems: [MULTIPLY] });
  const runDir = join(h.dir, 'workspaces', 'runs', 'acme', run!.id);
  const marker = join(runDir, 'tmp', 'agent.started');
  const deadline = Date.now() + 60_000;
  while (!existsSync(marker) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  const { uid } = sandboxUserFor('acme');
  expect(processesOf(uid, runDir).length).toBeGreaterThanOrEqual(2);

  await h.acme.cancelWorkflowRun({ id: run!.id });
  await watchAll(h.acme, run!.id);

  const done = (await h.acme.getWorkflowRun({ id: run!.id })).run!;
  expect(done.status).toBe(RunStatus.CANCELLED);
  expect(done.phases.find((p) => p.phase === Phase.AGENT)!.state).toBe(PhaseState.CANCELLED);
  expect(processesOf(uid, runDir)).toEqual([]);
  await expect(h.acme.cancelWorkflowRun({ id: run!.id })).rejects.toThrow(/already finished/);
});
