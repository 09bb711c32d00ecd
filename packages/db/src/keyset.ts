import { sql, type AnyColumn, type SQL } from 'drizzle-orm';

/** A list key: the values of a row in the list's order (times as ISO 8601 to the microsecond, UTC). */
export type ListKey = (string | number | null)[];

/** A timestamp column as a list key part: ISO 8601 to the microsecond, UTC (a JavaScript Date keeps only milliseconds). */
export function keyTime(column: AnyColumn | SQL): SQL<string | null> {
  return sql<string | null>`to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
}

/**
 * The rows after a list key in a keyset order whose columns all go one way (`desc`: the rows before
 * it): a row comparison, which a B-tree index on the columns serves. `values` are cast as the columns.
 */
export function afterKey(direction: 'asc' | 'desc', columns: (AnyColumn | SQL)[], values: SQL[]): SQL {
  const cols = sql.join(columns, sql`, `);
  const vals = sql.join(values, sql`, `);
  return direction === 'asc' ? sql`(${cols}) > (${vals})` : sql`(${cols}) < (${vals})`;
}
