import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import * as schema from './schema.js';

export type Db = NodePgDatabase<typeof schema>;

/** An open connection pool with its drizzle handle. */
export interface Database {
  db: Db;
  pool: pg.Pool;
  close(): Promise<void>;
}

/** Connection failed or was refused: one line naming what to fix. */
export class DatabaseUnavailableError extends Error {
  override name = 'DatabaseUnavailableError';
  readonly expected = true;
}

const migrationsFolder = join(dirname(fileURLToPath(import.meta.url)), '..', 'migrations');

/** Opens a pool, checks that Postgres answers and applies pending migrations. */
export async function openDatabase(url: string, opts: { migrate?: boolean; max?: number } = {}): Promise<Database> {
  const pool = new pg.Pool({ connectionString: url, max: opts.max ?? 10, connectionTimeoutMillis: 5000 });
  pool.on('error', () => {
    /* idle client errors surface on the next query */
  });
  try {
    await pool.query('select 1');
  } catch (err) {
    await pool.end().catch(() => undefined);
    const where = new URL(url);
    throw new DatabaseUnavailableError(
      `cannot reach Postgres at ${where.hostname}:${where.port || 5432}${where.pathname} (${(err as Error).message}); check DATABASE_URL`,
    );
  }
  const db = drizzle(pool, { schema });
  if (opts.migrate !== false) await migrate(db, { migrationsFolder });
  return { db, pool, close: () => pool.end() };
}
