import { describe, expect, it } from 'vitest';
import type { RunRow } from '@ameide/db';
import { evaluateDone } from '../../src/governance/evidence.js';

type State = RunRow['state'];
const run = (status: string, summary: NonNullable<State['summary']>, error?: string) => ({ status, state: { phases: [], summary, error } });
const facts = (evidence = 3, attestations = 2) => ({
  evidence: Array.from({ length: evidence }, () => ({}) as never),
  attestations,
  artifacts: [{ kind: 'increment', id: 'S1' }],
});
const passed = (r: ReturnType<typeof evaluateDone>) => Object.fromEntries(r.rules.map((x) => [x.rule, x.passed]));

describe('the Definition of Done of a finished run', () => {
  const green = {
    testExitCode: 0,
    testReport: { passed: 4, failed: 0, skipped: 1 },
    previewUrl: 'http://p/',
    pullRequest: { number: 3, provider: 'git', state: 'open' },
  };

  it('checks run_completed first, then the profile rules in their order, with details', () => {
    const r = evaluateDone(run('RUN_STATUS_COMPLETED', green), ['tests_passed', 'preview_live', 'pull_request_opened', 'evidence_attached'], facts());
    expect(r.met).toBe(true);
    expect(r.rules.map((x) => [x.rule, x.detail])).toEqual([
      ['run_completed', 'the run completed its phases'],
      ['tests_passed', '4 passed, 0 failed, 1 skipped'],
      ['preview_live', 'preview at http://p/'],
      ['pull_request_opened', 'pull request #3 (git) open'],
      ['evidence_attached', '3 evidence files and 2 signed attestations attached to increment S1'],
    ]);
  });

  it('a completed run can still fail its DoD: failing tests, a policy violation, an exceeded budget, no evidence', () => {
    const summary = {
      testExitCode: 1,
      testReport: { passed: 1, failed: 2, failingTests: ['a', 'b', 'c', 'd'] },
      policyViolations: ['.github/x'],
      budgetExceeded: 'max_commands',
    };
    const r = evaluateDone(
      run('RUN_STATUS_COMPLETED', summary),
      ['tests_passed', 'no_policy_violation', 'budget_not_exceeded', 'evidence_attached'],
      facts(0, 0),
    );
    expect(r.met).toBe(false);
    expect(passed(r)).toEqual({ run_completed: true, tests_passed: false, no_policy_violation: false, budget_not_exceeded: false, evidence_attached: false });
    expect(r.rules[1]!.detail).toBe('1 passed, 2 failed, 0 skipped (a, b, c, …); test command exited 1');
    expect(r.rules[4]!.detail).toBe('the run left no evidence');
  });

  it('a run that did not complete is not done, whatever else holds; a run without tests or preview says so', () => {
    const r = evaluateDone(run('RUN_STATUS_HANDED_OFF', {}, 'test phase failed: exit 1'), ['tests_passed', 'preview_live', 'unknown_rule'], facts());
    expect(r.rules.map((x) => [x.rule, x.passed, x.detail])).toEqual([
      ['run_completed', false, 'the run ended handed_off: test phase failed: exit 1'],
      ['tests_passed', false, 'no test command ran'],
      ['preview_live', false, 'no preview went live'],
      ['unknown_rule', false, 'unknown rule "unknown_rule"'],
    ]);
  });

  it('evidence without attestations does not count as attached', () => {
    expect(evaluateDone(run('RUN_STATUS_COMPLETED', green), ['evidence_attached'], facts(3, 0)).rules[1]).toMatchObject({
      passed: false,
      detail: 'evidence is not attested',
    });
  });
});
