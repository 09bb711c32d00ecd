import { describe, expect, it } from 'vitest';
import type { RunProgress } from '@ameide/db';
import { foldStatusUpdate } from '../../src/runs/fold.js';

const queued: RunProgress = { status: 'RUN_STATUS_QUEUED', phase: 'PHASE_UNSPECIFIED', state: { phases: [] }, startedAt: null, finishedAt: null };
const t = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();

describe('folding status updates into a run', () => {
  it('tracks phases, exit codes and the final status', () => {
    let r = foldStatusUpdate(queued, { kind: 'STATUS_UPDATE_KIND_RUN_STARTED', time: t(0) });
    expect(r.status).toBe('RUN_STATUS_RUNNING');
    expect(r.startedAt?.toISOString()).toBe(t(0));
    r = foldStatusUpdate(r, { kind: 'STATUS_UPDATE_KIND_PHASE_STARTED', phase: 'PHASE_TEST', time: t(1) });
    expect(r.phase).toBe('PHASE_TEST');
    expect(r.state.phases).toEqual([{ phase: 'PHASE_TEST', state: 'PHASE_STATE_RUNNING', startTime: t(1) }]);
    r = foldStatusUpdate(r, {
      kind: 'STATUS_UPDATE_KIND_PHASE_FINISHED',
      phase: 'PHASE_TEST',
      phaseState: 'PHASE_STATE_FAILED',
      exitCode: 2,
      durationMs: '1500',
      outputTail: 'FAIL',
      time: t(2),
    });
    expect(r.state.phases[0]).toMatchObject({ state: 'PHASE_STATE_FAILED', exitCode: 2, durationMs: '1500', outputTail: 'FAIL', endTime: t(2) });
    r = foldStatusUpdate(r, { kind: 'STATUS_UPDATE_KIND_PHASE_STARTED', phase: 'PHASE_REPORT', time: t(3) });
    r = foldStatusUpdate(r, {
      kind: 'STATUS_UPDATE_KIND_RUN_FINISHED',
      runStatus: 'RUN_STATUS_FAILED',
      phase: 'PHASE_TEST',
      message: 'test phase failed',
      summary: { testExitCode: 2 },
      time: t(4),
    });
    expect(r).toMatchObject({ status: 'RUN_STATUS_FAILED', phase: 'PHASE_TEST' });
    expect(r.state.error).toBe('test phase failed');
    expect(r.state.summary).toEqual({ testExitCode: 2 });
    expect(r.finishedAt?.toISOString()).toBe(t(4));
  });

  it('never moves a finished run back to running', () => {
    const done = foldStatusUpdate(queued, { kind: 'STATUS_UPDATE_KIND_RUN_FINISHED', runStatus: 'RUN_STATUS_CANCELLED', time: t(1) });
    const late = foldStatusUpdate(done, { kind: 'STATUS_UPDATE_KIND_PHASE_STARTED', phase: 'PHASE_AGENT', time: t(2) });
    expect(late.status).toBe('RUN_STATUS_CANCELLED');
    const again = foldStatusUpdate(late, { kind: 'STATUS_UPDATE_KIND_RUN_FINISHED', runStatus: 'RUN_STATUS_COMPLETED', time: t(3) });
    expect(again.status).toBe('RUN_STATUS_CANCELLED');
  });

  it('does not mutate the stored state it folds into', () => {
    const before = structuredClone(queued);
    foldStatusUpdate(queued, { kind: 'STATUS_UPDATE_KIND_PHASE_STARTED', phase: 'PHASE_PREPARE', time: t(1) });
    expect(queued).toEqual(before);
  });
});
