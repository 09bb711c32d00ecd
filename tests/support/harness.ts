import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, inject } from 'vitest';
import { loadServiceConfig, loadWorkerConfig, type WorkerConfig } from '@ameide/config';
import { createDatabase, createOrigin, freePort, SAMPLE_REPO, SCRIPTED_AGENT, sampleDefinition } from '@ameide/devstack';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { DefinitionSpecSchema } from '@ameide/contracts';
import { ConnectError, createWorkflowServiceClient, type WorkflowServiceClient } from '@ameide/sdk';
import { startWorkflowService, type WorkflowServiceApp } from '../../services/workflows/src/index.js';
import { createCodingWorker } from '../../services/workflows-runtime/src/index.js';

const REPO_ROOT = resolve(import.meta.dirname, '../..');

/** A workflow service (in this process, own database) and, optionally, a worker on its own task queue. */
export interface Harness {
  app: WorkflowServiceApp;
  apiUrl: string;
  /** The service's own database (another service may be started on it). */
  databaseUrl: string;
  taskQueue: string;
  dir: string;
  /** Clients for tenant "acme" (user), tenant "globex" (user) and the worker's service credential. */
  acme: WorkflowServiceClient;
  globex: WorkflowServiceClient;
  service: WorkflowServiceClient;
  /** `service` is the operator-wide worker credential; `globexService` a service credential of tenant globex only. */
  tokens: { acme: string; globex: string; service: string; globexService: string };
  /** The settings of this harness's workers (`startWorker` runs one with them). */
  workerConfig(): WorkerConfig;
  startWorker(): Promise<void>;
  /** Shuts the workers down (as a deploy does); the service keeps running. */
  stopWorkers(): Promise<void>;
  /** Stops the workflow service (an outage); the worker keeps running. */
  stopService(): Promise<void>;
  /** Starts the workflow service again on the same port and database. */
  startService(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The operator policy of the test stack: the sample definition mounts the scripted agent's folder
 * read-only, so that folder (and nothing else) is an allowed read-only path.
 */
export const TEST_POLICY = { AMEIDE_SANDBOX_READ_ONLY_PATHS: dirname(SCRIPTED_AGENT) };

const token = (p: string) => `${p}_${randomBytes(16).toString('hex')}`;

/** Fresh static API keys: users of tenants acme and globex, the operator-wide worker credential, a service credential of globex only. */
export function testTokens() {
  return { acme: token('acme'), globex: token('globex'), service: token('svc'), globexService: token('gsvc') };
}
export type TestTokens = ReturnType<typeof testTokens>;

/** The service's settings in a test stack: the API keys of `tokens`, the test policy, its own task queue and home. */
export function testServiceEnv(o: { databaseUrl: string; port: number; temporalAddress: string; taskQueue: string; tokens: TestTokens; dir: string }) {
  const t = o.tokens;
  return {
    DATABASE_URL: o.databaseUrl,
    AMEIDE_API_PORT: String(o.port),
    TEMPORAL_ADDRESS: o.temporalAddress,
    TEMPORAL_TASK_QUEUE: o.taskQueue,
    AMEIDE_API_KEYS: `${t.acme}:acme,${t.globex}:globex,${t.service}:*:service,${t.globexService}:globex:service`,
    AMEIDE_HOME: o.dir,
    AMEIDE_SERVICE_GIT_DIR: join(o.dir, 'service-git'),
    ...TEST_POLICY,
  };
}

/** The worker's settings in a test stack: workspaces and artifacts under `dir`, acme's DEPLOY_TOKEN secret, the test policy. */
export function testWorkerEnv(o: { apiUrl: string; serviceToken: string; temporalAddress: string; taskQueue: string; dir: string }) {
  return {
    AMEIDE_API_URL: o.apiUrl,
    AMEIDE_SERVICE_TOKEN: o.serviceToken,
    TEMPORAL_ADDRESS: o.temporalAddress,
    TEMPORAL_TASK_QUEUE: o.taskQueue,
    AMEIDE_WORKSPACE_DIR: join(o.dir, 'workspaces'),
    ARTIFACT_STORE_URL: pathToFileURL(join(o.dir, 'artifacts')).href,
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    AMEIDE_HOME: o.dir,
    // A secret the worker holds for tenant "acme" (definitions reference it as DEPLOY_TOKEN).
    [`AMEIDE_SECRET_ACME__DEPLOY_TOKEN`]: ACME_SECRET,
    ...TEST_POLICY,
  };
}

/** Extra settings: `serviceEnv` for the workflow service, `workerEnv` for the worker (operator policy, …). */
export interface HarnessOptions {
  worker?: boolean;
  serviceEnv?: Record<string, string>;
  workerEnv?: Record<string, string>;
}

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const id = randomUUID().slice(0, 8);
  const dir = join(inject('scratchDir'), `h-${id}`);
  mkdirSync(dir, { recursive: true });
  const databaseUrl = await createDatabase(inject('postgresUrl'), `test_${id}`);
  const taskQueue = `test-${id}`;
  const tokens = testTokens();
  const serviceConfig = (port: number) =>
    loadServiceConfig({
      ...testServiceEnv({ databaseUrl, port, temporalAddress: inject('temporalAddress'), taskQueue, tokens, dir }),
      ...opts.serviceEnv,
    });
  let app: WorkflowServiceApp | undefined = await startWorkflowService(serviceConfig(0));
  const apiUrl = app.server.url;
  const client = (t: string) => createWorkflowServiceClient({ baseUrl: apiUrl, token: t });
  const workerStops: Array<() => Promise<void>> = [];
  const h: Harness = {
    app,
    apiUrl,
    databaseUrl,
    taskQueue,
    dir,
    acme: client(tokens.acme),
    globex: client(tokens.globex),
    service: client(tokens.service),
    tokens,
    workerConfig: () =>
      loadWorkerConfig({
        ...testWorkerEnv({ apiUrl, serviceToken: tokens.service, temporalAddress: inject('temporalAddress'), taskQueue, dir }),
        ...opts.workerEnv,
      }),
    async startWorker() {
      const worker = await createCodingWorker(h.workerConfig());
      const running = worker.run();
      workerStops.push(async () => {
        worker.shutdown();
        await running;
        await worker.connection.close();
      });
    },
    async stopWorkers() {
      for (const s of workerStops.splice(0).reverse()) await s();
    },
    async stopService() {
      await app?.stop();
      app = undefined;
    },
    async startService() {
      app ??= await startWorkflowService(serviceConfig(Number(new URL(apiUrl).port)));
      h.app = app;
    },
    async stop() {
      await h.stopWorkers();
      await app?.stop();
    },
  };
  if (opts.worker) await h.startWorker();
  return h;
}

/**
 * A harness whose service runs the preview router (`h.app.preview.port`) on a free port; a port another
 * process takes before the service binds it is picked again (a few attempts).
 */
export async function startHarnessWithRouter(opts: HarnessOptions = {}): Promise<Harness> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startHarness({ ...opts, serviceEnv: { ...opts.serviceEnv, AMEIDE_PREVIEW_PORT: String(await freePort()) } });
    } catch (err) {
      if (attempt >= 4 || !/is in use; set AMEIDE_PREVIEW_PORT/.test((err as Error).message)) throw err;
    }
  }
}

/**
 * For one describe block: a harness (with a worker unless told otherwise) and a sample origin,
 * started before its tests and stopped after them; `assign` receives both once they are up.
 */
export function useHarnessWithOrigin(assign: (started: { h: Harness; origin: string }) => void, opts: HarnessOptions = { worker: true }): void {
  let h: Harness | undefined;
  beforeAll(async () => {
    h = await startHarness(opts);
    assign({ h, origin: sampleOrigin(h) });
  });
  afterAll(() => h?.stop());
}

/** A throwaway bare origin holding the sample repository, like a hosted repo. */
export function sampleOrigin(h: Harness, name = 'origin'): string {
  return createOrigin(SAMPLE_REPO, join(h.dir, `${name}.git`));
}

/** Applies the sample definition for `origin`, with spec overrides. */
export async function applySample(
  client: WorkflowServiceClient,
  origin: string,
  overrides: Omit<MessageInitShape<typeof DefinitionSpecSchema>, '$typeName'> = {},
  name = 'sample',
) {
  const def = sampleDefinition(origin, name);
  // Guardrails merge, so a test can change one budget and keep the sample's read-only agent folder.
  const guardrails = { ...def.spec.guardrails, ...(overrides.guardrails as object | undefined) };
  const res = await client.applyDefinition({
    name,
    annotations: def.annotations,
    spec: create(DefinitionSpecSchema, { ...def.spec, ...overrides, guardrails }),
  });
  return res.definition!;
}

/**
 * Status updates of a completed run of the sample definition: run_started, phase_started and
 * phase_finished of prepare, install, agent, test, publish, pull_request and report, the
 * pull_request_opened (or _updated) of its pull request, and run_finished. A phase skipped for want
 * of a command sends only its phase_finished (one fewer).
 */
export const COMPLETED_RUN_UPDATES = 17;

/**
 * Runs the `ameide` CLI as a user would: the bundled binary (built once by the global setup), a process
 * of its own, as tenant acme of `h`. Asynchronous on purpose: the service under test runs in this
 * process and must keep answering.
 */
export function runCli(h: Pick<Harness, 'apiUrl' | 'tokens'>, ...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = execFile(
      inject('ameideCli'),
      args,
      { cwd: REPO_ROOT, env: { PATH: process.env.PATH!, HOME: process.env.HOME!, AMEIDE_API_URL: h.apiUrl, AMEIDE_TOKEN: h.tokens.acme }, timeout: 120_000 },
      (_err, stdout, stderr) => done({ status: child.exitCode, stdout, stderr: stderr.trim() }),
    );
  });
}

/** The value of tenant acme's DEPLOY_TOKEN secret on the test worker. */
export const ACME_SECRET = 'sk_live_7hQ2pZ9wX4vB1nM8';

/** The work item the scripted agent knows how to do. */
export const MULTIPLY = {
  id: 'CALC-1',
  title: 'Add a multiply function',
  description: 'Users need to multiply.',
  acceptanceCriteria: ['multiply(6, 7) returns 42'],
  contextLinks: ['https://example.com/adr/1'],
};

/** Follows a run to its end and returns every update received. */
export async function watchAll(client: WorkflowServiceClient, id: string, from = 0n) {
  const updates = [];
  for await (const res of client.watchWorkflowRun({ id, fromSequence: from })) updates.push(res.update!);
  return updates;
}

/** The ConnectError a call fails with; fails the test if the call succeeds. */
export async function refusal(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error('the call succeeded');
}
