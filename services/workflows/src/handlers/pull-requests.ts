import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { HandlerContext } from '@connectrpc/connect';
import {
  GetPullRequestResponseSchema,
  ListPullRequestsResponseSchema,
  PullRequestSchema,
  RecordPullRequestResponseSchema,
  type GetPullRequestRequest,
  type ListPullRequestsRequest,
  type PullRequest,
  type RecordPullRequestRequest,
} from '@ameide/contracts';
import { isUuid, type PullRequestRepository, type PullRequestRow, type RunRepository } from '@ameide/db';
import { InvalidFieldError, NotFoundError } from '../errors.js';
import { branchOfLane } from '../runs/lanes.js';
import { pageSize, requireId } from '../validation.js';
import { PAGED_LISTS, pageAfter, pageOf } from '../page-token.js';
import { handle, principalOf, requireWorkerFor } from './context.js';

const PROVIDERS = ['git', 'github', 'gitlab'];
const STATES = ['open', 'draft', 'closed', 'merged'];

export function pullRequestToProto(row: PullRequestRow): PullRequest {
  return create(PullRequestSchema, {
    id: row.id,
    tenantId: row.tenantId,
    provider: row.provider,
    number: row.number,
    repository: row.repository,
    title: row.title,
    body: row.body,
    baseBranch: row.baseBranch,
    headBranch: row.headBranch,
    headCommit: row.headCommit,
    state: row.state,
    url: row.url,
    workItemId: row.workItemId,
    firstRunId: row.firstRunId,
    lastRunId: row.lastRunId,
    revisions: row.revisions,
    createTime: timestampFromDate(row.createdAt),
    updateTime: timestampFromDate(row.updatedAt),
  });
}

/** Pull requests: the worker records what it opened or updated; people list and read them. */
export class PullRequestHandlers {
  constructor(
    private readonly pulls: PullRequestRepository,
    private readonly runs: RunRepository,
  ) {}

  recordPullRequest = (req: RecordPullRequestRequest, ctx: HandlerContext) =>
    handle(async () => {
      const run = isUuid(requireId('run_id', req.runId)) ? await this.runs.get(undefined, req.runId) : undefined;
      if (!run) throw new NotFoundError('run', req.runId);
      requireWorkerFor(ctx, run.tenantId, 'record pull requests');
      if (!PROVIDERS.includes(req.provider)) throw new InvalidFieldError('provider', `must be one of ${PROVIDERS.join(', ')}`);
      if (!STATES.includes(req.state)) throw new InvalidFieldError('state', `must be one of ${STATES.join(', ')}`);
      if (req.provider !== 'git' && req.number < 1) throw new InvalidFieldError('number', `is required for the ${req.provider} provider`);
      for (const [field, value] of [
        ['head_branch', req.headBranch],
        ['base_branch', req.baseBranch],
        ['head_commit', req.headCommit],
        ['title', req.title],
        ['repository', req.repository],
      ] as const) {
        if (!value.trim()) throw new InvalidFieldError(field, 'is required');
      }
      // The pull request's identity is the run's lane (repository and work branch).
      const branchKey = run.branchKey ?? `${req.repository}\n${req.headBranch}`;
      if (run.branchKey && branchOfLane(run.branchKey) !== req.headBranch) {
        throw new InvalidFieldError('head_branch', `must be the run's work branch ${branchOfLane(run.branchKey)}`);
      }
      const { row, created } = await this.pulls.record({
        tenantId: run.tenantId,
        branchKey,
        runId: run.id,
        provider: req.provider,
        number: req.provider === 'git' ? 0 : req.number,
        repository: req.repository,
        title: req.title,
        body: req.body,
        baseBranch: req.baseBranch,
        headBranch: req.headBranch,
        headCommit: req.headCommit,
        state: req.state,
        url: req.provider === 'git' ? '' : req.url,
        workItemId: run.spec.workItemIds[0] ?? '',
      });
      return create(RecordPullRequestResponseSchema, { pullRequest: pullRequestToProto(row), created });
    });

  getPullRequest = (req: GetPullRequestRequest, ctx: HandlerContext) =>
    handle(async () => {
      const tenantId = principalOf(ctx).tenantId;
      const id = requireId('id', req.id);
      const number = /^#?(\d{1,9})$/.exec(id)?.[1];
      let row: PullRequestRow | undefined;
      if (number) {
        const rows = await this.pulls.byNumber(tenantId, Number(number));
        if (rows.length > 1) {
          throw new InvalidFieldError('id', `#${number} names ${rows.length} pull requests (of ${rows.map((r) => r.repository).join(', ')}): use the id`);
        }
        row = rows[0];
      } else if (isUuid(id)) {
        row = await this.pulls.get(tenantId, id);
      }
      if (!row) throw new NotFoundError('pull request', id);
      return create(GetPullRequestResponseSchema, { pullRequest: pullRequestToProto(row) });
    });

  listPullRequests = (req: ListPullRequestsRequest, ctx: HandlerContext) =>
    handle(async () => {
      if (req.state && !STATES.includes(req.state)) throw new InvalidFieldError('state', `must be one of ${STATES.join(', ')}`);
      const { tenantId } = principalOf(ctx);
      const list = PAGED_LISTS.pullRequests;
      const filter = [tenantId, req.workItemId, req.state];
      const size = pageSize(req.pageSize);
      const after = pageAfter(list, req.pageToken, filter);
      const rows = await this.pulls.list(tenantId, { workItemId: req.workItemId || undefined, state: req.state || undefined, limit: size + 1, after });
      const { page, nextPageToken } = pageOf(list, rows, size, (r) => r.listKey, filter);
      return create(ListPullRequestsResponseSchema, { pullRequests: page.map((r) => pullRequestToProto(r)), nextPageToken });
    });
}
