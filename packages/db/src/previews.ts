import { and, desc, eq, getTableColumns, gt, gte, inArray, lte, ne, or, sql, type SQL } from 'drizzle-orm';
import { alias } from 'drizzle-orm/pg-core';
import type { Db } from './client.js';
import { afterKey, keyTime, type ListKey } from './keyset.js';
import { previews } from './schema.js';

export type PreviewRow = typeof previews.$inferSelect;

/** What the worker reports when a preview goes live. */
export interface LivePreview {
  runId: string;
  tenantId: string;
  workItemId: string;
  provider: string;
  target: string;
  url: string;
  aliasUrl: string;
  expiresAt: Date | null;
}

/** What the worker reports when a preview stops (provider and work item only matter when no live report came first). */
export interface StoppedPreview {
  runId: string;
  tenantId: string;
  workItemId: string;
  provider: string;
  reason: string;
}

/** The newest first: by the time it went live, then by run id (so every reader picks the same one). */
const NEWEST = [desc(previews.liveAt), desc(previews.runId)];

/** Run ids starting with `id8` (8 lower-case hex digits) as a range of the primary key. */
function runIdPrefix(id8: string): SQL {
  if (!/^[0-9a-f]{8}$/.test(id8)) throw new Error(`not a run id prefix: ${id8}`);
  return and(gte(previews.runId, `${id8}-0000-0000-0000-000000000000`), lte(previews.runId, `${id8}-ffff-ffff-ffff-ffffffffffff`))!;
}

/**
 * Previews of runs: one row per run, live until the worker says it stopped. A stopped preview stays
 * stopped (a late or repeated live report does not bring it back).
 */
export class PreviewRepository {
  constructor(private readonly db: Db) {}

  /**
   * Records a preview as live. Idempotent per run: a repeat keeps `live_at` (and so the preview's
   * place in its work item's alias) and takes the new target, URLs and expiry; a preview that has
   * stopped is returned unchanged. `created` is true when this call made the row.
   */
  async upsertLive(p: LivePreview): Promise<{ row: PreviewRow; created: boolean }> {
    return this.db.transaction(async (tx) => {
      const inserted = await tx
        .insert(previews)
        .values({ ...p, state: 'live' })
        .onConflictDoNothing()
        .returning();
      if (inserted[0]) return { row: inserted[0], created: true };
      const [updated] = await tx
        .update(previews)
        .set({ target: p.target, url: p.url, aliasUrl: p.aliasUrl, expiresAt: p.expiresAt })
        .where(and(eq(previews.runId, p.runId), eq(previews.state, 'live')))
        .returning();
      if (updated) return { row: updated, created: false };
      const [row] = await tx.select().from(previews).where(eq(previews.runId, p.runId));
      return { row: row!, created: false };
    });
  }

  /**
   * Marks a run's preview stopped. Idempotent: the first stop's time and reason are kept. A run
   * without a preview gets a stopped one, so that a live report arriving after it changes nothing.
   * `changed` is true when this call stopped it.
   */
  async markStopped(p: StoppedPreview): Promise<{ row: PreviewRow; changed: boolean }> {
    return this.db.transaction(async (tx) => {
      const [updated] = await tx
        .update(previews)
        .set({ state: 'stopped', stoppedAt: sql`now()`, stopReason: p.reason })
        .where(and(eq(previews.runId, p.runId), eq(previews.state, 'live')))
        .returning();
      if (updated) return { row: updated, changed: true };
      const [inserted] = await tx
        .insert(previews)
        .values({
          runId: p.runId,
          tenantId: p.tenantId,
          workItemId: p.workItemId,
          provider: p.provider,
          state: 'stopped',
          stoppedAt: sql`now()`,
          stopReason: p.reason,
        })
        .onConflictDoNothing()
        .returning();
      if (inserted) return { row: inserted, changed: true };
      const [row] = await tx.select().from(previews).where(eq(previews.runId, p.runId));
      return { row: row!, changed: false };
    });
  }

  /** A run's preview; `tenantId` undefined means any tenant. */
  async get(tenantId: string | undefined, runId: string): Promise<PreviewRow | undefined> {
    const where = tenantId === undefined ? eq(previews.runId, runId) : and(eq(previews.runId, runId), eq(previews.tenantId, tenantId));
    const rows = await this.db.select().from(previews).where(where).limit(1);
    return rows[0];
  }

  /** A tenant's previews, newest first, from after `after` (a row's `listKey`: `live_at` to the microsecond, run id). */
  async list(
    tenantId: string,
    f: { workItemId?: string; runId?: string; state?: string; limit: number; after?: ListKey },
  ): Promise<Array<PreviewRow & { listKey: ListKey }>> {
    const where = [eq(previews.tenantId, tenantId)];
    if (f.workItemId) where.push(eq(previews.workItemId, f.workItemId));
    if (f.runId) where.push(eq(previews.runId, f.runId));
    if (f.state) where.push(eq(previews.state, f.state));
    if (f.after) where.push(afterKey('desc', [previews.liveAt, previews.runId], [sql`${f.after[0]}::timestamptz`, sql`${f.after[1]}::uuid`]));
    const rows = await this.db
      .select({ ...getTableColumns(previews), keyTime: keyTime(previews.liveAt) })
      .from(previews)
      .where(and(...where))
      .orderBy(...NEWEST)
      .limit(f.limit);
    return rows.map(({ keyTime, ...row }) => ({ ...row, listKey: [keyTime, row.runId] }));
  }

  /** The preview a work item's alias points at: its newest live preview (by `live_at`). */
  async aliasOf(tenantId: string, workItemId: string): Promise<PreviewRow | undefined> {
    if (!workItemId) return undefined;
    const rows = await this.db
      .select()
      .from(previews)
      .where(and(eq(previews.tenantId, tenantId), eq(previews.workItemId, workItemId), eq(previews.state, 'live')))
      .orderBy(...NEWEST)
      .limit(1);
    return rows[0];
  }

  /** The run each work item's alias points at, for several work items at once. */
  async aliasRuns(tenantId: string, workItemIds: string[]): Promise<Map<string, string>> {
    const ids = [...new Set(workItemIds.filter(Boolean))];
    if (ids.length === 0) return new Map();
    const rows = await this.db
      .selectDistinctOn([previews.workItemId], { workItemId: previews.workItemId, runId: previews.runId })
      .from(previews)
      .where(and(eq(previews.tenantId, tenantId), inArray(previews.workItemId, ids), eq(previews.state, 'live')))
      .orderBy(previews.workItemId, ...NEWEST);
    return new Map(rows.map((r) => [r.workItemId, r.runId]));
  }

  /** The live preview of the tenant's run whose id starts with `id8` (the newest, should two runs share it). */
  async liveByRunPrefix(tenantId: string, id8: string): Promise<PreviewRow | undefined> {
    const rows = await this.db
      .select()
      .from(previews)
      .where(and(runIdPrefix(id8), eq(previews.tenantId, tenantId), eq(previews.state, 'live')))
      .orderBy(...NEWEST)
      .limit(1);
    return rows[0];
  }

  /**
   * Live previews of the same work item as run `runId`'s preview that went live before it (what it
   * supersedes). Compared in SQL: `live_at` has microseconds, a JavaScript Date only milliseconds.
   */
  async olderLive(runId: string): Promise<PreviewRow[]> {
    const me = alias(previews, 'me');
    const rows = await this.db
      .select({ p: previews })
      .from(previews)
      .innerJoin(me, and(eq(me.runId, runId), eq(previews.tenantId, me.tenantId), eq(previews.workItemId, me.workItemId)))
      .where(and(ne(me.workItemId, ''), eq(previews.state, 'live'), sql`(${previews.liveAt}, ${previews.runId}) < (${me.liveAt}, ${me.runId})`))
      .orderBy(...NEWEST);
    return rows.map((r) => r.p);
  }

  /**
   * What the preview router routes, read in one go: every live preview, and those stopped since
   * `stoppedSince` (to say why a host no longer answers). One sequential read of the table.
   */
  async routable(stoppedSince: Date): Promise<PreviewRow[]> {
    return this.db
      .select()
      .from(previews)
      .where(or(eq(previews.state, 'live'), gt(previews.stoppedAt, stoppedSince)))
      .orderBy(...NEWEST);
  }
}
