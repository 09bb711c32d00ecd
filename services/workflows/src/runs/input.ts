import type { PlanSpecJson } from '@ameide/contracts';
import type { PlanRow } from '@ameide/db';
import { resolveGuardrails, resolvePreview, resolvePullRequest, type CodingRunInput, type CommandPhase } from '@ameide/temporal';

/** Turns a stored plan into the plain workflow input (protobuf stops at the API edge). */
export function codingRunInput(runId: string, plan: PlanRow): CodingRunInput {
  const s: PlanSpecJson = plan.spec;
  const repo = s.repo ?? {};
  const m = s.methodology ?? {};
  return {
    runId,
    tenantId: plan.tenantId,
    planId: plan.id,
    planVersion: plan.version,
    definitionId: plan.definitionId,
    definitionName: s.definitionName ?? '',
    repo: {
      repoUrl: repo.repoUrl ?? '',
      defaultBranch: repo.defaultBranch || 'main',
      installCommand: repo.installCommand ?? '',
      agentCommand: repo.agentCommand ?? '',
      testCommand: repo.testCommand ?? '',
      branchPrefix: repo.branchPrefix || 'ameide/',
      phaseTimeoutSeconds: repo.phaseTimeoutSeconds || 900,
      env: repo.env ?? {},
      guardrails: resolveGuardrails(repo.guardrails),
      secrets: (repo.secrets ?? []).map((r) => ({
        name: r.name ?? '',
        phases: (r.phases ?? []).map((p) => p.replace('PHASE_', '').toLowerCase() as CommandPhase),
        fromEnv: r.fromEnv ?? '',
      })),
      preview: resolvePreview(repo.preview),
      pullRequest: resolvePullRequest(repo.pullRequest),
      testReports: repo.testReports ?? [],
    },
    workItems: (s.workItems ?? []).map((w) => ({
      id: w.id ?? '',
      title: w.title ?? '',
      description: w.description ?? '',
      acceptanceCriteria: w.acceptanceCriteria ?? [],
      contextLinks: w.contextLinks ?? [],
    })),
    methodology: {
      profile: m.profile ?? '',
      timeboxIds: m.timeboxIds ?? [],
      goalIds: m.goalIds ?? [],
      workItemIds: m.workItemIds ?? [],
      elementIds: m.elementIds ?? [],
    },
    trigger: s.trigger === 'TRIGGER_AUTO' ? 'auto' : 'manual',
  };
}
