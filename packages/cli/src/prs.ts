import { Option, type Command } from 'commander';
import { PullRequestSchema, type PullRequest } from '@ameide/contracts';
import { examples } from './args.js';
import { act, withLimit, withOutput, type OutputOptions } from './commands.js';
import type { Ctx } from './context.js';
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

/** `ameide prs list|get`: the one pull request of each work branch, as every rerun left it. */
export function registerPrs(program: Command, ctx: Ctx): void {
  const prs = program.command('prs').description('pull requests: one per work branch, updated by every rerun');
  examples(prs, 'ameide prs list --state open', 'ameide prs get "#3"');

  examples(
    withLimit(
      withOutput(
        prs
          .command('list')
          .description('list pull requests: number, state, provider, work item, branch, runs, last update, title')
          .option('--work-item <id>', "only this work item's pull request")
          .addOption(new Option('--state <state>', 'only pull requests in this state').choices(['open', 'draft', 'closed', 'merged'])),
      ),
    ),
    'ameide prs list --work-item PROJ-12',
  ).action(
    act(ctx, async (opts: OutputOptions & { workItem?: string; state?: string; limit?: number }) => {
      const res = await ctx.workflows().listPullRequests({ workItemId: opts.workItem ?? '', state: opts.state ?? '', pageSize: opts.limit ?? 0 });
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
    }),
  );

  examples(
    withOutput(prs.command('get').description('show a pull request with its description').argument('<pr>', 'pull request id or #number'), ['json', 'yaml']),
    'ameide prs get "#3"',
  ).action(
    act(ctx, async (id: string, opts: OutputOptions) => {
      const res = await ctx.workflows().getPullRequest({ id });
      emit(ctx.o, formatOf(opts), protoJson(PullRequestSchema, res.pullRequest!), () => formatPullRequest(res.pullRequest!));
      return 0;
    }),
  );
}
