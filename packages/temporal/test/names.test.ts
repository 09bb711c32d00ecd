import { expect, it } from 'vitest';
import { runBranchName, SEARCH_ATTRIBUTE_REGISTRATIONS, workflowIdForRun } from '../src/index.js';

it('names workflows and run branches predictably', () => {
  const id = '0d7c5f2e-1111-2222-3333-444444444444';
  expect(workflowIdForRun(id)).toBe(`coding-run-${id}`);
  expect(runBranchName('ameide/', id)).toBe('ameide/run-0d7c5f2e');
  expect(runBranchName('bots', id)).toBe('bots/run-0d7c5f2e');
  expect(runBranchName('feature-', id)).toBe('feature-run-0d7c5f2e');
  expect(runBranchName('  ', id)).toBe('ameide/run-0d7c5f2e');
});

it('registers every Ameide search attribute within the SQL visibility limits', () => {
  const names = SEARCH_ATTRIBUTE_REGISTRATIONS.map(([n]) => n);
  expect(names).toEqual(expect.arrayContaining(['AmeideTenantId', 'AmeideWorkItemIds', 'AmeideTimeboxIds', 'AmeideGoalIds', 'AmeideElementIds', 'AmeideDefinitionId', 'AmeideTrigger', 'AmeideRunStatus', 'AmeideRunPhase']));
  expect(SEARCH_ATTRIBUTE_REGISTRATIONS.filter(([, t]) => t === 'KeywordList').length).toBeLessThanOrEqual(3);
});
