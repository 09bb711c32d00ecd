import { PullRequestSchema, type PullRequest } from '@ameide/contracts';
import type { OutputOptions } from './args.js';
import type { Ctx } from './context.js';
import { listPages } from './pages.js';
import { ago, emit, formatOf, protoJson, statusColour, table, type Column } from './output.js';

function formatPullRequest(p: PullRequest): string {
  return [
    `pull request #${p.number} (${p.provider}) ${p.state}`,
    `id          ${p.id}`,
    `title       ${p.title}`,
    `repository  ${p.repository}`,
    `branches    ${p.headBranch} → ${p.baseBranch} at ${p.headCommit.slice(0, 12)}`,
    ...(p.url ? [`url         ${p.url}`] : []),
    `work item   ${p.workItemId || '-'}`,
    `runs        opened by ${p.firstRunId}, last updated by ${p.lastRunId} (${p.revisions} run${p.revisions === 1 ? '' : 's'})`,
    '',
    p.body.trimEnd(),
  ].join('\n');
}

export async function prsList(ctx: Ctx, opts: OutputOptions & { workItem?: string; state?: string; limit?: number }): Promise<number> {
  const api = ctx.workflows();
  const res = {
    pullRequests: await listPages(opts.limit, async (pageSize, pageToken) => {
      const r = await api.listPullRequests({ workItemId: opts.workItem ?? '', state: opts.state ?? '', pageSize, pageToken });
      return { items: r.pullRequests, nextPageToken: r.nextPageToken };
    }),
  };
  const cols = (wide: boolean): Column[] => [
    { header: 'number' },
    { header: 'state', colour: statusColour },
    { header: 'provider' },
    { header: 'work item' },
    { header: 'branch' },
    { header: 'runs', right: true },
    { header: 'updated' },
    { header: 'title', shrink: !wide },
    ...(wide ? [{ header: 'url' }] : []),
  ];
  const row = (p: PullRequest, wide: boolean) => [
    `#${p.number}`,
    p.state,
    p.provider,
    p.workItemId || '-',
    p.headBranch,
    String(p.revisions),
    ago(p.updateTime),
    p.title,
    ...(wide ? [p.url || '-'] : []),
  ];
  emit(
    ctx.o,
    formatOf(opts),
    res.pullRequests.map((p) => protoJson(PullRequestSchema, p)),
    () =>
      table(
        ctx.term,
        cols(false),
        res.pullRequests.map((p) => row(p, false)),
        'no pull requests',
      ),
    () =>
      table(
        ctx.term,
        cols(true),
        res.pullRequests.map((p) => row(p, true)),
        'no pull requests',
      ),
  );
  return 0;
}

export async function prsGet(ctx: Ctx, id: string, opts: OutputOptions): Promise<number> {
  const res = await ctx.workflows().getPullRequest({ id });
  emit(ctx.o, formatOf(opts), protoJson(PullRequestSchema, res.pullRequest!), () => formatPullRequest(res.pullRequest!));
  return 0;
}
