import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { liveProcesses } from '../../../../tests/support/processes.js';
import { runCommand, type CommandResult } from '../../src/activities/exec.js';
import { fileURLToPath } from 'node:url';
import { linkEscapes } from '../../src/activities/review.js';
import { createCommandCgroup } from '../../src/guardrails/cgroups.js';
import { startEgressProxy } from '../../src/guardrails/egress.js';
import { checkPaths } from '../../src/guardrails/paths.js';
import { findBubblewrap, sandboxEtcFiles, type SandboxSpec } from '../../src/guardrails/sandbox.js';

/** Real bubblewrap, real processes: what a command in a run can and cannot do. */
const root = mkdtempSync(join(tmpdir(), 'sandbox-'));
// The sandbox user must be able to pass through (not list) the directories above its own.
chmodSync(root, 0o711);
// Outside the range tenants get (sandboxUserFor), and distinct per test process.
const UID = 300_000 + (process.pid % 10_000);
const bwrap = findBubblewrap('/usr/local/bin:/usr/bin:/bin');
const FORWARDER = fileURLToPath(new URL('../../src/guardrails/egress-forwarder.pl', import.meta.url));

function runDir(name: string) {
  const dir = join(root, name);
  const worktree = join(dir, 'worktree');
  const tmp = join(dir, 'tmp');
  const etc = join(dir, 'etc');
  for (const d of [worktree, tmp, etc]) mkdirSync(d, { recursive: true });
  chmodSync(dir, 0o711);
  const files = sandboxEtcFiles(UID, UID, tmp);
  writeFileSync(join(etc, 'passwd'), files.passwd);
  writeFileSync(join(etc, 'group'), files.group);
  for (const d of [worktree, tmp]) chownSync(d, UID, UID);
  return { dir, worktree, tmp, etc };
}

const a = runDir('run-a');
const b = runDir('run-b');
const serviceData = join(root, 'service-data');
mkdirSync(serviceData);
writeFileSync(join(serviceData, 'jwt-secret'), 'the-service-key');
writeFileSync(join(b.worktree, 'private.txt'), 'other run data');

const spec = (over: Partial<SandboxSpec> = {}): SandboxSpec => ({
  kind: 'bubblewrap',
  bwrap: bwrap!,
  uid: UID,
  gid: UID,
  cwd: a.worktree,
  writable: [a.worktree, a.tmp],
  readOnly: [],
  maxProcesses: 64,
  maxFileBytes: 1 << 20,
  etcDir: a.etc,
  ...over,
});

let n = 0;
const run = (command: string, over: Partial<SandboxSpec> = {}, extra: { timeoutMs?: number; maxOutputBytes?: number } = {}): Promise<CommandResult> =>
  runCommand({
    command,
    cwd: a.worktree,
    env: { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: a.tmp, LANG: 'C.UTF-8' },
    timeoutMs: extra.timeoutMs ?? 20_000,
    killGraceMs: 500,
    maxOutputBytes: extra.maxOutputBytes,
    transcriptPath: join(a.dir, `t${n++}.log`),
    sandbox: spec(over),
  });

let server: net.Server;
let port = 0;
beforeAll(async () => {
  server = net.createServer((s) => s.end('hello from the network\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as net.AddressInfo).port;
});
afterAll(() => server.close());

describe.skipIf(!bwrap)('sandboxed commands', () => {
  it('run as the unprivileged sandbox user in the worktree, and may write there', async () => {
    const r = await run('id -u; pwd; echo change > file.txt');
    expect(r.exitCode).toBe(0);
    expect(r.outputTail.split('\n').slice(0, 2)).toEqual([String(UID), a.worktree]);
    expect(readFileSync(join(a.worktree, 'file.txt'), 'utf8')).toBe('change\n');
  });

  it('cannot write outside the worktree, with ../ or into system directories', async () => {
    // Above the worktree there is only the sandbox's own read-only root or its private /tmp (when the
    // workspace itself lives under /tmp, as here): a write there never reaches the host.
    await run(`echo x > ../escape.txt; echo x > ${root}/escape.txt`);
    for (const cmd of ['echo x > /usr/escape.txt', 'echo x > /etc/escape', 'mkdir /x', `echo x > ${b.worktree}/planted.txt`]) {
      const r = await run(cmd);
      expect(r.exitCode, cmd).not.toBe(0);
    }
    expect(existsSync(join(b.worktree, 'planted.txt'))).toBe(false);
    expect(existsSync(join(a.dir, 'escape.txt'))).toBe(false);
    expect(existsSync(join(root, 'escape.txt'))).toBe(false);
    // The run's own temp dir stays writable.
    expect((await run('echo ok > "$HOME/scratch" && cat "$HOME/scratch" && echo ok > /tmp/t')).exitCode).toBe(0);
  });

  it("cannot see another run's worktree or the service's key material", async () => {
    const r = await run(`cat ${b.worktree}/private.txt; cat ${serviceData}/jwt-secret; ls /root; ls ${root}`);
    expect(r.outputTail).not.toContain('other run data');
    expect(r.outputTail).not.toContain('the-service-key');
    expect(r.outputTail).toMatch(/No such file or directory/);
  });

  it('has no network of its own: an online phase reaches only allowlisted hosts, through the egress proxy', async () => {
    const direct = `node -e "require('net').connect(${port},'127.0.0.1').on('data',d=>{process.stdout.write(d);process.exit(0)}).on('error',e=>{console.log(e.code);process.exit(7)})"`;
    const offline = await run(direct);
    expect(offline.exitCode).toBe(7);
    expect(offline.outputTail).not.toContain('hello from the network');
    // A proxy that lets one name through to the test server (the machine has no internet to use).
    const socketDir = join(a.dir, 'egress');
    mkdirSync(socketDir);
    chmodSync(socketDir, 0o711);
    const log: string[] = [];
    const proxy = await startEgressProxy({
      socketPath: join(socketDir, 'egress.sock'),
      allowedHosts: ['allowed.test'],
      allowedPorts: [port],
      resolve: async (host) => (host === 'allowed.test' ? ['127.0.0.1'] : ['10.0.0.1']),
      addressAllowed: (ip) => ip === '127.0.0.1',
      log: (l) => log.push(l),
    });
    const egress = { socketDir, port: 3128, forwarder: FORWARDER };
    const viaProxy = (host: string) =>
      `node -e "const s=require('net').connect(3128,'127.0.0.1',()=>s.write('CONNECT ${host}:${port} HTTP/1.1\\r\\nHost: ${host}\\r\\n\\r\\n'));s.on('data',d=>process.stdout.write(d));s.on('end',()=>process.exit(0))"`;
    try {
      const online = await run(`${direct}; ${viaProxy('allowed.test')}; ${viaProxy('other.test')}`, { egress });
      expect(online.outputTail).not.toMatch(/^hello from the network\n.*HTTP\/1.1 200/s);
      expect(online.outputTail).toContain('HTTP/1.1 200');
      expect(online.outputTail).toContain('hello from the network');
      expect(online.outputTail).toContain('HTTP/1.1 403');
      expect(log.some((l) => l.includes('allowed') && l.includes('allowed.test'))).toBe(true);
      expect(log.some((l) => l.includes('refused') && l.includes('other.test'))).toBe(true);
    } finally {
      await proxy.close();
    }
  });

  it('holds a command to its own cgroup: a per-command process limit, and nothing left when it ends', async () => {
    const cgroup = await createCommandCgroup(`sandbox-test-${process.pid}`, { maxProcesses: 20, cpus: 1 });
    if (!cgroup) return; // a worker without cgroups falls back to the per-user limit tested below
    try {
      const r = await runCommand({
        command: 'for i in $(seq 60); do sleep 30 & done; echo started; exit 0',
        cwd: a.worktree,
        env: { PATH: '/usr/bin:/bin', HOME: a.tmp },
        timeoutMs: 10_000,
        transcriptPath: join(a.dir, `t${n++}.log`),
        sandbox: spec({ maxProcesses: 10_000 }),
        cgroup,
      });
      expect(r.outputTail).toMatch(/fork|Resource temporarily unavailable|Cannot fork/i);
      await new Promise((res) => setTimeout(res, 200));
      expect(liveProcesses((p) => p.uid === UID)).toEqual([]);
    } finally {
      await cgroup.remove();
    }
  });

  it("holds a command to its cgroup's CPU quota", async () => {
    const cgroup = await createCommandCgroup(`sandbox-cpu-${process.pid}`, { maxProcesses: 50, cpus: 0.1 });
    if (!cgroup) return; // a worker without cgroups has no CPU limit (docs/security.md)
    try {
      // A busy loop for 1.5 s of wall-clock; `times` prints the CPU time the reaped loop used.
      const r = await runCommand({
        command: "sh -c 'while :; do :; done' & sleep 1.5; kill $!; wait; times",
        cwd: a.worktree,
        env: { PATH: '/usr/bin:/bin', HOME: a.tmp },
        timeoutMs: 10_000,
        transcriptPath: join(a.dir, `t${n++}.log`),
        sandbox: spec(),
        cgroup,
      });
      const children = r.outputTail
        .trim()
        .split('\n')
        .at(-1)!
        .match(/(\d+)m([\d.]+)s (\d+)m([\d.]+)s/)!;
      const cpuSeconds = Number(children[1]) * 60 + Number(children[2]) + Number(children[3]) * 60 + Number(children[4]);
      // 0.1 CPU for 1.5 s is about 0.15 s; without the quota it would be about 1.5 s.
      expect(cpuSeconds).toBeLessThan(0.6);
    } finally {
      await cgroup.remove();
    }
  });

  it('contains a fork bomb with the process limit and kills it at the budget', async () => {
    const r = await run('bomb() { bomb | bomb & }; bomb; sleep 30', {}, { timeoutMs: 3000 });
    expect(r.timedOut || r.exitCode !== 0).toBe(true);
    // Nothing of the sandbox user survives.
    await new Promise((res) => setTimeout(res, 500));
    expect(liveProcesses((p) => p.uid === UID)).toEqual([]);
  });

  it('kills a command that ignores SIGTERM when the phase budget runs out', async () => {
    const r = await run("trap '' TERM; sleep 60", {}, { timeoutMs: 500 });
    expect(r.timedOut).toBe(true);
    expect(r.exitCode).toBe(124);
    expect(liveProcesses((p) => p.uid === UID)).toEqual([]);
  });

  it('cuts output above the budget with a visible marker', async () => {
    const r = await run('head -c 300000 /dev/zero | tr "\\\\0" a', {}, { maxOutputBytes: 1000 });
    expect(r.exitCode).toBe(0);
    expect(r.truncated).toBe(true);
    expect(r.outputBytes).toBe(300000);
    expect(r.outputTail).toContain('output truncated');
  });

  it('limits the size of files a command may write', async () => {
    const r = await run('head -c 5000000 /dev/zero > big.bin');
    expect(r.exitCode).not.toBe(0);
  });

  it('gets the budgets as hard limits it cannot raise: file size, processes (without a cgroup), no core dumps', async () => {
    const limits = (r: CommandResult) =>
      Object.fromEntries(
        r.outputTail
          .split('\n')
          .filter((l) => /^Max (file size|processes|core file size) /.test(l))
          .map((l) => [l.slice(0, 26).trim(), l.slice(26).trim().split(/\s+/).slice(0, 2)]),
      );
    // 3000 bytes and more: the file size is set in 512-byte blocks, rounded down.
    const r = await run('cat /proc/self/limits', { maxFileBytes: 3000, maxProcesses: 33 });
    expect(limits(r)).toEqual({ 'Max file size': ['2560', '2560'], 'Max processes': ['33', '33'], 'Max core file size': ['0', '0'] });
    const raise = await run('ulimit -f 100000 && echo raised');
    expect(raise.outputTail).not.toContain('raised');
    // Unsandboxed commands (where the operator allows them) get the same limits.
    const none = await run('cat /proc/self/limits', { kind: 'none', maxFileBytes: 1 << 20, maxProcesses: 40 });
    expect(limits(none)).toEqual({ 'Max file size': ['1048576', '1048576'], 'Max processes': ['40', '40'], 'Max core file size': ['0', '0'] });
  });
});

describe('allowed paths', () => {
  it('flags paths outside the allowed globs and inside denied ones', () => {
    const v = checkPaths(['src/a.ts', 'src/deep/b.ts', 'README.md', '.github/workflows/ci.yml', 'docs/x.md'], {
      allowed: ['src/**', 'README.md', '.github/**'],
      denied: ['.github/workflows/**'],
    });
    expect(v).toEqual([
      { path: '.github/workflows/ci.yml', reason: 'denied' },
      { path: 'docs/x.md', reason: 'not allowed' },
    ]);
  });

  it('flags symlinks whose target leaves the repository', () => {
    expect(linkEscapes('abs', '/etc/passwd')).toBe(true);
    expect(linkEscapes('src/rel', '../../outside')).toBe(true);
    expect(linkEscapes('src/ok', 'a.ts')).toBe(false);
    expect(linkEscapes('src/up', '../README.md')).toBe(false);
  });
});
