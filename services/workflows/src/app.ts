import type { ServiceConfig } from '@ameide/config';
import {
  DefinitionRepository,
  DeliveryRepository,
  ImpedimentRepository,
  openDatabase,
  PlanRepository,
  PreviewRepository,
  ProfileRepository,
  RunRepository,
  WorkItemRepository,
  type Database,
} from '@ameide/db';
import { EventEmitter } from 'node:events';
import { BacklogAutomation } from './backlog/automation.js';
import { WEBHOOK_PATH, workItemWebhook } from './backlog/webhook.js';
import { ApprovalHandlers } from './handlers/approvals.js';
import { BacklogHandlers } from './handlers/backlog.js';
import { createAuthenticator } from './auth.js';
import { routes } from './connect.js';
import { PreviewHosts } from './previews/hosts.js';
import { startPreviewRouter, type PreviewRouter } from './previews/router.js';
import { PreviewRouteTable } from './previews/table.js';
import { startApiServer, type ApiServer } from './server.js';
import { createFollowupActivities } from './governance/activities.js';
import { Followups } from './governance/followups.js';
import { SigningKeys } from './governance/signing.js';
import { startFollowupWorker, type FollowupWorker } from './governance/worker.js';
import { RunReconciler } from './runs/reconciler.js';
import { TemporalFacade } from './temporal/facade.js';

/** The running workflow service: API server, database pool and Temporal client. */
export interface WorkflowServiceApp {
  server: ApiServer;
  database: Database;
  temporal: TemporalFacade;
  /** The preview router, when AMEIDE_PREVIEW_PORT is set. */
  preview?: PreviewRouter;
  stop(): Promise<void>;
}

/** Connects to Postgres (applying migrations) and Temporal, then serves the API. */
export async function startWorkflowService(cfg: ServiceConfig): Promise<WorkflowServiceApp> {
  // A signing key that cannot be used stops the service before anything else.
  const signing = SigningKeys.load(cfg.signing);
  const database = await openDatabase(cfg.databaseUrl);
  let temporal: TemporalFacade;
  try {
    temporal = await TemporalFacade.connect(cfg.temporal);
  } catch (err) {
    await database.close();
    throw err;
  }
  const db = database.db;
  const automation = new BacklogAutomation(db, temporal);
  const backlog = new BacklogHandlers(
    new WorkItemRepository(db),
    new ProfileRepository(db),
    new DefinitionRepository(db),
    automation,
    new ImpedimentRepository(db),
  );
  // Local previews' URLs, and the router that serves them (AMEIDE_PREVIEW_PORT; 0: none).
  const previewHosts = new PreviewHosts(cfg.preview.domain, cfg.preview.urlPort);
  const previewRoutes = cfg.preview.port ? new PreviewRouteTable(new PreviewRepository(db)) : undefined;
  const followups = new Followups(new RunRepository(db), temporal, { taskQueue: cfg.temporal.taskQueue, notifications: cfg.notifications });
  const api = routes({
    db,
    launcher: temporal,
    policy: cfg.policy,
    backlog,
    approvals: new ApprovalHandlers(new PlanRepository(db), automation),
    gitDir: cfg.gitDir,
    previews: { hosts: previewHosts, routes: previewRoutes },
    notifications: cfg.notifications,
    signing,
    events: new EventEmitter().setMaxListeners(0),
    followups,
  });
  const server = await startApiServer({
    routes: api,
    http: {
      [WEBHOOK_PATH]: workItemWebhook({
        secrets: cfg.webhookSecrets,
        deliveries: new DeliveryRepository(db),
        upsert: (tenantId, req) => backlog.upsert(tenantId, req),
      }),
    },
    authenticate: createAuthenticator(cfg.auth),
    host: cfg.host,
    port: cfg.port,
    timeouts: cfg.timeouts,
  }).catch(async (err: NodeJS.ErrnoException) => {
    await Promise.all([database.close(), temporal.close()]);
    if (err.code === 'EADDRINUSE') throw Object.assign(new Error(`port ${cfg.port} is in use; set AMEIDE_API_PORT`), { expected: true });
    throw err;
  });
  const preview = previewRoutes
    ? await startPreviewRouter({
        host: cfg.host,
        port: cfg.preview.port,
        hosts: previewHosts,
        routes: previewRoutes,
        headersTimeoutMs: cfg.timeouts.headersMs,
      }).catch(async (err: NodeJS.ErrnoException) => {
        await server.close();
        await Promise.all([database.close(), temporal.close()]);
        if (err.code === 'EADDRINUSE') throw Object.assign(new Error(`port ${cfg.preview.port} is in use; set AMEIDE_PREVIEW_PORT`), { expected: true });
        throw err;
      })
    : undefined;
  // What follows runs (evidence, attestations, DoD, impediments, notifications) runs here: this process owns Postgres.
  let followupWorker: FollowupWorker;
  try {
    followupWorker = await startFollowupWorker(cfg.temporal, createFollowupActivities(api.governance, signing));
  } catch (err) {
    await Promise.all([server.close(), preview?.close()]);
    await Promise.all([database.close(), temporal.close()]);
    throw err;
  }
  const reconciler = new RunReconciler(
    new RunRepository(db),
    new PlanRepository(db),
    temporal,
    cfg.reconcileSeconds * 1000,
    { items: new WorkItemRepository(db), automation },
    followups,
  );
  reconciler.start(cfg.reconcileSeconds * 1000);
  return {
    server,
    database,
    temporal,
    preview,
    async stop() {
      await reconciler.stop();
      await followupWorker.stop();
      await Promise.all([server.close(), preview?.close()]);
      await Promise.all([database.close(), temporal.close()]);
    },
  };
}
