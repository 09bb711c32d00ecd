import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { createDatabase, freePort } from '@ameide/devstack';

const root = resolve(__dirname, '../../../..');

/** Runs an entrypoint as a real process with only the given settings. */
function start(main: string, env: Record<string, string>) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', main], {
    cwd: root,
    env: { PATH: process.env.PATH!, HOME: process.env.HOME!, OTEL_SDK_DISABLED: 'true', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stderr: r.stderr.trim() };
}

const SERVICE = 'services/workflows/src/main.ts';
const WORKER = 'services/workflows-runtime/src/main.ts';

describe('start-up failures give one line naming what to fix, and exit 1', () => {
  it('a wrong setting', () => {
    const r = start(SERVICE, { DATABASE_URL: 'mysql://nope', AMEIDE_API_KEYS: 'k:t' });
    expect(r).toEqual({ status: 1, stderr: 'error: Invalid setting DATABASE_URL: must be a postgres:// or postgresql:// URL (got "mysql://nope")' });
  });

  it('an unreachable Postgres', async () => {
    const port = await freePort();
    const r = start(SERVICE, { DATABASE_URL: `postgres://u:p@127.0.0.1:${port}/x`, AMEIDE_API_KEYS: 'k:t' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^error: cannot reach Postgres at 127\\.0\\.0\\.1:${port}/x \\(.*\\); check DATABASE_URL$`));
  });

  it('an unreachable Temporal', async () => {
    const db = await createDatabase(inject('postgresUrl'), `startup_${Date.now()}`);
    const port = await freePort();
    const r = start(SERVICE, { DATABASE_URL: db, AMEIDE_API_KEYS: 'k:t', TEMPORAL_ADDRESS: `127.0.0.1:${port}` });
    expect(r.status).toBe(1);
    expect(r.stderr.split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(
      new RegExp(`^error: cannot reach Temporal namespace "default" at 127\\.0\\.0\\.1:${port} .*check TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE$`),
    );
  });

  it('a worker without its service credential', () => {
    const r = start(WORKER, {});
    expect(r).toEqual({ status: 1, stderr: expect.stringMatching(/^error: Invalid setting AMEIDE_SERVICE_TOKEN: .*\(not set\)$/) });
  });

  it('a worker that cannot reach Temporal', async () => {
    const port = await freePort();
    const r = start(WORKER, { AMEIDE_SERVICE_TOKEN: 'x'.repeat(20), TEMPORAL_ADDRESS: `127.0.0.1:${port}` });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^error: cannot reach Temporal at 127\\.0\\.0\\.1:${port} .*check TEMPORAL_ADDRESS$`));
  });
});
