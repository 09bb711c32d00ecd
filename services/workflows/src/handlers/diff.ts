import { createHash } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import type { HandlerContext } from '@connectrpc/connect';
import { GetRunDiffResponseSchema, type GetRunDiffRequest } from '@ameide/contracts';
import type { PlanRepository, RunRepository, RunRow } from '@ameide/db';
import { FailedPreconditionError, InvalidFieldError, NotFoundError } from '../errors.js';
import { isTerminal } from '../runs/fold.js';
import type { RunChange, RunDiffs } from '../runs/diff.js';
import { pageSize, resolveId } from '../validation.js';
import { handle, principalOf } from './context.js';

/** `running` for `RUN_STATUS_RUNNING`. */
const statusWord = (s: string) => s.replace('RUN_STATUS_', '').toLowerCase().replace('_', ' ');

/** What ties a page token to one version of one run's change. */
function tokenTag(runId: string, headCommit: string): string {
  return createHash('sha256').update(`${runId}\n${headCommit}`).digest('hex').slice(0, 16);
}

/** An opaque page token: where the next page starts, for this run and head commit only. */
export function encodePageToken(offset: number, runId: string, headCommit: string): string {
  return Buffer.from(`d1:${offset}:${tokenTag(runId, headCommit)}`).toString('base64url');
}

/** The offset a page token names; InvalidArgument for a token of another run (or head) or one this service did not give out. */
export function decodePageToken(token: string, runId: string, headCommit: string): number {
  const m = /^[A-Za-z0-9_-]+$/.test(token) ? /^d1:(\d{1,9}):([0-9a-f]{16})$/.exec(Buffer.from(token, 'base64url').toString('latin1')) : null;
  if (!m) throw new InvalidFieldError('page_token', 'is not a page token of GetRunDiff; pass next_page_token of the previous response');
  if (m[2] !== tokenTag(runId, headCommit))
    throw new InvalidFieldError('page_token', 'belongs to another run (or an earlier change of this one); start again without it');
  return Number(m[1]);
}

/** Run diffs: a finished run's change (base..head of the branch it pushed), a page of files at a time. */
export class DiffHandlers {
  constructor(
    private readonly runs: RunRepository,
    private readonly plans: PlanRepository,
    private readonly diffs: RunDiffs,
  ) {}

  getRunDiff = (req: GetRunDiffRequest, ctx: HandlerContext) =>
    handle(async () => {
      const { tenantId } = principalOf(ctx);
      const id = await resolveId(this.runs, 'run', tenantId, 'id', req.id);
      const row = id ? await this.runs.get(tenantId, id) : undefined;
      if (!row) throw new NotFoundError('run', req.id);
      const size = pageSize(req.pageSize);
      const change = await this.changeOf(row);
      const offset = req.pageToken ? decodePageToken(req.pageToken, row.id, change.headCommit) : 0;
      const files = await this.diffs.files(change, ctx.signal);
      if (offset > files.length) throw new InvalidFieldError('page_token', 'points past the last file of the change');
      let page = files.slice(offset, offset + size);
      let patches: string[] = [];
      if (!req.statOnly) {
        patches = (await this.diffs.patches(change, files, offset, size, ctx.signal)).patches;
        page = page.slice(0, patches.length);
      }
      const next = offset + page.length;
      return create(GetRunDiffResponseSchema, {
        baseCommit: change.baseCommit,
        headCommit: change.headCommit,
        source: 'branch',
        files: page.map((f, i) => ({ ...f, patch: patches[i] ?? '' })),
        nextPageToken: next < files.length ? encodePageToken(next, row.id, change.headCommit) : '',
        filesChanged: files.length,
        insertions: files.reduce((n, f) => n + f.insertions, 0),
        deletions: files.reduce((n, f) => n + f.deletions, 0),
      });
    });

  /** Where the run's change is: its pushed branch, base and head, and its plan's repository; FailedPrecondition when it has none. */
  private async changeOf(row: RunRow): Promise<RunChange> {
    const s = row.state.summary ?? {};
    const status = statusWord(row.status);
    const why = row.state.error ? `${status}: ${row.state.error}` : status;
    if (!isTerminal(row.status)) throw new FailedPreconditionError(`the run has no change yet (status ${status})`);
    if (!s.pushed) {
      if (s.handoffUri)
        throw new FailedPreconditionError(
          `the run did not push its branch (${why}); its change is in its handoff bundle: \`ameide runs handoff ${row.id}\` restores it (GetRunDiff reads pushed branches only)`,
        );
      if (!s.headCommit) throw new FailedPreconditionError(`the run has no change (status ${why})`);
      throw new FailedPreconditionError(`the run did not push its branch and left no handoff bundle (${why})`);
    }
    if (!s.headCommit || !s.baseCommit || !s.branch)
      throw new FailedPreconditionError(`the run has no change yet (status ${status}): its summary names no branch, base and head`);
    const plan = await this.plans.get(row.tenantId, row.planId);
    const repoUrl = plan?.spec.repo?.repoUrl ?? '';
    if (!repoUrl) throw new FailedPreconditionError(`the run's plan ${row.planId} names no repository`);
    return { tenantId: row.tenantId, runId: row.id, repoUrl, branch: s.branch, baseCommit: s.baseCommit, headCommit: s.headCommit };
  }
}
