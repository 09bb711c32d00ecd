/**
 * `make bench`: orchestration overhead of a coding-agent run through the stack, compared with doing
 * the same steps by hand in bash (clone, install, agent, test, commit, push, preview) on the sample repository,
 * then the same for the Go sample (clone, go build, agent, go test, commit, push) when `go` is installed.
 * BENCH_N iterations (default 5) each, alternating by-hand and system. Exits 1 if any run did not complete.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadStackConfig, stackDir } from '@ameide/config';
import { Phase, RunStatus, type PhaseResult } from '@ameide/contracts';
import {
  createOrigin,
  freePort,
  GO_SAMPLE_REPO,
  goSampleDefinition,
  goToolchain,
  SAMPLE_PREVIEW,
  sampleDefinition,
  startStack,
  SAMPLE_REPO,
  SCRIPTED_AGENT,
  SCRIPTED_GO_AGENT,
} from '@ameide/devstack';
import { createWorkflowServiceClient, type WorkflowServiceClient } from '@ameide/sdk';

const N = Number(process.env.BENCH_N ?? 5);
/** Untimed iterations first: the first run through a fresh stack waits for the worker to bundle its workflow code. */
const WARMUP = Number(process.env.BENCH_WARMUP ?? 1);
const TASK = 'Add a multiply function';
const RUN_TIMEOUT_MS = 10 * 60_000;

/** Rows of a table: by-hand phases → the system phase they correspond to. */
type Row = { name: string; hand: readonly string[]; system: Phase };
const ROWS: readonly Row[] = [
  { name: 'prepare ≈ clone', hand: ['clone'], system: Phase.PREPARE },
  { name: 'install', hand: ['install'], system: Phase.INSTALL },
  { name: 'agent', hand: ['agent'], system: Phase.AGENT },
  { name: 'test', hand: ['test'], system: Phase.TEST },
  { name: 'publish ≈ commit+push', hand: ['commit', 'push'], system: Phase.PUBLISH },
  { name: 'preview ≈ serve+health', hand: ['preview'], system: Phase.PREVIEW },
  { name: 'pull request (system only)', hand: [], system: Phase.PULL_REQUEST },
  { name: 'report (system only)', hand: [], system: Phase.REPORT },
];
/** The Go sample's rows: it has no preview. */
const GO_ROWS: readonly Row[] = [
  { name: 'prepare ≈ clone', hand: ['clone'], system: Phase.PREPARE },
  { name: 'install ≈ go build', hand: ['install'], system: Phase.INSTALL },
  { name: 'agent', hand: ['agent'], system: Phase.AGENT },
  { name: 'test ≈ go test', hand: ['test'], system: Phase.TEST },
  { name: 'publish ≈ commit+push', hand: ['commit', 'push'], system: Phase.PUBLISH },
  { name: 'pull request (system only)', hand: [], system: Phase.PULL_REQUEST },
  { name: 'report (system only)', hand: [], system: Phase.REPORT },
];
/** The goal for a warm Go test of an unchanged package: the system's test phase at most this times the by-hand one. */
const GO_TEST_GOAL = 1.5;
/** The phases a run had before previews and pull requests: their overhead must not grow with them. */
const EARLIER_HAND = ['clone', 'install', 'agent', 'test', 'commit', 'push'];
const EARLIER_SYSTEM = [Phase.PREPARE, Phase.INSTALL, Phase.AGENT, Phase.TEST, Phase.PUBLISH, Phase.REPORT];

/**
 * One timed run. `split` (system only, from the run's own timestamps): the startWorkflowRun call to the
 * prepare phase's start, the sum of the gaps between one phase's end and the next one's start, the sum
 * over the other phases of their span (start → end) less their own duration (the activity's work: the
 * command, the git steps), the report phase's span, and the report phase's end to the last update
 * reaching the watcher (the run's end being delivered). `cached`: the test output says `(cached)` (Go).
 */
type Sample = {
  phases: Record<string, number>;
  total: number;
  ok: boolean;
  note?: string;
  firstUpdate?: number;
  split?: { toFirstActivity: number; boundaries: number; inPhases: number; report: number; end: number };
  cached?: boolean;
};

/** The by-hand baseline: one bash script, each phase timed with `date +%s%N`, printing "<phase> <ms>". */
const BY_HAND = String.raw`
set -euo pipefail
ORIGIN=$1 DIR=$2 BRANCH=$3 PROMPT=$4 AGENT=$5 LOG=$6 PREVIEW_PORT=$7 PREVIEW=$8
exec 3>&1 >"$LOG" 2>&1
now() { date +%s%N; }
phase() { local name=$1 s e; shift; s=$(now); "$@"; e=$(now); echo "$name $(( (e - s) / 1000000 ))" >&3; }
clone() { git clone --quiet "$ORIGIN" "$DIR" && cd "$DIR" && git checkout --quiet -b "$BRANCH"; }
phase clone clone
phase install npm ci --no-audit --no-fund
phase agent env AMEIDE_PROMPT_FILE="$PROMPT" node "$AGENT"
phase test npm test
phase commit bash -c 'git add -A && git commit --quiet -m "$1"' _ "$BRANCH: Add a multiply function"
phase push git push --quiet origin "$BRANCH"
# The preview: start the server, poll its health check (bash's own TCP, no extra process), stop it.
healthy() { exec 5<>"/dev/tcp/127.0.0.1/$PREVIEW_PORT" && printf 'GET /health HTTP/1.0\r\n\r\n' >&5 && head -1 <&5 | grep -q ' 200 '; }
preview() { PORT=$PREVIEW_PORT bash -c "$PREVIEW" & local pid=$!; until healthy 2>/dev/null; do sleep 0.02; done; kill $pid; }
phase preview preview
`;

/**
 * The Go sample by hand, as a developer works: one checkout directory (emptied and cloned again every
 * time, so paths stay the same) and one GOCACHE/GOMODCACHE kept across iterations, so an unchanged
 * package's test result comes from the cache. Prints "<phase> <ms>", then "#cached <count>".
 */
const BY_HAND_GO = String.raw`
set -euo pipefail
ORIGIN=$1 DIR=$2 BRANCH=$3 PROMPT=$4 AGENT=$5 LOG=$6
exec 3>&1 >"$LOG" 2>&1
now() { date +%s%N; }
phase() { local name=$1 s e; shift; s=$(now); "$@"; e=$(now); echo "$name $(( (e - s) / 1000000 ))" >&3; }
clone() { rm -rf "$DIR" && git clone --quiet "$ORIGIN" "$DIR" && cd "$DIR" && git checkout --quiet -b "$BRANCH"; }
phase clone clone
phase install go build ./...
phase agent env AMEIDE_PROMPT_FILE="$PROMPT" node "$AGENT"
phase test go test ./...
phase commit bash -c 'git add -A && git commit --quiet -m "$1"' _ "$BRANCH: Add a multiply function"
phase push git push --quiet origin "$BRANCH"
echo "#cached $(grep -c '(cached)' "$LOG" || true)" >&3
`;

/** The same minimal environment the worker gives phase commands, plus a git identity for the commit. */
function handEnv(extra: Record<string, string> = {}): Record<string, string | undefined> {
  // (So e.g. NODE_EXTRA_CA_CERTS, which costs ~50–100 ms per node start, is absent in both.)
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    LANG: 'C.UTF-8',
    CI: 'true',
    GIT_AUTHOR_NAME: 'Bench',
    GIT_AUTHOR_EMAIL: 'bench@example.com',
    GIT_COMMITTER_NAME: 'Bench',
    GIT_COMMITTER_EMAIL: 'bench@example.com',
    ...extra,
  };
}

/** Runs a by-hand script and reads its "<phase> <ms>" lines (and "#cached <n>"). */
function runByHand(script: string, args: string[], env: Record<string, string | undefined>, log: string): Sample {
  const t0 = performance.now();
  // stdin must not be a socket: bash would then take itself for an ssh command and source ~/.bashrc.
  const r = spawnSync('bash', ['-c', script, 'by-hand', ...args], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const total = performance.now() - t0;
  const lines = r.stdout.trim().split('\n').filter(Boolean);
  const phases = Object.fromEntries(lines.filter((l) => !l.startsWith('#')).map((l) => [l.split(' ')[0], Number(l.split(' ')[1])]));
  const cachedLine = lines.find((l) => l.startsWith('#cached '));
  const ok = r.status === 0;
  return {
    phases,
    total,
    ok,
    cached: cachedLine ? Number(cachedLine.split(' ')[1]) > 0 : undefined,
    note: ok ? undefined : `exit ${r.status}: ${spawnSync('tail', ['-5', log], { encoding: 'utf8' }).stdout}`,
  };
}

function byHand(origin: string, i: number, previewPort: number): Sample {
  const tmp = mkdtempSync(join(tmpdir(), 'ameide-bench-'));
  try {
    const prompt = join(tmp, 'prompt.md');
    writeFileSync(prompt, `# ${TASK}\n`);
    const args = [origin, join(tmp, 'repo'), `bench/by-hand-${i}`, prompt, SCRIPTED_AGENT, join(tmp, 'log'), String(previewPort), SAMPLE_PREVIEW.command];
    return runByHand(BY_HAND, args, handEnv(), join(tmp, 'log'));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The Go sample by hand in `dir` (kept across iterations: the checkout's path and the caches). */
function byHandGo(origin: string, i: number, dir: string): Sample {
  const prompt = join(dir, 'prompt.md');
  writeFileSync(prompt, `# ${TASK}\n`);
  const env = handEnv({ GOCACHE: join(dir, 'gocache'), GOMODCACHE: join(dir, 'gomodcache'), GOTOOLCHAIN: 'local' });
  const args = [origin, join(dir, 'repo'), `bench/by-hand-go-${i}`, prompt, SCRIPTED_GO_AGENT, join(dir, 'log')];
  return runByHand(BY_HAND_GO, args, env, join(dir, 'log'));
}

const ms = (ts?: { seconds: bigint; nanos: number }) => (ts ? Number(ts.seconds) * 1000 + ts.nanos / 1e6 : NaN);
/** The phase's own duration; the report phase has none, so its start→end span stands in. */
const phaseMs = (p: PhaseResult) => (p.durationMs > 0n ? Number(p.durationMs) : ms(p.endTime) - ms(p.startTime));

/** The run's own timing split (see {@link Sample}). Phase times are the workflow's, durations the activities'. */
function splitOf(phases: PhaseResult[], startedAt: number, lastAt: number): Sample['split'] {
  const timed = phases.filter((p) => p.startTime && p.endTime).sort((a, b) => ms(a.startTime) - ms(b.startTime));
  const prepare = timed.find((p) => p.phase === Phase.PREPARE);
  const report = timed.find((p) => p.phase === Phase.REPORT);
  if (!prepare || !report) return undefined;
  const span = (p: PhaseResult) => ms(p.endTime) - ms(p.startTime);
  const boundaries = sum(timed.slice(1).map((p, k) => ms(p.startTime) - ms(timed[k]!.endTime)));
  const inPhases = sum(timed.filter((p) => p.durationMs > 0n).map((p) => span(p) - Number(p.durationMs)));
  return { toFirstActivity: ms(prepare.startTime) - startedAt, boundaries, inPhases, report: span(report), end: lastAt - ms(report.endTime) };
}

async function system(api: WorkflowServiceClient, i: number, definition = 'sample-calculator', idPrefix = 'BENCH'): Promise<Sample> {
  const t0 = performance.now();
  const startedAt = Date.now();
  const started = await api.startWorkflowRun({
    definition,
    workItems: [
      {
        id: `${idPrefix}-${i}`,
        title: TASK,
        description: 'The calculator also needs to multiply.',
        acceptanceCriteria: ['multiply(6, 7) returns 42'],
        contextLinks: [],
      },
    ],
  });
  const id = started.run!.id;
  let last = t0;
  let lastAt = startedAt;
  let first: number | undefined;
  for await (const res of api.watchWorkflowRun({ id, fromSequence: 0n }, { signal: AbortSignal.timeout(RUN_TIMEOUT_MS) })) {
    if (!res.update) continue;
    last = performance.now();
    lastAt = Date.now();
    first ??= last - t0;
  }
  const run = (await api.getWorkflowRun({ id })).run!;
  const phases = Object.fromEntries(run.phases.map((p) => [Phase[p.phase], phaseMs(p)]));
  const ok = run.status === RunStatus.COMPLETED;
  const test = run.phases.find((p) => p.phase === Phase.TEST);
  return {
    phases,
    total: last - t0,
    firstUpdate: first,
    ok,
    split: splitOf(run.phases, startedAt, lastAt),
    cached: test ? test.outputTail.includes('(cached)') : undefined,
    note: ok ? undefined : `${RunStatus[run.status]}: ${run.error}`,
  };
}

// ---- statistics and table ----
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
function cell(xs: number[]): string {
  if (!xs.length || xs.some(Number.isNaN)) return '—';
  return `${median(xs).toFixed(0)} (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})`;
}
const ratio = (s: number[], h: number[]) => (s.length && h.length && median(h) > 0 ? `${(median(s) / median(h)).toFixed(2)}×` : '—');

/** The table of one sample; `earlier`: the row of the phases runs had before previews and pull requests (the JS sample's). */
function printTable(hand: Sample[], sys: Sample[], table: readonly Row[] = ROWS, earlier = true): void {
  const handOf = (names: readonly string[]) => (names.length ? hand.map((s) => sum(names.map((n) => s.phases[n] ?? NaN))) : []);
  const sysOf = (p: Phase) => sys.map((s) => s.phases[Phase[p]] ?? NaN);
  const rows: string[][] = table.map((r) => [r.name, cell(handOf(r.hand)), cell(sysOf(r.system)), ratio(sysOf(r.system), handOf(r.hand))]);
  const handSum = hand.map((s) => sum(Object.values(s.phases)));
  const sysSum = sys.map((s) => sum(Object.values(s.phases)));
  const handTotal = hand.map((s) => s.total);
  const sysTotal = sys.map((s) => s.total);
  if (earlier) {
    const handEarlier = hand.map((s) => sum(EARLIER_HAND.map((n) => s.phases[n] ?? NaN)));
    const sysEarlier = sys.map((s) => sum(EARLIER_SYSTEM.map((p) => s.phases[Phase[p]] ?? 0)));
    rows.push(['phases before preview/PR', cell(handEarlier), cell(sysEarlier), ratio(sysEarlier, handEarlier)]);
  }
  rows.push(['sum of phases', cell(handSum), cell(sysSum), ratio(sysSum, handSum)]);
  rows.push(['total wall-clock', cell(handTotal), cell(sysTotal), ratio(sysTotal, handTotal)]);
  rows.push(['  start → first update', '—', cell(sys.map((s) => s.firstUpdate ?? NaN)), '']);
  rows.push(['  total − sum of phases', cell(hand.map((s, i) => s.total - handSum[i]!)), cell(sys.map((s, i) => s.total - sysSum[i]!)), '']);
  const head = ['phase (ms)', `by hand, median (min–max), n=${hand.length}`, `system, median (min–max), n=${sys.length}`, 'system/by hand'];
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (r: string[]) => r.map((v, c) => (c === 0 ? v.padEnd(widths[c]!) : v.padStart(widths[c]!))).join('  ');
  console.log('\n' + line(head));
  console.log(widths.map((w) => '─'.repeat(w)).join('  '));
  rows.forEach((r) => console.log(line(r)));
  if (hand.length && sys.length) {
    console.log(`\nabsolute overhead (system total median − by-hand total median): ${(median(sysTotal) - median(handTotal)).toFixed(0)} ms`);
  }
}

/**
 * Where the overhead goes, medians from the runs' own timestamps: the CLI's start-up (a user pays it
 * once per command; the bench calls the API directly), the start call to the prepare phase's start,
 * the gaps between phases, the phases' spans beyond their own work, the report phase, its end to the
 * last update reaching the watcher, and the whole (system total − by-hand total). Then the whole in
 * two parts that add up to it: the phases' own times beyond by hand (the medians of the sums of
 * phases), and the rest, around them.
 */
function printSplit(label: string, hand: Sample[], sys: Sample[], cliMs: number | undefined): void {
  const splits = sys.flatMap((s) => (s.split ? [s.split] : []));
  if (!splits.length || !hand.length) return;
  const m = (f: (x: NonNullable<Sample['split']>) => number) => median(splits.map(f)).toFixed(0);
  const total = median(sys.map((s) => s.total)) - median(hand.map((s) => s.total));
  console.log(
    `overhead split, ${label} (medians, ms): CLI ${cliMs === undefined ? '—' : cliMs.toFixed(0)} (not in the total) · ` +
      `start → first activity ${m((x) => x.toFirstActivity)} · boundaries ${m((x) => x.boundaries)} · ` +
      `in phases beyond their work ${m((x) => x.inPhases)} · report ${m((x) => x.report)} · ` +
      `report's end → last update ${m((x) => x.end)} · total overhead ${total.toFixed(0)}`,
  );
  // The phases' own times (the activities' work) against by hand, and the rest: what lies around them.
  const phases = median(sys.map((s) => sum(Object.values(s.phases)))) - median(hand.map((s) => sum(Object.values(s.phases))));
  console.log(
    `  of the total overhead: the phases' own time beyond by hand ${phases.toFixed(0)} (the table's sum of phases: their commands in the sandbox, ` +
      `the git exchange, the preview, the pull request and the report) · around the phases ${(total - phases).toFixed(0)} (the rest: the start, scheduling, status updates, the run's end)`,
  );
}

/** The warm Go test: the system's test phase against the by-hand one (both with warm caches), and the goal. */
function printGoTest(hand: Sample[], sys: Sample[]): void {
  const h = hand.map((s) => s.phases.test ?? NaN);
  const s = sys.map((x) => x.phases[Phase[Phase.TEST]] ?? NaN);
  if (!h.length || !s.length) return;
  const r = median(s) / median(h);
  const cached = (xs: Sample[]) => `${xs.filter((x) => x.cached).length}/${xs.length}`;
  console.log(
    `warm Go test (unchanged package): system ${median(s).toFixed(0)} ms / by hand ${median(h).toFixed(0)} ms = ${r.toFixed(2)}× ` +
      `(goal ≤ ${GO_TEST_GOAL}×: ${r <= GO_TEST_GOAL ? 'met' : 'NOT met'}); "(cached)" in ${cached(sys)} system and ${cached(hand)} by-hand runs`,
  );
}

/** The `ameide` CLI's start-up: `ameide --version`, median of 10, the bundle (make install-cli) and the sources through tsx. */
function cliStartup(): { bundled: number; tsx: number } {
  const bundle = join(mkdtempSync(join(tmpdir(), 'ameide-bench-cli-')), 'ameide');
  spawnSync(process.execPath, ['packages/cli/build.mjs', bundle], { stdio: 'inherit' });
  const time = (cmd: string, args: string[]) =>
    median(
      Array.from({ length: 10 }, () => {
        const t = performance.now();
        spawnSync(cmd, args);
        return performance.now() - t;
      }),
    );
  const bundled = time(bundle, ['--version']);
  const tsx = time(process.execPath, ['--import', 'tsx', 'packages/cli/src/bin.ts', '--version']);
  rmSync(join(bundle, '..'), { recursive: true, force: true });
  return { bundled, tsx };
}

function show(label: string, kind: string, s: Sample): void {
  const parts = [
    s.firstUpdate !== undefined ? `first update ${s.firstUpdate.toFixed(0)}` : '',
    ...Object.entries(s.phases).map(([k, v]) => `${k.toLowerCase()} ${v.toFixed(0)}`),
    s.cached ? '(cached)' : '',
  ];
  const status = s.ok ? 'ok    ' : 'FAILED';
  console.log(
    `  ${label.padEnd(7)} ${kind.padEnd(7)} ${status} total ${s.total.toFixed(0).padStart(6)} ms  ${parts.filter(Boolean).join(', ')}${s.note ? `  ${s.note.trim()}` : ''}`,
  );
}

/**
 * WARMUP + N iterations of one sample, by hand and through the system alternately; the warm-up ones
 * are shown, not kept. With `systemFirst`, the first iteration goes through the system before
 * anything else (it meets the worker as the first user would).
 */
async function iterate(
  byHandRun: (k: number) => Promise<Sample> | Sample,
  systemRun: (k: number) => Promise<Sample>,
  systemFirst: boolean,
): Promise<{ hand: Sample[]; sys: Sample[]; failed: number; cold?: Sample }> {
  const hand: Sample[] = [];
  const sys: Sample[] = [];
  let failed = 0;
  let cold: Sample | undefined;
  for (let k = 0; k < WARMUP + N; k++) {
    const warm = k < WARMUP;
    const label = warm ? 'warm-up' : `#${k - WARMUP + 1}`;
    const viaSystem = () => systemRun(k).catch((err: Error): Sample => ({ phases: {}, total: NaN, ok: false, note: err.message }));
    const first = systemFirst && k === 0 ? await viaSystem() : undefined;
    const h = await byHandRun(k);
    const s = first ?? (await viaSystem());
    if (k === 0) cold = s;
    show(label, 'by hand', h);
    show(label, 'system', s);
    failed += Number(!h.ok) + Number(!s.ok);
    if (!warm) {
      hand.push(h);
      sys.push(s);
    }
  }
  return { hand: hand.filter((s) => s.ok), sys: sys.filter((s) => s.ok), failed, cold };
}

async function main(): Promise<number> {
  const base = loadStackConfig();
  const go = goToolchain(base.path);
  // The Go sample's definition mounts the toolchain read-only: the bench stack's policy allows it.
  const cfg = go ? { ...base, sandboxReadOnlyPaths: [...base.sandboxReadOnlyPaths, go.goroot] } : base;
  // The CLI first, on a quiet machine; its line comes last.
  const cli = cliStartup();
  console.log(`starting the stack… (N=${N}, warm-up ${WARMUP})`);
  const t0 = performance.now();
  const stack = await startStack(cfg, { name: 'bench', ephemeral: true });
  console.log(`stack up in ${((performance.now() - t0) / 1000).toFixed(1)} s (logs: ${stack.logs})`);
  try {
    const origin = createOrigin(SAMPLE_REPO, join(stackDir(cfg, 'bench'), 'origin.git'));
    const api = createWorkflowServiceClient({ baseUrl: stack.apiUrl, token: stack.devToken });
    // The sample with its preview (short-lived: every run's preview stops a minute later).
    const def = sampleDefinition(origin);
    await api.applyDefinition({ ...def, spec: { ...def.spec, preview: { ...SAMPLE_PREVIEW, ttlSeconds: 60 } } });
    const js = await iterate(
      async (k) => byHand(origin, k, await freePort()),
      (k) => system(api, k),
      true,
    );
    printTable(js.hand, js.sys);
    let failed = js.failed;
    if (failed) console.log(`\n${failed} run(s) did not complete; the table covers completed runs only`);
    // The first run after the stack came up against the warm ones: what the first user waits for a cold worker.
    const warmFirst = median(js.sys.filter((x) => x.firstUpdate !== undefined).map((x) => x.firstUpdate!));
    const cold = js.cold;
    if (cold?.firstUpdate !== undefined)
      console.log(
        `first run after the stack was up: first update after ${cold.firstUpdate.toFixed(0)} ms, total ${cold.total.toFixed(0)} ms; ` +
          `warm runs: first update after ${warmFirst.toFixed(0)} ms (cold-start penalty ${(cold.firstUpdate - warmFirst).toFixed(0)} ms)`,
      );
    printSplit('JS sample', js.hand, js.sys, cli.bundled);

    if (!go) {
      console.log('\nGo sample skipped: `go` is not on PATH (install Go to bench the Go sample)');
    } else {
      console.log(`\nGo sample (${go.version}): by hand with its own GOCACHE kept across iterations, the system with the tenant's`);
      const goOrigin = createOrigin(GO_SAMPLE_REPO, join(stackDir(cfg, 'bench'), 'go-origin.git'));
      await api.applyDefinition(goSampleDefinition(goOrigin, go.goroot));
      const handDir = mkdtempSync(join(tmpdir(), 'ameide-bench-go-'));
      try {
        const g = await iterate(
          (k) => byHandGo(goOrigin, k, handDir),
          (k) => system(api, k, 'go-calculator', 'BENCH-GO'),
          false,
        );
        printTable(g.hand, g.sys, GO_ROWS, false);
        if (g.failed) console.log(`\n${g.failed} Go run(s) did not complete; the table covers completed runs only`);
        failed += g.failed;
        printSplit('Go sample', g.hand, g.sys, cli.bundled);
        printGoTest(g.hand, g.sys);
      } finally {
        rmSync(handDir, { recursive: true, force: true });
      }
    }
    console.log(`\nameide --version, median of 10: bundled ${cli.bundled.toFixed(0)} ms, through tsx ${cli.tsx.toFixed(0)} ms`);
    return failed ? 1 : 0;
  } finally {
    await stack.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
