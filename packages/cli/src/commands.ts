import { randomUUID } from 'node:crypto';
import { relative, resolve } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { backlogV1, DefinitionSpecSchema, Phase, RunStatus, RunStatusSchema, WorkItemSchema, type Definition, type Plan, type Run } from '@ameide/contracts';
import { loadS3Settings } from '@ameide/config';
import { Code, ConnectError, type WorkflowServiceClient } from '@ameide/sdk';
import { commandLineError, RUN_STATUSES, UsageError, type OutputOptions } from './args.js';
import { parseWorkItemState, readProfileFile, readWorkItemFile } from './backlog-file.js';
import type { Ctx } from './context.js';
import { listPages } from './pages.js';
import { refused } from './errors.js';
import { explainDefinitionError, readDefinitionFile } from './definition-file.js';
import { runsDiff } from './diff.js';
import {
  formatPlan,
  formatPlanDiff,
  planDiffJson,
  formatProfile,
  formatReadinessRules,
  formatRun,
  formatStatusUpdate,
  definitionJson,
  formatWorkItem,
  phaseName,
  planJson,
  profileJson,
  runJson,
  statusUpdateJson,
  workItemJson,
  planWorkItem,
  statusName,
  triggerName,
  workItemStateName,
} from './format.js';
import { fetchArtifact, restoreHandoff } from './handoff.js';
import { LiveOutput, type WatchHooks } from './live.js';
import { runsLogs } from './logs.js';
import { runsOpen } from './open.js';
import { ago, duration, emit, formatOf, note, statusColour, table, when, type Output } from './output.js';
import { createS3Loader } from './s3.js';

export type { Output } from './output.js';

/** `-f, --file <path>` resolved against where the user typed the command. */
const fileIn = (ctx: Ctx, file: string) => resolve(ctx.cwd, file);

/** Every run status as `--status` takes it. */

/** A `--status` value (or several, comma-separated): any run status, `handed-off` or `handed_off`. */
export function parseStatuses(s: string): RunStatus[] {
  return s.split(',').map((one) => {
    const v = RunStatusSchema.values.find((x) => x.name === `RUN_STATUS_${one.trim().toUpperCase().replace(/-/g, '_')}`);
    if (!v || v.number === 0) throw commandLineError(`--status ${one}: use ${RUN_STATUSES.join(', ')}`);
    return v.number;
  });
}

/** How long `watch` keeps reconnecting while the service is unreachable. */
const RECONNECT_FOR_MS = 10 * 60_000;

/** Whether a call failed because the service was unreachable or went away mid-stream. */
function transient(err: unknown): boolean {
  const e = ConnectError.from(err);
  // The client's own write to a connection the service closed (it died mid-call) is no answer of the service.
  if (e.code === Code.Internal && /^write (EPIPE|ECONNRESET)$/.test(e.rawMessage)) return true;
  return e.code === Code.Unavailable || e.code === Code.Unknown || e.code === Code.Aborted;
}

/** How long `runs start` keeps sending its request while the service is unreachable. */
const START_RETRY_FOR_MS = 60_000;

/** Calls `call` again, with backoff, while it fails because the service is unreachable (for a minute at most). */
async function retryTransient<T>(call: () => Promise<T>): Promise<T> {
  const since = Date.now();
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      // A refused connection on the first try: no API there; say so at once rather than retrying for a minute.
      if (!transient(err) || Date.now() - since > START_RETRY_FOR_MS || (attempt === 0 && refused(err))) throw err;
      await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** attempt)));
    }
  }
}

/**
 * Follows a run to its end, printing each update once. When the service restarts or is briefly
 * unreachable, it reconnects (with backoff, for up to ten minutes) and resumes after the last update
 * it printed. Exits 0 only if the run completed.
 */
export async function watchRun(
  api: WorkflowServiceClient,
  id: string,
  from: bigint,
  json: boolean,
  o: Output,
  signal?: AbortSignal,
  hooks?: WatchHooks,
): Promise<number> {
  let next = from;
  let failingSince: number | undefined;
  for (;;) {
    try {
      for await (const res of api.watchWorkflowRun({ id, fromSequence: next }, { signal })) {
        failingSince = undefined;
        if (!res.update) continue;
        hooks?.before();
        o.out(json ? JSON.stringify(statusUpdateJson(res.update)) : formatStatusUpdate(res.update));
        next = res.update.sequence + 1n;
        hooks?.after(res.update);
      }
      hooks?.stop();
      const run = (await api.getWorkflowRun({ id }, { signal })).run!;
      return run.status === RunStatus.COMPLETED ? 0 : 1;
    } catch (err) {
      hooks?.stop();
      // A refused connection before anything arrived: no API there; say so rather than retrying for minutes.
      if (!transient(err) || signal?.aborted || (next === from && failingSince === undefined && refused(err))) throw err;
      const since = (failingSince ??= Date.now());
      if (Date.now() - since > RECONNECT_FOR_MS) throw err;
      await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** Math.floor((Date.now() - since) / 2000))));
    }
  }
}

/**
 * `watchRun` for the commands: on a terminal (text output) it also shows the running command's latest
 * output lines; on Ctrl-C it says the run goes on and how to follow it again (exit 130).
 */
/** How long `runs start --watch` waits for the run's Definition of Done before printing its summary without it. */
const DONE_WAIT_MS = 15_000;

async function follow(ctx: Ctx, id: string, from: bigint, json: boolean, summary = false): Promise<number> {
  const api = ctx.workflows();
  try {
    const code = await watchRun(api, id, from, json, ctx.o, ctx.signal, ctx.term.interactive && !json ? new LiveOutput(api, id, ctx.o, ctx.term) : undefined);
    if (summary && !json) {
      // The same summary as `make demo`: phases, branch, tests, evidence and the Definition of Done (evaluated just after the run ends).
      let run = (await api.getWorkflowRun({ id }, { signal: ctx.signal })).run!;
      for (const until = Date.now() + DONE_WAIT_MS; !run.done && Date.now() < until;) {
        await new Promise((r) => setTimeout(r, 250));
        run = (await api.getWorkflowRun({ id }, { signal: ctx.signal })).run!;
      }
      ctx.o.out('\n' + formatRun(run));
    }
    return code;
  } catch (err) {
    if (!ctx.signal?.aborted) throw err;
    note(ctx.o, `\nstopped watching; run ${id} continues: follow it with \`ameide runs watch ${id}\` (stop it with \`ameide runs cancel ${id}\`)`);
    return 130;
  }
}

/** The titles of the runs' work items, from their plans (one call per distinct plan; a plan that cannot be read gives "-"). */
async function runTitles(api: WorkflowServiceClient, runs: Run[]): Promise<Map<string, string>> {
  const ids = [...new Set(runs.map((r) => r.planId).filter(Boolean))];
  const titles = new Map<string, string>();
  for (let i = 0; i < ids.length; i += 8)
    await Promise.all(
      ids.slice(i, i + 8).map(async (id) => {
        const plan = await api.getPlan({ id }).then(
          (r) => r.plan,
          () => undefined,
        );
        const items = plan?.spec?.workItems ?? [];
        titles.set(id, items.length ? `${items[0]!.title}${items.length > 1 ? ` (+${items.length - 1})` : ''}` : '-');
      }),
    );
  return titles;
}

/** How long a run took, or has been running: end (or now) minus start; "-" before it started. */
function runDuration(r: Run, now: Date): string {
  if (!r.startTime) return '-';
  const end = r.endTime ? timestampDate(r.endTime) : now;
  return duration(end.getTime() - timestampDate(r.startTime).getTime());
}

export interface StartOptions extends OutputOptions {
  definition: string;
  workItem?: string;
  title?: string;
  description?: string;
  criterion?: string[];
  link?: string[];
  requestId?: string;
  watch?: boolean;
}

/** The phase a run is in, as text ("-" when none). */
const phaseText = (r: Run) => (r.phase ? phaseName(r.phase) : '-');

export async function definitionsApply(ctx: Ctx, opts: { file: string } & OutputOptions): Promise<number> {
  const format = formatOf(opts);
  const def = readDefinitionFile(fileIn(ctx, opts.file));
  const { guardrails, secrets, ...rest } = def.spec;
  const spec = create(DefinitionSpecSchema, {
    ...rest,
    guardrails: guardrails && {
      ...guardrails,
      network: guardrails.network && {
        ...guardrails.network,
        agent: guardrails.network.agent === 'model' ? undefined : guardrails.network.agent,
        agentMode: guardrails.network.agent === 'model' ? 'model' : '',
      },
      budgets: guardrails.budgets && {
        ...guardrails.budgets,
        maxOutputBytes: BigInt(guardrails.budgets.maxOutputBytes ?? 0),
        maxFileBytes: BigInt(guardrails.budgets.maxFileBytes ?? 0),
      },
    },
    secrets: secrets.map((s) => ({ ...s, phases: s.phases.map((p) => Phase[p.toUpperCase() as 'INSTALL' | 'AGENT' | 'TEST' | 'PREVIEW']) })),
  });
  let res;
  try {
    res = await ctx.workflows().applyDefinition({ name: def.name, annotations: def.annotations, spec });
  } catch (err) {
    // The service's answer about a field, said with the file and the key as the user wrote it.
    if (err instanceof ConnectError && err.code === Code.InvalidArgument)
      throw Object.assign(new Error(explainDefinitionError(opts.file, err)), { expected: true });
    throw err;
  }
  const d = res.definition!;
  emit(ctx.o, format, definitionJson(d), () => `definition ${d.name} ${res.changed ? 'applied' : 'unchanged'} (version ${d.version}, id ${d.id})`);
  return 0;
}

export async function definitionsList(ctx: Ctx, opts: { limit?: number; deleted?: boolean } & OutputOptions): Promise<number> {
  const format = formatOf(opts);
  const api = ctx.workflows();
  const res = {
    definitions: await listPages(opts.limit, async (pageSize, pageToken) => {
      const r = await api.listDefinitions({ pageSize, pageToken, showDeleted: opts.deleted ?? false });
      return { items: r.definitions, nextPageToken: r.nextPageToken };
    }),
  };
  const updated = (d: Definition) => (d.deleteTime ? `deleted ${ago(d.deleteTime)}` : ago(d.updateTime ?? d.createTime));
  emit(
    ctx.o,
    format,
    res.definitions.map(definitionJson),
    () =>
      table(
        ctx.term,
        [{ header: 'name' }, { header: 'version', right: true }, { header: 'repository', shrink: true }, { header: 'updated' }],
        res.definitions.map((d) => [d.name, `v${d.version}`, d.spec?.repoUrl ?? '', updated(d)]),
        'no definitions',
      ),
    () =>
      table(
        ctx.term,
        [{ header: 'name' }, { header: 'version', right: true }, { header: 'id' }, { header: 'repository' }, { header: 'branch' }, { header: 'updated' }],
        res.definitions.map((d) => [d.name, `v${d.version}`, d.id, d.spec?.repoUrl ?? '', d.spec?.defaultBranch ?? '', updated(d)]),
        'no definitions',
      ),
  );
  return 0;
}

export async function definitionsGet(ctx: Ctx, name: string, opts: OutputOptions): Promise<number> {
  const d = (await ctx.workflows().getDefinition({ idOrName: name })).definition!;
  emit(ctx.o, formatOf(opts), definitionJson(d), () => JSON.stringify(definitionJson(d), null, 2));
  return 0;
}

export async function definitionsDelete(ctx: Ctx, name: string, opts: OutputOptions): Promise<number> {
  const d = (await ctx.workflows().deleteDefinition({ idOrName: name })).definition!;
  emit(ctx.o, formatOf(opts), definitionJson(d), () =>
    [
      `deleted definition ${d.name} v${d.version} (${d.id})`,
      `plans and runs made from it are kept; \`ameide definitions apply -f <file>\` makes a new one named ${d.name}`,
    ].join('\n'),
  );
  return 0;
}

export async function runsStart(ctx: Ctx, opts: StartOptions): Promise<number> {
  const format = formatOf(opts);
  const workItems = opts.workItem
    ? [
        create(WorkItemSchema, {
          id: opts.workItem,
          title: opts.title ?? '',
          description: opts.description ?? '',
          acceptanceCriteria: opts.criterion ?? [],
          contextLinks: opts.link ?? [],
        }),
      ]
    : [];
  // One key per invocation: a start whose answer is lost (the service restarting) is sent again,
  // and the service returns the run the first attempt made instead of starting another.
  const requestId = opts.requestId ?? randomUUID();
  const api = ctx.workflows();
  const run = (await retryTransient(() => api.startWorkflowRun({ definition: opts.definition, workItems, requestId }))).run!;
  const line = `run ${run.id} started (workflow ${run.workflowId})`;
  if (opts.watch) {
    if (format === 'text') ctx.o.out(line);
    return follow(ctx, run.id, 0n, format === 'json', format === 'text');
  }
  emit(ctx.o, format, runJson(run), () => line);
  return 0;
}

export async function runsRerun(ctx: Ctx, id: string, opts: OutputOptions & { requestId?: string; watch?: boolean }): Promise<number> {
  const format = formatOf(opts);
  const api = ctx.workflows();
  const previous = (await api.getWorkflowRun({ id })).run!;
  const requestId = opts.requestId ?? randomUUID();
  const run = (await retryTransient(() => api.startWorkflowRun({ planId: previous.planId, requestId }))).run!;
  const line = `run ${run.id} started again from plan ${run.planId} v${run.planVersion} (workflow ${run.workflowId})`;
  if (opts.watch) {
    if (format === 'text') ctx.o.out(line);
    return follow(ctx, run.id, 0n, format === 'json', format === 'text');
  }
  emit(ctx.o, format, runJson(run), () => line);
  return 0;
}

export async function runsList(
  ctx: Ctx,
  opts: OutputOptions & { status?: string[]; failed?: boolean; workItem?: string; definition?: string; limit?: number; pageToken?: string },
): Promise<number> {
  const format = formatOf(opts);
  const statuses = new Set((opts.status ?? []).flatMap(parseStatuses));
  if (opts.failed) for (const s of [RunStatus.FAILED, RunStatus.HANDED_OFF]) statuses.add(s);
  else if (statuses.has(RunStatus.FAILED) && !statuses.has(RunStatus.HANDED_OFF))
    note(ctx.o, 'hint: handed-off runs failed too (their handoff bundle holds the work): --failed selects failed and handed_off');
  const api = ctx.workflows();
  const res = await api.listWorkflowRuns({
    statuses: [...statuses],
    workItemId: opts.workItem ?? '',
    definition: opts.definition ?? '',
    pageSize: opts.limit ?? 0,
    pageToken: opts.pageToken ?? '',
  });
  // On stderr, so that what stdout carries (a JSON array too) stays as it is.
  if (res.nextPageToken) note(ctx.o, `more runs: the next page is --page-token ${res.nextPageToken}`);
  if (format === 'json' || format === 'yaml') {
    emit(ctx.o, format, res.runs.map(runJson), () => '');
    return 0;
  }
  const titles = await runTitles(api, res.runs);
  const now = new Date();
  const status = { header: 'status', colour: statusColour };
  const items = (r: Run) => r.methodology?.workItemIds.join(',') || '-';
  const started = (r: Run) => ago(r.startTime ?? r.createTime, now);
  if (format === 'wide')
    ctx.o.out(
      table(
        ctx.term,
        [
          { header: 'id' },
          status,
          { header: 'phase' },
          { header: 'definition' },
          { header: 'plan' },
          { header: 'work item' },
          { header: 'branch' },
          { header: 'title' },
          { header: 'started' },
          { header: 'duration', right: true },
        ],
        res.runs.map((r) => [
          r.id,
          statusName(r.status),
          r.endTime ? '-' : phaseText(r),
          r.definitionName,
          `${r.planId.slice(0, 8)} v${r.planVersion}`,
          items(r),
          r.branch || '-',
          titles.get(r.planId) ?? '-',
          started(r),
          runDuration(r, now),
        ]),
        'no runs',
      ),
    );
  else
    ctx.o.out(
      table(
        ctx.term,
        [
          { header: 'id' },
          status,
          { header: 'definition' },
          { header: 'work item' },
          { header: 'title', shrink: true },
          { header: 'started' },
          { header: 'duration', right: true },
        ],
        res.runs.map((r) => [r.id.slice(0, 8), statusName(r.status), r.definitionName, items(r), titles.get(r.planId) ?? '-', started(r), runDuration(r, now)]),
        'no runs',
      ),
    );
  return 0;
}

export async function runsGet(ctx: Ctx, id: string, opts: OutputOptions): Promise<number> {
  const run = (await ctx.workflows().getWorkflowRun({ id })).run!;
  emit(ctx.o, formatOf(opts), runJson(run), () => formatRun(run));
  return 0;
}

export async function runsWatch(ctx: Ctx, id: string, opts: OutputOptions & { from?: string }): Promise<number> {
  return follow(ctx, id, BigInt(opts.from ?? '0'), formatOf(opts) === 'json');
}

export async function runsLogsCommand(ctx: Ctx, id: string, opts: { phase?: string; follow?: boolean }): Promise<number> {
  try {
    return await runsLogs(ctx.workflows(), id, { phase: opts.phase, follow: opts.follow === true }, ctx.o, ctx.signal);
  } catch (err) {
    if (!ctx.signal?.aborted) throw err;
    note(ctx.o, `\nstopped following; run ${id} continues: \`ameide runs watch ${id}\` follows its status`);
    return 130;
  }
}

export function runsOpenCommand(ctx: Ctx, id: string): Promise<number> {
  return runsOpen(ctx.workflows(), id, ctx.o);
}

export async function runsCancel(ctx: Ctx, id: string, opts: OutputOptions & { reason?: string }): Promise<number> {
  const res = await ctx.workflows().cancelWorkflowRun({ id, reason: opts.reason ?? '' });
  emit(ctx.o, formatOf(opts), runJson(res.run!), () => `cancellation requested for run ${res.run!.id}`);
  return 0;
}

export async function runsHandoff(ctx: Ctx, id: string, opts: OutputOptions & { dir?: string }): Promise<number> {
  const format = formatOf(opts);
  const api = ctx.workflows();
  const run = (await api.getWorkflowRun({ id })).run!;
  const s = run.summary;
  if (!s?.handoffUri || !s.handoffSha256) throw new UsageError(`run ${id} has no handoff bundle`);
  const plan = (await api.getPlan({ id: run.planId })).plan;
  const repoUrl = plan?.spec?.repo?.repoUrl;
  if (!repoUrl) throw new UsageError(`plan ${run.planId} of run ${id} names no repository`);
  const dir = opts.dir ?? `./handoff-${run.id.slice(0, 8)}`;
  const target = resolve(ctx.cwd, dir);
  const bundle = await fetchArtifact(s.handoffUri, { s3: createS3Loader(loadS3Settings()) });
  const r = await restoreHandoff({ bundle, expectedSha256: s.handoffSha256, repoUrl, dir: target });
  const followup = `${dir.replace(/\/+$/, '')}/${relative(target, r.followup)}`;
  emit(
    ctx.o,
    format,
    { runId: run.id, dir: target, branch: r.branch, head: r.head, followup: r.followup },
    () => `branch ${r.branch} restored in ${dir} at ${r.head.slice(0, 12)}; read ${followup}`,
  );
  return 0;
}

export async function runsDiffCommand(ctx: Ctx, id: string, opts: OutputOptions & { stat?: boolean }): Promise<number> {
  return runsDiff(ctx.workflows(), id, { stat: opts.stat === true, format: formatOf(opts) }, ctx.o, { color: ctx.term.color, columns: ctx.term.columns });
}

export async function plansList(ctx: Ctx, opts: OutputOptions & { workItem?: string; definition?: string; limit?: number }): Promise<number> {
  const api = ctx.workflows();
  const res = {
    plans: await listPages(opts.limit, async (pageSize, pageToken) => {
      const r = await api.listPlans({ workItemId: opts.workItem ?? '', definition: opts.definition ?? '', pageSize, pageToken });
      return { items: r.plans, nextPageToken: r.nextPageToken };
    }),
  };
  const row = (p: Plan, wide: boolean) => [
    p.id,
    `v${p.version}`,
    p.spec?.definitionName ?? '',
    planWorkItem(p),
    triggerName(p.spec?.trigger ?? 0),
    wide ? (p.createTime ? when(p.createTime) : '-') : ago(p.createTime),
  ];
  const cols = [
    { header: 'id' },
    { header: 'version' },
    { header: 'definition' },
    { header: 'work item', shrink: true },
    { header: 'trigger' },
    { header: 'created' },
  ];
  emit(
    ctx.o,
    formatOf(opts),
    res.plans.map(planJson),
    () =>
      table(
        ctx.term,
        cols,
        res.plans.map((p) => row(p, false)),
        'no plans',
      ),
    () =>
      table(
        ctx.term,
        cols,
        res.plans.map((p) => row(p, true)),
        'no plans',
      ),
  );
  return 0;
}

export async function plansGet(ctx: Ctx, id: string, opts: OutputOptions): Promise<number> {
  const p = (await ctx.workflows().getPlan({ id })).plan!;
  emit(ctx.o, formatOf(opts), planJson(p), () => formatPlan(p));
  return 0;
}

export async function plansDiff(ctx: Ctx, planId: string, opts: OutputOptions & { from?: number; to?: number; other?: string }): Promise<number> {
  if (opts.other && (opts.from !== undefined || opts.to !== undefined)) throw commandLineError('use --from/--to or --other, not both');
  const res = await ctx.workflows().diffPlans({ planId, otherPlanId: opts.other ?? '', fromVersion: opts.from, toVersion: opts.to });
  emit(ctx.o, formatOf(opts), planDiffJson(res), () => formatPlanDiff(res));
  return 0;
}

export async function plansDecide(ctx: Ctx, decision: 'approve' | 'reject', id: string, opts: OutputOptions & { reason?: string }): Promise<number> {
  const api = ctx.workflows();
  const reason = opts.reason ?? '';
  if (decision === 'approve') {
    const res = await api.approvePlan({ id, reason });
    emit(ctx.o, formatOf(opts), { plan: planJson(res.plan!), run: runJson(res.run!) }, () => `plan ${id} approved; run ${res.run!.id} started`);
  } else {
    const res = await api.rejectPlan({ id, reason });
    emit(ctx.o, formatOf(opts), planJson(res.plan!), () => `plan ${id} rejected: it will not run`);
  }
  return 0;
}

export async function workitemsApply(ctx: Ctx, opts: OutputOptions & { file: string }): Promise<number> {
  const res = await ctx.backlog().upsertWorkItem(readWorkItemFile(fileIn(ctx, opts.file)));
  const w = res.workItem!;
  const r = w.readiness;
  const failing = (r?.rules ?? []).filter((x) => !x.passed).map((x) => x.rule);
  emit(ctx.o, formatOf(opts), { applied: res.applied, workItem: workItemJson(w) }, () =>
    [
      `work item ${w.id} revision ${w.revision} ${res.applied ? 'applied' : 'unchanged (the stored revision is not older)'}; ready: ${r?.met ? 'yes' : `no (${failing.join(', ') || 'not evaluated'})`}${w.runId ? `; run ${w.runId}` : ''}`,
      ...formatReadinessRules(r),
    ].join('\n'),
  );
  return 0;
}

export async function workitemsList(
  ctx: Ctx,
  opts: OutputOptions & { state?: string; timebox?: string; goal?: string; profile?: string; ready?: boolean; notReady?: boolean; limit?: number },
): Promise<number> {
  if (opts.ready && opts.notReady) throw commandLineError('use --ready or --not-ready, not both');
  const api = ctx.backlog();
  const res = {
    workItems: await listPages(opts.limit, async (pageSize, pageToken) => {
      const r = await api.listWorkItems({
        state: opts.state ? parseWorkItemState(opts.state) : backlogV1.WorkItemState.UNSPECIFIED,
        timeboxId: opts.timebox ?? '',
        goalId: opts.goal ?? '',
        profile: opts.profile ?? '',
        ready: opts.ready ? true : opts.notReady ? false : undefined,
        pageSize,
        pageToken,
      });
      return { items: r.workItems, nextPageToken: r.nextPageToken };
    }),
  };
  emit(ctx.o, formatOf(opts), res.workItems.map(workItemJson), () =>
    table(
      ctx.term,
      [
        { header: 'id' },
        { header: 'rev' },
        { header: 'state' },
        { header: 'profile' },
        { header: 'ready', colour: (c) => (c === 'yes' ? 'green' : 'yellow') },
        { header: 'run' },
        { header: 'title', shrink: true },
      ],
      res.workItems.map((w) => [
        w.id,
        `r${w.revision}`,
        w.spec ? workItemStateName(w.spec.state) : '-',
        w.spec?.profile || '-',
        w.readiness?.met ? 'yes' : 'no',
        w.runId ? w.runId.slice(0, 8) : '-',
        w.spec?.title || '-',
      ]),
      'no work items',
    ),
  );
  return 0;
}

export async function workitemsGet(ctx: Ctx, id: string, opts: OutputOptions): Promise<number> {
  const w = (await ctx.backlog().getWorkItem({ id })).workItem!;
  emit(ctx.o, formatOf(opts), workItemJson(w), () => formatWorkItem(w));
  return 0;
}

export async function profilesApply(ctx: Ctx, opts: OutputOptions & { file: string }): Promise<number> {
  const p = (await ctx.backlog().applyProfile(readProfileFile(fileIn(ctx, opts.file)))).profile!;
  emit(ctx.o, formatOf(opts), profileJson(p), () => `profile ${p.name} applied (version ${p.version})`);
  return 0;
}

export async function profilesList(ctx: Ctx, opts: OutputOptions): Promise<number> {
  const api = ctx.backlog();
  const res = {
    profiles: await listPages(
      undefined,
      async (pageSize, pageToken) => {
        const r = await api.listProfiles({ pageSize, pageToken });
        return { items: r.profiles, nextPageToken: r.nextPageToken };
      },
      true,
    ),
  };
  emit(ctx.o, formatOf(opts), res.profiles.map(profileJson), () =>
    table(
      ctx.term,
      [{ header: 'name' }, { header: 'version' }, { header: 'description', shrink: true }],
      res.profiles.map((p) => [p.name, p.builtIn ? 'built-in' : `v${p.version}`, p.spec?.description ?? '']),
      'no profiles',
    ),
  );
  return 0;
}

export async function profilesGet(ctx: Ctx, name: string, opts: OutputOptions): Promise<number> {
  const p = (await ctx.backlog().getProfile({ name })).profile!;
  emit(ctx.o, formatOf(opts), profileJson(p), () => formatProfile(p));
  return 0;
}
