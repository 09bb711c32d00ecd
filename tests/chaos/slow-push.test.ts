import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Phase, PhaseState, RunStatus, StatusUpdateKind } from '@ameide/contracts';
import { git } from '@ameide/devstack';
import { applySample, COMPLETED_RUN_UPDATES, MULTIPLY, sampleOrigin, startHarness, watchAll, type Harness } from '../support/harness.js';
import { liveProcesses } from '../support/processes.js';

/** An origin whose every push takes `seconds` (a pre-receive hook that logs the push, then waits). */
function slowOrigin(h: Harness, name: string, seconds: number): { origin: string; pushes: () => string[] } {
  const origin = sampleOrigin(h, name);
  const log = join(h.dir, `${name}.pushes`);
  const hook = join(origin, 'hooks', 'pre-receive');
  writeFileSync(hook, `#!/bin/sh\ncat >> '${log}'\nsleep ${seconds}\n`);
  chmodSync(hook, 0o755);
  return { origin, pushes: () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').filter(Boolean) : []) };
}

/** Pushes to a slow remote: the publish activity heartbeats through them, and a cancel stops them. Slow: minutes. */
describe('a slow push', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: true });
  });
  afterAll(() => h?.stop());

  it('of 100 s completes the run with one push, far beyond the 30 s heartbeat timeout', async () => {
    const { origin, pushes } = slowOrigin(h, 'slow', 100);
    await applySample(h.acme, origin);
    const { run } = await h.acme.startWorkflowRun({ definition: 'sample', workItems: [MULTIPLY] });
    const updates = await watchAll(h.acme, run!.id);
    expect(updates.map((u) => Number(u.sequence))).toEqual(Array.from({ length: COMPLETED_RUN_UPDATES }, (_, i) => i + 1));
    const done = (await h.acme.getWorkflowRun({ id: run!.id })).run!;
    expect(done.status).toBe(RunStatus.COMPLETED);
    const publish = done.phases.find((p) => p.phase === Phase.PUBLISH)!;
    expect(publish.state).toBe(PhaseState.SUCCEEDED);
    expect(Number(publish.durationMs)).toBeGreaterThan(100_000);
    // One attempt, one push: no second attempt ran beside the first.
    expect(pushes()).toHaveLength(1);
    expect(git(origin, 'rev-list', '--count', 'main..refs/heads/ameide/calc-1')).toBe('1');
  }, 300_000);

  it('is stopped by a cancel: the run ends CANCELLED at once and the branch is not pushed', async () => {
    const { origin, pushes } = slowOrigin(h, 'stuck', 600);
    await applySample(h.acme, origin);
    const { run } = await h.acme.startWorkflowRun({ definition: 'sample', workItems: [MULTIPLY] });
    for await (const res of h.acme.watchWorkflowRun({ id: run!.id })) {
      if (res.update?.kind === StatusUpdateKind.PHASE_STARTED && res.update.phase === Phase.PUBLISH) break;
    }
    const deadline = Date.now() + 60_000;
    while (!pushes().length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(pushes()).toHaveLength(1);

    const cancelled = Date.now();
    await h.acme.cancelWorkflowRun({ id: run!.id });
    await watchAll(h.acme, run!.id);
    const done = (await h.acme.getWorkflowRun({ id: run!.id })).run!;
    expect(done.status).toBe(RunStatus.CANCELLED);
    expect(done.phases.find((p) => p.phase === Phase.PUBLISH)!.state).toBe(PhaseState.CANCELLED);
    // Within a heartbeat or two, not after the push's 600 s.
    expect(Date.now() - cancelled).toBeLessThan(30_000);
    expect(() => git(origin, 'rev-parse', '--verify', '--quiet', 'refs/heads/ameide/calc-1')).toThrow();
    // The push was killed with everything it started (the remote's receive-pack and its hook run in the origin).
    expect(liveProcesses((p) => p.cwd === origin)).toEqual([]);
    // The handoff still carries the work.
    expect(done.summary?.handoffUri).toMatch(/handoff\.tar\.gz$/);
  }, 300_000);
});
