import { and, asc, between, eq } from 'drizzle-orm';
import type { Db } from './client.js';
import { definitions, plans, runs } from './schema.js';

/** The positions of the dashes in a UUID's text form. */
const DASHES = new Set([8, 13, 18, 23]);

/**
 * Whether `s` (lower case) is how a UUID's text form begins: hex digits, and dashes exactly where a
 * UUID has them. Anything else can begin no id.
 */
export function isIdPrefix(s: string): boolean {
  if (!s || s.length > 36) return false;
  for (let i = 0; i < s.length; i++) if (DASHES.has(i) ? s[i] !== '-' : !/[0-9a-f]/.test(s[i]!)) return false;
  return true;
}

/** The smallest and largest UUID that begin with `prefix` (see isIdPrefix). */
function uuidRange(prefix: string): [string, string] {
  const hex = prefix.replace(/-/g, '');
  const uuid = (h: string) => `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  return [uuid(hex.padEnd(32, '0')), uuid(hex.padEnd(32, 'f'))];
}

const TABLES = { run: runs, plan: plans, definition: definitions } as const;

/** What a short id may name. */
export type IdKind = keyof typeof TABLES;

/**
 * The ids of a tenant's runs, plans or definitions that begin with `prefix` (as `id::text like
 * '<prefix>%'` would find them, but as a range of the primary key, so the index answers), at most
 * `limit`, in id order. A prefix no UUID can begin with finds none.
 */
export async function idsWithPrefix(db: Db, kind: IdKind, tenantId: string, prefix: string, limit: number): Promise<string[]> {
  const p = prefix.toLowerCase();
  if (!isIdPrefix(p)) return [];
  const [lo, hi] = uuidRange(p);
  const t = TABLES[kind];
  const rows = await db
    .select({ id: t.id })
    .from(t)
    .where(and(eq(t.tenantId, tenantId), between(t.id, lo, hi)))
    .orderBy(asc(t.id))
    .limit(limit);
  return rows.map((r) => r.id);
}
