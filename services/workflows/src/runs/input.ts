import type { PlanSpecJson } from '@ameide/contracts';
import type { Annotations, PlanRow } from '@ameide/db';
import {
  modelEndpointOf,
  modelOnlyNetwork,
  resolveAgent,
  resolveGuardrails,
  resolvePreview,
  resolvePullRequest,
  type CodingRunInput,
  type CommandPhase,
  type PreviousAttempt,
} from '@ameide/temporal';
import { RERUN_HANDOFF_REASON, RERUN_HANDOFF_URI, RERUN_NOTE, RERUN_OF } from '../impediments/cause.js';

/**
 * Turns a stored plan into the plain workflow input (protobuf stops at the API edge). The run's
 * annotations say whether it reruns an attempt an impediment handed back to the agent.
 */
export function codingRunInput(runId: string, plan: PlanRow, annotations: Annotations = {}): CodingRunInput {
  const s: PlanSpecJson = plan.spec;
  const repo = s.repo ?? {};
  const m = s.methodology ?? {};
  const guardrails = resolveGuardrails(repo.guardrails);
  const agent = resolveAgent(repo.agent);
  // The model endpoint is a destination of the agent phase in network mode `model`, or beside the allowlist when it is online.
  const endpoint = modelOnlyNetwork(repo.agent, repo.guardrails?.network) || guardrails.network.agent ? modelEndpointOf(repo.agent?.endpoint) : undefined;
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
      guardrails,
      secrets: (repo.secrets ?? []).map((r) => ({
        name: r.name ?? '',
        phases: (r.phases ?? []).map((p) => p.replace('PHASE_', '').toLowerCase() as CommandPhase),
        fromEnv: r.fromEnv ?? '',
      })),
      preview: resolvePreview(repo.preview),
      pullRequest: resolvePullRequest(repo.pullRequest),
      testReports: repo.testReports ?? [],
      ...(agent ? { agent } : {}),
      ...(endpoint ? { modelEndpoint: endpoint } : {}),
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
    ...previousAttempt(annotations),
  };
}

/** The attempt a rerun retries, from the annotations ReassignImpediment gave it. */
function previousAttempt(a: Annotations): { previousAttempt?: PreviousAttempt } {
  const runId = a[RERUN_OF];
  if (!runId) return {};
  const p: PreviousAttempt = { runId, reason: a[RERUN_HANDOFF_REASON] ?? '', handoffUri: a[RERUN_HANDOFF_URI] ?? '' };
  if (a[RERUN_NOTE]) p.note = a[RERUN_NOTE];
  return { previousAttempt: p };
}
