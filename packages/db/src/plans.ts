import { and, desc, eq, getTableColumns, sql } from 'drizzle-orm';
import type { PlanSpecJson } from '@ameide/contracts';
import type { Db } from './client.js';
import { idsWithPrefix } from './ids.js';
import { afterKey, keyTime, type ListKey } from './keyset.js';
import { plans, type Annotations } from './schema.js';

export type PlanRow = typeof plans.$inferSelect;

/** Plans of one tenant. */
export class PlanRepository {
  constructor(private readonly db: Db) {}

  /** Ids of the tenant's plans that begin with `prefix` (a short id), at most `limit`. */
  idsWithPrefix(tenantId: string, prefix: string, limit: number): Promise<string[]> {
    return idsWithPrefix(this.db, 'plan', tenantId, prefix, limit);
  }

  /** Inserts a plan; one made for a work item revision carries it, and gets the item's next version. */
  async insert(
    tenantId: string,
    definitionId: string,
    spec: PlanSpecJson,
    annotations: Annotations,
    workItem?: { id: string; revision: number },
  ): Promise<PlanRow> {
    const version = workItem
      ? sql`(select coalesce(max(${plans.version}), 0) + 1 from ${plans} where ${plans.tenantId} = ${tenantId} and ${plans.workItemId} = ${workItem.id})`
      : undefined;
    const rows = await this.db
      .insert(plans)
      .values({ tenantId, definitionId, spec, annotations, workItemId: workItem?.id, workItemRevision: workItem?.revision, ...(version ? { version } : {}) })
      .returning();
    return rows[0]!;
  }

  async get(tenantId: string, id: string): Promise<PlanRow | undefined> {
    const rows = await this.db
      .select()
      .from(plans)
      .where(and(eq(plans.tenantId, tenantId), eq(plans.id, id)))
      .limit(1);
    return rows[0];
  }

  /** The plan of version `version` among a work item's plans (automation numbers them 1, 2, … per item). */
  async byWorkItemVersion(tenantId: string, workItemId: string, version: number): Promise<PlanRow | undefined> {
    const rows = await this.db
      .select()
      .from(plans)
      .where(and(eq(plans.tenantId, tenantId), eq(plans.workItemId, workItemId), eq(plans.version, version)))
      .limit(1);
    return rows[0];
  }

  /**
   * Lists plans, newest first (then by id), from after `after` (a row's `listKey`: creation time to the
   * microsecond, id); the work item filter uses JSONB containment on the spec (GIN index).
   */
  async list(
    tenantId: string,
    f: { definitionId?: string; workItemId?: string; limit: number; after?: ListKey },
  ): Promise<Array<PlanRow & { listKey: ListKey }>> {
    const where = [eq(plans.tenantId, tenantId)];
    if (f.definitionId) where.push(eq(plans.definitionId, f.definitionId));
    if (f.workItemId) where.push(sql`${plans.spec} @> ${JSON.stringify({ methodology: { workItemIds: [f.workItemId] } })}::jsonb`);
    if (f.after) where.push(afterKey('desc', [plans.createdAt, plans.id], [sql`${f.after[0]}::timestamptz`, sql`${f.after[1]}::uuid`]));
    const rows = await this.db
      .select({ ...getTableColumns(plans), keyTime: keyTime(plans.createdAt) })
      .from(plans)
      .where(and(...where))
      .orderBy(desc(plans.createdAt), desc(plans.id))
      .limit(f.limit);
    return rows.map(({ keyTime, ...row }) => ({ ...row, listKey: [keyTime, row.id] }));
  }
}
