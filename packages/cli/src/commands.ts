import { randomUUID } from 'node:crypto';
import { relative, resolve } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { Option, type Command } from 'commander';
import {
  backlogV1,
  DefinitionSchema,
  DefinitionSpecSchema,
  DiffPlansResponseSchema,
  Phase,
  PlanSchema,
  RunSchema,
  RunStatus,
  RunStatusSchema,
  StatusUpdateSchema,
  WorkItemSchema,
  type Definition,
  type Plan,
  type Run,
} from '@ameide/contracts';
import { loadS3Settings } from '@ameide/config';
import { Code, ConnectError, type WorkflowServiceClient } from '@ameide/sdk';
import { commandLineError, examples, repeatable, UsageError, wholeNumber } from './args.js';
import { parseWorkItemState, readProfileFile, readWorkItemFile } from './backlog-file.js';
import type { Ctx } from './context.js';
import { readDefinitionFile } from './definition-file.js';
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
import { ago, duration, emit, formatOf, note, statusColour, table, when, type Format, type Output } from './output.js';
import { createS3Loader } from './s3.js';

export type { Output } from './output.js';

/** Options every read command takes. */
export interface OutputOptions {
  output?: string;
  json?: boolean;
}

/** `-o json|yaml|wide` and `--json` (same as -o json). */
export function withOutput(cmd: Command, formats: Format[] = ['json', 'yaml', 'wide']): Command {
  return cmd
    .addOption(new Option('-o, --output <format>', 'output format instead of text (JSON and YAML name enum values as the text does)').choices(formats))
    .option('--json', 'same as -o json');
}

/** `--limit n`: at most n items (the request's page size). */
export function withLimit(cmd: Command): Command {
  return cmd.option('--limit <n>', 'list at most n items', wholeNumber('--limit', 1, 1000));
}

/** The command's action: sets the exit code the handler returns. */
export function act<A extends unknown[]>(ctx: Ctx, handler: (...args: A) => Promise<number> | number): (...args: A) => Promise<void> {
  return async (...args: A) => {
    ctx.exitCode = await handler(...args);
  };
}

/** A command group (`runs`, `plans`, …): its help lists its subcommands; without one it prints that help and exits 2. */
export function group(parent: Command, name: string, description: string): Command {
  return parent.command(name).description(description);
}

/** `-f, --file <path>` resolved against where the user typed the command. */
const fileIn = (ctx: Ctx, file: string) => resolve(ctx.cwd, file);

export function registerDefinitions(program: Command, ctx: Ctx): void {
  const defs = group(program, 'definitions', 'repositories and how to install, change and test them');
  examples(defs, 'ameide definitions apply -f my-repo.yaml', 'ameide definitions list');

  examples(
    defs
      .command('apply')
      .description('create or update a definition from its file (docs/definitions.md); unchanged when it is the same')
      .requiredOption('-f, --file <path>', 'the definition file (YAML or JSON)'),
    'ameide definitions apply -f my-repo.yaml',
  )
    .addOption(new Option('-o, --output <format>', 'print json or yaml instead of text').choices(['json', 'yaml']))
    .option('--json', 'same as -o json')
    .action(
      act(ctx, async (opts: { file: string } & OutputOptions) => {
        const format = formatOf(opts);
        const def = readDefinitionFile(fileIn(ctx, opts.file));
        const { guardrails, secrets, ...rest } = def.spec;
        const spec = create(DefinitionSpecSchema, {
          ...rest,
          guardrails: guardrails && {
            ...guardrails,
            budgets: guardrails.budgets && {
              ...guardrails.budgets,
              maxOutputBytes: BigInt(guardrails.budgets.maxOutputBytes ?? 0),
              maxFileBytes: BigInt(guardrails.budgets.maxFileBytes ?? 0),
            },
          },
          secrets: secrets.map((s) => ({ ...s, phases: s.phases.map((p) => Phase[p.toUpperCase() as 'INSTALL' | 'AGENT' | 'TEST' | 'PREVIEW']) })),
        });
        const res = await ctx.workflows().applyDefinition({ name: def.name, annotations: def.annotations, spec });
        const d = res.definition!;
        emit(ctx.o, format, definitionJson(d), () => `definition ${d.name} ${res.changed ? 'applied' : 'unchanged'} (version ${d.version}, id ${d.id})`);
        return 0;
      }),
    );

  examples(
    withLimit(withOutput(defs.command('list').description('list definitions: name, version, repository, last change'))),
    'ameide definitions list -o yaml',
  ).action(
    act(ctx, async (opts: { limit?: number } & OutputOptions) => {
      const format = formatOf(opts);
      const res = await ctx.workflows().listDefinitions({ pageSize: opts.limit ?? 0 });
      emit(
        ctx.o,
        format,
        res.definitions.map(definitionJson),
        () =>
          table(
            ctx.term,
            [{ header: 'name' }, { header: 'version', right: true }, { header: 'repository', shrink: true }, { header: 'updated' }],
            res.definitions.map((d) => [d.name, `v${d.version}`, d.spec?.repoUrl ?? '', ago(d.updateTime ?? d.createTime)]),
            'no definitions',
          ),
        () =>
          table(
            ctx.term,
            [{ header: 'name' }, { header: 'version', right: true }, { header: 'id' }, { header: 'repository' }, { header: 'branch' }, { header: 'updated' }],
            res.definitions.map((d) => [d.name, `v${d.version}`, d.id, d.spec?.repoUrl ?? '', d.spec?.defaultBranch ?? '', ago(d.updateTime ?? d.createTime)]),
            'no definitions',
          ),
      );
      return 0;
    }),
  );

  examples(
    withOutput(defs.command('get').description('show a definition (its stored spec)').argument('<name>', 'definition name or id'), ['json', 'yaml']),
    'ameide definitions get my-repo -o yaml',
  ).action(
    act(ctx, async (name: string, opts: OutputOptions) => {
      const d = (await ctx.workflows().getDefinition({ idOrName: name })).definition!;
      emit(ctx.o, formatOf(opts), definitionJson(d), () => JSON.stringify(definitionJson(d), null, 2));
      return 0;
    }),
  );
}

/** Every run status as `--status` takes it. */
export const RUN_STATUSES = RunStatusSchema.values.filter((v) => v.number !== 0).map((v) => statusName(v.number));

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

/** Whether nothing listens at the API's address (connection refused). */
export function refused(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause)
    if (/ECONNREFUSED/.test(e.message) || (e as { code?: string }).code === 'ECONNREFUSED') return true;
  return false;
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
async function follow(ctx: Ctx, id: string, from: bigint, json: boolean): Promise<number> {
  const api = ctx.workflows();
  try {
    return await watchRun(api, id, from, json, ctx.o, ctx.signal, ctx.term.interactive && !json ? new LiveOutput(api, id, ctx.o, ctx.term) : undefined);
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

interface StartOptions extends OutputOptions {
  definition: string;
  workItem?: string;
  title?: string;
  description?: string;
  criterion?: string[];
  link?: string[];
  requestId?: string;
  watch?: boolean;
}

export function registerRuns(program: Command, ctx: Ctx): Command {
  const runs = group(program, 'runs', 'start, follow and inspect runs of a definition');
  examples(
    runs,
    'ameide runs start --definition my-repo --work-item PROJ-12 --title "Add a multiply function" --watch',
    'ameide runs list --failed',
    'ameide runs watch 3f2a9c1e',
  );

  examples(
    withOutput(
      runs
        .command('start')
        .description('start a run of a definition, for a work item given on the command line (or none)')
        .requiredOption('--definition <name>', 'definition name or id')
        .option('--work-item <id>', 'the work item this run carries out')
        .option('--title <title>', "the work item's title")
        .option('--description <text>', "the work item's description")
        .addOption(repeatable('--criterion <text>', 'an acceptance criterion (repeatable)'))
        .addOption(repeatable('--link <url>', 'a context link (repeatable)'))
        .option('--request-id <key>', 'idempotency key: a start sent again with it returns the first run (default: a new one)')
        .option('--watch', 'follow the run to its end; exit 0 only if it completed'),
      ['json', 'yaml'],
    ),
    'ameide runs start --definition my-repo --work-item PROJ-12 --title "Add a multiply function" --criterion "multiply(6, 7) returns 42" --watch',
  ).action(
    act(ctx, async (opts: StartOptions) => {
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
        return follow(ctx, run.id, 0n, format === 'json');
      }
      emit(ctx.o, format, runJson(run), () => line);
      return 0;
    }),
  );

  examples(
    withOutput(
      runs
        .command('rerun')
        .description("run a run's plan again: the next attempt, on the same branch (it queues behind the branch's running run)")
        .argument('<run>', 'run id')
        .option('--request-id <key>', 'idempotency key (default: a new one)')
        .option('--watch', 'follow the new run to its end; exit 0 only if it completed'),
      ['json', 'yaml'],
    ),
    'ameide runs rerun 3f2a9c1e --watch',
  ).action(
    act(ctx, async (id: string, opts: OutputOptions & { requestId?: string; watch?: boolean }) => {
      const format = formatOf(opts);
      const api = ctx.workflows();
      const previous = (await api.getWorkflowRun({ id })).run!;
      const requestId = opts.requestId ?? randomUUID();
      const run = (await retryTransient(() => api.startWorkflowRun({ planId: previous.planId, requestId }))).run!;
      const line = `run ${run.id} started again from plan ${run.planId} v${run.planVersion} (workflow ${run.workflowId})`;
      if (opts.watch) {
        if (format === 'text') ctx.o.out(line);
        return follow(ctx, run.id, 0n, format === 'json');
      }
      emit(ctx.o, format, runJson(run), () => line);
      return 0;
    }),
  );

  examples(
    withLimit(
      withOutput(
        runs
          .command('list')
          .description('list runs, newest first: id, status, definition, work item, title, when it started and how long it took')
          .addOption(repeatable('--status <status>', `only runs in this status: ${RUN_STATUSES.join(', ')} (repeatable, or comma-separated)`))
          .option('--failed', 'only runs that failed: failed and handed_off (a handed-off run failed and left a handoff bundle)')
          .option('--work-item <id>', 'only runs of this work item')
          .option('--definition <name>', 'only runs of this definition (name or id)')
          .option('--page-token <token>', 'the next page: the token the previous list printed'),
      ),
    ),
    'ameide runs list',
    'ameide runs list --failed --definition my-repo',
    'ameide runs list --status running,queued -o json',
  ).action(
    act(
      ctx,
      async (opts: OutputOptions & { status?: string[]; failed?: boolean; workItem?: string; definition?: string; limit?: number; pageToken?: string }) => {
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
              res.runs.map((r) => [
                r.id.slice(0, 8),
                statusName(r.status),
                r.definitionName,
                items(r),
                titles.get(r.planId) ?? '-',
                started(r),
                runDuration(r, now),
              ]),
              'no runs',
            ),
          );
        return 0;
      },
    ),
  );

  examples(
    withOutput(
      runs
        .command('get')
        .description('show a run: status, each phase, branch, diff, tests, preview, pull request, Definition of Done')
        .argument('<run>', 'run id'),
      ['json', 'yaml'],
    ),
    'ameide runs get 3f2a9c1e',
    'ameide runs get 3f2a9c1e -o json',
  ).action(
    act(ctx, async (id: string, opts: OutputOptions) => {
      const run = (await ctx.workflows().getWorkflowRun({ id })).run!;
      emit(ctx.o, formatOf(opts), runJson(run), () => formatRun(run));
      return 0;
    }),
  );

  examples(
    withOutput(
      runs
        .command('watch')
        .description('follow a run: print each status update as it happens; exit 0 only if the run completed (Ctrl-C stops watching, not the run)')
        .argument('<run>', 'run id')
        .option('--from <n>', 'start at this update sequence number (default 0: from the start)', (v: string) => {
          if (!/^\d+$/.test(v)) throw commandLineError(`--from ${v}: must be a sequence number`);
          return v;
        }),
      ['json'],
    ),
    'ameide runs watch 3f2a9c1e',
    'ameide runs watch 3f2a9c1e --from 5 -o json   # JSON lines',
  ).action(
    act(ctx, async (id: string, opts: OutputOptions & { from?: string }) => {
      return follow(ctx, id, BigInt(opts.from ?? '0'), formatOf(opts) === 'json');
    }),
  );

  examples(
    runs
      .command('logs')
      .description("print what the run's commands (install, agent, test) printed, as the service keeps it (the newest part of each phase); -f follows it live")
      .argument('<run>', 'run id')
      .option('--phase <phase>', 'only this phase: install, agent or test')
      .option('-f, --follow', 'keep printing new output until the run (or the phase) has finished'),
    'ameide runs logs 3f2a9c1e --phase agent',
    'ameide runs logs 3f2a9c1e -f',
  ).action(
    act(ctx, async (id: string, opts: { phase?: string; follow?: boolean }) => {
      try {
        return await runsLogs(ctx.workflows(), id, { phase: opts.phase, follow: opts.follow === true }, ctx.o, ctx.signal);
      } catch (err) {
        if (!ctx.signal?.aborted) throw err;
        note(ctx.o, `\nstopped following; run ${id} continues: \`ameide runs watch ${id}\` follows its status`);
        return 130;
      }
    }),
  );

  examples(
    runs
      .command('open')
      .description("print the Temporal Web UI page of the run's workflow (AMEIDE_TEMPORAL_UI_URL, else the make up stack's)")
      .argument('<run>', 'run id'),
    'ameide runs open 3f2a9c',
    'xdg-open "$(ameide runs open 3f2a9c)"',
  ).action(act(ctx, (id: string) => runsOpen(ctx.workflows(), id, ctx.o)));

  examples(
    withOutput(
      runs
        .command('cancel')
        .description('cancel a run: its running command is killed, its work handed off')
        .argument('<run>', 'run id')
        .option('--reason <text>', 'why (recorded with the run)'),
      ['json', 'yaml'],
    ),
    'ameide runs cancel 3f2a9c1e --reason "wrong work item"',
  ).action(
    act(ctx, async (id: string, opts: OutputOptions & { reason?: string }) => {
      const res = await ctx.workflows().cancelWorkflowRun({ id, reason: opts.reason ?? '' });
      emit(ctx.o, formatOf(opts), runJson(res.run!), () => `cancellation requested for run ${res.run!.id}`);
      return 0;
    }),
  );

  examples(
    withOutput(
      runs
        .command('handoff')
        .description("restore a handed-off run's branch and its follow-up note (.codex/followup.md) into a fresh clone")
        .argument('<run>', 'run id')
        .option('--dir <path>', 'where to clone (default ./handoff-<run id, 8 characters>)'),
      ['json', 'yaml'],
    ),
    'ameide runs handoff 3f2a9c1e',
    'ameide runs handoff 3f2a9c1e --dir ../take-over',
  ).action(
    act(ctx, async (id: string, opts: OutputOptions & { dir?: string }) => {
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
    }),
  );

  examples(
    withOutput(
      runs
        .command('diff')
        .description("the run's change as it pushed it: a unified diff (coloured on a terminal unless NO_COLOR), or per-file stats")
        .argument('<run>', 'run id')
        .option('--stat', 'one line per file and the totals, as git diff --stat'),
      ['json', 'yaml'],
    ),
    'ameide runs diff 3f2a9c1e',
    'ameide runs diff 3f2a9c1e --stat',
  ).action(
    act(ctx, async (id: string, opts: OutputOptions & { stat?: boolean }) => {
      return runsDiff(ctx.workflows(), id, { stat: opts.stat === true, format: formatOf(opts) }, ctx.o, { color: ctx.term.color, columns: ctx.term.columns });
    }),
  );
  return runs;
}

/** The phase a run is in, as text ("-" when none). */
const phaseText = (r: Run) => (r.phase ? phaseName(r.phase) : '-');

export function registerPlans(program: Command, ctx: Ctx): void {
  const plans = group(program, 'plans', 'snapshots of a definition with their work items: what a run executes');
  examples(plans, 'ameide plans list --work-item PROJ-12', 'ameide plans diff 8c1d2e3f');

  examples(
    withLimit(
      withOutput(
        plans
          .command('list')
          .description('list plans: id, version, definition, work item and revision, trigger, when made')
          .option('--work-item <id>', "only this work item's plans")
          .option('--definition <name>', 'only plans of this definition'),
      ),
    ),
    'ameide plans list --work-item PROJ-12',
  ).action(
    act(ctx, async (opts: OutputOptions & { workItem?: string; definition?: string; limit?: number }) => {
      const res = await ctx.workflows().listPlans({ workItemId: opts.workItem ?? '', definition: opts.definition ?? '', pageSize: opts.limit ?? 0 });
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
    }),
  );

  examples(
    withOutput(
      plans.command('get').description('show a plan: version, definition, work item, trigger, approval, the work it covers').argument('<plan>', 'plan id'),
      ['json', 'yaml'],
    ),
    'ameide plans get 8c1d2e3f',
  ).action(
    act(ctx, async (id: string, opts: OutputOptions) => {
      const p = (await ctx.workflows().getPlan({ id })).plan!;
      emit(ctx.o, formatOf(opts), planJson(p), () => formatPlan(p));
      return 0;
    }),
  );

  const version = (flag: string) => wholeNumber(flag, 1, 0xffffffff, 'a plan version');
  examples(
    withOutput(
      plans
        .command('diff')
        .description("what changed between two versions of a work item's plan (default: against the version before), or between two plans")
        .argument('<plan>', 'plan id')
        .option('--from <n>', 'compare from this version of the work item’s plan', version('--from'))
        .option('--to <n>', 'compare to this version', version('--to'))
        .option('--other <plan>', 'compare with this plan instead'),
      ['json', 'yaml'],
    ),
    'ameide plans diff 8c1d2e3f',
    'ameide plans diff 8c1d2e3f --from 1 --to 3',
    'ameide plans diff 8c1d2e3f --other 4b5a6c7d',
  ).action(
    act(ctx, async (planId: string, opts: OutputOptions & { from?: number; to?: number; other?: string }) => {
      if (opts.other && (opts.from !== undefined || opts.to !== undefined)) throw commandLineError('use --from/--to or --other, not both');
      const res = await ctx.workflows().diffPlans({ planId, otherPlanId: opts.other ?? '', fromVersion: opts.from, toVersion: opts.to });
      emit(ctx.o, formatOf(opts), planDiffJson(res), () => formatPlanDiff(res));
      return 0;
    }),
  );

  for (const decision of ['approve', 'reject'] as const)
    examples(
      withOutput(
        plans
          .command(decision)
          .description(
            decision === 'approve' ? 'approve a plan that waits for approval: its run starts' : 'reject a plan that waits for approval: it will not run',
          )
          .argument('<plan>', 'plan id')
          .option('--reason <text>', 'why (recorded with the decision)'),
        ['json', 'yaml'],
      ),
      `ameide plans ${decision} 8c1d2e3f --reason "${decision === 'approve' ? 'scope agreed' : 'needs a design first'}"`,
    ).action(
      act(ctx, async (id: string, opts: OutputOptions & { reason?: string }) => {
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
      }),
    );
}

export function registerWorkItems(program: Command, ctx: Ctx): void {
  const items = group(program, 'workitems', 'backlog work items: their revisions, Definition of Ready, and the run automation started');
  examples(items, 'ameide workitems apply -f item.yaml', 'ameide workitems list --not-ready');

  examples(
    withOutput(
      items
        .command('apply')
        .description('create or update a work item revision from its file; prints whether it is ready, rule by rule')
        .requiredOption('-f, --file <path>', 'the work item file (an UpsertWorkItemRequest in YAML or JSON)'),
      ['json', 'yaml'],
    ),
    'ameide workitems apply -f item.yaml',
  ).action(
    act(ctx, async (opts: OutputOptions & { file: string }) => {
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
    }),
  );

  examples(
    withLimit(
      withOutput(
        items
          .command('list')
          .description('list work items: id, revision, state, profile, ready, run, title')
          .option('--state <state>', 'only items in this state (proposed, backlog, ready, in_progress, done, removed)')
          .option('--timebox <id>', 'only items of this timebox (sprint, PI, …)')
          .option('--goal <id>', 'only items serving this goal')
          .option('--profile <name>', 'only items of this methodology profile')
          .option('--ready', 'only items whose Definition of Ready is met')
          .option('--not-ready', 'only items whose Definition of Ready is not met'),
      ),
    ),
    'ameide workitems list --timebox sprint-7 --not-ready',
  ).action(
    act(
      ctx,
      async (
        opts: OutputOptions & { state?: string; timebox?: string; goal?: string; profile?: string; ready?: boolean; notReady?: boolean; limit?: number },
      ) => {
        if (opts.ready && opts.notReady) throw commandLineError('use --ready or --not-ready, not both');
        const res = await ctx.backlog().listWorkItems({
          state: opts.state ? parseWorkItemState(opts.state) : backlogV1.WorkItemState.UNSPECIFIED,
          timeboxId: opts.timebox ?? '',
          goalId: opts.goal ?? '',
          profile: opts.profile ?? '',
          ready: opts.ready ? true : opts.notReady ? false : undefined,
          pageSize: opts.limit ?? 0,
        });
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
      },
    ),
  );

  examples(
    withOutput(
      items.command('get').description('show a work item: its spec, each Definition of Ready rule, its plan and run').argument('<id>', 'work item id'),
      ['json', 'yaml'],
    ),
    'ameide workitems get PROJ-12',
  ).action(
    act(ctx, async (id: string, opts: OutputOptions) => {
      const w = (await ctx.backlog().getWorkItem({ id })).workItem!;
      emit(ctx.o, formatOf(opts), workItemJson(w), () => formatWorkItem(w));
      return 0;
    }),
  );
}

export function registerProfiles(program: Command, ctx: Ctx): void {
  const profiles = group(program, 'profiles', 'methodology profiles: when work items run, their Definition of Ready and Done (built-in: scrum, safe, togaf)');
  examples(profiles, 'ameide profiles list', 'ameide profiles apply -f kanban.yaml');

  examples(
    withOutput(
      profiles
        .command('apply')
        .description('create or update a methodology profile from its file')
        .requiredOption('-f, --file <path>', 'the profile file (YAML or JSON)'),
      ['json', 'yaml'],
    ),
    'ameide profiles apply -f kanban.yaml',
  ).action(
    act(ctx, async (opts: OutputOptions & { file: string }) => {
      const p = (await ctx.backlog().applyProfile(readProfileFile(fileIn(ctx, opts.file)))).profile!;
      emit(ctx.o, formatOf(opts), profileJson(p), () => `profile ${p.name} applied (version ${p.version})`);
      return 0;
    }),
  );

  examples(withOutput(profiles.command('list').description('list profiles: name, version (or built-in), description')), 'ameide profiles list').action(
    act(ctx, async (opts: OutputOptions) => {
      const res = await ctx.backlog().listProfiles({});
      emit(ctx.o, formatOf(opts), res.profiles.map(profileJson), () =>
        table(
          ctx.term,
          [{ header: 'name' }, { header: 'version' }, { header: 'description', shrink: true }],
          res.profiles.map((p) => [p.name, p.builtIn ? 'built-in' : `v${p.version}`, p.spec?.description ?? '']),
          'no profiles',
        ),
      );
      return 0;
    }),
  );

  examples(
    withOutput(
      profiles
        .command('get')
        .description('show a profile: trigger state, Definition of Ready and Done rules, evidence targets')
        .argument('<name>', 'profile name'),
      ['json', 'yaml'],
    ),
    'ameide profiles get scrum',
  ).action(
    act(ctx, async (name: string, opts: OutputOptions) => {
      const p = (await ctx.backlog().getProfile({ name })).profile!;
      emit(ctx.o, formatOf(opts), profileJson(p), () => formatProfile(p));
      return 0;
    }),
  );
}
