import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { MockActivityEnvironment } from '@temporalio/testing';
import { CancelledFailure } from '@temporalio/common';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowService, type RecordPreviewRequest } from '@ameide/contracts';
import { Code, ConnectError, createWorkflowServiceClient } from '@ameide/sdk';
import { resolveGuardrails, resolvePreview, type CodingRunInput, type PreviewInput, type PreviewResult, type SecretReference } from '@ameide/temporal';
import { startHarnessWithRouter, MULTIPLY, type Harness } from '../../../../tests/support/harness.js';
import { liveProcesses } from '../../../../tests/support/processes.js';
import { FileArtifactStore } from '../../src/artifacts.js';
import { createPreviewActivities, type PreviewDeps } from '../../src/activities/previews.js';
import { prepareSandbox } from '../../src/activities/sandboxing.js';
import { runPaths } from '../../src/activities/workspace.js';
import { createCommandCgroup } from '../../src/guardrails/cgroups.js';
import { findBubblewrap, INBOUND_MOUNT, INBOUND_SOCKET, sandboxUserFor } from '../../src/guardrails/sandbox.js';
import { holdForPreview, previewStopQueue, stopLeftoverPreviews } from '../../src/previews/index.js';
import { readState, statePath, writeState, type PreviewState } from '../../src/previews/state.js';

/**
 * Run previews on the worker with real bubblewrap, real servers and real sockets. Most tests talk to
 * a stand-in for the workflow service (a real Connect server implementing only RecordPreview, which
 * records its calls, and can refuse); the last block runs against the real service and its preview router.
 */
const bwrap = findBubblewrap('/usr/local/bin:/usr/bin:/bin');
// One tenant per test process: its sandbox uid is this file's alone.
const TENANT = `previews-${process.pid}`;
const UID = sandboxUserFor(TENANT).uid;
const SECRET = 'preview-secret-value-7f3a9c';
const TENANT_KEY = TENANT.toUpperCase().replace(/[^A-Z0-9]/g, '_');

let root: string;
let workspaceDir: string;
let deps: PreviewDeps;
let acts: ReturnType<typeof createPreviewActivities>;
const started: CodingRunInput[] = [];

/** The stand-in for the workflow service: RecordPreview only, every call kept. */
const service = {
  calls: [] as RecordPreviewRequest[],
  refuseWith: undefined as Code | undefined,
  server: undefined as http.Server | undefined,
  url: '',
  of(runId: string) {
    return this.calls.filter((c) => c.runId === runId).map((c) => ({ state: c.state, provider: c.provider, target: c.target, url: c.url, reason: c.reason }));
  },
};

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'previews-'));
  // The sandbox user passes through (not lists) the directories above the workspace.
  await chmod(root, 0o711);
  workspaceDir = join(root, 'ws');
  await mkdir(workspaceDir);
  const handler = connectNodeAdapter({
    routes: (router) =>
      router.service(WorkflowService, {
        recordPreview(req) {
          service.calls.push(req);
          if (service.refuseWith !== undefined) throw new ConnectError('refused by the test', service.refuseWith);
          return {
            preview: {
              runId: req.runId,
              provider: req.provider,
              state: req.state,
              url: req.url || `http://run-${req.runId.slice(0, 8)}.${TENANT}.preview.localhost:9/`,
              aliasUrl: req.aliasUrl || `http://calc-1.${TENANT}.preview.localhost:9/`,
            },
          };
        },
      }),
  });
  service.server = http.createServer(handler);
  await new Promise<void>((r) => service.server!.listen(0, '127.0.0.1', r));
  service.url = `http://127.0.0.1:${(service.server.address() as AddressInfo).port}`;
  deps = {
    api: createWorkflowServiceClient({ baseUrl: service.url, token: 'svc_preview_test_token' }),
    artifacts: new FileArtifactStore(pathToFileURL(join(root, 'artifacts')).href),
    workspaceDir,
    commandPath: '/usr/local/bin:/usr/bin:/bin',
    secrets: { [`${TENANT_KEY}__PREVIEW_TOKEN`]: SECRET, [`${TENANT_KEY}__AGENT_TOKEN`]: 'agent-only-secret-1234' },
    policy: { allowNone: true, readOnlyPathPrefixes: [], egressAllowedHosts: ['registry.npmjs.org'] },
    runCpus: 1,
    egressExtraNetworks: [],
    previewHost: '127.0.0.1',
    previewGraceSeconds: 300,
    previewStopQueue: previewStopQueue('coding-agent', workspaceDir),
  };
  acts = createPreviewActivities(deps);
});

// A test that failed half-way leaves nothing running for the next one.
afterEach(async () => {
  for (const run of started) if (existsSync(statePath(workspaceDir, run.tenantId, run.runId))) await stop(run, 'the test ended').catch(() => undefined);
});

afterAll(async () => {
  for (const run of started) await stop(run, 'the test ended').catch(() => undefined);
  await new Promise((r) => service.server?.close(r));
  await rm(root, { recursive: true, force: true });
});

function makeRun(preview: PreviewInput, over: { sandbox?: 'none'; secrets?: SecretReference[]; runId?: string; tenantId?: string } = {}): CodingRunInput {
  const run: CodingRunInput = {
    runId: over.runId ?? randomUUID(),
    tenantId: over.tenantId ?? TENANT,
    planId: 'plan-1',
    planVersion: 1,
    definitionId: 'def-1',
    definitionName: 'previews',
    repo: {
      repoUrl: join(root, 'no-such-repo.git'),
      defaultBranch: 'main',
      installCommand: '',
      agentCommand: 'true',
      testCommand: '',
      branchPrefix: 'ameide/',
      phaseTimeoutSeconds: 60,
      env: {},
      guardrails: resolveGuardrails({ sandbox: over.sandbox }),
      secrets: over.secrets ?? [],
      preview: resolvePreview(preview),
    },
    workItems: [{ id: 'CALC-1', title: 'Preview me', description: '', acceptanceCriteria: [], contextLinks: [] }],
    methodology: { profile: '', timeboxIds: [], goalIds: [], workItemIds: ['CALC-1'], elementIds: [] },
    trigger: 'manual',
  };
  started.push(run);
  return run;
}

/** The run's workspace as prepare leaves it: sandbox area, transcripts, a worktree with `files`. */
async function workspace(run: CodingRunInput, files: Record<string, string>) {
  const paths = runPaths(workspaceDir, run.tenantId, run.runId);
  await mkdir(paths.box, { recursive: true, mode: 0o711 });
  await mkdir(paths.transcriptsDir, { recursive: true, mode: 0o700 });
  await writeFile(paths.promptFile, '# Preview me\n');
  await prepareSandbox(deps, run, paths);
  for (const [name, content] of Object.entries(files)) await writeFile(join(paths.worktree, name), content);
  return paths;
}

function start(run: CodingRunInput, attempt = 1, env = new MockActivityEnvironment({ attempt }), activities = acts): Promise<PreviewResult> {
  return env.run(activities.startPreview, { run, worktreePath: runPaths(workspaceDir, run.tenantId, run.runId).worktree, headCommit: 'a'.repeat(40) });
}

function stop(run: CodingRunInput, reason = 'expired'): Promise<void> {
  return new MockActivityEnvironment().run(acts.stopPreview, { runId: run.runId, tenantId: run.tenantId, reason });
}

/** GET through the worker's port: status and body, or the error code when nothing answers. */
function get(target: string, path: string): Promise<{ status?: number; body: string; error?: string }> {
  return new Promise((resolve) => {
    const req = http.get(`http://${target}${path}`, { agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ body: '', error: e.code ?? e.message }));
  });
}

/** cgroup directories of a run's preview (v2 or the v1 pids hierarchy). */
function previewCgroups(runId: string): string[] {
  return ['/sys/fs/cgroup/ameide', '/sys/fs/cgroup/pids/ameide', '/sys/fs/cgroup/cpu/ameide'].flatMap((base) =>
    existsSync(base) ? readdirSync(base).filter((n) => n.includes(`-${runId}-preview-`)) : [],
  );
}

const sandboxProcesses = () => liveProcesses((p) => p.uid === UID);
const serve = (healthPath = '/health.txt'): PreviewInput => ({ command: 'python3 -m http.server "$PORT" --bind "$HOST"', healthPath, readyTimeoutSeconds: 30 });

describe.skipIf(!bwrap)('local previews', () => {
  it('serve the worktree through one forwarded port, registered with the service, until stopped', async () => {
    const run = makeRun({ ...serve(), command: 'sleep 600 & exec python3 -m http.server "$PORT" --bind "$HOST"' });
    const paths = await workspace(run, { 'health.txt': 'ok\n', 'index.html': '<h1>the change</h1>\n' });
    const r = await start(run);
    expect(r.failure).toBeUndefined();
    expect(r.provider).toBe('local');
    expect(r.health).toMatch(/^200 from \/health\.txt after \d+\.\ds$/);
    expect(r.url).toBe(`http://run-${run.runId.slice(0, 8)}.${TENANT}.preview.localhost:9/`);
    expect(r.aliasUrl).toContain('calc-1.');
    expect(r.stopQueue).toBe(deps.previewStopQueue);
    expect(r.stopQueue).toMatch(/^coding-agent-previews-[0-9a-f]{12}$/);
    expect(r.graceSeconds).toBe(300);
    expect(Date.parse(r.expireTime!) - Date.now()).toBeGreaterThan(3500 * 1000);
    const state = (await readState(statePath(workspaceDir, run.tenantId, run.runId)))!;
    expect(state).toMatchObject({ runId: run.runId, tenantId: TENANT, workerPid: process.pid, host: '127.0.0.1', cgroup: `-${run.runId}-preview-` });
    const target = `127.0.0.1:${state.port}`;
    expect(service.of(run.runId)).toEqual([{ state: 'live', provider: 'local', target, url: '', reason: '' }]);
    const page = await get(target, '/index.html');
    expect(page).toMatchObject({ status: 200, body: '<h1>the change</h1>\n' });
    // The server's own log is the preview's transcript, stored like the others.
    expect(r.outputTail).toContain('GET /health.txt');
    const stored = await readFile(join(root, 'artifacts', 'runs', TENANT, run.runId, 'transcripts', 'preview.log'), 'utf8');
    expect(stored).toMatch(/^\$ sleep 600 & exec python3/);
    // The activity is over; the preview is not.
    await new Promise((res) => setTimeout(res, 300));
    expect((await get(target, '/health.txt')).status).toBe(200);
    const pids = sandboxProcesses();
    expect(pids.length).toBeGreaterThanOrEqual(2);
    expect(state.pid).toBeGreaterThan(0);

    // The run's report leaves the workspace to the preview, to be removed when it stops.
    expect(await holdForPreview(workspaceDir, run.tenantId, run.runId, true)).toBe(true);
    expect(await holdForPreview(workspaceDir, run.tenantId, randomUUID(), true)).toBe(false);

    await stop(run, 'expired');
    expect(sandboxProcesses()).toEqual([]);
    expect(existsSync(`/proc/${state.pid}`)).toBe(false);
    expect((await get(target, '/index.html')).error).toBe('ECONNREFUSED');
    expect(previewCgroups(run.runId)).toEqual([]);
    expect(existsSync(statePath(workspaceDir, run.tenantId, run.runId))).toBe(false);
    expect(existsSync(state.socketDir!)).toBe(false);
    expect(existsSync(paths.runDir)).toBe(false);
    expect(service.of(run.runId).slice(1)).toEqual([{ state: 'stopped', provider: '', target: '', url: '', reason: 'expired' }]);
    // Its transcript is stored again when it stops, saying why.
    expect(await readFile(join(root, 'artifacts', 'runs', TENANT, run.runId, 'transcripts', 'preview.log'), 'utf8')).toMatch(/\[ameide\] stopped: expired\n/);
    // Again: nothing left to kill, the stop is recorded again (the service ignores a repeat).
    await stop(run, 'expired');
    expect(service.of(run.runId)).toHaveLength(3);
    expect(await holdForPreview(workspaceDir, run.tenantId, run.runId, true)).toBe(false);
  });

  it('run side by side, each on its own port', async () => {
    const runs = [1, 2, 3].map(() => makeRun(serve()));
    await Promise.all(runs.map((run, i) => workspace(run, { 'health.txt': 'ok\n', 'which.txt': `preview ${i}\n` })));
    const results = await Promise.all(runs.map((run) => start(run)));
    expect(results.map((r) => r.failure)).toEqual([undefined, undefined, undefined]);
    const targets = runs.map((run) => service.of(run.runId)[0]!.target);
    expect(new Set(targets).size).toBe(3);
    for (const [i, target] of targets.entries()) expect((await get(target!, '/which.txt')).body).toBe(`preview ${i}\n`);
    await stop(runs[1]!);
    expect((await get(targets[1]!, '/which.txt')).error).toBe('ECONNREFUSED');
    expect((await get(targets[0]!, '/which.txt')).body).toBe('preview 0\n');
    expect((await get(targets[2]!, '/which.txt')).body).toBe('preview 2\n');
    await Promise.all([stop(runs[0]!), stop(runs[2]!)]);
    expect(sandboxProcesses()).toEqual([]);
  });

  it('fail with the transcript tail when the server never answers, leaving nothing running', async () => {
    const run = makeRun({ command: 'echo starting the preview; sleep 600', healthPath: '/health', readyTimeoutSeconds: 2 });
    await workspace(run, {});
    const t0 = Date.now();
    const r = await start(run);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(r.failure).toBe('the preview did not answer on /health within 2s');
    expect(r.outputTail).toContain('starting the preview');
    expect(r.url).toBe('');
    expect(service.of(run.runId)).toEqual([]);
    expect(sandboxProcesses()).toEqual([]);
    expect(previewCgroups(run.runId)).toEqual([]);
    expect(existsSync(statePath(workspaceDir, run.tenantId, run.runId))).toBe(false);
  });

  it('fail when the command exits before it is healthy', async () => {
    const run = makeRun({ command: 'echo cannot build the preview >&2; exit 3', readyTimeoutSeconds: 30 });
    await workspace(run, {});
    const r = await start(run);
    expect(r.failure).toBe('the preview command exited with 3 before it was healthy');
    expect(r.outputTail).toContain('cannot build the preview');
    expect(sandboxProcesses()).toEqual([]);
    expect(previewCgroups(run.runId)).toEqual([]);
  });

  it('have no network: only the one forwarded port comes in, nothing goes out', async () => {
    let reached = 0;
    const host = net.createServer((s) => {
      reached++;
      s.end('host service\n');
    });
    await new Promise<void>((r) => host.listen(0, '127.0.0.1', r));
    const port = (host.address() as AddressInfo).port;
    const probe = (addr: string, p: number) =>
      `node -e "require('net').connect(${p},'${addr}').on('connect',()=>{console.log('REACHED ${addr}');process.exit(0)}).on('error',e=>{console.log('NO-NETWORK ${addr} '+e.code);process.exit(0)})"`;
    try {
      const run = makeRun({ ...serve(), command: `${probe('127.0.0.1', port)}; ${probe('1.1.1.1', 80)}; exec python3 -m http.server "$PORT" --bind "$HOST"` });
      await workspace(run, { 'health.txt': 'ok\n' });
      const r = await start(run);
      expect(r.failure).toBeUndefined();
      expect(r.outputTail).toContain('NO-NETWORK 127.0.0.1 ECONNREFUSED');
      expect(r.outputTail).toMatch(/NO-NETWORK 1\.1\.1\.1 (ENETUNREACH|EHOSTUNREACH)/);
      expect(r.outputTail).not.toMatch(/^REACHED/m);
      expect(reached).toBe(0);
      await stop(run);
    } finally {
      await new Promise((r) => host.close(r));
    }
  });

  it('never let the worker connect where the sandbox points: a symlink in place of the socket is refused', async () => {
    // A UNIX socket on the host the sandbox must never reach through the worker (root), e.g. a database's.
    const hostDir = await mkdtemp(join(tmpdir(), 'ameide-host-'));
    const hostSocket = join(hostDir, 'db.sock');
    let reached = 0;
    const host = net.createServer((s) => {
      reached++;
      s.end('HTTP/1.0 200 OK\r\n\r\nhost secrets\n');
    });
    await new Promise<void>((r) => host.listen(hostSocket, r));
    try {
      // Swaps its forwarder's socket for a symlink to the host socket, then serves as if all were well.
      const sock = `${INBOUND_MOUNT.socketDir}/${INBOUND_SOCKET}`;
      const swap = `rm -f ${sock}; ln -s ${hostSocket} ${sock}; echo swapped`;
      for (const command of [`${swap}; exec python3 -m http.server "$PORT" --bind "$HOST"`, `sleep 0.5; ${swap}; sleep 600`]) {
        const run = makeRun({ ...serve(), command, readyTimeoutSeconds: 3 });
        await workspace(run, { 'health.txt': 'ok\n' });
        const r = await start(run);
        const target = service.of(run.runId)[0]?.target;
        if (r.failure === undefined) {
          // The worker sealed the socket before the command could swap it: the swap failed, the real socket serves.
          expect((await get(target!, '/health.txt')).body).toBe('ok\n');
          await stop(run);
        } else {
          expect(r.failure).toMatch(/did not answer on \/health\.txt/);
          expect(r.outputTail).toMatch(/swapped|is not a socket of the sandbox user/);
        }
      }
      expect(reached).toBe(0);
      expect(sandboxProcesses()).toEqual([]);
    } finally {
      await new Promise((r) => host.close(r));
      await rm(hostDir, { recursive: true, force: true });
    }
  });

  it('are killed when the run is cancelled while they start', async () => {
    const run = makeRun({ command: 'sleep 600', readyTimeoutSeconds: 60 });
    await workspace(run, {});
    const env = new MockActivityEnvironment({ attempt: 1 });
    const pending = start(run, 1, env);
    await new Promise((r) => setTimeout(r, 1500));
    env.cancel();
    await expect(pending).rejects.toBeInstanceOf(CancelledFailure);
    expect(sandboxProcesses()).toEqual([]);
    expect(previewCgroups(run.runId)).toEqual([]);
    expect(existsSync(statePath(workspaceDir, run.tenantId, run.runId))).toBe(false);
  });

  it('are recorded stopped when the server exits by itself after going live', async () => {
    const run = makeRun({ ...serve(), command: 'python3 -m http.server "$PORT" --bind "$HOST" & server=$!; sleep 4; kill $server; exit 5' });
    await workspace(run, { 'health.txt': 'ok\n' });
    expect((await start(run)).failure).toBeUndefined();
    for (const end = Date.now() + 15_000; service.of(run.runId).length < 2 && Date.now() < end;) await new Promise((r) => setTimeout(r, 100));
    expect(service.of(run.runId).map((c) => [c.state, c.reason])).toEqual([
      ['live', ''],
      ['stopped', 'the preview exited with 5'],
    ]);
    expect(existsSync(statePath(workspaceDir, run.tenantId, run.runId))).toBe(false);
    expect(sandboxProcesses()).toEqual([]);
    expect(previewCgroups(run.runId)).toEqual([]);
  });

  it('start over in a retried attempt: the earlier attempt’s preview is killed first', async () => {
    const run = makeRun(serve());
    await workspace(run, { 'health.txt': 'ok\n' });
    expect((await start(run, 1)).failure).toBeUndefined();
    const first = (await readState(statePath(workspaceDir, run.tenantId, run.runId)))!;
    expect((await start(run, 2)).failure).toBeUndefined();
    const second = (await readState(statePath(workspaceDir, run.tenantId, run.runId)))!;
    expect(existsSync(`/proc/${first.pid}`)).toBe(false);
    expect(second.port).not.toBe(first.port);
    expect((await get(`127.0.0.1:${first.port}`, '/health.txt')).error).toBe('ECONNREFUSED');
    expect((await get(`127.0.0.1:${second.port}`, '/health.txt')).status).toBe(200);
    expect(service.of(run.runId).map((c) => c.state)).toEqual(['live', 'live']);
    await stop(run);
    expect(sandboxProcesses()).toEqual([]);
  });

  it('fail, and stop, when the service refuses to register them', async () => {
    const run = makeRun(serve());
    await workspace(run, { 'health.txt': 'ok\n' });
    service.refuseWith = Code.PermissionDenied;
    try {
      const r = await start(run);
      expect(r.failure).toMatch(/^the workflow service did not take the preview: .*refused by the test/);
    } finally {
      service.refuseWith = undefined;
    }
    expect(sandboxProcesses()).toEqual([]);
    expect(existsSync(statePath(workspaceDir, run.tenantId, run.runId))).toBe(false);
  });

  it('without a sandbox (sandbox: none), serve on the allocated port itself, still in a cgroup', async () => {
    const run = makeRun(serve(), { sandbox: 'none' });
    await workspace(run, { 'health.txt': 'ok\n', 'index.html': 'unsandboxed\n' });
    const r = await start(run);
    expect(r.failure).toBeUndefined();
    const state = (await readState(statePath(workspaceDir, run.tenantId, run.runId)))!;
    expect(state.socketDir).toBeUndefined();
    expect(service.of(run.runId)[0]!.target).toBe(`127.0.0.1:${state.port}`);
    expect((await get(`127.0.0.1:${state.port}`, '/index.html')).body).toBe('unsandboxed\n');
    const cgroups = previewCgroups(run.runId);
    await stop(run);
    expect(existsSync(`/proc/${state.pid}`)).toBe(false);
    expect((await get(`127.0.0.1:${state.port}`, '/index.html')).error).toBe('ECONNREFUSED');
    if (cgroups.length) expect(previewCgroups(run.runId)).toEqual([]);
  });
});

describe.skipIf(!bwrap)('a worker that starts', () => {
  it('finds nothing running of a preview whose worker was killed, and records it stopped', async () => {
    const run = makeRun(serve());
    await workspace(run, { 'health.txt': 'ok\n' });
    // A worker process of its own: it starts the preview, then is SIGKILLed.
    const src = (p: string) => new URL(`../../src/${p}`, import.meta.url).href;
    const script = `
      import { MockActivityEnvironment } from '@temporalio/testing';
      import { createWorkflowServiceClient } from '@ameide/sdk';
      import { FileArtifactStore } from '${src('artifacts.ts')}';
      import { createPreviewActivities } from '${src('activities/previews.ts')}';
      const o = JSON.parse(process.argv[1]);
      const acts = createPreviewActivities({ ...o.deps, api: createWorkflowServiceClient({ baseUrl: o.url, token: 'svc_preview_test_token' }), artifacts: new FileArtifactStore(o.artifacts) });
      const r = await new MockActivityEnvironment({ attempt: 1 }).run(acts.startPreview, { run: o.run, worktreePath: '', headCommit: 'b'.repeat(40) });
      console.log(JSON.stringify(r));
      setInterval(() => {}, 60_000);`;
    const { api: _api, artifacts: _artifacts, ...plain } = deps;
    const args = JSON.stringify({ deps: plain, url: service.url, artifacts: pathToFileURL(join(root, 'artifacts')).href, run });
    const worker = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, args], {
      cwd: new URL('../..', import.meta.url).pathname,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        worker.stdout.on('data', (d) => {
          out += d;
          if (out.includes('\n')) resolve(out.split('\n')[0]!);
        });
        worker.on('exit', (code) => reject(new Error(`the worker exited with ${code}: ${out}`)));
      });
      expect((JSON.parse(line) as PreviewResult).failure).toBeUndefined();
      const state = (await readState(statePath(workspaceDir, run.tenantId, run.runId)))!;
      expect(state.workerPid).toBe(worker.pid);
      expect((await get(`127.0.0.1:${state.port}`, '/health.txt')).status).toBe(200);
      expect(sandboxProcesses().length).toBeGreaterThan(0);
      worker.kill('SIGKILL');
      // Its sandbox dies with it (bubblewrap's --die-with-parent), its port with its listener.
      for (const end = Date.now() + 5000; sandboxProcesses().length && Date.now() < end;) await new Promise((r) => setTimeout(r, 50));
      expect(sandboxProcesses()).toEqual([]);
      // (Its threads end one by one: the listener may outlive the sandbox by a moment.)
      let answer = await get(`127.0.0.1:${state.port}`, '/health.txt');
      for (const end = Date.now() + 5000; answer.error !== 'ECONNREFUSED' && Date.now() < end;) {
        await new Promise((r) => setTimeout(r, 50));
        answer = await get(`127.0.0.1:${state.port}`, '/health.txt');
      }
      expect(answer.error).toBe('ECONNREFUSED');
      // The next worker on the workspace clears what is left and tells the service.
      expect(await stopLeftoverPreviews(deps)).toBe(1);
      expect(existsSync(statePath(workspaceDir, run.tenantId, run.runId))).toBe(false);
      expect(existsSync(state.socketDir!)).toBe(false);
      expect(previewCgroups(run.runId)).toEqual([]);
      expect(service.of(run.runId).map((c) => [c.state, c.reason])).toEqual([
        ['live', ''],
        ['stopped', 'the worker restarted'],
      ]);
    } finally {
      worker.kill('SIGKILL');
    }
  });

  it('stops the previews a worker process that is gone left behind, and leaves live ones alone', async () => {
    // A live preview of this process: not a leftover.
    const live = makeRun(serve());
    await workspace(live, { 'health.txt': 'ok\n' });
    expect((await start(live)).failure).toBeUndefined();
    const liveState = (await readState(statePath(workspaceDir, live.tenantId, live.runId)))!;

    // What a worker that died left: its state file, and a process still running in the preview's cgroup.
    const gone = makeRun(serve());
    const paths = await workspace(gone, {});
    const dead = spawn('true');
    await new Promise((r) => dead.on('exit', r));
    const cgroup = await createCommandCgroup(`${gone.runId}-preview-leftover`, { maxProcesses: 16, cpus: 1 });
    const procs = cgroup ? cgroup.procs.map((p) => `echo $$ > ${p}; `).join('') : '';
    const orphan = spawn('/bin/sh', ['-c', `${procs}exec sleep 600`], { detached: true, stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 200));
    const leftover: PreviewState = {
      runId: gone.runId,
      tenantId: gone.tenantId,
      workerPid: dead.pid!,
      pid: orphan.pid,
      pidStart: (await readFile(`/proc/${orphan.pid}/stat`, 'utf8')).split(') ')[1]!.split(' ')[19],
      cgroup: `-${gone.runId}-preview-`,
      host: '127.0.0.1',
      port: 1,
      transcript: join(paths.transcriptsDir, 'preview.log'),
      workspace: 'remove',
      expireTime: new Date(Date.now() + 3600_000).toISOString(),
      startTime: new Date().toISOString(),
    };
    await writeState(statePath(workspaceDir, gone.tenantId, gone.runId), leftover);
    // A preview of another worker process that is still running on this workspace (pid 1 stands in for it).
    const other = { ...leftover, runId: randomUUID(), workerPid: 1 };
    await writeState(statePath(workspaceDir, other.tenantId, other.runId), other);

    expect(await stopLeftoverPreviews(deps)).toBe(1);
    await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(`/proc/${orphan.pid}`) && !/State:\s+Z/.test(await readFile(`/proc/${orphan.pid}/status`, 'utf8'))).toBe(false);
    expect(previewCgroups(gone.runId)).toEqual([]);
    expect(existsSync(statePath(workspaceDir, gone.tenantId, gone.runId))).toBe(false);
    expect(existsSync(paths.runDir)).toBe(false);
    expect(service.of(gone.runId)).toEqual([{ state: 'stopped', provider: '', target: '', url: '', reason: 'the worker restarted' }]);
    expect(existsSync(statePath(workspaceDir, other.tenantId, other.runId))).toBe(true);
    await rm(statePath(workspaceDir, other.tenantId, other.runId));
    // The live one still serves.
    expect((await get(`127.0.0.1:${liveState.port}`, '/health.txt')).status).toBe(200);
    await stop(live);
  });
});

describe.skipIf(!bwrap)('command previews', () => {
  it('deploy, alias, and register the URLs the commands print', async () => {
    const run = makeRun({
      provider: 'command',
      command: 'echo "deploying $AMEIDE_HEAD_COMMIT via $HTTPS_PROXY"; echo AMEIDE_PREVIEW_URL=https://pr-17.previews.example.test/',
      aliasCommand: 'echo "aliasing $AMEIDE_PREVIEW_URL"; echo "  AMEIDE_PREVIEW_ALIAS_URL=https://calc-1.previews.example.test/  "',
    });
    await workspace(run, {});
    const r = await start(run);
    expect(r.failure).toBeUndefined();
    expect(r).toMatchObject({ provider: 'command', url: 'https://pr-17.previews.example.test/', aliasUrl: 'https://calc-1.previews.example.test/' });
    expect(r.stopQueue).toBeUndefined();
    expect(r.health).toMatch(/^deployed by the preview command in \d+\.\ds$/);
    expect(r.outputTail).toContain('aliasing https://pr-17.previews.example.test/');
    expect(service.calls.filter((c) => c.runId === run.runId).map((c) => [c.state, c.provider, c.url, c.aliasUrl])).toEqual([
      ['live', 'command', 'https://pr-17.previews.example.test/', 'https://calc-1.previews.example.test/'],
    ]);
    const transcript = await readFile(join(root, 'artifacts', 'runs', TENANT, run.runId, 'transcripts', 'preview.log'), 'utf8');
    // Online through the egress forwarder, with the commit it previews.
    expect(transcript).toContain(`deploying ${'a'.repeat(40)} via http://127.0.0.1:3128`);
    expect(transcript).toContain('aliasing https://pr-17.previews.example.test/');
  });

  it('fail clearly without a URL line, or when a command fails', async () => {
    const none = makeRun({ provider: 'command', command: 'echo deployed somewhere; echo AMEIDE_PREVIEW_URL=not-a-url' });
    await workspace(none, {});
    const r = await start(none);
    expect(r.failure).toBe('the preview command printed no AMEIDE_PREVIEW_URL=<url> line');
    expect(r.outputTail).toContain('deployed somewhere');
    expect(service.of(none.runId)).toEqual([]);

    const broken = makeRun({ provider: 'command', command: 'echo AMEIDE_PREVIEW_URL=https://x.example.test/; echo quota exceeded >&2; exit 4' });
    await workspace(broken, {});
    const b = await start(broken);
    expect(b.failure).toBe('the preview command exited with 4');
    expect(b.outputTail).toContain('quota exceeded');

    const noAlias = makeRun({ provider: 'command', command: 'echo AMEIDE_PREVIEW_URL=https://x.example.test/', aliasCommand: 'echo aliased' });
    await workspace(noAlias, {});
    expect((await start(noAlias)).failure).toBe('the preview alias command printed no AMEIDE_PREVIEW_ALIAS_URL=<url> line');
  });

  it('get the secrets scoped to preview, and no others, redacted from what they print', async () => {
    const run = makeRun(
      {
        provider: 'command',
        command: 'echo "token=$PREVIEW_TOKEN length=${#PREVIEW_TOKEN} agent=${AGENT_TOKEN:-unset}"; echo AMEIDE_PREVIEW_URL=https://x.example.test/',
      },
      {
        secrets: [
          { name: 'PREVIEW_TOKEN', phases: ['preview'], fromEnv: 'PREVIEW_TOKEN' },
          { name: 'AGENT_TOKEN', phases: ['agent'], fromEnv: 'AGENT_TOKEN' },
        ],
      },
    );
    await workspace(run, {});
    const r = await start(run);
    expect(r.failure).toBeUndefined();
    expect(r.outputTail).toContain(`token=[REDACTED] length=${SECRET.length} agent=unset`);
    expect(r.outputTail).not.toContain(SECRET);
    const transcript = await readFile(join(root, 'artifacts', 'runs', TENANT, run.runId, 'transcripts', 'preview.log'), 'utf8');
    expect(transcript).toContain('token=[REDACTED]');
    expect(transcript).not.toContain(SECRET);
  });
});

describe.skipIf(!bwrap)('with the workflow service', () => {
  let h: Harness;
  let routerPort: number;
  let real: ReturnType<typeof createPreviewActivities>;

  beforeAll(async () => {
    h = await startHarnessWithRouter();
    routerPort = h.app.preview!.port;
    real = createPreviewActivities({ ...deps, api: h.service });
    await h.acme.applyDefinition({ name: 'pv', spec: { repoUrl: '/srv/repos/previews.git', agentCommand: 'true' } });
  });
  afterAll(async () => {
    await h?.stop();
  });

  /** A run the service knows (stored, never executed: no worker polls its queue), as the worker's input. */
  const serviceRun = async (preview: PreviewInput, workItemId: string) => {
    const r = (await h.acme.startWorkflowRun({ definition: 'pv', workItems: [{ ...MULTIPLY, id: workItemId }] })).run!;
    return makeRun(preview, { runId: r.id, tenantId: 'acme' });
  };
  /** A GET to the preview router with this Host. */
  const viaRouter = (url: string, path: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: routerPort, path, headers: { host: new URL(url).host }, agent: false }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      });
      req.on('error', reject);
      req.end();
    });

  it('a local preview is served behind the preview router at its run URL and its alias, until stopped', async () => {
    const run = await serviceRun(serve(), 'WEB-7');
    await workspace(run, { 'health.txt': 'ok\n', 'index.html': '<h1>served through the router</h1>\n' });
    const r = await start(run, 1, undefined, real);
    expect(r.failure).toBeUndefined();
    expect(r.url).toBe(`http://run-${run.runId.slice(0, 8)}.acme.preview.localhost:${routerPort}/`);
    expect(r.aliasUrl).toBe(`http://web-7.acme.preview.localhost:${routerPort}/`);
    expect(await viaRouter(r.url, '/index.html')).toEqual({ status: 200, body: '<h1>served through the router</h1>\n' });
    expect((await viaRouter(r.aliasUrl, '/index.html')).body).toBe('<h1>served through the router</h1>\n');
    const [listed] = (await h.acme.listPreviews({ runId: run.runId })).previews;
    expect(listed).toMatchObject({ state: 'live', provider: 'local', url: r.url, aliased: true });
    const pid = (await readState(statePath(workspaceDir, run.tenantId, run.runId)))!.pid!;

    await new MockActivityEnvironment().run(real.stopPreview, { runId: run.runId, tenantId: run.tenantId, reason: 'expired' });
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    expect((await viaRouter(r.url, '/index.html')).status).not.toBe(200);
    const [stopped] = (await h.acme.listPreviews({ runId: run.runId })).previews;
    expect(stopped).toMatchObject({ state: 'stopped', stopReason: 'expired' });
    // Idempotent against the service too.
    await new MockActivityEnvironment().run(real.stopPreview, { runId: run.runId, tenantId: run.tenantId, reason: 'expired' });
  });

  it('a command preview is registered with the URLs its commands printed', async () => {
    const run = await serviceRun(
      {
        provider: 'command',
        command: 'echo AMEIDE_PREVIEW_URL=https://pr-9.previews.example.test/',
        aliasCommand: 'echo AMEIDE_PREVIEW_ALIAS_URL=https://web-8.previews.example.test/',
      },
      'WEB-8',
    );
    await workspace(run, {});
    const r = await start(run, 1, undefined, real);
    expect(r).toMatchObject({ provider: 'command', url: 'https://pr-9.previews.example.test/', aliasUrl: 'https://web-8.previews.example.test/' });
    const [listed] = (await h.acme.listPreviews({ runId: run.runId })).previews;
    expect(listed).toMatchObject({
      state: 'live',
      provider: 'command',
      url: 'https://pr-9.previews.example.test/',
      aliasUrl: 'https://web-8.previews.example.test/',
    });
  });
});
