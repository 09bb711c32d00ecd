import { fromJson, type JsonObject } from '@bufbuild/protobuf';
import { signStatement, slsaProvenance, statement, testResult, type SigningKey } from '@ameide/attest';
import { backlogV1, type RunSummaryJson } from '@ameide/contracts';
import {
  ATTACHED_TO,
  GovernanceRepository,
  PlanRepository,
  ProfileRepository,
  RunRepository,
  type EvidenceRow,
  type GraphEdge,
  type GraphNode,
  type RunRow,
} from '@ameide/db';
import type { FollowupActivities } from '@ameide/temporal';
import { BUILT_IN_PROFILES, DEFAULT_DONE_RULES } from '../backlog/profiles.js';
import type { GovernanceDeps } from './deps.js';

type DoneEvaluation = NonNullable<RunRow['state']['done']>;
type DoneRule = { rule: string; passed: boolean; detail: string };

/** The build type of a run's SLSA provenance: what `externalParameters` and `internalParameters` mean. */
export const BUILD_TYPE = 'https://ameide.dev/coding-agent-run/v1';

const short = (status: string) => status.replace('RUN_STATUS_', '').toLowerCase();

/** A run that has finished, or a permanent failure (its row is gone: nothing can follow it). */
async function finishedRun(runs: RunRepository, runId: string): Promise<RunRow> {
  const run = await runs.get(undefined, runId);
  if (!run) throw Object.assign(new Error(`run ${runId} no longer exists`), { nonRetryable: true });
  return run;
}

/**
 * The methodology nodes a run's evidence attaches to: its work items, timeboxes, goals and the
 * profile's artifacts, and the edges tying each artifact to the timebox, goal or element it belongs to.
 */
export async function methodologyNodes(profiles: ProfileRepository, run: RunRow): Promise<{ nodes: GraphNode[]; artifacts: GraphNode[]; partOf: GraphEdge[] }> {
  const m = run.spec.methodology ?? {};
  const ids = { timebox: m.timeboxIds ?? [], goal: m.goalIds ?? [], element: m.elementIds ?? [] };
  const nodes: GraphNode[] = [
    ...run.spec.workItemIds.map((id) => ({ kind: 'work_item', id })),
    ...ids.timebox.map((id) => ({ kind: 'timebox', id })),
    ...ids.goal.map((id) => ({ kind: 'goal', id })),
    ...ids.element.map((id) => ({ kind: 'element', id })),
  ];
  const profile = await profileSpec(profiles, run.tenantId, m.profile ?? '');
  // The profile's artifact of each timebox / goal / element, e.g. the sprint's Increment.
  const partOf: GraphEdge[] = [];
  const artifacts = (profile?.evidenceTargets ?? []).flatMap((t) =>
    (ids[t.from as keyof typeof ids] ?? []).map((id) => {
      const artifact = { kind: t.artifact, id, attributes: { [t.from]: id, profile: m.profile } };
      partOf.push({ from: artifact, kind: 'part_of', to: { kind: t.from, id } });
      return artifact;
    }),
  );
  return { nodes, artifacts, partOf };
}

/** A tenant's own profile of that name, else the built-in one; undefined when there is none. */
async function profileSpec(profiles: ProfileRepository, tenantId: string, name: string): Promise<backlogV1.ProfileSpec | undefined> {
  if (!name) return undefined;
  const own = await profiles.get(tenantId, name);
  return own ? fromJson(backlogV1.ProfileSpecSchema, own.spec as JsonObject, { ignoreUnknownFields: true }) : BUILT_IN_PROFILES[name];
}

/** Edges attaching `what` to the run and its methodology nodes. */
function attach(what: GraphNode, run: RunRow, nodes: GraphNode[], artifacts: GraphNode[]): GraphEdge[] {
  return [{ kind: 'run', id: run.id }, ...nodes, ...artifacts].map((to) => ({ from: what, kind: ATTACHED_TO, to }));
}

/** The follow-up's evidence, attestation and Definition of Done steps. */
export function evidenceActivities(
  deps: GovernanceDeps,
  signing: () => SigningKey,
): Pick<FollowupActivities, 'packageEvidence' | 'attestRun' | 'evaluateDone'> {
  const runs = new RunRepository(deps.db);
  const plans = new PlanRepository(deps.db);
  const profiles = new ProfileRepository(deps.db);
  const gov = new GovernanceRepository(deps.db);

  return {
    async packageEvidence({ runId }) {
      const run = await finishedRun(runs, runId);
      const summary: RunSummaryJson = run.state.summary ?? {};
      const plan = await plans.get(run.tenantId, run.planId);
      const p = summary.provenance ?? {};
      const provenance = {
        runId: run.id,
        workflowId: run.workflowId,
        temporalRunId: p.temporalRunId ?? '',
        planId: run.planId,
        planVersion: run.planVersion,
        definitionId: run.definitionId,
        definitionName: run.spec.definitionName,
        definitionVersion: plan?.spec.definitionVersion ?? 0,
        repoUrl: plan?.spec.repo?.repoUrl ?? '',
        baseCommit: summary.baseCommit ?? '',
        headCommit: summary.headCommit ?? '',
        workerIdentity: p.workerIdentity ?? '',
        workerVersion: p.workerVersion ?? '',
        toolVersions: p.toolVersions ?? {},
      };
      const rows = await gov.addEvidence(
        run.id,
        (summary.evidence ?? []).map((e) => ({
          tenantId: run.tenantId,
          runId: run.id,
          kind: e.kind ?? '',
          name: e.name ?? '',
          uri: e.uri ?? '',
          sha256: e.sha256 ?? '',
          sizeBytes: Number(e.sizeBytes ?? 0),
          mediaType: e.mediaType ?? 'application/octet-stream',
          provenance,
        })),
      );
      const { nodes, artifacts, partOf } = await methodologyNodes(profiles, run);
      const runNode = { kind: 'run', id: run.id, attributes: { definition: run.spec.definitionName, status: short(run.status) } };
      await gov.link(run.tenantId, [
        ...nodes.filter((n) => n.kind === 'work_item').map((to) => ({ from: runNode, kind: 'implements', to })),
        // The artifact belongs to its timebox / goal (the sprint's Increment is the sprint's).
        ...partOf,
        ...rows.flatMap((e) => attach({ kind: 'evidence', id: e.id, attributes: { kind: e.kind, name: e.name } }, run, nodes, artifacts)),
      ]);
      return { evidence: rows.length };
    },

    async attestRun({ runId }) {
      const run = await finishedRun(runs, runId);
      const evidence = await gov.evidenceOfRun(run.id);
      if (!evidence.length) return { attestations: 0 };
      const summary: RunSummaryJson = run.state.summary ?? {};
      const plan = await plans.get(run.tenantId, run.planId);
      const key = signing();
      const { nodes, artifacts } = await methodologyNodes(profiles, run);
      const subjectsOf = (rows: EvidenceRow[]) => rows.map((e) => ({ name: e.name, digest: { sha256: e.sha256 } }));
      const p = summary.provenance ?? {};
      const repoUrl = plan?.spec.repo?.repoUrl ?? '';
      const predicates = [
        {
          subjects: evidence,
          ...slsaProvenance({
            builderId: `https://ameide.dev/worker/${encodeURIComponent(p.workerIdentity || 'unknown')}`,
            builderVersion: p.workerVersion || 'unknown',
            buildType: BUILD_TYPE,
            externalParameters: {
              plan: { id: run.planId, version: run.planVersion },
              definition: { id: run.definitionId, name: run.spec.definitionName, version: plan?.spec.definitionVersion ?? 0 },
              workItems: run.spec.workItemIds,
              methodology: run.spec.methodology,
              trigger: run.spec.trigger,
            },
            internalParameters: { toolVersions: p.toolVersions ?? {}, workflowId: run.workflowId, temporalRunId: p.temporalRunId ?? '' },
            resolvedDependencies: summary.baseCommit ? [{ uri: `git+${repoUrl}`, digest: { gitCommit: summary.baseCommit }, name: 'repository' }] : [],
            invocationId: run.id,
            startedOn: run.startedAt?.toISOString(),
            finishedOn: run.finishedAt?.toISOString(),
            byproducts: summary.headCommit ? [{ name: summary.branch ?? 'branch', uri: `git+${repoUrl}`, digest: { gitCommit: summary.headCommit } }] : [],
          }),
        },
      ];
      const tests = evidence.filter((e) => e.kind === 'test_report' || e.name === 'transcripts/test.log');
      if (summary.testExitCode !== undefined && tests.length) {
        const tr = summary.testReport;
        const failed = summary.testExitCode !== 0 || Number(tr?.failed ?? 0) > 0;
        predicates.push({
          subjects: tests,
          ...testResult({
            result: failed ? 'FAILED' : 'PASSED',
            configuration: plan ? [{ name: 'test_command', uri: `ameide:definition/${run.spec.definitionName}@${plan.spec.definitionVersion ?? 0}` }] : [],
            passedTests: [],
            warnedTests: [],
            failedTests: tr?.failingTests ?? (failed ? ['test_command'] : []),
          }),
        });
      }
      let stored = 0;
      for (const pr of predicates) {
        const envelope = signStatement(statement(subjectsOf(pr.subjects), pr.predicateType, pr.predicate), key);
        const row = await gov.addAttestation({
          tenantId: run.tenantId,
          runId: run.id,
          predicateType: pr.predicateType,
          subjects: pr.subjects.map((e) => ({ name: e.name, sha256: e.sha256 })),
          artifacts: artifacts.map((a) => ({ kind: a.kind, id: a.id })),
          keyId: key.keyid,
          development: key.development,
          envelope,
        });
        await gov.link(run.tenantId, attach({ kind: 'attestation', id: row.id, attributes: { predicateType: row.predicateType } }, run, nodes, artifacts));
        stored++;
      }
      return { attestations: stored };
    },

    async evaluateDone({ runId }) {
      const run = await finishedRun(runs, runId);
      if (run.state.done) return { met: Boolean(run.state.done.met) };
      const name = run.spec.methodology?.profile ?? '';
      const profile = await profileSpec(profiles, run.tenantId, name);
      const done = evaluateDone(run, profile?.doneRules.map((r) => r.kind) ?? DEFAULT_DONE_RULES, {
        evidence: await gov.evidenceOfRun(run.id),
        attestations: (await gov.attestationsOfRun(run.id)).length,
        artifacts: (await methodologyNodes(profiles, run)).artifacts,
      });
      await runs.setDone(run.id, { profile: name, ...done, evaluateTime: new Date().toISOString() });
      return { met: done.met };
    },
  };
}

/** What the evidence_attached rule looks at. */
interface EvidenceFacts {
  evidence: EvidenceRow[];
  attestations: number;
  artifacts: GraphNode[];
}

/**
 * Evaluates the Definition of Done on a finished run: `run_completed` (always first: a run that did
 * not complete its phases is not done), then the profile's rules in its order. Pure.
 */
export function evaluateDone(run: Pick<RunRow, 'status' | 'state'>, rules: string[], facts: EvidenceFacts): { met: boolean; rules: DoneRule[] } {
  const s: RunSummaryJson = run.state.summary ?? {};
  const check = (rule: string): DoneRule => {
    switch (rule) {
      case 'run_completed':
        return run.status === 'RUN_STATUS_COMPLETED'
          ? { rule, passed: true, detail: 'the run completed its phases' }
          : { rule, passed: false, detail: `the run ended ${short(run.status)}${run.state.error ? `: ${run.state.error}` : ''}` };
      case 'tests_passed': {
        if (s.testExitCode === undefined) return { rule, passed: false, detail: 'no test command ran' };
        const tr = s.testReport;
        if (tr && !tr.error) {
          const failed = tr.failed ?? 0;
          const counts = `${tr.passed ?? 0} passed, ${failed} failed, ${tr.skipped ?? 0} skipped`;
          const names = tr.failingTests?.length ? ` (${tr.failingTests.slice(0, 3).join(', ')}${tr.failingTests.length > 3 ? ', …' : ''})` : '';
          const passed = failed === 0 && s.testExitCode === 0;
          return { rule, passed, detail: passed ? counts : `${counts}${names}; test command exited ${s.testExitCode}` };
        }
        return { rule, passed: s.testExitCode === 0, detail: `test command exited ${s.testExitCode} (no test report)` };
      }
      case 'preview_live':
        return s.previewUrl ? { rule, passed: true, detail: `preview at ${s.previewUrl}` } : { rule, passed: false, detail: 'no preview went live' };
      case 'pull_request_opened': {
        const pr = s.pullRequest;
        return pr?.number
          ? { rule, passed: true, detail: `pull request #${pr.number} (${pr.provider}) ${pr.state}` }
          : { rule, passed: false, detail: 'no pull request was opened' };
      }
      case 'evidence_attached': {
        const where = facts.artifacts.length ? facts.artifacts.map((a) => `${a.kind} ${a.id}`).join(', ') : 'the work item';
        const n = facts.evidence.length;
        return n && facts.attestations
          ? { rule, passed: true, detail: `${n} evidence files and ${facts.attestations} signed attestations attached to ${where}` }
          : { rule, passed: false, detail: n ? 'evidence is not attested' : 'the run left no evidence' };
      }
      case 'no_policy_violation':
        return s.policyViolations?.length
          ? { rule, passed: false, detail: `policy violations: ${s.policyViolations.slice(0, 5).join(', ')}` }
          : { rule, passed: true, detail: 'no path outside the allowed paths changed' };
      case 'budget_not_exceeded':
        return s.budgetExceeded
          ? { rule, passed: false, detail: `budget exceeded: ${s.budgetExceeded}` }
          : { rule, passed: true, detail: 'within every budget' };
      default:
        return { rule, passed: false, detail: `unknown rule "${rule}"` };
    }
  };
  const results = ['run_completed', ...rules.filter((r) => r !== 'run_completed')].map(check);
  return { met: results.every((r) => r.passed), rules: results };
}
