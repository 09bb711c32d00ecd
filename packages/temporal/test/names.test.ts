import { expect, it } from 'vitest';
import { SEARCH_ATTRIBUTE_REGISTRATIONS, workBranchName, workflowIdForRun } from '../src/index.js';

it('names workflows and work branches predictably', () => {
  const id = '0d7c5f2e-1111-2222-3333-444444444444';
  expect(workflowIdForRun(id)).toBe(`coding-run-${id}`);
  expect(workBranchName('ameide/', 'CALC-1', id)).toBe('ameide/calc-1');
  expect(workBranchName('bots', 'PROJ 12: fix the login!', id)).toBe('bots/proj-12-fix-the-login');
  expect(workBranchName('feature-', undefined, id)).toBe('feature-plan-0d7c5f2e');
  expect(workBranchName('  ', '..', id)).toBe('ameide/plan-0d7c5f2e');
});

it('registers every Ameide search attribute within the SQL visibility limits', () => {
  const names = SEARCH_ATTRIBUTE_REGISTRATIONS.map(([n]) => n);
  expect(names).toEqual(
    expect.arrayContaining([
      'AmeideTenantId',
      'AmeideWorkItemIds',
      'AmeideTimeboxIds',
      'AmeideGoalIds',
      'AmeideElementIds',
      'AmeideDefinitionId',
      'AmeideDefinitionName',
      'AmeideTrigger',
      'AmeideRunStatus',
      'AmeideRunPhase',
    ]),
  );
  expect(SEARCH_ATTRIBUTE_REGISTRATIONS.filter(([, t]) => t === 'KeywordList').length).toBeLessThanOrEqual(3);
  // SQL visibility has ten Keyword columns for custom search attributes.
  expect(SEARCH_ATTRIBUTE_REGISTRATIONS.filter(([, t]) => t === 'Keyword').length).toBeLessThanOrEqual(10);
});
