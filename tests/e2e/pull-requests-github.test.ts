import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Phase, PhaseState, RunStatus, StatusUpdateKind } from '@ameide/contracts';
import { FakeGitHub } from '../../services/workflows-runtime/test/contract/github-fake.js';
import { loadGitHubDescription, OpenApiContract } from '../../services/workflows-runtime/test/contract/openapi.js';
import { applySample, MULTIPLY, sampleOrigin, startHarness, watchAll, type Harness } from '../support/harness.js';

const TOKEN = 'ghp_e2eTokenThatMustNeverLeak0123456789';

/**
 * GitHub cannot run here: the worker talks to a local stand-in that plays GitHub's REST API and holds
 * every request to GitHub's published OpenAPI description (a contract test, see
 * services/workflows-runtime/test/contract). Everything else is real: service, Temporal, worker, git.
 */
describe('GitHub contract, end to end: the pull request phase of real runs', () => {
  let h: Harness;
  let gh: FakeGitHub;
  let origin: string;

  beforeAll(async () => {
    gh = await new FakeGitHub(new OpenApiContract(loadGitHubDescription()), TOKEN).start();
    h = await startHarness({ worker: true, workerEnv: { AMEIDE_SECRET_ACME__GH_TOKEN: TOKEN } });
    origin = sampleOrigin(h);
    await applySample(h.acme, origin, {
      pullRequest: {
        provider: 'github',
        apiUrl: gh.url,
        repository: `${gh.owner}/${gh.repo}`,
        tokenFromEnv: 'GH_TOKEN',
        draft: true,
        labels: ['agent'],
        reviewers: ['alice'],
      },
    });
  });
  afterAll(async () => {
    await h?.stop();
    await gh?.close();
  });

  it('opens a draft pull request, and the rerun updates that one (after waiting out a rate limit)', async () => {
    gh.branches.set('ameide/calc-1', 1);
    const first = (await h.acme.startWorkflowRun({ definition: 'sample', workItems: [MULTIPLY] })).run!;
    const updates = await watchAll(h.acme, first.id);
    const one = (await h.acme.getWorkflowRun({ id: first.id })).run!;
    expect(one.status).toBe(RunStatus.COMPLETED);
    const pr = [...gh.pulls.values()];
    expect(pr).toHaveLength(1);
    expect(pr[0]).toMatchObject({
      head: 'ameide/calc-1',
      base: 'main',
      draft: true,
      labels: ['agent'],
      reviewers: ['alice'],
      title: 'CALC-1: Add a multiply function',
    });
    expect(pr[0]!.body).toContain('- [ ] multiply(6, 7) returns 42');
    expect(one.summary!.pullRequest).toMatchObject({ provider: 'github', number: pr[0]!.number, state: 'draft' });
    expect(one.summary!.pullRequest!.url).toMatch(/\/pull\/\d+$/);
    expect(updates.find((u) => u.kind === StatusUpdateKind.PULL_REQUEST_OPENED)!.attributes).toMatchObject({ provider: 'github', action: 'opened' });

    // GitHub says "wait": the activity retries after the time GitHub asked for, then updates the same pull request.
    gh.server.script({ operation: 'pulls/list', status: 429, body: { message: 'API rate limit exceeded' }, headers: { 'retry-after': '1' } });
    const second = (await h.acme.startWorkflowRun({ planId: first.planId })).run!;
    const again = await watchAll(h.acme, second.id);
    expect((await h.acme.getWorkflowRun({ id: second.id })).run!.status).toBe(RunStatus.COMPLETED);
    expect(gh.pulls.size).toBe(1);
    expect(again.find((u) => u.kind === StatusUpdateKind.PULL_REQUEST_UPDATED)!.attributes).toMatchObject({ number: String(pr[0]!.number), action: 'updated' });
    expect(gh.server.callsTo('pulls/create')).toHaveLength(1);
    expect(gh.server.callsTo('pulls/list').length).toBeGreaterThanOrEqual(3);
    // The service's record follows the forge's pull request.
    const records = (await h.acme.listPullRequests({})).pullRequests;
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ provider: 'github', number: pr[0]!.number, revisions: 2, url: one.summary!.pullRequest!.url });
    expect(gh.server.violations).toEqual([]);
  });

  it("fails the pull_request phase with GitHub's own message when GitHub refuses (422), and hands the run off", async () => {
    gh.branches.set('ameide/calc-3', 0);
    const run = (await h.acme.startWorkflowRun({ definition: 'sample', workItems: [{ ...MULTIPLY, id: 'CALC-3' }] })).run!;
    await watchAll(h.acme, run.id);
    const done = (await h.acme.getWorkflowRun({ id: run.id })).run!;
    expect(done.status).toBe(RunStatus.HANDED_OFF);
    const phase = done.phases.find((p) => p.phase === Phase.PULL_REQUEST)!;
    expect(phase.state).toBe(PhaseState.FAILED);
    expect(done.error).toMatch(/^pull_request phase failed: GitHub: Validation Failed: No commits between main and ameide\/calc-3/);
    expect(done.error).not.toContain(TOKEN);
    expect(gh.server.violations).toEqual([]);
  });
});
