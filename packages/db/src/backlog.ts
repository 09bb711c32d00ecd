import { and, asc, desc, eq, getTableColumns, gt, isNotNull, lt, or, isNull, sql } from 'drizzle-orm';
import type { Db } from './client.js';
import { afterKey, keyTime, type ListKey } from './keyset.js';
import { plans, profiles, webhookDeliveries, workItems, type Annotations } from './schema.js';

export type WorkItemRow = typeof workItems.$inferSelect;
export type ProfileRow = typeof profiles.$inferSelect;

/** Work items of the tenants' backlogs: the newest revision of each. */
export class WorkItemRepository {
  constructor(private readonly db: Db) {}

  async get(tenantId: string, id: string): Promise<WorkItemRow | undefined> {
    const rows = await this.db
      .select()
      .from(workItems)
      .where(and(eq(workItems.tenantId, tenantId), eq(workItems.id, id)))
      .limit(1);
    return rows[0];
  }

  /**
   * Stores a revision if it is newer than the stored one (one statement: of two writers of the same
   * revision, exactly one applies it). Returns the row as it now is and whether this call applied it.
   */
  async upsertNewer(
    row: Omit<WorkItemRow, 'createdAt' | 'updatedAt' | 'triggeredRevision' | 'planId' | 'runId' | 'doneAt'> & { done?: boolean },
  ): Promise<{ row: WorkItemRow; applied: boolean }> {
    const { done, ...values } = row;
    const applied = await this.db
      .insert(workItems)
      .values(values)
      .onConflictDoUpdate({
        target: [workItems.tenantId, workItems.id],
        set: {
          revision: row.revision,
          spec: row.spec,
          annotations: row.annotations,
          readiness: row.readiness,
          state: row.state,
          profile: row.profile,
          ready: row.ready,
          // A revision that triggers becomes the one to plan for; one that does not leaves a pending one as it is.
          triggerRevision: row.triggerRevision ?? sql`${workItems.triggerRevision}`,
          readyAt: row.readyAt ? sql`coalesce(${workItems.readyAt}, ${row.readyAt.toISOString()}::timestamptz)` : sql`${workItems.readyAt}`,
          // The first revision saying done, once the item had been ready.
          doneAt: done ? sql`coalesce(${workItems.doneAt}, case when ${workItems.readyAt} is not null then now() end)` : sql`${workItems.doneAt}`,
          updatedAt: sql`now()`,
        },
        setWhere: lt(workItems.revision, row.revision),
      })
      .returning();
    if (applied[0]) return { row: applied[0], applied: true };
    return { row: (await this.get(row.tenantId, row.id))!, applied: false };
  }

  /** Newest change first (then by id), from after `after` (a row's `listKey`: update time to the microsecond, id). */
  async list(
    tenantId: string,
    f: { state?: string; timeboxId?: string; goalId?: string; profile?: string; ready?: boolean; limit: number; after?: ListKey },
  ): Promise<Array<WorkItemRow & { listKey: ListKey }>> {
    const where = [eq(workItems.tenantId, tenantId)];
    if (f.state) where.push(eq(workItems.state, f.state));
    if (f.profile) where.push(eq(workItems.profile, f.profile));
    if (f.ready !== undefined) where.push(eq(workItems.ready, f.ready));
    if (f.timeboxId) where.push(sql`${workItems.spec} @> ${JSON.stringify({ timeboxIds: [f.timeboxId] })}::jsonb`);
    if (f.goalId) where.push(sql`${workItems.spec} @> ${JSON.stringify({ goalIds: [f.goalId] })}::jsonb`);
    if (f.after) where.push(afterKey('desc', [workItems.updatedAt, workItems.id], [sql`${f.after[0]}::timestamptz`, sql`${f.after[1]}::text`]));
    const rows = await this.db
      .select({ ...getTableColumns(workItems), keyTime: keyTime(workItems.updatedAt) })
      .from(workItems)
      .where(and(...where))
      .orderBy(desc(workItems.updatedAt), desc(workItems.id))
      .limit(f.limit);
    return rows.map(({ keyTime, ...row }) => ({ ...row, listKey: [keyTime, row.id] }));
  }

  /** Work items of any tenant whose triggering revision has no plan and run yet, oldest change first. */
  async pendingTriggers(limit: number): Promise<WorkItemRow[]> {
    return this.db
      .select()
      .from(workItems)
      .where(and(isNotNull(workItems.triggerRevision), or(isNull(workItems.triggeredRevision), lt(workItems.triggeredRevision, workItems.triggerRevision))))
      .orderBy(asc(workItems.updatedAt))
      .limit(limit);
  }

  /** Records what automation made for a revision: its plan and, unless the plan waits for approval, its run. */
  async markTriggered(tenantId: string, id: string, revision: number, planId: string, runId: string | null): Promise<void> {
    await this.db
      .update(workItems)
      .set({ triggeredRevision: revision, planId, runId })
      .where(and(eq(workItems.tenantId, tenantId), eq(workItems.id, id)));
  }

  /** Records the run an approval started for the item's plan. */
  async setRun(tenantId: string, id: string, planId: string, runId: string): Promise<void> {
    await this.db
      .update(workItems)
      .set({ runId })
      .where(and(eq(workItems.tenantId, tenantId), eq(workItems.id, id), eq(workItems.planId, planId)));
  }

  /** Serialises automation of one work item until the transaction ends. */
  async lock(tenantId: string, id: string): Promise<void> {
    await this.db.execute(sql`select pg_advisory_xact_lock(hashtextextended(${`work-item\n${tenantId}\n${id}`}, 0))`);
  }
}

/** Custom methodology profiles of the tenants. */
export class ProfileRepository {
  constructor(private readonly db: Db) {}

  async get(tenantId: string, name: string): Promise<ProfileRow | undefined> {
    const rows = await this.db
      .select()
      .from(profiles)
      .where(and(eq(profiles.tenantId, tenantId), eq(profiles.name, name)))
      .limit(1);
    return rows[0];
  }

  /** The tenant's profiles by name, from after the name `after`, at most `limit`. */
  async list(tenantId: string, f: { limit: number; after?: string }): Promise<ProfileRow[]> {
    return this.db
      .select()
      .from(profiles)
      .where(and(eq(profiles.tenantId, tenantId), f.after === undefined ? undefined : gt(profiles.name, f.after)))
      .orderBy(asc(profiles.name))
      .limit(f.limit);
  }

  /** Creates the profile, or stores a new version when the spec differs; an unchanged spec keeps its version. */
  async apply(tenantId: string, name: string, spec: Record<string, unknown>): Promise<ProfileRow> {
    const rows = await this.db
      .insert(profiles)
      .values({ tenantId, name, spec })
      .onConflictDoUpdate({
        target: [profiles.tenantId, profiles.name],
        set: {
          spec,
          version: sql`case when ${profiles.spec} = ${JSON.stringify(spec)}::jsonb then ${profiles.version} else ${profiles.version} + 1 end`,
          updatedAt: sql`case when ${profiles.spec} = ${JSON.stringify(spec)}::jsonb then ${profiles.updatedAt} else now() end`,
        },
      })
      .returning();
    return rows[0]!;
  }
}

export type PlanApproval = NonNullable<(typeof plans.$inferSelect)['approval']>;

/** The approval gate of plans: pending plans and their decisions. */
export class PlanApprovalRepository {
  constructor(private readonly db: Db) {}

  /** Sets a plan's approval; with `from`, only if its approval is in that state now (returns undefined otherwise). */
  async set(tenantId: string, planId: string, approval: PlanApproval, from?: string) {
    const where = [eq(plans.tenantId, tenantId), eq(plans.id, planId)];
    if (from) where.push(sql`${plans.approval}->>'state' = ${from}`);
    const rows = await this.db
      .update(plans)
      .set({ approval })
      .where(and(...where))
      .returning();
    return rows[0];
  }

  /** Plans of a work item still waiting for approval. */
  async pending(tenantId: string, workItemId: string) {
    return this.db
      .select()
      .from(plans)
      .where(and(eq(plans.tenantId, tenantId), eq(plans.workItemId, workItemId), sql`${plans.approval}->>'state' = 'APPROVAL_STATE_PENDING'`));
  }
}

/** Webhook deliveries seen per tenant. */
export class DeliveryRepository {
  constructor(private readonly db: Db) {}

  /** Whether a delivery id was processed before. */
  async seen(tenantId: string, deliveryId: string): Promise<boolean> {
    const rows = await this.db
      .select({ id: webhookDeliveries.deliveryId })
      .from(webhookDeliveries)
      .where(and(eq(webhookDeliveries.tenantId, tenantId), eq(webhookDeliveries.deliveryId, deliveryId)))
      .limit(1);
    return rows.length === 1;
  }

  /** Records a processed delivery id. */
  async record(tenantId: string, deliveryId: string): Promise<void> {
    await this.db.insert(webhookDeliveries).values({ tenantId, deliveryId }).onConflictDoNothing();
  }
}

export type { Annotations };
