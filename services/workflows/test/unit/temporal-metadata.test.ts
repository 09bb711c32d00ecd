import { describe, expect, it } from 'vitest';
import { resolveGuardrails, DEFAULT_PULL_REQUEST, type CodingRunInput, type FollowupInput } from '@ameide/temporal';
import { followupMetadata, runMetadata } from '../../src/temporal/metadata.js';

const input = (o: Partial<CodingRunInput> = {}): CodingRunInput => ({
  runId: '3f2a9c01-0000-4000-8000-000000000001',
  tenantId: 'acme',
  planId: '7b1e0d42-0000-4000-8000-000000000002',
  planVersion: 2,
  definitionId: '5c9d8e7f-0000-4000-8000-000000000003',
  definitionName: 'sample',
  repo: {
    repoUrl: 'https://git.example/acme/calc.git',
    defaultBranch: 'main',
    installCommand: '',
    agentCommand: 'agent',
    testCommand: '',
    branchPrefix: 'ameide/',
    phaseTimeoutSeconds: 600,
    env: {},
    guardrails: resolveGuardrails({}),
    secrets: [],
    pullRequest: DEFAULT_PULL_REQUEST,
  },
  workItems: [{ id: 'CALC-1', title: 'Add a\nmultiply function', description: '', acceptanceCriteria: [], contextLinks: [] }],
  methodology: { profile: 'scrum', timeboxIds: ['sprint-7'], goalIds: [], workItemIds: ['CALC-1'], elementIds: [] },
  trigger: 'manual',
  ...o,
});

describe('Temporal user metadata', () => {
  it('summarises a run by its work item, definition and trigger, with the ids in the details', () => {
    const m = runMetadata(input());
    expect(m.staticSummary).toBe('CALC-1 Add a multiply function · sample, manual');
    expect(m.staticDetails.split('\n')).toEqual([
      '- run: `3f2a9c01-0000-4000-8000-000000000001`',
      '- definition: `sample` (`5c9d8e7f-0000-4000-8000-000000000003`)',
      '- plan: `7b1e0d42-0000-4000-8000-000000000002` (version 2)',
      '- trigger: manual',
      '- profile: scrum',
      '- timeboxes: sprint-7',
      '',
      '**Work items**',
      '',
      '- CALC-1: Add a multiply function',
    ]);
  });

  it('names the plan without work items, counts further ones, and keeps the summary one short line', () => {
    expect(runMetadata(input({ workItems: [], trigger: 'auto' })).staticSummary).toBe('plan 7b1e0d42 · sample, auto');
    const item = (id: string) => ({ id, title: 'x'.repeat(300), description: '', acceptanceCriteria: [], contextLinks: [] });
    const long = runMetadata(input({ workItems: [item('A-1'), item('A-2'), item('A-3')] })).staticSummary;
    expect(long).toHaveLength(200);
    expect(long).toMatch(/^A-1 x+…$/);
    expect(runMetadata(input({ workItems: [item('A-1'), { ...item('A-2'), title: 'short' }].reverse() })).staticSummary).toBe(
      'A-2 short (+1 more) · sample, manual',
    );
  });

  it('summarises follow-ups by the run and its work items', () => {
    const f: FollowupInput = {
      runId: '3f2a9c01-0000-4000-8000-000000000001',
      tenantId: 'acme',
      event: 'finished',
      activityQueue: 'q-governance',
      delivery: { maxAttempts: 1, initialIntervalMs: 1, maximumIntervalMs: 1 },
    };
    expect(followupMetadata(f, ['CALC-1']).staticSummary).toBe('finalize run 3f2a9c01 (CALC-1)');
    expect(followupMetadata({ ...f, event: 'preview_live' }).staticSummary).toBe('announce preview of run 3f2a9c01');
  });
});
