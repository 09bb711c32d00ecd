import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import { Phase, PhaseState, RunStatus, StatusUpdateKind, StatusUpdateSchema } from '@ameide/contracts';
import { createWorkflowServiceClient } from '@ameide/sdk';
import { openDatabase, RunRepository, type Database, type RunProgress } from '@ameide/db';
import { applySample, startHarness, watchAll, type Harness } from '../../../../tests/support/harness.js';
import { statusUpdateToJson } from '../../src/mapping.js';
import { foldStatusUpdate } from '../../src/runs/fold.js';

type Update = Omit<MessageInitShape<typeof StatusUpdateSchema>, '$typeName' | 'runId' | 'sequence'>;

const t = (s: number) => ({ seconds: BigInt(1_800_000_000 + s), nanos: 250_000_000 });

/** A run's updates as the worker sends them: phases, a preview, the end, and updates after the end. */
const UPDATES: Update[] = [
  { kind: StatusUpdateKind.PHASE_STARTED, phase: Phase.PREPARE, time: t(1) },
  { kind: StatusUpdateKind.RUN_STARTED, runStatus: RunStatus.RUNNING, time: t(2) },
  { kind: StatusUpdateKind.PHASE_FINISHED, phase: Phase.PREPARE, exitCode: 0, durationMs: 1500n, outputTail: 'cloned\n', time: t(3) },
  { kind: StatusUpdateKind.PHASE_STARTED, phase: Phase.TEST, time: t(4) },
  { kind: StatusUpdateKind.PHASE_FINISHED, phase: Phase.TEST, phaseState: PhaseState.FAILED, exitCode: 1, outputTail: 'not ok 1\n', time: t(5) },
  { kind: StatusUpdateKind.PREVIEW_LIVE, summary: { previewUrl: 'http://p', branch: 'b' }, time: t(6) },
  { kind: StatusUpdateKind.PHASE_FINISHED, phase: Phase.PUBLISH, summary: { pushed: true, headCommit: 'abc', filesChanged: 2 }, time: t(7) },
  { kind: StatusUpdateKind.RUN_FINISHED, runStatus: RunStatus.FAILED, phase: Phase.PUBLISH, message: 'push refused', time: t(8) },
  { kind: StatusUpdateKind.PHASE_STARTED, phase: Phase.REPORT, time: t(9) },
];

/** RecordStatusUpdates against a real Postgres: all or nothing, in order, the same as one at a time. */
describe('RecordStatusUpdates', () => {
  let h: Harness;
  let database: Database;
  let repo: RunRepository;
  beforeAll(async () => {
    h = await startHarness();
    database = await openDatabase(h.databaseUrl, { migrate: false, max: 2 });
    repo = new RunRepository(database.db);
    await applySample(h.acme, '/srv/repos/batch.git', {}, 'batch');
  });
  afterAll(async () => {
    await database?.close();
    await h?.stop();
  });

  const refusal = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (err) {
      return ConnectError.from(err);
    }
    throw new Error('expected the call to fail');
  };
  const newRun = async () => (await h.acme.startWorkflowRun({ definition: 'batch' })).run!;
  const numbered = (runId: string, updates: Update[], from = 1n) => updates.map((u, i) => ({ ...u, runId, sequence: from + BigInt(i) }));
  /** What a run's stored row, updates and follow-ups hold (JSON, to compare). */
  const stored = async (runId: string) => {
    const row = (await repo.get(undefined, runId))!;
    const progress: RunProgress = { status: row.status, phase: row.phase, state: row.state, startedAt: row.startedAt, finishedAt: row.finishedAt };
    const updates = await database.pool.query<{ sequence: number; kind: string }>(
      'select sequence::int as sequence, kind from status_updates where run_id = $1 order by sequence',
      [runId],
    );
    const followups = await database.pool.query<{ event: string }>('select event from run_followups where run_id = $1 order by event', [runId]);
    return JSON.parse(JSON.stringify({ progress, lastSequence: row.lastSequence, updates: updates.rows, followups: followups.rows.map((r) => r.event) })) as {
      progress: RunProgress;
      lastSequence: number;
      updates: Array<{ sequence: number; kind: string }>;
      followups: string[];
    };
  };

  it('stores a batch in order, as storing its updates one at a time and folding them does; watchers see every update', async () => {
    const batched = await newRun();
    const single = await newRun();
    const initial = (await stored(batched.id)).progress;
    const watching = watchAll(h.acme, batched.id);
    await new Promise((r) => setTimeout(r, 300));

    // The first updates in one call, the rest (the end and after) in a second one.
    const updates = numbered(batched.id, UPDATES);
    expect((await h.service.recordStatusUpdates({ updates: updates.slice(0, 5) })).duplicate).toEqual([false, false, false, false, false]);
    expect((await h.service.recordStatusUpdates({ updates: updates.slice(5) })).duplicate).toEqual([false, false, false, false]);
    for (const update of numbered(single.id, UPDATES)) expect((await h.service.recordStatusUpdate({ update })).duplicate).toBe(false);

    const afterBatch = await stored(batched.id);
    const oneAtATime = await stored(single.id);
    expect(afterBatch).toEqual(oneAtATime);
    let expected = initial;
    for (const u of updates) expected = foldStatusUpdate(expected, statusUpdateToJson(create(StatusUpdateSchema, u)));
    expect(afterBatch.progress).toEqual(JSON.parse(JSON.stringify(expected)));
    expect(afterBatch.progress.status).toBe('RUN_STATUS_FAILED');
    expect(afterBatch.updates.map((u) => u.sequence)).toEqual(UPDATES.map((_, i) => i + 1));
    expect(afterBatch.lastSequence).toBe(UPDATES.length);
    expect(afterBatch.followups).toEqual(['finished', 'preview_live']);

    const watched = await Promise.race([watching, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 10_000))]);
    expect(watched).not.toBe('hung');
    expect((watched as Array<{ sequence: bigint }>).map((u) => Number(u.sequence))).toEqual(UPDATES.map((_, i) => i + 1));

    // The same batch again: every update a duplicate, nothing changes (a changed payload included).
    const again = numbered(batched.id, UPDATES).map((u) => ({ ...u, message: 'changed' }));
    expect((await h.service.recordStatusUpdates({ updates: again })).duplicate).toEqual(UPDATES.map(() => true));
    expect(await stored(batched.id)).toEqual(afterBatch);
    // Partly new: the stored ones are duplicates, the new one is stored after them.
    const tail = numbered(batched.id, [...UPDATES.slice(-2), { kind: StatusUpdateKind.PHASE_FINISHED, phase: Phase.REPORT, time: t(10) }], 8n);
    expect((await h.service.recordStatusUpdates({ updates: tail })).duplicate).toEqual([true, true, false]);
    expect((await stored(batched.id)).lastSequence).toBe(10);
  });

  it('folds a batch into a run stored without a list of phases as storing the updates one at a time does', async () => {
    const batched = await newRun();
    const single = await newRun();
    await database.pool.query(`update runs set state = '{}'::jsonb where id = any($1::uuid[])`, [[batched.id, single.id]]);
    expect((await h.service.recordStatusUpdates({ updates: numbered(batched.id, UPDATES) })).duplicate).toEqual(UPDATES.map(() => false));
    for (const update of numbered(single.id, UPDATES)) expect((await h.service.recordStatusUpdate({ update })).duplicate).toBe(false);
    const afterBatch = await stored(batched.id);
    expect(afterBatch).toEqual(await stored(single.id));
    expect(afterBatch.progress.state.phases.map((p) => p.phase)).toEqual(['PHASE_PREPARE', 'PHASE_TEST', 'PHASE_PUBLISH', 'PHASE_REPORT']);
  });

  it('refuses a batch with one bad update whole, naming its field, and stores nothing', async () => {
    const run = await newRun();
    const before = await stored(run.id);
    const bad = async (updates: ReturnType<typeof numbered>, field: string) => {
      const err = await refusal(h.service.recordStatusUpdates({ updates }));
      expect(err.code).toBe(Code.InvalidArgument);
      expect(err.rawMessage).toContain(field);
      expect(await stored(run.id)).toEqual(before);
    };
    const updates = numbered(run.id, UPDATES.slice(0, 5));
    await bad(
      updates.map((u, i) => (i === 3 ? { ...u, sequence: 0n } : u)),
      'updates[3].sequence',
    );
    await bad(
      updates.map((u, i) => (i === 2 ? { ...u, runId: '' } : u)),
      'updates[2].run_id',
    );
    await bad(
      updates.map((u, i) => (i === 4 ? { ...u, runId: crypto.randomUUID() } : u)),
      'updates[4].run_id',
    );
    await bad(
      updates.map((u, i) => (i === 1 ? { ...u, sequence: 1n } : u)),
      'updates[1].sequence',
    );
    await bad(
      updates.map((u, i) => (i === 4 ? { ...u, phase: 999 as Phase } : u)),
      'updates[4].phase',
    );
    await bad([], 'updates');
    await bad(
      numbered(
        run.id,
        Array.from({ length: 101 }, () => UPDATES[0]!),
      ),
      'updates',
    );
  });

  it('refuses another tenant’s worker credential and a user, storing nothing', async () => {
    const run = await newRun();
    const before = await stored(run.id);
    const updates = numbered(run.id, UPDATES);
    const globexService = createWorkflowServiceClient({ baseUrl: h.apiUrl, token: h.tokens.globexService });
    const crossTenant = await refusal(globexService.recordStatusUpdates({ updates }));
    expect(crossTenant.code).toBe(Code.PermissionDenied);
    expect(crossTenant.rawMessage).toMatch(/reports for tenant "globex" only/);
    expect((await refusal(h.acme.recordStatusUpdates({ updates }))).code).toBe(Code.PermissionDenied);
    expect(await stored(run.id)).toEqual(before);
    expect((await refusal(h.service.recordStatusUpdates({ updates: numbered(crypto.randomUUID(), UPDATES) }))).code).toBe(Code.NotFound);
  });
});
