/**
 * `make bench`, part 3: how runs scale when several go at once. Runs of the sample (the same task as
 * bench/run.ts, without a preview) first one at a time, then BENCH_CONCURRENCY (default 8) at once,
 * on one worker. Prints the single run's median, the batch's wall-clock, the speedup (runs × single
 * / batch) and the share of ideal scaling it reaches.
 *
 * Ideal is what the machine's CPUs allow: a run that costs C seconds of CPU time cannot go faster,
 * together with the others, than runs × C / CPUs; nor can a batch end before one run would. Ideal
 * batch time = max(single, runs × C / CPUs); efficiency = ideal batch time / batch time (1 is ideal).
 * C is the machine's busy CPU time (/proc/stat) while one run goes alone, less this client's own: on
 * a machine doing nothing else, everything the run costs, the kernel's part included. (The stack's
 * own processes, counted from /proc, account for only about half of it; the line says how much.)
 * The figure needs a machine doing nothing else: other work counts as the runs'.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadStackConfig, stackDir } from '@ameide/config';
import { RunStatus } from '@ameide/contracts';
import { createOrigin, sampleDefinition, startStack, SAMPLE_REPO } from '@ameide/devstack';
import { createWorkflowServiceClient, type WorkflowServiceClient } from '@ameide/sdk';

const RUNS = Number(process.env.BENCH_CONCURRENCY ?? 8);
const SINGLES = Number(process.env.BENCH_SINGLES ?? 3);
const RUN_TIMEOUT_MS = 10 * 60_000;

const TICKS = 100; // USER_HZ: /proc reports CPU time in 1/100 s

/** Busy CPU time (s) of the whole machine so far, all CPUs (/proc/stat: all but idle and iowait). */
function machineBusySeconds(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  return (f.reduce((a, b) => a + b, 0) - f[3]! - f[4]!) / TICKS;
}

/**
 * CPU time (s) spent so far by the stack this process started: every live descendant's own time,
 * plus the time of descendants that already ended (their parents' `cutime`/`cstime`). The bench's
 * own client work is left out; other work on the machine is not counted.
 */
function stackCpuSeconds(): number {
  const procs = new Map<number, { ppid: number; own: number; children: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // ended meanwhile
    }
    // After the command name (in parentheses, may hold spaces): state ppid … utime(14) stime cutime cstime.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    procs.set(Number(entry), { ppid: Number(f[1]), own: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]) });
  }
  let ticks = procs.get(process.pid)?.children ?? 0;
  const below = (pid: number): void => {
    for (const [child, p] of procs) {
      if (p.ppid !== pid) continue;
      ticks += p.own + p.children;
      below(child);
    }
  };
  below(process.pid);
  return ticks / TICKS;
}

let counter = 0;
/** One run of the sample through the API, until its last status update; resolves with its wall-clock in ms. */
async function oneRun(api: WorkflowServiceClient): Promise<number> {
  const t0 = performance.now();
  const n = ++counter;
  const started = await api.startWorkflowRun({
    definition: 'sample-calculator',
    workItems: [
      { id: `SCALE-${n}`, title: 'Add a multiply function', description: 'The calculator also needs to multiply.', acceptanceCriteria: [], contextLinks: [] },
    ],
  });
  const id = started.run!.id;
  let last = t0;
  for await (const res of api.watchWorkflowRun({ id, fromSequence: 0n }, { signal: AbortSignal.timeout(RUN_TIMEOUT_MS) }))
    if (res.update) last = performance.now();
  const run = (await api.getWorkflowRun({ id })).run!;
  if (run.status !== RunStatus.COMPLETED) throw new Error(`run ${id} ended ${RunStatus[run.status]}: ${run.error}`);
  return last - t0;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main(): Promise<void> {
  const cfg = loadStackConfig();
  const stack = await startStack(cfg, { name: 'bench-scaling', ephemeral: true });
  try {
    const origin = createOrigin(SAMPLE_REPO, join(stackDir(cfg, 'bench-scaling'), 'origin.git'));
    const api = createWorkflowServiceClient({ baseUrl: stack.apiUrl, token: stack.devToken });
    await api.applyDefinition(sampleDefinition(origin));
    await oneRun(api); // warm-up: the worker's caches, the tenant's npm cache
    const singles: number[] = [];
    const cpu: number[] = [];
    const machineCpu: number[] = [];
    for (let i = 0; i < SINGLES; i++) {
      const c0 = stackCpuSeconds();
      const m0 = machineBusySeconds();
      const own0 = process.cpuUsage();
      singles.push(await oneRun(api));
      cpu.push(stackCpuSeconds() - c0);
      const own = process.cpuUsage(own0);
      machineCpu.push(machineBusySeconds() - m0 - (own.user + own.system) / 1e6);
    }
    const c0 = stackCpuSeconds();
    const m0 = machineBusySeconds();
    const ownBatch = process.cpuUsage();
    const t0 = performance.now();
    const each = await Promise.all(Array.from({ length: RUNS }, () => oneRun(api)));
    const batch = performance.now() - t0;
    const batchCpu = stackCpuSeconds() - c0;
    const ownUsed = process.cpuUsage(ownBatch);
    const machineBusy = machineBusySeconds() - m0 - (ownUsed.user + ownUsed.system) / 1e6;
    const single = median(singles);
    const cpuPerRun = median(machineCpu);
    const cpus = availableParallelism();
    const ideal = Math.max(single, (RUNS * cpuPerRun * 1000) / cpus);
    console.log(`\n${RUNS} runs at once on one worker (${cpus} CPUs), the sample without a preview:`);
    console.log(
      `  one run alone: median ${single.toFixed(0)} ms of ${SINGLES} (${singles.map((x) => x.toFixed(0)).join(', ')}), CPU ${cpuPerRun.toFixed(2)} s per run (the machine's, less this client's; ${median(cpu).toFixed(2)} s in the stack's processes)`,
    );
    console.log(
      `  ${RUNS} at once: batch ${batch.toFixed(0)} ms (runs ${Math.min(...each).toFixed(0)}–${Math.max(...each).toFixed(0)} ms), CPU ${(machineBusy / RUNS).toFixed(2)} s per run (${(batchCpu / RUNS).toFixed(2)} s in the stack's processes)`,
    );
    console.log(
      `  the machine's CPUs were ${((100 * machineBusy) / ((cpus * batch) / 1000)).toFixed(0)}% busy during the batch (all processes and the kernel; below 100%: runs waited on something other than CPU)`,
    );
    console.log(`  speedup over one at a time: ${((RUNS * single) / batch).toFixed(2)}× (${RUNS} × ${single.toFixed(0)} ms / ${batch.toFixed(0)} ms)`);
    console.log(
      `  ideal batch (max of one run, ${RUNS} × CPU per run / ${cpus} CPUs): ${ideal.toFixed(0)} ms → scaling efficiency ${(ideal / batch).toFixed(2)} of ideal (goal ≥ 0.8)`,
    );
  } finally {
    await stack.stop();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
