import { and, asc, eq, getTableColumns, isNull, sql } from 'drizzle-orm';
import type { DefinitionSpecJson } from '@ameide/contracts';
import type { Db } from './client.js';
import { idsWithPrefix } from './ids.js';
import { keyTime, type ListKey } from './keyset.js';
import { definitions, type Annotations } from './schema.js';

export type DefinitionRow = typeof definitions.$inferSelect;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Ids of stored objects are UUIDs; anything else can never match one (and Postgres would reject it). */
export function isUuid(s: string): boolean {
  return UUID_RE.test(s);
}

/** Definitions of one tenant. Every query is scoped by tenant id. */
export class DefinitionRepository {
  constructor(private readonly db: Db) {}

  /** Ids of the tenant's definitions that begin with `prefix` (a short id), at most `limit`. */
  idsWithPrefix(tenantId: string, prefix: string, limit: number): Promise<string[]> {
    return idsWithPrefix(this.db, 'definition', tenantId, prefix, limit);
  }

  async insert(tenantId: string, name: string, spec: DefinitionSpecJson, annotations: Annotations): Promise<DefinitionRow | undefined> {
    const rows = await this.db.insert(definitions).values({ tenantId, name, spec, annotations }).onConflictDoNothing().returning();
    return rows[0];
  }

  /** Creates the definition or bumps its version when spec or annotations changed. */
  async apply(tenantId: string, name: string, spec: DefinitionSpecJson, annotations: Annotations): Promise<{ row: DefinitionRow; changed: boolean }> {
    const created = await this.insert(tenantId, name, spec, annotations);
    if (created) return { row: created, changed: true };
    const rows = await this.db
      .update(definitions)
      .set({ spec, annotations, version: sql`${definitions.version} + 1`, updatedAt: sql`now()` })
      .where(
        and(
          eq(definitions.tenantId, tenantId),
          eq(definitions.name, name),
          isNull(definitions.deletedAt),
          sql`(${definitions.spec} <> ${JSON.stringify(spec)}::jsonb or ${definitions.annotations} <> ${JSON.stringify(annotations)}::jsonb)`,
        ),
      )
      .returning();
    if (rows[0]) return { row: rows[0], changed: true };
    return { row: (await this.get(tenantId, name))!, changed: false };
  }

  /** Finds by id (a deleted definition too: plans and runs refer to it) or by name (only the live one). */
  async get(tenantId: string, idOrName: string): Promise<DefinitionRow | undefined> {
    const byId = isUuid(idOrName);
    const rows = await this.db
      .select()
      .from(definitions)
      .where(and(eq(definitions.tenantId, tenantId), byId ? eq(definitions.id, idOrName) : and(eq(definitions.name, idOrName), isNull(definitions.deletedAt))))
      .limit(1);
    return rows[0];
  }

  /**
   * The live definitions, by name; with `deleted`, the deleted ones too (the live one of a name first,
   * then the newest deletion; ties by id). From after `after`, a row's `listKey`: its name, deletion
   * time (to the microsecond, null when live) and id.
   */
  async list(tenantId: string, limit: number, deleted = false, after?: ListKey): Promise<Array<DefinitionRow & { listKey: ListKey }>> {
    // Live (no deletion time) sorts as the newest deletion.
    const deletedOrLive = sql`coalesce(${definitions.deletedAt}, 'infinity'::timestamptz)`;
    const where = [eq(definitions.tenantId, tenantId)];
    if (!deleted) where.push(isNull(definitions.deletedAt));
    if (after) {
      const [name, deletedAt, id] = after;
      const d = sql`coalesce(${deletedAt}::timestamptz, 'infinity'::timestamptz)`;
      where.push(
        sql`(${definitions.name} > ${name} or (${definitions.name} = ${name} and (${deletedOrLive} < ${d} or (${deletedOrLive} = ${d} and ${definitions.id} > ${id}::uuid))))`,
      );
    }
    const rows = await this.db
      .select({ ...getTableColumns(definitions), keyTime: keyTime(definitions.deletedAt) })
      .from(definitions)
      .where(and(...where))
      .orderBy(asc(definitions.name), sql`${deletedOrLive} desc`, asc(definitions.id))
      .limit(limit);
    return rows.map(({ keyTime, ...row }) => ({ ...row, listKey: [row.name, keyTime, row.id] }));
  }

  /** Marks a live definition deleted, which frees its name. Undefined when it is not live (gone or deleted already). */
  async delete(tenantId: string, id: string): Promise<DefinitionRow | undefined> {
    const rows = await this.db
      .update(definitions)
      .set({ deletedAt: sql`now()` })
      .where(and(eq(definitions.tenantId, tenantId), eq(definitions.id, id), isNull(definitions.deletedAt)))
      .returning();
    return rows[0];
  }
}
