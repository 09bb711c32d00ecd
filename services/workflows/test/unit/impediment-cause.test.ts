import { describe, expect, it } from 'vitest';
import type { RunRow, RunState } from '@ameide/db';
import { findImpediment, succeeded } from '../../src/impediments/cause.js';
import { codingRunInput } from '../../src/runs/input.js';

const run = (status: string, state: Partial<RunState> = {}, phase = 'PHASE_REPORT'): Pick<RunRow, 'status' | 'phase' | 'state'> => ({
  status: `RUN_STATUS_${status}`,
  phase,
  state: { phases: [], ...state },
});

describe('which impediment a finished run raises', () => {
  const failedTest = { phases: [{ phase: 'PHASE_TEST' as const, state: 'PHASE_STATE_FAILED' as const }], error: 'test phase failed: exit 3' };

  it('takes the first cause that applies: policy violation, budget, handoff, failure, Definition of Done', () => {
    const both = { ...failedTest, summary: { policyViolations: ['a (denied)'], budgetExceeded: 'run_timeout', handoffUri: 'file:///h' } };
    expect(findImpediment(run('HANDED_OFF', both))).toEqual({ cause: 'policy_violation', reason: 'test phase failed: exit 3', phase: 'test' });
    expect(findImpediment(run('HANDED_OFF', { ...failedTest, summary: { budgetExceeded: 'run_timeout' } }))?.cause).toBe('budget_exceeded');
    expect(findImpediment(run('HANDED_OFF', failedTest))).toEqual({ cause: 'run_handed_off', reason: 'test phase failed: exit 3', phase: 'test' });
    expect(findImpediment(run('FAILED', { error: 'prepare phase failed: no branch' }, 'PHASE_PREPARE'))).toEqual({
      cause: 'run_failed',
      reason: 'prepare phase failed: no branch',
      phase: 'prepare',
    });
    // Without the run's message, the violations say what happened.
    expect(findImpediment(run('HANDED_OFF', { summary: { policyViolations: ['a (denied)', 'b (not allowed)'] } }, 'PHASE_PUBLISH'))).toEqual({
      cause: 'policy_violation',
      reason: 'policy violation: a (denied), b (not allowed)',
      phase: 'publish',
    });
  });

  it('raises dod_failed for a completed run whose checklist is not met, with the failing rules', () => {
    const done = {
      met: false,
      rules: [
        { rule: 'tests_pass', passed: true },
        { rule: 'review', passed: false, detail: 'no review' },
        { rule: 'docs', passed: false },
      ],
    };
    expect(findImpediment(run('COMPLETED', { done }))).toEqual({ cause: 'dod_failed', reason: 'review: no review\ndocs', phase: '' });
    expect(findImpediment(run('COMPLETED', { done: { met: false } }))?.reason).toBe('the Definition of Done is not met');
  });

  it('raises nothing for a completed run that met its Definition of Done or has none, a cancelled or an unfinished run', () => {
    expect(findImpediment(run('COMPLETED'))).toBeUndefined();
    expect(findImpediment(run('COMPLETED', { done: { met: true, rules: [] } }))).toBeUndefined();
    expect(findImpediment(run('CANCELLED', { ...failedTest, summary: { handoffUri: 'file:///h' } }))).toBeUndefined();
    expect(findImpediment(run('RUNNING'))).toBeUndefined();
    expect(succeeded(run('COMPLETED'))).toBe(true);
    expect(succeeded(run('COMPLETED', { done: { met: false } }))).toBe(false);
    expect(succeeded(run('HANDED_OFF'))).toBe(false);
  });
});

describe('the workflow input of a rerun', () => {
  const plan = {
    id: 'p1',
    tenantId: 't',
    definitionId: 'd',
    version: 1,
    spec: { definitionName: 'sample', repo: { repoUrl: '/r.git', agentCommand: 'a' } },
  } as unknown as Parameters<typeof codingRunInput>[1];

  it('carries the previous attempt from the annotations ReassignImpediment gives it, and nothing for other runs', () => {
    expect(codingRunInput('r2', plan).previousAttempt).toBeUndefined();
    expect(codingRunInput('r2', plan, { team: 'x' })).not.toHaveProperty('previousAttempt');
    expect(
      codingRunInput('r2', plan, {
        'ameide.dev/rerun-of': 'r1',
        'ameide.dev/impediment': 'i1',
        'ameide.dev/handoff-uri': 'file:///h.tar.gz',
        'ameide.dev/handoff-reason': 'test phase failed',
        'ameide.dev/handoff-note': 'keep the name',
      }).previousAttempt,
    ).toEqual({ runId: 'r1', reason: 'test phase failed', handoffUri: 'file:///h.tar.gz', note: 'keep the name' });
  });
});
