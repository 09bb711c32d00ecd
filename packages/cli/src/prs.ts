import { timestampDate } from '@bufbuild/protobuf/wkt';
import { toJson } from '@bufbuild/protobuf';
import { PullRequestSchema, type PullRequest } from '@ameide/contracts';
import type { WorkflowServiceClient } from '@ameide/sdk';
import { flag, has, positional, UsageError, type Args } from './args.js';
import type { Output } from './commands.js';

const when = (p: PullRequest) => (p.updateTime ? timestampDate(p.updateTime).toISOString().replace('T', ' ').slice(0, 19) : '-');

/** One pull request per line: number, state, provider, work item, branch, revisions, title. */
function formatLine(p: PullRequest): string {
  return `#${String(p.number).padEnd(5)} ${p.state.padEnd(7)} ${p.provider.padEnd(7)} ${(p.workItemId || '-').padEnd(12)} ${p.headBranch}  (${p.revisions} run${p.revisions === 1 ? '' : 's'}, ${when(p)})  ${p.title}`;
}

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
export async function prsCommand(api: WorkflowServiceClient, sub: string, args: Args, o: Output): Promise<number> {
  const json = has(args, 'json');
  switch (sub) {
    case 'list': {
      const res = await api.listPullRequests({ workItemId: flag(args, 'work-item') ?? '', state: flag(args, 'state') ?? '' });
      if (json)
        o.out(
          JSON.stringify(
            res.pullRequests.map((p) => toJson(PullRequestSchema, p)),
            null,
            2,
          ),
        );
      else o.out(res.pullRequests.length ? res.pullRequests.map(formatLine).join('\n') : 'no pull requests');
      return 0;
    }
    case 'get': {
      const id = positional(args, 2, 'prs get needs a pull request id or #number');
      const res = await api.getPullRequest({ id });
      o.out(json ? JSON.stringify(toJson(PullRequestSchema, res.pullRequest!), null, 2) : formatPullRequest(res.pullRequest!));
      return 0;
    }
    default:
      throw new UsageError('prs needs list or get');
  }
}
