import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadStackConfig } from '@ameide/config';
import { freePort, readStackFile, startStack, type PortPicker, type RunningStack } from '@ameide/devstack';
import { createWorkflowServiceClient } from '@ameide/sdk';
import { liveProcesses } from '../support/processes.js';

/**
 * An ephemeral stack (the demo's and the tests' kind) whose port picker hands every server, on its
 * first try, a port another process already listens on: the race of a port picked free and taken
 * before the server binds it.
 */
describe('an ephemeral stack whose ports are taken before its servers bind them', () => {
  const home = join(inject('scratchDir'), `race-${Date.now()}`);
  const held: net.Server[] = [];
  const heldPorts: number[] = [];
  const lines: string[] = [];
  let stack: RunningStack;

  /** A port this test listens on. */
  const takenPort = async () => {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    held.push(srv);
    const { port } = srv.address() as net.AddressInfo;
    heldPorts.push(port);
    return port;
  };
  const asked = new Map<string, number>();
  // Postgres, the Temporal frontend, the API and the preview router get a taken port first; the Web UI on Temporal's second try.
  const pickPort: PortPicker = async (what) => {
    const n = (asked.get(what) ?? 0) + 1;
    asked.set(what, n);
    return n === (what === 'Temporal Web UI' ? 2 : 1) ? takenPort() : freePort();
  };

  beforeAll(async () => {
    const cfg = loadStackConfig({ AMEIDE_HOME: home, TEMPORAL_CLI: inject('temporalCli'), PATH: process.env.PATH });
    stack = await startStack(cfg, { name: 'race', ephemeral: true, pickPort, log: (l) => lines.push(l) });
  });
  afterAll(async () => {
    await stack?.stop();
    for (const s of held) s.close();
  });

  it('starts every server again on fresh ports, and serves', async () => {
    expect(lines.filter((l) => l.includes('was taken by another process'))).toEqual([
      expect.stringMatching(
        /^embedded Postgres: port \d+ was taken by another process before embedded Postgres bound it; starting it again on fresh ports \(attempt 2 of 4\)$/,
      ),
      expect.stringMatching(/^the Temporal dev server: port \d+ was taken .* \(attempt 2 of 4\)$/),
      expect.stringMatching(/^the Temporal dev server: port \d+ was taken .* \(attempt 3 of 4\)$/),
      expect.stringMatching(/^the workflow service: port \d+ was taken .* \(attempt 2 of 4\)$/),
    ]);
    expect(heldPorts).toHaveLength(5);
    const used = [
      new URL(stack.databaseUrl).port,
      stack.temporalAddress.split(':')[1],
      new URL(stack.temporalUiUrl!).port,
      new URL(stack.apiUrl).port,
      stack.previewPort,
    ].map(Number);
    for (const p of used) expect(heldPorts).not.toContain(p);
    const api = createWorkflowServiceClient({ baseUrl: stack.apiUrl, token: stack.devToken });
    expect((await api.listDefinitions({})).definitions).toEqual([]);
    // The Web UI answers on its port too.
    expect((await fetch(stack.temporalUiUrl!)).ok).toBe(true);
  });

  it('gives up when the Temporal dev server dies (it holds the runs in memory), stops the rest and records why', async () => {
    const before = stack.status();
    const temporal = before.children.temporal!;
    process.kill(temporal.pid, 'SIGKILL');
    const reason = await stack.ended;
    expect(reason).toBe(
      `Temporal dev server (pid ${temporal.pid}) exited unexpectedly (killed by SIGKILL; its log: ${join(stack.logs, 'temporal.log')}); it holds the stack's state and is not restarted`,
    );
    expect(lines).toContain(`error: ${reason}; stopping the stack`);
    const file = readStackFile(join(home, 'race', 'stack.json'))!;
    expect(file.ended?.reason).toBe(reason);
    expect(file.children.temporal!.state).toBe('exited');
    expect(file.children.postgres!.state).toBe('stopped');
    const pids = Object.values(before.children).map((c) => c.pid);
    expect(liveProcesses((p) => pids.includes(p.pid))).toEqual([]);
  });
});

describe('a stack whose worker keeps dying', () => {
  const home = join(inject('scratchDir'), `crash-${Date.now()}`);
  const lines: string[] = [];
  let stack: RunningStack;
  beforeAll(async () => {
    const cfg = loadStackConfig({ AMEIDE_HOME: home, TEMPORAL_CLI: inject('temporalCli'), PATH: process.env.PATH });
    // Two restarts in a row at most, 100 ms and 200 ms after the exits (the defaults: 8, from 1 s).
    stack = await startStack(cfg, { name: 'crash', ephemeral: true, log: (l) => lines.push(l), restarts: { max: 2, firstDelayMs: 100 } });
  });
  afterAll(() => stack?.stop());

  it('is restarted with growing delays, then the stack gives up, stops everything and records why', async () => {
    const pids: number[] = [];
    for (let restarts = 0; restarts <= 2; restarts++) {
      const deadline = Date.now() + 30_000;
      let worker = stack.status().children.worker!;
      while (!(worker.restarts === restarts && worker.state === 'running') && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        worker = stack.status().children.worker!;
      }
      expect(worker).toMatchObject({ restarts, state: 'running' });
      pids.push(worker.pid);
      process.kill(worker.pid, 'SIGKILL');
    }
    const log = join(stack.logs, 'worker.log');
    const reason = `worker kept exiting: 2 restarts in a row failed (last: killed by SIGKILL; its log: ${log})`;
    expect(await stack.ended).toBe(reason);
    expect(lines.filter((l) => l.startsWith('worker'))).toEqual([
      `worker (pid ${pids[0]}) exited unexpectedly (killed by SIGKILL); restarting it in 0.1s (restart 1; its log: ${log})`,
      `worker restarted (pid ${pids[1]})`,
      `worker (pid ${pids[1]}) exited unexpectedly (killed by SIGKILL); restarting it in 0.2s (restart 2; its log: ${log})`,
      `worker restarted (pid ${pids[2]})`,
    ]);
    expect(lines).toContain(`error: ${reason}; stopping the stack`);
    const file = readStackFile(join(home, 'crash', 'stack.json'))!;
    expect(file.ended?.reason).toBe(reason);
    expect(Object.fromEntries(Object.entries(file.children).map(([n, c]) => [n, c.state]))).toEqual({
      postgres: 'stopped',
      temporal: 'stopped',
      workflows: 'stopped',
      worker: 'exited',
    });
    const all = [...pids, ...Object.values(file.children).map((c) => c.pid)];
    expect(liveProcesses((p) => all.includes(p.pid))).toEqual([]);
  });
});
