import { describe, expect, it } from 'vitest';
import { Phase, PhaseState, RunStatus, StatusUpdateKind } from '@ameide/contracts';
import { git } from '@ameide/devstack';
import { applySample, COMPLETED_RUN_UPDATES, MULTIPLY, useHarnessWithOrigin, watchAll, type Harness } from '../support/harness.js';

/** Longer than the old delivery's whole retry window (30 attempts, about 128 s). */
const OUTAGE_MS = 180_000;

/**
 * Outages of the workflow service while runs go on: nothing the worker reports is lost, and the run's
 * outcome does not depend on whether the service was there to hear it. Slow (minutes): real outages.
 */
describe('a long outage of the workflow service', () => {
  let h: Harness;
  let origin: string;
  useHarnessWithOrigin((started) => ({ h, origin } = started));

  it(
    'loses no status update: the run completes during the outage and every update arrives, in order, once the service is back',
    async () => {
      await applySample(h.acme, origin, { agentCommand: 'sleep 3 && node "$AGENT_SCRIPT"' });
      const { run } = await h.acme.startWorkflowRun({ definition: 'sample', workItems: [MULTIPLY] });
      // Wait until the agent runs, then take the service away for longer than the old retry window.
      for await (const res of h.acme.watchWorkflowRun({ id: run!.id })) {
        if (res.update?.kind === StatusUpdateKind.PHASE_STARTED && res.update.phase === Phase.AGENT) break;
      }
      await h.stopService();
      const outageStarted = Date.now();
      // The work itself does not wait for the service: the branch is pushed during the outage.
      let pushedDuringOutage = false;
      while (Date.now() - outageStarted < OUTAGE_MS) {
        await new Promise((r) => setTimeout(r, 2000));
        try {
          git(origin, 'rev-parse', '--verify', 'refs/heads/ameide/calc-1');
          pushedDuringOutage = true;
        } catch {
          /* not yet */
        }
      }
      await h.startService();

      const updates = await watchAll(h.acme, run!.id);
      expect(pushedDuringOutage).toBe(true);
      expect(updates.map((u) => Number(u.sequence))).toEqual(Array.from({ length: COMPLETED_RUN_UPDATES }, (_, i) => i + 1));
      const done = (await h.acme.getWorkflowRun({ id: run!.id })).run!;
      expect(done.status).toBe(RunStatus.COMPLETED);
      expect(done.phases.map((p) => p.state)).toEqual(Array(7).fill(PhaseState.SUCCEEDED));
      expect(git(origin, 'rev-list', '--count', 'main..refs/heads/ameide/calc-1')).toBe('1');
    },
    OUTAGE_MS + 120_000,
  );
});
