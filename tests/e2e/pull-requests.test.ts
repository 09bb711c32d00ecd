import { describe, expect, it } from 'vitest';
import { Code, ConnectError } from '@connectrpc/connect';
import { Phase, PhaseState, RunStatus, StatusUpdateKind } from '@ameide/contracts';
import { git } from '@ameide/devstack';
import { applySample, MULTIPLY, runCli, useHarnessWithOrigin, watchAll, type Harness } from '../support/harness.js';

describe('pull requests with the git provider: one per work branch, updated by every rerun', () => {
  let h: Harness;
  let origin: string;
  useHarnessWithOrigin((s) => ({ h, origin } = s));

  const ameide = (...args: string[]) => runCli(h, ...args);

  it('opens the pull request on the first run, and a rerun updates the same one', async () => {
    await applySample(h.acme, origin, { pullRequest: { labels: ['agent'] } });
    const first = (await h.acme.startWorkflowRun({ definition: 'sample', workItems: [MULTIPLY] })).run!;
    const updates = await watchAll(h.acme, first.id);
    const opened = updates.find((u) => u.kind === StatusUpdateKind.PULL_REQUEST_OPENED)!;
    expect(opened.attributes).toMatchObject({ provider: 'git', number: '1', state: 'open', action: 'opened' });
    const one = (await h.acme.getWorkflowRun({ id: first.id })).run!;
    expect(one.status).toBe(RunStatus.COMPLETED);
    expect(one.phases.find((p) => p.phase === Phase.PULL_REQUEST)!.state).toBe(PhaseState.SUCCEEDED);
    expect(one.summary!.pullRequest).toMatchObject({ provider: 'git', number: 1, state: 'open', url: '' });

    const listed = (await h.acme.listPullRequests({})).pullRequests;
    expect(listed).toHaveLength(1);
    const pr = listed[0]!;
    expect(pr).toMatchObject({ number: 1, provider: 'git', headBranch: 'ameide/calc-1', baseBranch: 'main', workItemId: 'CALC-1', revisions: 1 });
    expect(pr.firstRunId).toBe(first.id);
    expect(pr.headCommit).toBe(git(origin, 'rev-parse', 'refs/heads/ameide/calc-1'));
    expect(pr.title).toBe('CALC-1: Add a multiply function');
    // The description: the work item and its criteria, the outcome, the phases, the run.
    expect(pr.body).toContain('- [ ] multiply(6, 7) returns 42');
    expect(pr.body).toContain('- Tests: passed');
    expect(pr.body).toMatch(/\| test \| succeeded \| [\d.]+ m?s \|/);
    expect(pr.body).toContain(`ameide runs get ${first.id}`);

    // The rerun builds on the branch and updates the same pull request: same number, new head, two revisions.
    const second = (await h.acme.startWorkflowRun({ planId: first.planId })).run!;
    const again = await watchAll(h.acme, second.id);
    expect(again.some((u) => u.kind === StatusUpdateKind.PULL_REQUEST_OPENED)).toBe(false);
    expect(again.find((u) => u.kind === StatusUpdateKind.PULL_REQUEST_UPDATED)!.attributes).toMatchObject({ number: '1', action: 'updated' });
    const after = (await h.acme.listPullRequests({})).pullRequests;
    expect(after).toHaveLength(1);
    expect(after[0]).toMatchObject({ id: pr.id, number: 1, revisions: 2, firstRunId: first.id, lastRunId: second.id });
    expect(after[0]!.headCommit).toBe(git(origin, 'rev-parse', 'refs/heads/ameide/calc-1'));
    expect(after[0]!.headCommit).not.toBe(pr.headCommit);

    // Another work item gets the repository's next number.
    const other = (await h.acme.startWorkflowRun({ definition: 'sample', workItems: [{ ...MULTIPLY, id: 'CALC-5' }] })).run!;
    await watchAll(h.acme, other.id);
    expect((await h.acme.getWorkflowRun({ id: other.id })).run!.summary!.pullRequest!.number).toBe(2);
    expect((await h.acme.listPullRequests({ workItemId: 'CALC-5' })).pullRequests.map((p) => p.number)).toEqual([2]);

    // Found by number; another tenant sees none of them.
    expect((await h.acme.getPullRequest({ id: '#1' })).pullRequest!.id).toBe(pr.id);
    expect((await h.globex.listPullRequests({})).pullRequests).toEqual([]);
    await expect(h.globex.getPullRequest({ id: pr.id })).rejects.toMatchObject({ code: Code.NotFound });

    // The CLI lists and shows them.
    const list = await ameide('prs', 'list');
    expect(list.status).toBe(0);
    expect(list.stdout).toMatch(/^#1\s+open\s+git\s+CALC-1\s+ameide\/calc-1\s+2\s+\d+[smhd] ago\s/m);
    const shown = await ameide('prs', 'get', '#1');
    expect(shown.stdout).toContain('pull request #1 (git) open');
    expect(shown.stdout).toContain('- [ ] multiply(6, 7) returns 42');
  });

  it('takes records only from a worker credential of the run tenant, and names the field of bad input', async () => {
    const run = (await h.acme.listWorkflowRuns({ statuses: [RunStatus.COMPLETED] })).runs[0]!;
    const base = {
      runId: run.id,
      provider: 'git',
      title: 't',
      body: '',
      baseBranch: 'main',
      headBranch: run.summary!.branch,
      headCommit: run.summary!.headCommit,
      state: 'open',
      repository: origin,
    };
    await expect(h.acme.recordPullRequest(base)).rejects.toMatchObject({ code: Code.PermissionDenied });
    const globexWorker = (await import('@ameide/sdk')).createWorkflowServiceClient({ baseUrl: h.apiUrl, token: h.tokens.globexService });
    await expect(globexWorker.recordPullRequest(base)).rejects.toMatchObject({ code: Code.PermissionDenied });
    const bad = await h.service.recordPullRequest({ ...base, state: 'maybe' }).catch((e: unknown) => ConnectError.from(e));
    expect(bad).toMatchObject({ code: Code.InvalidArgument });
    expect((bad as ConnectError).rawMessage).toMatch(/^state: must be one of open, draft, closed, merged/);
    const forge = await h.service.recordPullRequest({ ...base, provider: 'github', number: 0 }).catch((e: unknown) => ConnectError.from(e));
    expect((forge as ConnectError).rawMessage).toMatch(/^number: is required for the github provider/);
    const branch = await h.service.recordPullRequest({ ...base, headBranch: 'elsewhere' }).catch((e: unknown) => ConnectError.from(e));
    expect((branch as ConnectError).rawMessage).toMatch(/^head_branch: must be the run's work branch/);
  });

  it('opens no pull request when the definition says none', async () => {
    await applySample(h.acme, origin, { pullRequest: { provider: 'none' } }, 'sample-no-pr');
    const run = (await h.acme.startWorkflowRun({ definition: 'sample-no-pr', workItems: [{ ...MULTIPLY, id: 'CALC-7' }] })).run!;
    await watchAll(h.acme, run.id);
    const done = (await h.acme.getWorkflowRun({ id: run.id })).run!;
    expect(done.status).toBe(RunStatus.COMPLETED);
    expect(done.phases.map((p) => p.phase)).not.toContain(Phase.PULL_REQUEST);
    expect(done.summary!.pullRequest).toBeUndefined();
    expect((await h.acme.listPullRequests({ workItemId: 'CALC-7' })).pullRequests).toEqual([]);
  });
});
