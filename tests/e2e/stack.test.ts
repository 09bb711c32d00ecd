import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { expect, inject, it } from 'vitest';
import { freePort } from '@ameide/devstack';
import { liveProcesses } from '../support/processes.js';

const run = promisify(execFile);
/** Processes whose command line or environment mentions `needle`. */
const processesWith = (needle: string) => liveProcesses((p) => p.text.includes(needle));
const root = resolve(__dirname, '../..');

it('`make up` starts the stack in the background and `make down` stops every process it started', async () => {
  const home = join(inject('scratchDir'), `stack-${Date.now()}`);
  const env = {
    PATH: process.env.PATH!,
    HOME: process.env.HOME!,
    AMEIDE_HOME: home,
    AMEIDE_API_PORT: String(await freePort()),
    AMEIDE_POSTGRES_PORT: String(await freePort()),
    AMEIDE_TEMPORAL_PORT: String(await freePort()),
    AMEIDE_TEMPORAL_UI_PORT: String(await freePort()),
    TEMPORAL_CLI: inject('temporalCli'),
  };
  const stack = (cmd: string) => run(process.execPath, ['--import', 'tsx', 'packages/devstack/src/main.ts', cmd], { cwd: root, env, timeout: 120_000 });
  const up = await stack('up');
  expect(up.stdout).toContain(`API (Connect, gRPC, gRPC-Web)  http://127.0.0.1:${env.AMEIDE_API_PORT}`);
  expect(up.stdout).toMatch(/development token\s+eyJ/);
  // The supervisor, Postgres, the Temporal dev server, the service and the worker all carry
  // AMEIDE_HOME (in their command line or environment).
  expect(processesWith(`--port\0${env.AMEIDE_TEMPORAL_PORT}`).length).toBe(1);
  expect(processesWith(`AMEIDE_HOME=${home}`).length).toBeGreaterThanOrEqual(4);

  const down = await stack('down');
  expect(down.stdout).toContain('stack stopped');
  for (let i = 0; i < 50 && processesWith(home).length > 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(processesWith(home)).toEqual([]);
  expect(processesWith(`--port\0${env.AMEIDE_TEMPORAL_PORT}`)).toEqual([]);
  expect((await stack('down')).stdout).toContain('no stack is running');
});
