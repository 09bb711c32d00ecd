import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { Phase, PhaseState, RunStatus, StatusUpdateKind, StatusUpdateSchema } from '@ameide/contracts';
import { openDatabase, RunRepository, type Database, type RunProgress } from '@ameide/db';
import { applySample, startHarness, type Harness } from '../../../../tests/support/harness.js';
import { statusUpdateToJson } from '../../src/mapping.js';
import { foldStatusUpdate } from '../../src/runs/fold.js';

type Update = Omit<MessageInitShape<typeof StatusUpdateSchema>, '$typeName' | 'runId' | 'sequence'>;

/** How runs are stored: status updates applied in SQL as folding them does, and the list's query plans. */
describe('run store', () => {
  let h: Harness;
  let database: Database;
  let repo: RunRepository;
  beforeAll(async () => {
    h = await startHarness();
    database = await openDatabase(h.databaseUrl, { migrate: false, max: 2 });
    repo = new RunRepository(database.db);
  });
  afterAll(async () => {
    await database?.close();
    await h?.stop();
  });

  it('changes a run through RecordStatusUpdate exactly as folding the same updates in memory does', async () => {
    await applySample(h.acme, '/srv/repos/store.git', {}, 'store');
    const run = (await h.acme.startWorkflowRun({ definition: 'store' })).run!;
    const t = (s: number) => ({ seconds: BigInt(1_800_000_000 + s), nanos: 250_000_000 });
    const updates: Update[] = [
      { kind: StatusUpdateKind.PHASE_STARTED, phase: Phase.PREPARE, time: t(1) },
      { kind: StatusUpdateKind.RUN_STARTED, runStatus: RunStatus.RUNNING, time: t(2) },
      { kind: StatusUpdateKind.PHASE_FINISHED, phase: Phase.PREPARE, exitCode: 0, durationMs: 1500n, outputTail: 'cloned\n', time: t(3) },
      { kind: StatusUpdateKind.PHASE_STARTED, phase: Phase.TEST, time: t(4) },
      { kind: StatusUpdateKind.PHASE_FINISHED, phase: Phase.TEST, phaseState: PhaseState.FAILED, exitCode: 1, outputTail: 'not ok 1\n', time: t(5) },
      { kind: StatusUpdateKind.PHASE_STARTED, phase: Phase.TEST, time: t(6) },
      // No exit code nor output this time: folding drops the earlier ones from the phase.
      { kind: StatusUpdateKind.PHASE_FINISHED, phase: Phase.TEST, durationMs: 20n, time: t(7) },
      { kind: StatusUpdateKind.PREVIEW_LIVE, summary: { previewUrl: 'http://p', branch: 'b' }, time: t(8) },
      { kind: StatusUpdateKind.PHASE_FINISHED, phase: Phase.PUBLISH, summary: { pushed: true, headCommit: 'abc', filesChanged: 2 }, time: t(9) },
      { kind: StatusUpdateKind.RUN_FINISHED, runStatus: RunStatus.FAILED, phase: Phase.PUBLISH, message: 'push refused', time: t(10) },
      // After the end: the phases still change, the run's status, phase and times do not.
      { kind: StatusUpdateKind.PHASE_STARTED, phase: Phase.REPORT, time: t(11) },
      { kind: StatusUpdateKind.RUN_FINISHED, runStatus: RunStatus.COMPLETED, message: 'late', time: t(12) },
      { kind: StatusUpdateKind.RUN_STARTED, time: t(13) },
    ];
    const stored = async (): Promise<RunProgress> => {
      const row = (await repo.get(undefined, run.id))!;
      return { status: row.status, phase: row.phase, state: row.state, startedAt: row.startedAt, finishedAt: row.finishedAt };
    };
    let expected = await stored();
    let sequence = 0n;
    for (const u of updates) {
      const update = { ...u, runId: run.id, sequence: ++sequence };
      expect((await h.service.recordStatusUpdate({ update })).duplicate).toBe(false);
      expected = foldStatusUpdate(expected, statusUpdateToJson(create(StatusUpdateSchema, update)));
      expect(JSON.parse(JSON.stringify(await stored()))).toEqual(JSON.parse(JSON.stringify(expected)));
    }
    // A repeated sequence changes nothing.
    expect(
      (await h.service.recordStatusUpdate({ update: { runId: run.id, sequence: 3n, kind: StatusUpdateKind.PHASE_STARTED, phase: Phase.AGENT } })).duplicate,
    ).toBe(true);
    expect(JSON.parse(JSON.stringify(await stored()))).toEqual(JSON.parse(JSON.stringify(expected)));
    const row = (await repo.get(undefined, run.id))!;
    expect(row.lastSequence).toBe(updates.length);
    const followups = await database.pool.query<{ event: string }>('select event from run_followups where run_id = $1 order by event', [run.id]);
    expect(followups.rows.map((r) => r.event)).toEqual(['finished', 'preview_live']);
    // The list's basic view reads what Postgres computed as the state was written: the same state, its phases without their output tails.
    const list = (view: 'basic' | 'full') => repo.list(row.tenantId, { statuses: [], definitionId: row.definitionId, limit: 1, view });
    const [basic] = await list('basic');
    const [full] = await list('full');
    expect(full!.state.phases.find((p) => p.phase === 'PHASE_PREPARE')!.outputTail).toBe('cloned\n');
    const withoutTails = { ...row.state, phases: row.state.phases.map(({ outputTail, ...p }) => (void outputTail, p)) };
    expect(JSON.parse(JSON.stringify(basic!.state))).toEqual(JSON.parse(JSON.stringify(withoutTails)));
    expect(JSON.parse(JSON.stringify(full!.state))).toEqual(JSON.parse(JSON.stringify(row.state)));
  });

  it('reads every filter of the run list from an index in list order, with no scan of all runs', async () => {
    await applySample(h.acme, '/srv/repos/plans.git', {}, 'plans');
    const template = (await h.acme.startWorkflowRun({ definition: 'plans', workItems: [{ id: 'W-0', title: 't' }] })).run!;
    const other = await applySample(h.acme, '/srv/repos/plans.git', {}, 'plans-2');
    // 20,000 runs over 2,000 work items, and one work item with a quarter of them (the old plan's misestimate).
    await database.pool.query(
      `insert into runs (id, tenant_id, plan_id, plan_version, definition_id, workflow_id, status, phase, spec, state, created_at)
       select gen_random_uuid(), r.tenant_id, r.plan_id, r.plan_version, case when i % 2 = 0 then r.definition_id else $2::uuid end,
              'plans-' || i, (array['RUN_STATUS_COMPLETED','RUN_STATUS_FAILED','RUN_STATUS_CANCELLED','RUN_STATUS_COMPLETED'])[1 + i % 4], r.phase,
              jsonb_set(r.spec, '{workItemIds}', jsonb_build_array(case when i % 4 = 0 then 'W-BIG' else 'W-' || (i % 2000) end)),
              r.state, r.created_at - make_interval(secs => i)
       from runs r, generate_series(1, 20000) i where r.id = $1`,
      [template.id, other.id],
    );
    await database.pool.query('analyze runs; analyze run_work_items');
    const filters = [
      { statuses: [], index: 'runs_tenant_created_id_idx' },
      { statuses: ['RUN_STATUS_FAILED'], index: 'runs_tenant_status_created_idx' },
      { statuses: [], definitionId: other.id, index: 'runs_tenant_definition_created_idx' },
      { statuses: [], workItemId: 'W-42', index: 'run_work_items_list_idx' },
      { statuses: [], workItemId: 'W-BIG', index: 'run_work_items_list_idx' },
      { statuses: [], workItemId: 'W-none', index: 'run_work_items_list_idx' },
    ];
    for (const { index, ...f } of filters) {
      for (const after of [undefined, { createdAt: new Date(Date.now() - 3_600_000).toISOString(), id: template.id }]) {
        const q = repo.listQuery('acme', { ...f, limit: 101, after }).toSQL();
        const plan = (await database.pool.query<{ 'QUERY PLAN': string }>(`explain (analyze, format text) ${q.sql}`, q.params)).rows
          .map((r) => r['QUERY PLAN'])
          .join('\n');
        expect(plan, plan).toContain(index);
        expect(plan, plan).not.toMatch(/Seq Scan on runs|Bitmap Heap Scan on runs|Sort/);
        if (f.workItemId !== 'W-none') expect((await repo.list('acme', { ...f, limit: 101, after })).length).toBeGreaterThan(0);
      }
    }
  });
});
