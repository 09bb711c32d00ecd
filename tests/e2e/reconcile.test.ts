import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunStatus } from '@ameide/contracts';
import { openDatabase, RunRepository, type Database } from '@ameide/db';
import { workflowIdForRun } from '@ameide/temporal';
import { applySample, COMPLETED_RUN_UPDATES, MULTIPLY, sampleOrigin, startHarness, watchAll, type Harness } from '../support/harness.js';

/**
 * A service that stops between storing a run and starting its workflow leaves a QUEUED run with no
 * workflow. Such a run is not lost: the service starts it later, and it can be cancelled meanwhile.
 */
describe('runs whose start was interrupted', () => {
  let h: Harness;
  let idle: Harness;
  let db: Database;
  let idleDb: Database;
  beforeAll(async () => {
    [h, idle] = await Promise.all([startHarness({ worker: true, serviceEnv: { AMEIDE_RECONCILE_SECONDS: '1' } }), startHarness()]);
    [db, idleDb] = await Promise.all([openDatabase(h.databaseUrl, { migrate: false }), openDatabase(idle.databaseUrl, { migrate: false })]);
  });
  afterAll(async () => {
    await Promise.all([db?.close(), idleDb?.close()]);
    await Promise.all([h?.stop(), idle?.stop()]);
  });

  /** What StartWorkflowRun stores before it starts the workflow, as if the service then stopped. */
  const strandedRun = async (harness: Harness, database: Database) => {
    await applySample(harness.acme, sampleOrigin(harness));
    const plan = (await harness.acme.createPlan({ definition: 'sample', workItems: [MULTIPLY] })).plan!;
    const id = randomUUID();
    await new RunRepository(database.db).insert({
      id,
      tenantId: 'acme',
      planId: plan.id,
      planVersion: plan.version,
      definitionId: plan.spec!.definitionId,
      workflowId: workflowIdForRun(id),
      status: 'RUN_STATUS_QUEUED',
      phase: 'PHASE_UNSPECIFIED',
      spec: { definitionName: 'sample', methodology: {}, workItemIds: [MULTIPLY.id], trigger: 'TRIGGER_MANUAL' },
      state: { phases: [] },
      annotations: {},
    });
    return id;
  };

  it('are started by the service a moment later and run to completion', async () => {
    const id = await strandedRun(h, db);
    const updates = await watchAll(h.acme, id);
    expect(updates.map((u) => Number(u.sequence))).toEqual(Array.from({ length: COMPLETED_RUN_UPDATES }, (_, i) => i + 1));
    expect((await h.acme.getWorkflowRun({ id })).run!.status).toBe(RunStatus.COMPLETED);
  });

  it('leave a run queued behind another run of its branch waiting until that run ends', async () => {
    await applySample(h.acme, sampleOrigin(h, 'lane'), { agentCommand: 'sleep 6 && echo first >> notes.txt' }, 'lane');
    const { run: first } = await h.acme.startWorkflowRun({ definition: 'lane', workItems: [MULTIPLY] });
    await applySample(h.acme, sampleOrigin(h, 'lane'), { agentCommand: 'echo second >> notes.txt' }, 'lane');
    const { run: second } = await h.acme.startWorkflowRun({ definition: 'lane', workItems: [MULTIPLY] });
    // Several passes of the reconciler (every second here) go by: the second run stays queued, without a workflow.
    await new Promise((r) => setTimeout(r, 3000));
    const waiting = (await h.acme.getWorkflowRun({ id: second!.id })).run!;
    expect(waiting.status).toBe(RunStatus.QUEUED);
    expect(waiting.queuedBehindRunId).toBe(first!.id);
    await expect(h.app.temporal.cancelRun(second!.workflowId)).resolves.toBe(false);
    await watchAll(h.acme, second!.id);
    const [a, b] = await Promise.all([first, second].map(async (r) => (await h.acme.getWorkflowRun({ id: r!.id })).run!));
    expect([a!.status, b!.status]).toEqual([RunStatus.COMPLETED, RunStatus.COMPLETED]);
    expect(b!.summary!.baseCommit).toBe(a!.summary!.headCommit);
  });

  it('can be cancelled before that, and then end CANCELLED', async () => {
    const id = await strandedRun(idle, idleDb);
    const res = await idle.acme.cancelWorkflowRun({ id });
    expect(res.run!.status).toBe(RunStatus.CANCELLED);
    expect((await idle.acme.getWorkflowRun({ id })).run!.status).toBe(RunStatus.CANCELLED);
    expect(await watchAll(idle.acme, id)).toEqual([]);
    await expect(idle.acme.cancelWorkflowRun({ id })).rejects.toThrow(/already finished/);
  });
});
