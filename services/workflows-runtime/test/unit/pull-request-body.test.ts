import { describe, expect, it } from 'vitest';
import { DEFAULT_GUARDRAILS, DEFAULT_PULL_REQUEST, type CodingRunInput, type RunSummaryResult } from '@ameide/temporal';
import { pullRequestTitle, renderPullRequestBody } from '../../src/activities/pull-request-body.js';

const run: CodingRunInput = {
  runId: '3f2c1a9e-8b7d-4c6e-9f10-2a3b4c5d6e7f',
  tenantId: 'acme',
  planId: '0b1c2d3e-4f50-4617-8a9b-c0d1e2f30415',
  planVersion: 2,
  definitionId: 'd',
  definitionName: 'sample-calculator',
  repo: {
    repoUrl: 'https://github.com/acme/calculator.git',
    defaultBranch: 'main',
    installCommand: 'npm ci',
    agentCommand: 'codex exec',
    testCommand: 'npm test',
    branchPrefix: 'ameide/',
    phaseTimeoutSeconds: 300,
    env: {},
    guardrails: DEFAULT_GUARDRAILS,
    secrets: [],
    pullRequest: DEFAULT_PULL_REQUEST,
  },
  workItems: [
    {
      id: 'CALC-1',
      title: 'Add a multiply function',
      description: 'Users need to multiply.',
      acceptanceCriteria: ['multiply(6, 7) returns 42', 'npm test | passes'],
      contextLinks: [],
    },
  ],
  methodology: { profile: 'scrum', timeboxIds: [], goalIds: [], workItemIds: ['CALC-1'], elementIds: [] },
  trigger: 'manual',
};

const summary: RunSummaryResult = {
  branch: 'ameide/calc-1',
  baseCommit: '1111111111111111111111111111111111111111',
  headCommit: '2222222222222222222222222222222222222222',
  filesChanged: 2,
  insertions: 14,
  deletions: 1,
  testExitCode: 0,
  transcriptsUri: '',
  pushed: true,
  previewUrl: 'http://run-3f2c1a9e.acme.preview.localhost:8090/',
  previewAliasUrl: 'http://calc-1.acme.preview.localhost:8090/',
};

describe('the pull request description', () => {
  it('shows the work item and criteria, the outcome with the preview, the phases and the run', () => {
    const phases = [
      { phase: 'prepare' as const, state: 'succeeded' as const, durationMs: 412 },
      { phase: 'install' as const, state: 'skipped' as const },
      { phase: 'agent' as const, state: 'succeeded' as const, durationMs: 81_250, exitCode: 0 },
      { phase: 'test' as const, state: 'succeeded' as const, durationMs: 2_300, exitCode: 0 },
      { phase: 'publish' as const, state: 'succeeded' as const, durationMs: 640 },
      { phase: 'preview' as const, state: 'succeeded' as const, durationMs: 1_900 },
    ];
    expect(pullRequestTitle(run)).toBe('CALC-1: Add a multiply function');
    expect(renderPullRequestBody({ run, summary, phases })).toMatchInlineSnapshot(`
      "## CALC-1: Add a multiply function

      Users need to multiply.

      **Acceptance criteria**

      - [ ] multiply(6, 7) returns 42
      - [ ] npm test | passes

      ## Outcome

      - Tests: passed
      - Change: 2 files changed, +14 −1 (\`111111111111..222222222222\`)
      - Preview: http://run-3f2c1a9e.acme.preview.localhost:8090/ (latest for this work item: http://calc-1.acme.preview.localhost:8090/)

      ## Phases

      | phase | state | duration |
      | --- | --- | --- |
      | prepare | succeeded | 412 ms |
      | install | skipped |  |
      | agent | succeeded | 81.3 s |
      | test | succeeded | 2.3 s |
      | publish | succeeded | 640 ms |
      | preview | succeeded | 1.9 s |

      Run \`3f2c1a9e-8b7d-4c6e-9f10-2a3b4c5d6e7f\` (plan 0b1c2d3e-4f50-4617-8a9b-c0d1e2f30415 v2, definition sample-calculator) — \`ameide runs get 3f2c1a9e-8b7d-4c6e-9f10-2a3b4c5d6e7f\`

      <!-- opened and updated by Ameide delivery automation: every rerun of this work branch updates this pull request -->
      "
    `);
  });

  it('says when the tests failed or did not run, and names a run without a work item', () => {
    const body = renderPullRequestBody({ run: { ...run, workItems: [] }, summary: { ...summary, testExitCode: 3, previewUrl: undefined }, phases: [] });
    expect(body).toContain('- Tests: failed (exit 3)');
    expect(body).not.toContain('Preview:');
    expect(body).toContain(`## Run ${run.runId} of sample-calculator`);
    expect(pullRequestTitle({ ...run, workItems: [] })).toBe('sample-calculator: run 3f2c1a9e');
    expect(renderPullRequestBody({ run, summary: { ...summary, testExitCode: undefined }, phases: [] })).toContain('- Tests: not run');
  });
});
