import { and, desc, eq, getTableColumns, ne, sql } from 'drizzle-orm';
import type { Db } from './client.js';
import { afterKey, keyTime, type ListKey } from './keyset.js';
import { impediments } from './schema.js';

export type ImpedimentRow = typeof impediments.$inferSelect;

/** open, resolved, or handed back to the agent (a rerun was queued). */
export type ImpedimentStateName = 'open' | 'resolved' | 'reassigned_to_agent';

/** What raising an impediment stores; the rest (state, assignee, resolution, rerun) starts empty. */
export interface NewImpediment {
  tenantId: string;
  /** What makes it one impediment, e.g. `run:<runId>`. */
  causeKey: string;
  cause: string;
  reason: string;
  phase: string;
  runId: string | null;
  workItemId: string;
  timeboxIds: string[];
  goalIds: string[];
  handoffUri: string;
}

/** Impediments automation raised, one per cause; people resolve them or hand them back to the agent. */
export class ImpedimentRepository {
  constructor(private readonly db: Db) {}

  /**
   * Raises an impediment once per cause: a second raise of the same `causeKey` (a retried activity,
   * the same run finishing twice) stores nothing and returns the first, with `created: false`.
   */
  async raise(i: NewImpediment): Promise<{ row: ImpedimentRow; created: boolean }> {
    const [inserted] = await this.db
      .insert(impediments)
      .values({ ...i })
      .onConflictDoNothing({ target: [impediments.tenantId, impediments.causeKey] })
      .returning();
    if (inserted) return { row: inserted, created: true };
    const [existing] = await this.db
      .select()
      .from(impediments)
      .where(and(eq(impediments.tenantId, i.tenantId), eq(impediments.causeKey, i.causeKey)))
      .limit(1);
    return { row: existing!, created: false };
  }

  async get(tenantId: string, id: string): Promise<ImpedimentRow | undefined> {
    const [row] = await this.db
      .select()
      .from(impediments)
      .where(and(eq(impediments.tenantId, tenantId), eq(impediments.id, id)))
      .limit(1);
    return row;
  }

  /** The tenant's impediments, newest first (then by id), from after `after` (a row's `listKey`: creation time to the microsecond, id). */
  async list(
    tenantId: string,
    f: { state?: ImpedimentStateName; workItemId?: string; runId?: string; assignee?: string; limit: number; after?: ListKey },
  ): Promise<Array<ImpedimentRow & { listKey: ListKey }>> {
    const where = [eq(impediments.tenantId, tenantId)];
    if (f.state) where.push(eq(impediments.state, f.state));
    if (f.workItemId) where.push(eq(impediments.workItemId, f.workItemId));
    if (f.runId) where.push(eq(impediments.runId, f.runId));
    if (f.assignee) where.push(eq(impediments.assignee, f.assignee));
    if (f.after) where.push(afterKey('desc', [impediments.createdAt, impediments.id], [sql`${f.after[0]}::timestamptz`, sql`${f.after[1]}::uuid`]));
    const rows = await this.db
      .select({ ...getTableColumns(impediments), keyTime: keyTime(impediments.createdAt) })
      .from(impediments)
      .where(and(...where))
      .orderBy(desc(impediments.createdAt), desc(impediments.id))
      .limit(f.limit);
    return rows.map(({ keyTime, ...row }) => ({ ...row, listKey: [keyTime, row.id] }));
  }

  /** Resolves an impediment that is not resolved yet; undefined (nothing changed) when it is, or does not exist. */
  async resolve(tenantId: string, id: string, resolution: string): Promise<ImpedimentRow | undefined> {
    return this.update(tenantId, id, { state: 'resolved', resolution });
  }

  /** Assigns an unresolved impediment to a person: it is open again (also when it was with the agent). */
  async assign(tenantId: string, id: string, assignee: string): Promise<ImpedimentRow | undefined> {
    return this.update(tenantId, id, { state: 'open', assignee });
  }

  /** Hands an unresolved impediment back to the agent, with the rerun that was queued for it. */
  async reassignToAgent(tenantId: string, id: string, rerunId: string): Promise<ImpedimentRow | undefined> {
    return this.update(tenantId, id, { state: 'reassigned_to_agent', assignee: '', rerunId });
  }

  /** The unresolved impediments whose rerun was `rerunId` (one, unless the rerun was handed more). */
  async unresolvedByRerun(tenantId: string, rerunId: string): Promise<ImpedimentRow[]> {
    return this.db
      .select()
      .from(impediments)
      .where(and(eq(impediments.tenantId, tenantId), eq(impediments.rerunId, rerunId), ne(impediments.state, 'resolved')))
      .limit(100);
  }

  private async update(
    tenantId: string,
    id: string,
    set: Partial<Pick<ImpedimentRow, 'state' | 'assignee' | 'resolution' | 'rerunId'>>,
  ): Promise<ImpedimentRow | undefined> {
    const [row] = await this.db
      .update(impediments)
      .set({ ...set, updatedAt: sql`now()` })
      .where(and(eq(impediments.tenantId, tenantId), eq(impediments.id, id), ne(impediments.state, 'resolved')))
      .returning();
    return row;
  }
}
