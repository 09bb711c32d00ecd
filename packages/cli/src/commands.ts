import { randomUUID } from 'node:crypto';
import { relative, resolve } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { backlogV1, DefinitionSpecSchema, Phase, RunStatus, RunStatusSchema, WorkItemSchema, type Run } from '@ameide/contracts';
import { Code, ConnectError, type BacklogServiceClient, type WorkflowServiceClient } from '@ameide/sdk';
import { flag, flags, has, positional, UsageError, type Args } from './args.js';
import { parseWorkItemState, readProfileFile, readWorkItemFile } from './backlog-file.js';
import { readDefinitionFile } from './definition-file.js';
import { runsDiff } from './diff.js';
import {
  definitionJson,
  planDiffJson,
  planJson,
  formatPlan,
  formatPlanDiff,
  formatPlanLine,
  formatProfile,
  formatReadinessRules,
  formatRun,
  formatStatusUpdate,
  formatWorkItem,
  formatWorkItemLine,
  profileJson,
  runJson,
  statusName,
  statusUpdateJson,
  workItemJson,
} from './format.js';
import { loadS3Settings } from '@ameide/config';
import { fetchArtifact, restoreHandoff } from './handoff.js';
import { createS3Loader } from './s3.js';

/** Where commands write; tests capture it. */
export interface Output {
  out(line: string): void;
}

const print = (o: Output, json: boolean, value: unknown, text: () => string) => o.out(json ? JSON.stringify(value, null, 2) : text());

export async function definitionsCommand(api: WorkflowServiceClient, sub: string, args: Args, o: Output): Promise<number> {
  const json = has(args, 'json');
  switch (sub) {
    case 'apply': {
      const file = flag(args, 'file');
      if (!file) throw new UsageError('definitions apply needs -f <file.yaml>');
      const def = readDefinitionFile(file);
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
      const res = await api.applyDefinition({ name: def.name, annotations: def.annotations, spec });
      const d = res.definition!;
      print(o, json, definitionJson(d), () => `definition ${d.name} ${res.changed ? 'applied' : 'unchanged'} (version ${d.version}, id ${d.id})`);
      return 0;
    }
    case 'list': {
      const res = await api.listDefinitions({});
      print(
        o,
        json,
        res.definitions.map(definitionJson),
        () => res.definitions.map((d) => `${d.name.padEnd(24)} v${String(d.version).padEnd(4)} ${d.spec?.repoUrl ?? ''}`).join('\n') || 'no definitions',
      );
      return 0;
    }
    case 'get': {
      const res = await api.getDefinition({ idOrName: positional(args, 2, 'definition name or id') });
      const d = res.definition!;
      print(o, json, definitionJson(d), () => JSON.stringify(definitionJson(d), null, 2));
      return 0;
    }
    default:
      throw new UsageError(`unknown command "definitions ${sub}"; use apply, list or get`);
  }
}

function parseStatus(s: string): RunStatus {
  const v = RunStatusSchema.values.find((x) => x.name === `RUN_STATUS_${s.toUpperCase()}`);
  if (!v || v.number === 0) throw new UsageError(`--status ${s}: use queued, running, completed, failed or cancelled`);
  return v.number;
}

/** Follows a run until it ends; returns 0 when it COMPLETED, 1 otherwise. */
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
      if (!transient(err) || Date.now() - since > START_RETRY_FOR_MS) throw err;
      await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** attempt)));
    }
  }
}

/**
 * Follows a run to its end, printing each update once. When the service restarts or is briefly
 * unreachable, it reconnects (with backoff, for up to ten minutes) and resumes after the last update
 * it printed. Exits 0 only if the run completed.
 */
export async function watchRun(api: WorkflowServiceClient, id: string, from: bigint, json: boolean, o: Output, signal?: AbortSignal): Promise<number> {
  let next = from;
  let failingSince: number | undefined;
  for (;;) {
    try {
      for await (const res of api.watchWorkflowRun({ id, fromSequence: next }, { signal })) {
        failingSince = undefined;
        if (!res.update) continue;
        o.out(json ? JSON.stringify(statusUpdateJson(res.update)) : formatStatusUpdate(res.update));
        next = res.update.sequence + 1n;
      }
      const run = (await api.getWorkflowRun({ id }, { signal })).run!;
      return run.status === RunStatus.COMPLETED ? 0 : 1;
    } catch (err) {
      if (!transient(err) || signal?.aborted) throw err;
      const since = (failingSince ??= Date.now());
      if (Date.now() - since > RECONNECT_FOR_MS) throw err;
      await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** Math.floor((Date.now() - since) / 2000))));
    }
  }
}

export async function runsCommand(api: WorkflowServiceClient, sub: string, args: Args, o: Output): Promise<number> {
  const json = has(args, 'json');
  switch (sub) {
    case 'start': {
      const definition = flag(args, 'definition');
      if (!definition) throw new UsageError('runs start needs --definition <name>');
      const workItemId = flag(args, 'work-item');
      const workItems = workItemId
        ? [
            create(WorkItemSchema, {
              id: workItemId,
              title: flag(args, 'title') ?? '',
              description: flag(args, 'description') ?? '',
              acceptanceCriteria: flags(args, 'criterion'),
              contextLinks: flags(args, 'link'),
            }),
          ]
        : [];
      // One key per invocation: a start whose answer is lost (the service restarting) is sent again,
      // and the service returns the run the first attempt made instead of starting another.
      const requestId = flag(args, 'request-id') ?? randomUUID();
      const run = (await retryTransient(() => api.startWorkflowRun({ definition, workItems, requestId }))).run!;
      if (has(args, 'watch')) {
        if (!json) o.out(`run ${run.id} started (workflow ${run.workflowId})`);
        return watchRun(api, run.id, 0n, json, o);
      }
      print(o, json, runJson(run), () => `run ${run.id} started (workflow ${run.workflowId})`);
      return 0;
    }
    case 'rerun': {
      // Same plan, next attempt, same branch: it queues behind the branch's running run, if any.
      const previous = (await api.getWorkflowRun({ id: positional(args, 2, 'run id') })).run!;
      const requestId = flag(args, 'request-id') ?? randomUUID();
      const run = (await retryTransient(() => api.startWorkflowRun({ planId: previous.planId, requestId }))).run!;
      if (has(args, 'watch')) {
        if (!json) o.out(`run ${run.id} started again from plan ${run.planId} v${run.planVersion} (workflow ${run.workflowId})`);
        return watchRun(api, run.id, 0n, json, o);
      }
      print(o, json, runJson(run), () => `run ${run.id} started again from plan ${run.planId} v${run.planVersion} (workflow ${run.workflowId})`);
      return 0;
    }
    case 'list': {
      const res = await api.listWorkflowRuns({
        statuses: flags(args, 'status').map(parseStatus),
        workItemId: flag(args, 'work-item') ?? '',
        definition: flag(args, 'definition') ?? '',
      });
      print(
        o,
        json,
        res.runs.map(runJson),
        () =>
          res.runs
            .map((r: Run) => `${r.id}  ${statusName(r.status).padEnd(10)} ${r.definitionName.padEnd(20)} ${r.methodology?.workItemIds.join(',') ?? ''}`)
            .join('\n') || 'no runs',
      );
      return 0;
    }
    case 'get': {
      const run = (await api.getWorkflowRun({ id: positional(args, 2, 'run id') })).run!;
      print(o, json, runJson(run), () => formatRun(run));
      return 0;
    }
    case 'watch': {
      const from = flag(args, 'from') ?? '0';
      if (!/^\d+$/.test(from)) throw new UsageError(`--from ${from}: must be a sequence number`);
      return watchRun(api, positional(args, 2, 'run id'), BigInt(from), json, o);
    }
    case 'cancel': {
      const res = await api.cancelWorkflowRun({ id: positional(args, 2, 'run id'), reason: flag(args, 'reason') ?? '' });
      print(o, json, runJson(res.run!), () => `cancellation requested for run ${res.run!.id}`);
      return 0;
    }
    case 'handoff': {
      const id = positional(args, 2, 'run id');
      const run = (await api.getWorkflowRun({ id })).run!;
      const s = run.summary;
      if (!s?.handoffUri || !s.handoffSha256) throw new UsageError(`run ${id} has no handoff bundle`);
      const plan = (await api.getPlan({ id: run.planId })).plan;
      const repoUrl = plan?.spec?.repo?.repoUrl;
      if (!repoUrl) throw new UsageError(`plan ${run.planId} of run ${id} names no repository`);
      const dir = flag(args, 'dir') ?? `./handoff-${id.slice(0, 8)}`;
      const bundle = await fetchArtifact(s.handoffUri, { s3: createS3Loader(loadS3Settings()) });
      const r = await restoreHandoff({ bundle, expectedSha256: s.handoffSha256, repoUrl, dir });
      const followup = `${dir.replace(/\/+$/, '')}/${relative(resolve(dir), r.followup)}`;
      print(
        o,
        json,
        { runId: id, dir: resolve(dir), branch: r.branch, head: r.head, followup: r.followup },
        () => `branch ${r.branch} restored in ${dir} at ${r.head.slice(0, 12)}; read ${followup}`,
      );
      return 0;
    }
    case 'diff':
      return runsDiff(api, args, o);
    default:
      throw new UsageError(`unknown command "runs ${sub}"; use start, rerun, list, get, watch, cancel, handoff or diff`);
  }
}

/** A plan version given as a flag: a positive whole number, or undefined when the flag is absent. */
function versionFlag(args: Args, name: string): number | undefined {
  const v = flag(args, name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 0xffffffff) throw new UsageError(`--${name} ${v}: must be a plan version (1, 2, …)`);
  return Number(v);
}

export async function plansCommand(api: WorkflowServiceClient, sub: string, args: Args, o: Output): Promise<number> {
  const json = has(args, 'json');
  switch (sub) {
    case 'list': {
      const res = await api.listPlans({ workItemId: flag(args, 'work-item') ?? '', definition: flag(args, 'definition') ?? '' });
      print(o, json, res.plans.map(planJson), () => res.plans.map(formatPlanLine).join('\n') || 'no plans');
      return 0;
    }
    case 'get': {
      const p = (await api.getPlan({ id: positional(args, 2, 'plan id') })).plan!;
      print(o, json, planJson(p), () => formatPlan(p));
      return 0;
    }
    case 'diff': {
      const planId = positional(args, 2, 'plan id');
      const otherPlanId = flag(args, 'other') ?? '';
      const fromVersion = versionFlag(args, 'from');
      const toVersion = versionFlag(args, 'to');
      if (otherPlanId && (fromVersion !== undefined || toVersion !== undefined)) throw new UsageError('use --from/--to or --other, not both');
      const res = await api.diffPlans({ planId, otherPlanId, fromVersion, toVersion });
      print(o, json, planDiffJson(res), () => formatPlanDiff(res));
      return 0;
    }
    case 'approve':
    case 'reject': {
      const id = positional(args, 2, 'plan id');
      const reason = flag(args, 'reason') ?? '';
      if (sub === 'approve') {
        const res = await api.approvePlan({ id, reason });
        print(o, json, { plan: planJson(res.plan!), run: runJson(res.run!) }, () => `plan ${id} approved; run ${res.run!.id} started`);
      } else {
        const res = await api.rejectPlan({ id, reason });
        print(o, json, planJson(res.plan!), () => `plan ${id} rejected: it will not run`);
      }
      return 0;
    }
    default:
      throw new UsageError(`unknown command "plans ${sub}"; use list, get, diff, approve or reject`);
  }
}

export async function workitemsCommand(api: BacklogServiceClient, sub: string, args: Args, o: Output): Promise<number> {
  const json = has(args, 'json');
  switch (sub) {
    case 'apply': {
      const file = flag(args, 'file');
      if (!file) throw new UsageError('workitems apply needs -f <item.yaml>');
      const res = await api.upsertWorkItem(readWorkItemFile(file));
      const w = res.workItem!;
      const r = w.readiness;
      const failing = (r?.rules ?? []).filter((x) => !x.passed).map((x) => x.rule);
      print(o, json, { applied: res.applied, workItem: workItemJson(w) }, () =>
        [
          `work item ${w.id} revision ${w.revision} ${res.applied ? 'applied' : 'unchanged (the stored revision is not older)'}; ready: ${r?.met ? 'yes' : `no (${failing.join(', ') || 'not evaluated'})`}${w.runId ? `; run ${w.runId}` : ''}`,
          ...formatReadinessRules(r),
        ].join('\n'),
      );
      return 0;
    }
    case 'list': {
      if (has(args, 'ready') && has(args, 'not-ready')) throw new UsageError('use --ready or --not-ready, not both');
      const state = flag(args, 'state');
      const res = await api.listWorkItems({
        state: state ? parseWorkItemState(state) : backlogV1.WorkItemState.UNSPECIFIED,
        timeboxId: flag(args, 'timebox') ?? '',
        goalId: flag(args, 'goal') ?? '',
        profile: flag(args, 'profile') ?? '',
        ready: has(args, 'ready') ? true : has(args, 'not-ready') ? false : undefined,
      });
      print(o, json, res.workItems.map(workItemJson), () => res.workItems.map(formatWorkItemLine).join('\n') || 'no work items');
      return 0;
    }
    case 'get': {
      const w = (await api.getWorkItem({ id: positional(args, 2, 'work item id') })).workItem!;
      print(o, json, workItemJson(w), () => formatWorkItem(w));
      return 0;
    }
    default:
      throw new UsageError(`unknown command "workitems ${sub}"; use apply, list or get`);
  }
}

export async function profilesCommand(api: BacklogServiceClient, sub: string, args: Args, o: Output): Promise<number> {
  const json = has(args, 'json');
  switch (sub) {
    case 'apply': {
      const file = flag(args, 'file');
      if (!file) throw new UsageError('profiles apply needs -f <profile.yaml>');
      const p = (await api.applyProfile(readProfileFile(file))).profile!;
      print(o, json, profileJson(p), () => `profile ${p.name} applied (version ${p.version})`);
      return 0;
    }
    case 'list': {
      const res = await api.listProfiles({});
      print(
        o,
        json,
        res.profiles.map(profileJson),
        () =>
          res.profiles.map((p) => `${p.name.padEnd(16)} ${(p.builtIn ? 'built-in' : `v${p.version}`).padEnd(9)} ${p.spec?.description ?? ''}`).join('\n') ||
          'no profiles',
      );
      return 0;
    }
    case 'get': {
      const p = (await api.getProfile({ name: positional(args, 2, 'profile name') })).profile!;
      print(o, json, profileJson(p), () => formatProfile(p));
      return 0;
    }
    default:
      throw new UsageError(`unknown command "profiles ${sub}"; use apply, list or get`);
  }
}
