/**
 * `make bench`, part 4: what one sandboxed step costs beyond its command. Every phase command runs
 * through the same chain as the worker builds it (`sandboxArgv`): a root shell that sets the rlimits
 * and joins the cgroups, setpriv to the tenant's user, bubblewrap, the phase-start snapshot of the
 * checkout (a command phase's prelude), and for an online phase the egress forwarder; last, the
 * test phase's: the snapshot, then the collection of its report files (`reports/*.xml`) after the
 * command. The command here is `true`, so what is measured is the chain; a plain `/bin/sh -c true`
 * is the baseline.
 *
 * It runs on a small checkout (BENCH_SANDBOX_FILES_SMALL, default 200 files) and a large one
 * (BENCH_SANDBOX_FILES_LARGE, default 20,000): the snapshot must not re-read files that did not
 * change, so its cost should grow little with the checkout's size. BENCH_SANDBOX_N (default 25)
 * alternated iterations each; medians. Needs root and bubblewrap, as the worker does; otherwise it
 * says so and skips.
 *
 * Then what the worker does after every run in the background: it checks the tenant's package caches
 * against their quota (`enforceCacheQuota`), which lists every file of them. It times that over a
 * cache of BENCH_SANDBOX_CACHE_FILES files (default 20,000; a pnpm store or a Go module cache holds
 * that many and more), under its quota, so nothing is removed.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { SNAPSHOT_SCRIPT } from '../services/workflows-runtime/src/activities/exchange.js';
import { enforceCacheQuota } from '../services/workflows-runtime/src/activities/lifecycle.js';
import { COLLECT_SCRIPT, collectEnv } from '../services/workflows-runtime/src/reports/collect.js';
import {
  findBubblewrap,
  SANDBOX_MOUNTS,
  sandboxArgv,
  sandboxEtcFiles,
  sandboxUserFor,
  type SandboxSpec,
} from '../services/workflows-runtime/src/guardrails/sandbox.js';

const N = Number(process.env.BENCH_SANDBOX_N ?? 25);
const CACHE_FILES = Number(process.env.BENCH_SANDBOX_CACHE_FILES ?? 20_000);
const SIZES = [Number(process.env.BENCH_SANDBOX_FILES_SMALL ?? 200), Number(process.env.BENCH_SANDBOX_FILES_LARGE ?? 20_000)];
const FORWARDER = new URL('../services/workflows-runtime/src/guardrails/egress-forwarder.pl', import.meta.url).pathname;
/** Where the worker's workspace would be: outside any dot-directory, reachable by the sandbox user. */
const WORKSPACE_PARENT = '/var/tmp';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/** A checkout of `files` files made by the sandbox user, as prepare makes one (so its index is the user's own). */
function checkout(root: string, files: number, uid: number, gid: number) {
  const dirs = { worktree: join(root, 'worktree'), home: join(root, 'home'), tmp: join(root, 'tmp'), etc: join(root, 'etc'), sock: join(root, 'egress') };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  for (const d of [dirs.worktree, dirs.home, dirs.tmp]) chownSync(d, uid, gid);
  const etc = sandboxEtcFiles(uid, gid, SANDBOX_MOUNTS.home);
  writeFileSync(join(dirs.etc, 'passwd'), etc.passwd);
  writeFileSync(join(dirs.etc, 'group'), etc.group);
  const make = `git init -q -b main . && mkdir reports && echo '<testsuite/>' > reports/junit.xml && i=0 && while [ $i -lt ${files} ]; do mkdir -p d$((i / 500)) && echo $i > d$((i / 500))/f$i.txt; i=$((i + 1)); done && git add -A && git -c user.name=bench -c user.email=bench@example.com commit -qm base`;
  const r = spawnSync('/usr/bin/setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--', '/bin/sh', '-c', make], {
    cwd: dirs.worktree,
    env: { PATH: '/usr/bin:/bin', HOME: dirs.home },
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`could not make the checkout: ${r.stderr}`);
  return dirs;
}

/** The cache check after a run: its wall-clock and this process's CPU, medians of five, over a cache of `files` files. */
async function cacheCheck(root: string, files: number): Promise<void> {
  const cache = join(root, 'cache');
  for (let i = 0; i < files; i++) {
    const dir = join(cache, 'pnpm-store', String(i % 256));
    if (i < 256) mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `f${i}`), 'x');
  }
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    const c = process.cpuUsage();
    await enforceCacheQuota(cache, 1024 ** 4);
    const used = process.cpuUsage(c);
    wall.push(performance.now() - t);
    cpu.push((used.user + used.system) / 1000);
  }
  console.log(
    `\nthe cache quota check after each run, over ${files} cached files: ${median(wall).toFixed(0)} ms (${median(cpu).toFixed(0)} ms of the worker's CPU)`,
  );
}

async function main(): Promise<number> {
  const bwrap = findBubblewrap(process.env.PATH ?? '');
  if (process.getuid?.() !== 0 || !bwrap) {
    console.log('\nsandboxed steps skipped: they need root and bubblewrap, as the worker does');
    return 0;
  }
  const root = mkdtempSync(join(WORKSPACE_PARENT, 'ameide-bench-sandbox-'));
  chmodSync(root, 0o711);
  const { uid, gid } = sandboxUserFor('bench');
  const env = {
    PATH: '/usr/bin:/bin',
    HOME: SANDBOX_MOUNTS.home,
    TMPDIR: SANDBOX_MOUNTS.tmp,
    LANG: 'C.UTF-8',
    AMEIDE_PHASE: 'agent',
    // The test phase's report collection writes into the step's temp dir here.
    ...collectEnv(['reports/*.xml'], SANDBOX_MOUNTS.tmp),
  };
  const collect = { script: COLLECT_SCRIPT, statusFile: join(SANDBOX_MOUNTS.tmp, 'collect.status') };
  try {
    console.log(`\nSandboxed steps: \`true\` through the worker's chain, median of ${N} (ms; the baseline is \`/bin/sh -c true\`)`);
    console.log('checkout      plain  sandboxed  + phase-start snapshot  + egress forwarder (online)  snapshot + report collection (test)');
    for (const files of SIZES) {
      const dirs = checkout(join(root, String(files)), files, uid, gid);
      const spec = (online: boolean): SandboxSpec => ({
        kind: 'bubblewrap',
        bwrap,
        uid,
        gid,
        cwd: SANDBOX_MOUNTS.worktree,
        writable: [],
        mounts: [
          { host: dirs.worktree, at: SANDBOX_MOUNTS.worktree },
          { host: dirs.home, at: SANDBOX_MOUNTS.home },
          { host: dirs.tmp, at: SANDBOX_MOUNTS.tmp },
        ],
        readOnly: [],
        maxProcesses: 256,
        maxFileBytes: 1 << 30,
        etcDir: dirs.etc,
        ...(online ? { egress: { socketDir: dirs.sock, port: 3128, forwarder: FORWARDER } } : {}),
      });
      const variants = [
        { file: '/bin/sh', args: ['-c', 'true'] },
        sandboxArgv(spec(false), 'true'),
        sandboxArgv(spec(false), 'true', SNAPSHOT_SCRIPT),
        sandboxArgv(spec(true), 'true', SNAPSHOT_SCRIPT),
        sandboxArgv(spec(false), 'true', SNAPSHOT_SCRIPT, collect),
      ];
      const times = variants.map(() => [] as number[]);
      for (let i = 0; i < N; i++) {
        variants.forEach((v, k) => {
          const t = performance.now();
          const r = spawnSync(v.file, v.args, { env, encoding: 'utf8' });
          times[k]!.push(performance.now() - t);
          if (r.status !== 0) throw new Error(`a sandboxed step failed (exit ${r.status}): ${r.stderr.trim()}`);
        });
      }
      const [plain, boxed, snapshot, online, tested] = times.map(median) as [number, number, number, number, number];
      console.log(
        `${`${files} files`.padEnd(12)} ${plain.toFixed(1).padStart(6)} ${boxed.toFixed(1).padStart(10)} ${snapshot.toFixed(1).padStart(23)} ${online.toFixed(1).padStart(28)} ${tested.toFixed(1).padStart(36)}`,
      );
    }
    await cacheCheck(root, CACHE_FILES);
    return 0;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
