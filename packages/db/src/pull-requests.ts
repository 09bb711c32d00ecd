import { randomUUID } from 'node:crypto';
import { and, desc, eq, getTableColumns, sql } from 'drizzle-orm';
import type { Db } from './client.js';
import { afterKey, keyTime, type ListKey } from './keyset.js';
import { pullRequests } from './schema.js';

export type PullRequestRow = typeof pullRequests.$inferSelect;

/** What a run reports about its branch's pull request. */
export interface PullRequestReport {
  tenantId: string;
  branchKey: string;
  runId: string;
  provider: string;
  /** The forge's number; 0 for the git provider (the branch keeps its number, a new one gets the repository's next). */
  number: number;
  repository: string;
  title: string;
  body: string;
  baseBranch: string;
  headBranch: string;
  headCommit: string;
  state: string;
  url: string;
  workItemId: string;
}

/** Pull requests, one per work branch (lane). */
export class PullRequestRepository {
  constructor(private readonly db: Db) {}

  /**
   * Creates the branch's pull request or updates it, in one transaction under the repository's lock
   * (the git provider's numbers are given in order, without gaps or doubles). Idempotent per run: a
   * repeated report of the same run changes nothing more and does not count as another revision.
   */
  async record(r: PullRequestReport): Promise<{ row: PullRequestRow; created: boolean }> {
    return this.db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${`pull-requests\n${r.tenantId}\n${r.repository}`}, 0))`);
      const [existing] = await tx
        .select()
        .from(pullRequests)
        .where(and(eq(pullRequests.tenantId, r.tenantId), eq(pullRequests.branchKey, r.branchKey)))
        .limit(1);
      const fields = {
        provider: r.provider,
        repository: r.repository,
        title: r.title,
        body: r.body,
        baseBranch: r.baseBranch,
        headBranch: r.headBranch,
        headCommit: r.headCommit,
        state: r.state,
        url: r.url,
        lastRunId: r.runId,
        updatedAt: new Date(),
      };
      if (existing) {
        const sameRun = existing.lastRunId === r.runId;
        const [row] = await tx
          .update(pullRequests)
          .set({
            ...fields,
            number: r.number || (existing.provider === r.provider ? existing.number : await this.nextNumber(tx, r)),
            workItemId: r.workItemId || existing.workItemId,
            revisions: sameRun ? existing.revisions : existing.revisions + 1,
          })
          .where(eq(pullRequests.id, existing.id))
          .returning();
        return { row: row!, created: existing.firstRunId === r.runId };
      }
      const [row] = await tx
        .insert(pullRequests)
        .values({
          ...fields,
          id: randomUUID(),
          tenantId: r.tenantId,
          branchKey: r.branchKey,
          number: r.number || (await this.nextNumber(tx, r)),
          workItemId: r.workItemId,
          firstRunId: r.runId,
          revisions: 1,
        })
        .returning();
      return { row: row!, created: true };
    });
  }

  /** The next git-provider number of the tenant's repository (taken under its lock). */
  private async nextNumber(tx: Pick<Db, 'select'>, r: Pick<PullRequestReport, 'tenantId' | 'repository'>): Promise<number> {
    const [m] = await tx
      .select({ max: sql<number>`coalesce(max(${pullRequests.number}), 0)` })
      .from(pullRequests)
      .where(and(eq(pullRequests.tenantId, r.tenantId), eq(pullRequests.repository, r.repository), eq(pullRequests.provider, 'git')));
    return Number(m?.max ?? 0) + 1;
  }

  async get(tenantId: string, id: string): Promise<PullRequestRow | undefined> {
    const [row] = await this.db
      .select()
      .from(pullRequests)
      .where(and(eq(pullRequests.tenantId, tenantId), eq(pullRequests.id, id)))
      .limit(1);
    return row;
  }

  /** The tenant's pull requests with this number (one per repository and provider). */
  async byNumber(tenantId: string, number: number): Promise<PullRequestRow[]> {
    return this.db
      .select()
      .from(pullRequests)
      .where(and(eq(pullRequests.tenantId, tenantId), eq(pullRequests.number, number)))
      .limit(10);
  }

  /** The latest updated first (then by id), from after `after` (a row's `listKey`: update time to the microsecond, id). */
  async list(
    tenantId: string,
    f: { workItemId?: string; state?: string; limit: number; after?: ListKey },
  ): Promise<Array<PullRequestRow & { listKey: ListKey }>> {
    const where = [eq(pullRequests.tenantId, tenantId)];
    if (f.workItemId) where.push(eq(pullRequests.workItemId, f.workItemId));
    if (f.state) where.push(eq(pullRequests.state, f.state));
    if (f.after) where.push(afterKey('desc', [pullRequests.updatedAt, pullRequests.id], [sql`${f.after[0]}::timestamptz`, sql`${f.after[1]}::uuid`]));
    const rows = await this.db
      .select({ ...getTableColumns(pullRequests), keyTime: keyTime(pullRequests.updatedAt) })
      .from(pullRequests)
      .where(and(...where))
      .orderBy(desc(pullRequests.updatedAt), desc(pullRequests.id))
      .limit(f.limit);
    return rows.map(({ keyTime, ...row }) => ({ ...row, listKey: [keyTime, row.id] }));
  }
}
