import { workspaceOf, type PhaseUnit } from '../context.js';

/**
 * The work branch's one pull request: opened by the first run that pushed, updated by every rerun
 * (a closed one reopened; a merged one reported and left alone).
 */
export const pullRequest: PhaseUnit = {
  name: 'pull_request',
  applies: (ctx) => (ctx.input.repo.pullRequest?.provider ?? 'git') !== 'none' && ctx.summary.pushed,
  async run(ctx) {
    const ws = workspaceOf(ctx);
    const pr = await ctx.activities.forge.openPullRequest({
      run: ctx.input,
      branch: ws.branch,
      headCommit: ctx.summary.headCommit,
      summary: ctx.summary,
      phases: ctx.phases,
    });
    ctx.summary.pullRequest = { provider: pr.provider, number: pr.number, url: pr.url, state: pr.state };
    const where = pr.url ? ` ${pr.url}` : '';
    if (pr.action === 'merged') {
      return { state: 'succeeded', durationMs: pr.durationMs, outputTail: `pull request #${pr.number}${where} is merged already: not reopened` };
    }
    ctx.post({
      kind: pr.action === 'updated' ? 'pull_request_updated' : 'pull_request_opened',
      phase: 'pull_request',
      message: `pull request #${pr.number} ${pr.action}`,
      attributes: { provider: pr.provider, number: String(pr.number), url: pr.url, state: pr.state, action: pr.action },
      summary: { ...ctx.summary },
    });
    return { state: 'succeeded', durationMs: pr.durationMs, outputTail: `${pr.action} pull request #${pr.number}${where}: ${pr.title}` };
  },
};
