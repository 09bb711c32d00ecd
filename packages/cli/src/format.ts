import { timestampDate, type Timestamp } from '@bufbuild/protobuf/wkt';
import {
  ApprovalState,
  ApprovalStateSchema,
  ChangeKind,
  DefinitionSchema,
  DiffPlansResponseSchema,
  PlanSchema,
  TriggerSchema,
  type DiffPlansResponse,
  type Plan,
  type PlanChange,
  type Trigger,
  PhaseSchema,
  PhaseStateSchema,
  RunSchema,
  RunStatus,
  RunStatusSchema,
  StatusUpdateKindSchema,
  StatusUpdateSchema,
  type Definition,
  type Phase,
  PhaseState,
  type AgentRun,
  type EgressDestination,
  type Run,
  type RunExecution,
  ExecutionState,
  type StatusUpdate,
  backlogV1,
} from '@ameide/contracts';
import { protoJson } from './output.js';

const enumName = (schema: { values: Array<{ number: number; name: string }> }, prefix: string, v: number) =>
  (schema.values.find((x) => x.number === v)?.name ?? String(v)).replace(prefix, '').toLowerCase();

export const statusName = (s: RunStatus) => enumName(RunStatusSchema, 'RUN_STATUS_', s);
export const phaseName = (p: Phase) => enumName(PhaseSchema, 'PHASE_', p);
export const phaseStateName = (p: PhaseState) => enumName(PhaseStateSchema, 'PHASE_STATE_', p);

export function seconds(ms: bigint | number): string {
  return `${(Number(ms) / 1000).toFixed(1)}s`;
}

const time = (t: Timestamp | undefined) => (t ? timestampDate(t).toISOString() : '-');

export const runJson = (r: Run) => protoJson(RunSchema, r);
export const definitionJson = (d: Definition) => protoJson(DefinitionSchema, d);
export const statusUpdateJson = (u: StatusUpdate) => protoJson(StatusUpdateSchema, u);

/** A run as people read it: status, each phase with duration and exit code, branch, diff, tests. */
export function formatRun(r: Run): string {
  const lines = [
    `run         ${r.id}`,
    `status      ${statusName(r.status)}${r.error ? ` — ${r.error}` : ''}`,
    `definition  ${r.definitionName} (plan ${r.planId} v${r.planVersion})`,
    `work items  ${r.methodology?.workItemIds.join(', ') || '-'}`,
    `workflow    ${r.workflowId}`,
    `started     ${time(r.startTime)}   finished ${time(r.endTime)}`,
  ];
  if (r.queuedBehindRunId) lines.push(`waiting     for run ${r.queuedBehindRunId}, which works on the same branch (${r.branch})`);
  if (r.execution) lines.push(`execution   ${formatExecution(r.execution)}`);
  lines.push('phases:');
  for (const p of r.phases) {
    const exit = p.exitCode !== undefined ? `exit ${p.exitCode}` : '';
    lines.push(`  ${phaseName(p.phase).padEnd(12)} ${phaseStateName(p.state).padEnd(10)} ${seconds(p.durationMs).padStart(7)}  ${exit}`);
  }
  const s = r.summary;
  if (s) {
    lines.push(`branch      ${s.branch || '-'}${s.pushed ? ' (pushed)' : ''}`);
    if (s.headCommit)
      lines.push(`diff        ${s.filesChanged} files changed, +${s.insertions} -${s.deletions} (${s.baseCommit.slice(0, 10)}..${s.headCommit.slice(0, 10)})`);
    lines.push(`tests       ${s.testExitCode === undefined ? 'not run' : s.testExitCode === 0 ? 'passed (exit 0)' : `failed (exit ${s.testExitCode})`}`);
    const t = s.testReport;
    if (t?.error) lines.push(`            no test report: ${t.error}`);
    else if (t) {
      lines.push(`            ${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped in ${seconds(t.durationMs)} (${t.format}: ${t.sources.join(', ')})`);
      for (const name of t.failingTests) lines.push(`            ✗ ${name}`);
    }
    if (s.transcriptsUri) lines.push(`transcripts ${s.transcriptsUri}`);
    if (s.sandbox) lines.push(`sandbox     ${s.sandbox}`);
    if (s.budgetExceeded) lines.push(`budget      ${s.budgetExceeded} exceeded`);
    if (s.policyViolations.length) lines.push(`policy      ${s.policyViolations.join(', ')}`);
    if (s.previewUrl) lines.push(`preview     ${s.previewUrl}${s.previewAliasUrl ? `   (work item: ${s.previewAliasUrl})` : ''}`);
    if (s.pullRequest) lines.push(`pull req.   ${formatPullRequestRef(s.pullRequest)}`);
    if (s.handoffUri) lines.push(`handoff     ${s.handoffUri} (sha256 ${s.handoffSha256}) — ameide runs handoff ${r.id}`);
    if (s.evidence.length) lines.push(`evidence    ${s.evidence.length} files, signed — ameide evidence verify ${r.id}`);
    if (s.agent) lines.push(...formatAgent(s.agent));
    if (s.egress.length) lines.push(...formatEgress(s.egress));
  }
  lines.push(...formatDone(r));
  return lines.join('\n');
}

/** What the coding agent did: model calls, tool calls, tokens, why it was stopped, its transcript. */
export function formatAgent(a: AgentRun): string[] {
  const out = [`agent       ${a.kind} ${a.model}: ${a.turns} model calls, ${a.toolCalls} tool calls, ${a.inputTokens} tokens in, ${a.outputTokens} out`];
  if (a.stopped) out.push(`            stopped: ${a.stopped}`);
  if (a.finalMessage) out.push(`            said: ${a.finalMessage.split('\n')[0]!.slice(0, 200)}`);
  if (a.transcriptUri) out.push(`            turns: ${a.transcriptUri}`);
  return out;
}

/** Where the online phases went: each destination allowed or refused (with why), per phase. */
export function formatEgress(egress: EgressDestination[]): string[] {
  return egress.map(
    (e, i) =>
      `${i === 0 ? 'egress      ' : '            '}${e.phase.padEnd(8)} ${e.allowed ? 'allowed' : e.reason.startsWith('failed: ') ? 'failed ' : 'refused'} ${e.destination} ×${e.count}${e.reason ? ` (${e.reason})` : ''}`,
  );
}

/** The run's Definition of Done checklist: one line per rule, ✓ or ✗ with why; "pending" until its follow-up evaluated it. */
export function formatDone(r: Run): string[] {
  const d = r.done;
  if (!d) return r.endTime ? ['done        Definition of Done not evaluated yet'] : [];
  const out = [`done        Definition of Done ${d.met ? 'met' : 'NOT met'}${d.profile ? ` (${d.profile})` : ''}`];
  for (const rule of d.rules) out.push(`            ${rule.passed ? '✓' : '✗'} ${rule.rule.padEnd(20)} ${rule.detail}`);
  if (r.status === RunStatus.COMPLETED && !d.met) out.push('            the run completed its phases but is not done: an impediment was raised');
  return out;
}

const ago = (t: Timestamp | undefined) => (t ? `${Math.max(0, Math.round((Date.now() - timestampDate(t).getTime()) / 1000))}s ago` : 'never');

/** Whether anything executes a run in progress, e.g. "waiting for a worker since 42s ago (runCommandPhase, attempt 2)". */
export function formatExecution(e: RunExecution): string {
  const step = `${e.step}${e.attempt > 1 ? `, attempt ${e.attempt}` : ''}`;
  const failure = e.lastFailure ? `; last failure: ${e.lastFailure}` : '';
  switch (e.state) {
    case ExecutionState.EXECUTING:
      return `${step} on ${e.worker || 'a worker'}, last heartbeat ${ago(e.lastHeartbeatTime)}`;
    case ExecutionState.WAITING_FOR_WORKER:
      return `waiting for a worker since ${ago(e.waitingSinceTime)} (${step}): is a worker polling the task queue?${failure}`;
    case ExecutionState.RETRYING:
      return `retrying ${step} after a failure${failure}`;
    default:
      return step;
  }
}

/** One status update as one line (plus the output tail when a phase failed). */
export function formatStatusUpdate(u: StatusUpdate): string {
  const kind = enumName(StatusUpdateKindSchema, 'STATUS_UPDATE_KIND_', u.kind);
  const head = `[${String(u.sequence).padStart(3)}] `;
  switch (kind) {
    case 'run_started':
      return `${head}run started`;
    case 'phase_started':
      return `${head}${phaseName(u.phase)} started`;
    case 'phase_finished': {
      const exit = u.exitCode !== undefined ? ` exit ${u.exitCode}` : '';
      const line = `${head}${phaseName(u.phase)} ${phaseStateName(u.phaseState)} in ${seconds(u.durationMs)}${exit}${u.message ? ` — ${u.message}` : ''}`;
      // The whole tail: the worker keeps its last lines (AMEIDE_OUTPUT_TAIL_LINES), enough to show the failing assertion.
      return u.phaseState === PhaseState.FAILED && u.outputTail ? `${line}\n${indent(u.outputTail.trimEnd())}` : line;
    }
    case 'run_finished':
      return `${head}run ${statusName(u.runStatus)}${u.message ? ` — ${u.message}` : ''}`;
    case 'preview_live':
      return `${head}preview live at ${u.attributes['url'] ?? '?'}${u.attributes['alias_url'] ? ` (work item: ${u.attributes['alias_url']})` : ''}`;
    case 'pull_request_opened':
    case 'pull_request_updated': {
      const a = u.attributes;
      return `${head}pull request #${a['number'] ?? '?'} ${a['action'] ?? kind.slice('pull_request_'.length)} (${a['provider'] ?? 'git'})${a['url'] ? ` ${a['url']}` : ''}`;
    }
    default:
      return `${head}${kind}`;
  }
}

/** A pull request as a run's summary names it, e.g. "#3 open (git)" or "#12 draft https://github.com/o/r/pull/12". */
export function formatPullRequestRef(p: { provider: string; number: number; url: string; state: string }): string {
  return `#${p.number} ${p.state} ${p.url || `(${p.provider}: ameide prs get ${p.number})`}`;
}

function indent(s: string): string {
  return s.replace(/^/gm, '      | ');
}

export const workItemStateName = (s: backlogV1.WorkItemState) => enumName(backlogV1.WorkItemStateSchema, 'WORK_ITEM_STATE_', s);
export const workItemJson = (w: backlogV1.WorkItem) => protoJson(backlogV1.WorkItemSchema, w);
export const profileJson = (p: backlogV1.Profile) => protoJson(backlogV1.ProfileSchema, p);

/** One Definition of Ready rule per line, e.g. "  ✗ goal  0 goals, needs at least 1". */
export function formatReadinessRules(r: backlogV1.Readiness | undefined): string[] {
  return (r?.rules ?? []).map((x) => `  ${x.passed ? '✓' : '✗'} ${x.rule}  ${x.detail}`);
}

/** A work item as people read it: its spec, each DoR rule with why it passed or failed, and what automation did. */
export function formatWorkItem(w: backlogV1.WorkItem): string {
  const s = w.spec;
  const r = w.readiness;
  const list = (xs: string[] | undefined) => (xs?.length ? xs.join(', ') : '-');
  const lines = [
    `work item   ${w.id} (revision ${w.revision})`,
    `title       ${s?.title || '-'}`,
    `state       ${s ? workItemStateName(s.state) : '-'}`,
    `profile     ${r?.profile || s?.profile || '-'}${r?.profileVersion ? ` v${r.profileVersion}` : ''}${r?.triggerState ? ` (runs when ${workItemStateName(r.triggerState)})` : ''}`,
    `definition  ${s?.definition || '-'}`,
    `timeboxes   ${list(s?.timeboxIds)}`,
    `goals       ${list(s?.goalIds)}`,
    `elements    ${list(s?.elementIds)}`,
    `criteria    ${s?.acceptanceCriteria.length ?? 0}`,
    `ready       ${r?.met ? 'yes' : 'no'}`,
    ...formatReadinessRules(r),
    `plan        ${w.planId || '-'}`,
    `run         ${w.runId || '-'}`,
    `triggered   ${w.triggeredRevision ? `revision ${w.triggeredRevision}` : '-'}`,
    `ready time  ${time(w.readyTime)}`,
    `updated     ${time(w.updateTime)}`,
  ];
  return lines.join('\n');
}

/** One line per work item: id, revision, state, profile, ready, run. */
export function formatWorkItemLine(w: backlogV1.WorkItem): string {
  const state = w.spec ? workItemStateName(w.spec.state) : '-';
  return `${w.id.padEnd(16)} r${String(w.revision).padEnd(5)} ${state.padEnd(12)} ${(w.spec?.profile || '-').padEnd(10)} ready ${w.readiness?.met ? 'yes' : 'no '}  run ${w.runId || '-'}`;
}

/** A profile as people read it: trigger state, DoR and DoD rules, evidence targets. */
export function formatProfile(p: backlogV1.Profile): string {
  const s = p.spec;
  const rules = (rs: backlogV1.Rule[] | undefined) => (rs?.length ? rs.map((r) => (r.min > 1 ? `${r.kind} (min ${r.min})` : r.kind)).join(', ') : '-');
  return [
    `profile     ${p.name} ${p.builtIn ? '(built-in)' : `v${p.version}`}`,
    `about       ${s?.description || '-'}`,
    `trigger     ${s?.triggerState ? workItemStateName(s.triggerState) : 'ready'}`,
    `ready rules ${rules(s?.readyRules)}`,
    `done rules  ${rules(s?.doneRules)}`,
    `evidence    ${s?.evidenceTargets.length ? s.evidenceTargets.map((t) => `${t.artifact} (from ${t.from})`).join(', ') : '-'}`,
  ].join('\n');
}

export const planJson = (p: Plan) => protoJson(PlanSchema, p);
export const planDiffJson = (d: DiffPlansResponse) => protoJson(DiffPlansResponseSchema, d);
export const triggerName = (t: Trigger) => enumName(TriggerSchema, 'TRIGGER_', t);

/** The backlog work item and revision a plan was made for (`-` for a manual plan). */
export function planWorkItem(plan: Plan): string {
  const revision = plan.workItemRevision ? String(plan.workItemRevision) : undefined;
  const item = plan.workItemId;
  return item ? `${item}${revision ? ` revision ${revision}` : ''}` : '-';
}

/** One plan per line: id, version, definition, work item and revision, trigger, creation time. */
export function formatPlanLine(p: Plan): string {
  const s = p.spec;
  return `${p.id}  v${String(p.version).padEnd(4)} ${(s?.definitionName ?? '').padEnd(20)} ${planWorkItem(p).padEnd(24)} ${triggerName(s?.trigger ?? 0).padEnd(7)} ${time(p.createTime)}`;
}

/** A plan as people read it: version, definition, work item and revision, trigger, the work it covers. */
export function formatPlan(p: Plan): string {
  const s = p.spec;
  const lines = [
    `plan        ${p.id}`,
    `version     ${p.version}`,
    `definition  ${s?.definitionName ?? '-'} v${s?.definitionVersion ?? '-'} (${s?.repo?.repoUrl ?? '-'})`,
    `work item   ${planWorkItem(p)}`,
    `trigger     ${triggerName(s?.trigger ?? 0)}`,
    `created     ${time(p.createTime)}`,
  ];
  const a = p.approval;
  if (a && a.state !== ApprovalState.NOT_REQUIRED && a.state !== ApprovalState.UNSPECIFIED) {
    const state = (ApprovalStateSchema.values.find((v) => v.number === a.state)?.name ?? '').replace('APPROVAL_STATE_', '').toLowerCase();
    const decided = a.decidedBy ? ` by ${a.decidedBy} at ${time(a.decideTime)}${a.reason ? `: ${a.reason}` : ''}` : '';
    lines.push(`approval    ${state}${decided}${a.state === ApprovalState.PENDING ? ` — ameide plans approve ${p.id}` : ''}`);
  }
  const m = s?.methodology;
  if (m?.profile)
    lines.push(
      `profile     ${m.profile}${m.timeboxIds.length ? `; timeboxes ${m.timeboxIds.join(', ')}` : ''}${m.goalIds.length ? `; goals ${m.goalIds.join(', ')}` : ''}`,
    );
  for (const w of s?.workItems ?? []) {
    lines.push(`work        ${w.id}: ${w.title}`);
    for (const c of w.acceptanceCriteria) lines.push(`  - ${c}`);
  }
  return lines.join('\n');
}

/** A plan diff: a heading, then one line per change (`+ path: new`, `- path: old`, `~ path: old → new`). */
export function formatPlanDiff(d: DiffPlansResponse): string {
  const heading = `plan ${d.fromPlanId} v${d.fromVersion} → plan ${d.toPlanId} v${d.toVersion}: ${d.changes.length} change${d.changes.length === 1 ? '' : 's'}`;
  const line = (c: PlanChange) =>
    c.kind === ChangeKind.ADDED
      ? `+ ${c.path}: ${c.newValue}`
      : c.kind === ChangeKind.REMOVED
        ? `- ${c.path}: ${c.oldValue}`
        : `~ ${c.path}: ${c.oldValue} → ${c.newValue}`;
  return [heading, ...d.changes.map(line)].join('\n');
}
