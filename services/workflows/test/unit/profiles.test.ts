import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { backlogV1 } from '@ameide/contracts';
import { BUILT_IN_PROFILES, evaluateReadiness, normaliseProfile, triggers } from '../../src/backlog/profiles.js';
import { InvalidFieldError } from '../../src/errors.js';

const { WorkItemState } = backlogV1;

/** A work item that every built-in profile finds ready. */
const full = () =>
  create(backlogV1.WorkItemSpecSchema, {
    title: 'Add a multiply function',
    description: 'Users need to multiply.',
    acceptanceCriteria: ['multiply(6, 7) returns 42'],
    contextLinks: ['https://example.com/adr/1'],
    state: WorkItemState.READY,
    timeboxIds: ['sprint-7'],
    goalIds: ['goal-1'],
    elementIds: ['app-calc'],
    definition: 'sample',
  });

/** What each built-in profile requires, as a field to clear and the rule that then fails. */
const REQUIRED: Record<string, Array<[string, (w: backlogV1.WorkItemSpec) => void]>> = {
  scrum: [
    ['acceptance_criteria', (w) => (w.acceptanceCriteria = [])],
    ['definition', (w) => (w.definition = '')],
    ['timebox', (w) => (w.timeboxIds = [])],
    ['goal', (w) => (w.goalIds = [])],
  ],
  safe: [
    ['acceptance_criteria', (w) => (w.acceptanceCriteria = [' '])],
    ['definition', (w) => (w.definition = '')],
    ['timebox', (w) => (w.timeboxIds = [])],
    ['goal', (w) => (w.goalIds = [])],
  ],
  togaf: [
    ['acceptance_criteria', (w) => (w.acceptanceCriteria = [])],
    ['context_link', (w) => (w.contextLinks = [])],
    ['definition', (w) => (w.definition = '')],
    ['element', (w) => (w.elementIds = [])],
    ['goal', (w) => (w.goalIds = [])],
  ],
};

describe('Definition of Ready of the built-in profiles', () => {
  for (const [name, required] of Object.entries(REQUIRED)) {
    it(`${name}: a complete item is ready, and lacking any one required thing fails exactly that rule, saying why`, () => {
      const profile = BUILT_IN_PROFILES[name]!;
      const ok = evaluateReadiness(full(), profile, { definitionResolvable: true });
      expect(ok.met).toBe(true);
      expect(ok.rules.map((r) => r.rule).sort()).toEqual(required.map(([r]) => r).sort());
      expect(triggers(full(), profile, ok.met)).toBe(true);
      for (const [rule, clear] of required) {
        const item = full();
        clear(item);
        const r = evaluateReadiness(item, profile, { definitionResolvable: true });
        expect(r.met).toBe(false);
        expect(r.rules.filter((x) => !x.passed).map((x) => x.rule)).toEqual([rule]);
        expect(r.rules.find((x) => x.rule === rule)!.detail).toMatch(rule === 'definition' ? /no definition/ : /^0 .*needs at least 1$/);
      }
      // Ready, but not in the trigger state: no run.
      expect(triggers({ ...full(), state: WorkItemState.BACKLOG }, profile, true)).toBe(false);
    });
  }

  it('a definition that does not exist fails the definition rule', () => {
    const r = evaluateReadiness(full(), BUILT_IN_PROFILES.scrum!, { definitionResolvable: false });
    expect(r.rules.find((x) => x.rule === 'definition')).toMatchObject({ passed: false, detail: 'no definition "sample"' });
  });

  it('a custom profile counts with its minimums, and always needs a definition', () => {
    const profile = normaliseProfile(create(backlogV1.ProfileSpecSchema, { readyRules: [{ kind: 'acceptance_criteria', min: 2 }, { kind: 'description' }] }));
    expect(profile.triggerState).toBe(WorkItemState.READY);
    const r = evaluateReadiness(full(), profile, { definitionResolvable: true });
    expect(r.rules.map((x) => [x.rule, x.passed, x.detail])).toEqual([
      ['acceptance_criteria', false, '1 acceptance criterion, needs at least 2'],
      ['description', true, 'has a description'],
      ['definition', true, 'definition "sample" exists'],
    ]);
  });
});

describe('custom profile validation', () => {
  const refusal = (spec: object) => {
    try {
      normaliseProfile(create(backlogV1.ProfileSpecSchema, spec));
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidFieldError);
      return (err as Error).message;
    }
    throw new Error('accepted');
  };

  it('names the field that is wrong', () => {
    expect(refusal({ readyRules: [{ kind: 'goal' }, { kind: 'vibes' }] })).toMatch(/^spec\.ready_rules\[1\]\.kind: must be one of /);
    expect(refusal({ readyRules: [{ kind: 'definition', min: 2 }] })).toBe('spec.ready_rules[0].min: does not apply to definition');
    expect(refusal({ doneRules: [{ kind: 'tests_passed' }, { kind: 'shipped' }] })).toMatch(/^spec\.done_rules\[1\]\.kind: must be one of /);
    expect(refusal({ evidenceTargets: [{ artifact: 'Increment', from: 'timebox' }] })).toMatch(/^spec\.evidence_targets\[0\]\.artifact: /);
    expect(refusal({ evidenceTargets: [{ artifact: 'increment', from: 'sprint' }] })).toMatch(/^spec\.evidence_targets\[0\]\.from: must be one of /);
    expect(refusal({ triggerState: WorkItemState.DONE })).toMatch(/^spec\.trigger_state: /);
  });
});
