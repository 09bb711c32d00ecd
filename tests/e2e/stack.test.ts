import { execFile } from 'node:child_process';
import net from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { RunStatus } from '@ameide/contracts';
import { createOrigin, freePort, hasPollers, readStackFile, SAMPLE_REPO, sampleDefinition, type StackFile } from '@ameide/devstack';
import { createWorkflowServiceClient } from '@ameide/sdk';
import { liveProcesses } from '../support/processes.js';
import { MULTIPLY, watchAll } from '../support/harness.js';

const run = promisify(execFile);
/** Processes whose command line or environment mentions `needle`. */
const processesWith = (needle: string) => liveProcesses((p) => p.text.includes(needle));
const root = resolve(__dirname, '../..');

/** Polls `check` until it returns a value, or fails naming `what`. */
async function until<T>(what: string, check: () => T | undefined, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `make up` / `make down` / `pnpm stack status` for a stack with its own home and free fixed ports. */
describe('the background stack (`pnpm stack up|status|down`)', async () => {
  const home = join(inject('scratchDir'), `stack-${Date.now()}`);
  const env = {
    PATH: process.env.PATH!,
    HOME: process.env.HOME!,
    AMEIDE_HOME: home,
    AMEIDE_API_PORT: String(await freePort()),
    AMEIDE_POSTGRES_PORT: String(await freePort()),
    AMEIDE_TEMPORAL_PORT: String(await freePort()),
    AMEIDE_TEMPORAL_UI_PORT: String(await freePort()),
    AMEIDE_PREVIEW_PORT: String(await freePort()),
    TEMPORAL_CLI: inject('temporalCli'),
  };
  const stack = (cmd: string) => run(process.execPath, ['--import', 'tsx', 'packages/devstack/src/main.ts', cmd], { cwd: root, env, timeout: 120_000 });
  const infoFile = join(home, 'stack', 'stack.json');
  const supervisorLog = join(home, 'stack', 'logs', 'supervisor.log');
  const info = () => readStackFile(infoFile);
  /** Waits until the supervisor reports `name` running again after `restarts` restarts. */
  const restarted = (name: string, restarts: number) =>
    until(`${name} restarted`, () => {
      const c = info()?.children[name];
      return c && c.restarts === restarts && c.state === 'running' ? c : undefined;
    });
  // A failed test leaves no stack behind for the next one.
  afterEach(async () => {
    if (existsSync(infoFile)) await stack('down');
  });
  const everythingGone = async () => {
    for (let i = 0; i < 50 && processesWith(home).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(processesWith(home)).toEqual([]);
    expect(processesWith(`--port\0${env.AMEIDE_TEMPORAL_PORT}`)).toEqual([]);
  };

  it('`make up` starts the stack in the background, restarts the service or worker when one dies, and `make down` stops every process it started', async () => {
    const up = await stack('up');
    expect(up.stdout).toContain(`API (Connect, gRPC, gRPC-Web)  http://127.0.0.1:${env.AMEIDE_API_PORT}`);
    expect(up.stdout).toMatch(/development token\s+eyJ/);
    // The supervisor, Postgres, the Temporal dev server, the service and the worker all carry
    // AMEIDE_HOME (in their command line or environment).
    expect(processesWith(`--port\0${env.AMEIDE_TEMPORAL_PORT}`).length).toBe(1);
    expect(processesWith(`AMEIDE_HOME=${home}`).length).toBeGreaterThanOrEqual(4);
    const first = info()!;
    expect(Object.keys(first.children)).toEqual(['postgres', 'temporal', 'workflows', 'worker']);
    // `up` returns once the worker polls: Temporal lists it on the task queue already (a first run does not wait for it).
    expect(await hasPollers(inject('temporalCli'), first.temporalAddress, 'default', 'coding-agent')).toBe(true);
    // … once it has warmed up (a workflow of its own, a call to the service): the first run does not pay for a cold worker.
    expect(readFileSync(join(first.logs, 'worker.log'), 'utf8')).toMatch(
      /worker polling task queue "coding-agent" on [^;\n]+; warmed up in \d+ ms \(the service answered; /,
    );
    const api = createWorkflowServiceClient({ baseUrl: first.apiUrl, token: first.devToken });

    // The service and the worker die: the supervisor says so and starts them again (the service on the same port).
    process.kill(first.children.workflows!.pid, 'SIGKILL');
    process.kill(first.children.worker!.pid, 'SIGKILL');
    const [service, worker] = await Promise.all([restarted('workflows', 1), restarted('worker', 1)]);
    expect(service.pid).not.toBe(first.children.workflows!.pid);
    expect(service.lastExit).toMatch(/^killed by SIGKILL at /);
    const log = readFileSync(supervisorLog, 'utf8');
    expect(log).toContain(
      `workflow service (pid ${first.children.workflows!.pid}) exited unexpectedly (killed by SIGKILL); restarting it in 1s (restart 1; its log: ${join(home, 'stack', 'logs', 'workflows.log')})`,
    );
    expect(log).toContain(`workflow service restarted (pid ${service.pid})`);
    expect(log).toContain(`worker (pid ${first.children.worker!.pid}) exited unexpectedly (killed by SIGKILL)`);
    expect(log).toContain(`worker restarted (pid ${worker.pid})`);

    // A run goes through the restarted service and worker.
    await api.applyDefinition(sampleDefinition(createOrigin(SAMPLE_REPO, join(home, 'origin.git'))));
    const { run: started } = await api.startWorkflowRun({ definition: 'sample-calculator', workItems: [MULTIPLY] });
    await watchAll(api, started!.id);
    const done = (await api.getWorkflowRun({ id: started!.id })).run!;
    expect(done.status, `${done.error} (logs: ${first.logs})`).toBe(RunStatus.COMPLETED);

    const status = await stack('status');
    expect(status.stdout).toContain(`stack running (supervisor pid ${first.pid}`);
    expect(status.stdout).toMatch(new RegExp(`workflows +running +pid ${service.pid} .*restarts 1; last exit: killed by SIGKILL`));
    expect(status.stdout).toMatch(new RegExp(`worker +running +pid ${worker.pid} `));

    const down = await stack('down');
    expect(down.stdout).toContain('stack stopped');
    await everythingGone();
    expect(existsSync(infoFile)).toBe(false);
    expect((await stack('down')).stdout).toContain('no stack is running');
  });

  it('a fixed port held by another process is one error naming the port and its setting', async () => {
    const holder = net.createServer();
    await new Promise<void>((r, reject) => holder.once('error', reject).listen(Number(env.AMEIDE_TEMPORAL_PORT), '127.0.0.1', r));
    try {
      const err = (await stack('up').catch((e: unknown) => e)) as { code: number; stderr: string };
      expect(err.code).toBe(1);
      expect(err.stderr.trim()).toBe(
        `error: the stack did not start: port ${env.AMEIDE_TEMPORAL_PORT} (Temporal dev server) is in use by another process: set AMEIDE_TEMPORAL_PORT to a free port, or TEMPORAL_ADDRESS to use a running Temporal (log: ${supervisorLog})`,
      );
    } finally {
      await new Promise((r) => holder.close(r));
    }
    await everythingGone();
  });

  it('when Postgres dies the stack stops on its own, and `make down` says what happened', async () => {
    await stack('up');
    const up = info()!;
    process.kill(up.children.postgres!.pid, 'SIGKILL');
    // The supervisor stops the rest, records why and exits.
    const ended = await until('the stack to give up', () => {
      const i = info();
      return i?.ended && liveProcesses((p) => p.pid === up.pid).length === 0 ? i : undefined;
    });
    const reason = `Postgres (pid ${up.children.postgres!.pid}) exited unexpectedly (killed by SIGKILL; its log: ${join(home, 'stack', 'logs', 'postgres.log')}); it holds the stack's state and is not restarted`;
    expect(ended.ended!.reason).toBe(reason);
    expect(Object.values(ended.children).map((c: StackFile['children'][string]) => c.state)).toEqual(['exited', 'stopped', 'stopped', 'stopped']);
    expect(readFileSync(supervisorLog, 'utf8')).toContain(`error: ${reason}; stopping the stack`);
    await everythingGone();

    const status = await stack('status').catch((e: { code: number; stdout: string }) => e);
    expect(status.stdout).toContain(`the stack stopped on its own at ${ended.ended!.at}: ${reason}`);
    const down = await stack('down');
    expect(down.stdout.trim()).toBe(`the stack stopped on its own at ${ended.ended!.at}: ${reason} (log: ${supervisorLog})`);
    expect((await stack('down')).stdout).toContain('no stack is running');
  });
});
