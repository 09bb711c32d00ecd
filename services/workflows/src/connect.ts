import type { ConnectRouter } from '@connectrpc/connect';
import type { SandboxPolicy } from '@ameide/config';
import { EventEmitter } from 'node:events';
import { create } from '@bufbuild/protobuf';
import type { ServiceConfig } from '@ameide/config';
import { backlogV1, governanceV1, StartWorkflowRunRequestSchema, WorkflowService } from '@ameide/contracts';
import { DefinitionRepository, PlanRepository, PreviewRepository, PullRequestRepository, RunRepository, type Db } from '@ameide/db';
import type { ApprovalHandlers } from './handlers/approvals.js';
import type { BacklogHandlers } from './handlers/backlog.js';
import { DefinitionHandlers } from './handlers/definitions.js';
import { DiffHandlers } from './handlers/diff.js';
import { evidenceRoutes } from './handlers/evidence.js';
import { impedimentRoutes } from './handlers/impediments.js';
import { notificationRoutes } from './handlers/notifications.js';
import { outputRoutes } from './handlers/output.js';
import type { GovernanceDeps } from './governance/deps.js';
import type { Followups } from './governance/followups.js';
import type { SigningKeys } from './governance/signing.js';
import { PlanHandlers, Planner } from './handlers/plans.js';
import { PreviewHandlers } from './handlers/previews.js';
import { PullRequestHandlers } from './handlers/pull-requests.js';
import { RunHandlers } from './handlers/runs.js';
import { RunDiffs } from './runs/diff.js';
import { RunLanes } from './runs/lanes.js';
import { RunNotifier } from './runs/notifier.js';
import type { PreviewHosts } from './previews/hosts.js';
import type { PreviewRouteTable } from './previews/table.js';
import { registerReflection } from './reflection.js';
import type { RunLauncher } from './temporal/facade.js';

/** What the routes need. */
export interface RouteDeps {
  db: Db;
  launcher: RunLauncher;
  notifier?: RunNotifier;
  /** The operator's policy definitions and plans are held to. */
  policy: SandboxPolicy;
  /** The backlog service's handlers (shared with the work item webhook). */
  backlog: BacklogHandlers;
  /** ApprovePlan and RejectPlan (the approval gate of automation's plans). */
  approvals: ApprovalHandlers;
  /** Local previews' URLs, and the preview router's routes (when this process runs one). */
  previews: { hosts: PreviewHosts; routes?: PreviewRouteTable };
  /** The service's git cache, where GetRunDiff reads runs' changes (AMEIDE_SERVICE_GIT_DIR). */
  gitDir: string;
  /** Notification settings (defaults: no e-mail). */
  notifications?: ServiceConfig['notifications'];
  /** The keys attestations are signed with (GetSigningKeys). */
  signing?: SigningKeys;
  /** In-process events shared with the follow-up activities (e.g. new notifications). */
  events?: EventEmitter;
  /** Starts what follows runs' events (evidence, notifications, …). */
  followups?: Followups;
}

/** Notification settings when the caller gives none: in-app and webhooks, no e-mail. */
const DEFAULT_NOTIFICATIONS: ServiceConfig['notifications'] = {
  mailFrom: 'ameide@localhost',
  maxAttempts: 8,
  retryInitialMs: 2000,
  retryMaxMs: 300_000,
  publicUrl: 'http://127.0.0.1:8080',
};

/** What the governance handlers and activities need, from the route deps and the run handlers. */
export function governanceDeps(deps: RouteDeps, startRun: GovernanceDeps['startRun']): GovernanceDeps {
  return { db: deps.db, startRun, notifications: deps.notifications ?? DEFAULT_NOTIFICATIONS, events: deps.events ?? new EventEmitter().setMaxListeners(0) };
}

/** Registers WorkflowService, BacklogService and GovernanceService, and gRPC server reflection for them, on a Connect router. */
export function routes(deps: RouteDeps) {
  const definitions = new DefinitionRepository(deps.db);
  const plans = new PlanRepository(deps.db);
  const runs = new RunRepository(deps.db);
  const planner = new Planner(definitions, plans);
  const d = new DefinitionHandlers(definitions, deps.policy);
  const p = new PlanHandlers(planner, plans);
  const r = new RunHandlers(
    planner,
    plans,
    runs,
    deps.launcher,
    deps.notifier ?? new RunNotifier(),
    deps.policy,
    new RunLanes(runs, plans, deps.launcher),
    deps.followups,
  );
  const diff = new DiffHandlers(runs, plans, new RunDiffs({ dir: deps.gitDir }));
  const pr = new PullRequestHandlers(new PullRequestRepository(deps.db), runs);
  const gov = governanceDeps(deps, async (tenantId, req) => (await r.start(tenantId, create(StartWorkflowRunRequestSchema, req))).run!);
  const pv = new PreviewHandlers(new PreviewRepository(deps.db), runs, plans, deps.launcher, deps.previews.hosts, deps.previews.routes);
  const register = (router: ConnectRouter) => {
    router.service(WorkflowService, {
      createDefinition: d.createDefinition,
      applyDefinition: d.applyDefinition,
      getDefinition: d.getDefinition,
      listDefinitions: d.listDefinitions,
      deleteDefinition: d.deleteDefinition,
      createPlan: p.createPlan,
      getPlan: p.getPlan,
      listPlans: p.listPlans,
      diffPlans: p.diffPlans,
      startWorkflowRun: r.startWorkflowRun,
      getWorkflowRun: r.getWorkflowRun,
      listWorkflowRuns: r.listWorkflowRuns,
      cancelWorkflowRun: r.cancelWorkflowRun,
      watchWorkflowRun: (req, ctx) => r.watchWorkflowRun(req, ctx),
      recordStatusUpdate: r.recordStatusUpdate,
      recordStatusUpdates: r.recordStatusUpdates,
      getRunDiff: diff.getRunDiff,
      approvePlan: deps.approvals.approvePlan,
      rejectPlan: deps.approvals.rejectPlan,
      recordPreview: pv.recordPreview,
      listPreviews: pv.listPreviews,
      recordPullRequest: pr.recordPullRequest,
      getPullRequest: pr.getPullRequest,
      listPullRequests: pr.listPullRequests,
      ...outputRoutes(deps.db, runs),
    });
    const b = deps.backlog;
    router.service(backlogV1.BacklogService, {
      upsertWorkItem: b.upsertWorkItem,
      getWorkItem: b.getWorkItem,
      listWorkItems: b.listWorkItems,
      applyProfile: b.applyProfile,
      getProfile: b.getProfile,
      listProfiles: b.listProfiles,
    });
    router.service(governanceV1.GovernanceService, { ...evidenceRoutes(gov, deps.signing), ...impedimentRoutes(gov), ...notificationRoutes(gov) });
    registerReflection(router, [WorkflowService, backlogV1.BacklogService, governanceV1.GovernanceService]);
  };
  // The governance deps are shared with the follow-up activities this process serves.
  return Object.assign(register, { governance: gov });
}
