import http from 'node:http';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadServiceConfig } from '@ameide/config';
import { create } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createGrpcWebTransport } from '@connectrpc/connect-node';
import { DefinitionSpecSchema, WorkflowService, RunStatus, StatusUpdateKind, Phase, type StatusUpdate } from '@ameide/contracts';
import { createBearerInterceptor, createWorkflowServiceClient } from '@ameide/sdk';
import { applySample, MULTIPLY, startHarness, watchAll, type Harness } from '../../../../tests/support/harness.js';
import { startWorkflowService } from '../../src/index.js';

/** The API against a real Postgres and a real Temporal server, with no worker polling the queue. */
describe('workflow service API', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h?.stop());

  const code = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (err) {
      return ConnectError.from(err);
    }
    throw new Error('expected the call to fail');
  };

  it('rejects calls without a valid bearer token', async () => {
    const anon = createWorkflowServiceClient({ baseUrl: h.apiUrl, token: 'not-a-key' });
    const err = await code(anon.listDefinitions({}));
    expect(err.code).toBe(Code.Unauthenticated);
  });

  it('answers Connect over HTTP/1.1, gRPC over h2c and gRPC-Web on the same port', async () => {
    await applySample(h.acme, '/srv/repos/proto-check.git', {}, 'proto-check');
    const grpc = createWorkflowServiceClient({ baseUrl: h.apiUrl, token: h.tokens.acme, protocol: 'grpc' });
    expect((await grpc.getDefinition({ idOrName: 'proto-check' })).definition!.spec!.repoUrl).toBe('/srv/repos/proto-check.git');
    const web = createClient(
      WorkflowService,
      createGrpcWebTransport({ baseUrl: h.apiUrl, httpVersion: '1.1', interceptors: [createBearerInterceptor(h.tokens.acme)] }),
    );
    expect((await web.getDefinition({ idOrName: 'proto-check' })).definition!.name).toBe('proto-check');
    expect((await code(grpc.getDefinition({ idOrName: 'missing' }))).code).toBe(Code.NotFound);
  });

  it('compresses a large answer with the compression the caller accepts (gzip, br, none), each decoding to the same', async () => {
    for (let i = 0; i < 6; i++) await applySample(h.acme, `/srv/repos/compressed-${i}.git`, {}, `compressed-${i}`);
    const call = (encoding?: string) =>
      new Promise<{ encoding: string | undefined; body: Buffer }>((resolve, reject) => {
        const req = http.request(
          `${h.apiUrl}/ameide.workflows.v1.WorkflowService/ListDefinitions`,
          {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              authorization: `Bearer ${h.tokens.acme}`,
              ...(encoding ? { 'accept-encoding': encoding } : {}),
            },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve({ encoding: res.headers['content-encoding'], body: Buffer.concat(chunks) }));
          },
        );
        req.on('error', reject);
        req.end('{}');
      });
    const plain = await call();
    expect(plain.encoding).toBeUndefined();
    const listed = JSON.parse(plain.body.toString()) as { definitions: unknown[] };
    expect(listed.definitions.length).toBeGreaterThanOrEqual(6);
    const gzip = await call('gzip');
    expect(gzip.encoding).toBe('gzip');
    expect(gzip.body.length).toBeLessThan(plain.body.length / 2);
    expect(JSON.parse(zlib.gunzipSync(gzip.body).toString())).toEqual(listed);
    const br = await call('br');
    expect(br.encoding).toBe('br');
    expect(JSON.parse(zlib.brotliDecompressSync(br.body).toString())).toEqual(listed);
  });

  it('versions definitions on apply and keeps them per tenant', async () => {
    const first = await applySample(h.acme, '/srv/repos/a.git', {}, 'versioned');
    const same = await h.acme.applyDefinition({ name: 'versioned', spec: first.spec, annotations: first.annotations });
    expect(same.changed).toBe(false);
    expect(same.definition!.version).toBe(1);
    const changed = await applySample(h.acme, '/srv/repos/a.git', { testCommand: 'npm run test:ci' }, 'versioned');
    expect(changed.version).toBe(2);

    // Another tenant neither sees it by name nor by id, and may use the same name.
    expect((await code(h.globex.getDefinition({ idOrName: 'versioned' }))).code).toBe(Code.NotFound);
    expect((await code(h.globex.getDefinition({ idOrName: first.id }))).code).toBe(Code.NotFound);
    expect((await h.globex.listDefinitions({})).definitions).toHaveLength(0);
    const theirs = await applySample(h.globex, '/srv/repos/b.git', {}, 'versioned');
    expect(theirs.id).not.toBe(first.id);
    expect((await h.acme.getDefinition({ idOrName: 'versioned' })).definition!.spec!.repoUrl).toBe('/srv/repos/a.git');
  });

  it('rejects bad input with InvalidArgument naming the field, and keeps what is stored', async () => {
    const before = await applySample(h.acme, '/srv/repos/keep.git', {}, 'keep');
    const bad = create(DefinitionSpecSchema, { ...before.spec!, repoUrl: '' });
    const err = await code(h.acme.applyDefinition({ name: 'keep', spec: bad }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.rawMessage).toBe('spec.repo_url: must not be empty');
    const badName = await code(h.acme.applyDefinition({ name: 'Has Spaces', spec: before.spec }));
    expect(badName.rawMessage).toMatch(/^name: /);
    const badEnv = await code(h.acme.applyDefinition({ name: 'keep', spec: create(DefinitionSpecSchema, { ...before.spec!, env: { 'BAD-NAME': 'x' } }) }));
    expect(badEnv.rawMessage).toBe('spec.env.BAD-NAME: is not a valid environment variable name');
    const minimal = { repoUrl: '/srv/repos/keep.git', agentCommand: 'true' };
    const badSandbox = await code(
      h.acme.applyDefinition({ name: 'keep', spec: create(DefinitionSpecSchema, { ...minimal, guardrails: { sandbox: 'docker' } }) }),
    );
    expect(badSandbox.rawMessage).toBe('spec.guardrails.sandbox: must be "bubblewrap" or "none"');
    const badSecret = await code(
      h.acme.applyDefinition({
        name: 'keep',
        spec: create(DefinitionSpecSchema, { ...minimal, secrets: [{ name: 'TOKEN', fromEnv: 'TOKEN', phases: [Phase.PUBLISH] }] }),
      }),
    );
    expect(badSecret.rawMessage).toBe('spec.secrets[0].phases: must name one or more of install, agent, test, preview');
    const after = (await h.acme.getDefinition({ idOrName: 'keep' })).definition!;
    expect(after.version).toBe(before.version);
    expect(after.spec!.repoUrl).toBe('/srv/repos/keep.git');

    expect((await code(h.acme.startWorkflowRun({}))).rawMessage).toMatch(/^plan_id: /);
    const badItem = await code(h.acme.startWorkflowRun({ definition: 'keep', workItems: [{ ...MULTIPLY, id: '' }] }));
    expect(badItem.rawMessage).toMatch(/^work_items\[0\]\.id: /);
    expect((await code(h.acme.getWorkflowRun({ id: 'nope' }))).code).toBe(Code.NotFound);
  });

  it("holds definitions and stored plans to the operator's policy, naming the field and the setting", async () => {
    const minimal = { repoUrl: '/srv/repos/policy.git', agentCommand: 'true' };
    const egress = await code(
      h.acme.applyDefinition({ name: 'policy', spec: create(DefinitionSpecSchema, { ...minimal, guardrails: { egressHosts: ['evil.example.com'] } }) }),
    );
    expect(egress.code).toBe(Code.InvalidArgument);
    expect(egress.rawMessage).toMatch(/^spec\.guardrails\.egress_hosts\[0\]: is outside the operator's egress allowlist \(AMEIDE_EGRESS_ALLOWED_HOSTS: /);
    const literal = await code(
      h.acme.applyDefinition({ name: 'policy', spec: create(DefinitionSpecSchema, { ...minimal, guardrails: { egressHosts: ['10.0.0.1'] } }) }),
    );
    expect(literal.rawMessage).toBe('spec.guardrails.egress_hosts[0]: must be a host name or *.domain');
    const ok = await h.acme.applyDefinition({
      name: 'policy',
      spec: create(DefinitionSpecSchema, { ...minimal, guardrails: { egressHosts: ['registry.npmjs.org'] } }),
    });
    expect(ok.definition!.spec!.guardrails!.egressHosts).toEqual(['registry.npmjs.org']);

    // A plan made while the operator allowed running without a sandbox does not run once that is withdrawn.
    const loose = await startWorkflowService(
      loadServiceConfig({
        DATABASE_URL: h.databaseUrl,
        AMEIDE_API_PORT: '0',
        TEMPORAL_ADDRESS: inject('temporalAddress'),
        TEMPORAL_TASK_QUEUE: h.taskQueue,
        AMEIDE_API_KEYS: `${h.tokens.acme}:acme`,
        AMEIDE_SANDBOX_ALLOW_NONE: 'true',
      }),
    );
    try {
      const client = createWorkflowServiceClient({ baseUrl: loose.server.url, token: h.tokens.acme });
      await client.applyDefinition({ name: 'unsandboxed', spec: create(DefinitionSpecSchema, { ...minimal, guardrails: { sandbox: 'none' } }) });
      const plan = (await client.createPlan({ definition: 'unsandboxed', workItems: [MULTIPLY] })).plan!;
      const refused = await code(h.acme.startWorkflowRun({ planId: plan.id }));
      expect(refused.code).toBe(Code.InvalidArgument);
      expect(refused.rawMessage).toMatch(/^plan\.spec\.repo\.guardrails\.sandbox: .*AMEIDE_SANDBOX_ALLOW_NONE/);
      const runs = (await h.acme.listWorkflowRuns({})).runs;
      expect(runs.some((r) => r.planId === plan.id)).toBe(false);
    } finally {
      await loose.stop();
    }
  });

  it('starts runs on Temporal, lists them by work item, status and definition, and isolates tenants', async () => {
    await applySample(h.acme, '/srv/repos/runs.git', {}, 'runs');
    const a = (await h.acme.startWorkflowRun({ definition: 'runs', workItems: [{ ...MULTIPLY, id: 'WI-1' }] })).run!;
    const b = (await h.acme.startWorkflowRun({ definition: 'runs', workItems: [{ ...MULTIPLY, id: 'WI-2' }], methodology: { workItemIds: ['WI-3'] } })).run!;
    expect(a.status).toBe(RunStatus.QUEUED);
    expect(b.methodology!.workItemIds).toEqual(['WI-3', 'WI-2']);

    const byItem = await h.acme.listWorkflowRuns({ workItemId: 'WI-2' });
    expect(byItem.runs.map((r) => r.id)).toEqual([b.id]);
    expect((await h.acme.listWorkflowRuns({ workItemId: 'WI-3' })).runs.map((r) => r.id)).toEqual([b.id]);
    expect((await h.acme.listWorkflowRuns({ definition: 'runs', statuses: [RunStatus.QUEUED] })).runs).toHaveLength(2);
    expect((await h.acme.listWorkflowRuns({ statuses: [RunStatus.COMPLETED] })).runs).toHaveLength(0);

    expect((await code(h.globex.getWorkflowRun({ id: a.id }))).code).toBe(Code.NotFound);
    expect((await code(h.globex.cancelWorkflowRun({ id: a.id }))).code).toBe(Code.NotFound);
    expect((await code(watchAll(h.globex, a.id))).code).toBe(Code.NotFound);
    expect((await h.globex.listWorkflowRuns({ workItemId: 'WI-1' })).runs).toHaveLength(0);

    // The plan behind the run carries the methodology context.
    const plan = (await h.acme.getPlan({ id: a.planId })).plan!;
    expect(plan.spec!.methodology!.workItemIds).toEqual(['WI-1']);
    expect(plan.spec!.repo!.repoUrl).toBe('/srv/repos/runs.git');
    expect((await h.acme.listPlans({ workItemId: 'WI-1' })).plans.map((p) => p.id)).toEqual([a.planId]);
    expect((await code(h.globex.getPlan({ id: a.planId }))).code).toBe(Code.NotFound);
  });

  it('stores a duplicate status update once, and only accepts updates from the service credential', async () => {
    await applySample(h.acme, '/srv/repos/status.git', {}, 'status');
    const run = (await h.acme.startWorkflowRun({ definition: 'status' })).run!;
    const update = (sequence: bigint, extra: Omit<Partial<StatusUpdate>, '$typeName'> = {}) => ({
      update: { runId: run.id, sequence, kind: StatusUpdateKind.PHASE_STARTED, phase: Phase.PREPARE, ...extra },
    });
    const forbidden = await code(h.acme.recordStatusUpdate(update(1n)));
    expect(forbidden.code).toBe(Code.PermissionDenied);
    // A service credential of another tenant may not report on acme's run, and changes nothing.
    const globexService = createWorkflowServiceClient({ baseUrl: h.apiUrl, token: h.tokens.globexService });
    const crossTenant = await code(globexService.recordStatusUpdate(update(1n, { kind: StatusUpdateKind.RUN_FINISHED, runStatus: RunStatus.COMPLETED })));
    expect(crossTenant.code).toBe(Code.PermissionDenied);
    expect(crossTenant.rawMessage).toMatch(/reports for tenant "globex" only/);
    expect((await h.acme.getWorkflowRun({ id: run.id })).run!.status).toBe(RunStatus.QUEUED);

    expect((await h.service.recordStatusUpdate(update(1n))).duplicate).toBe(false);
    expect((await h.service.recordStatusUpdate(update(1n, { phase: Phase.TEST }))).duplicate).toBe(true);
    await h.service.recordStatusUpdate(update(2n, { kind: StatusUpdateKind.RUN_FINISHED, runStatus: RunStatus.FAILED, message: 'boom' }));

    const updates = await watchAll(h.acme, run.id);
    expect(updates.map((u) => [Number(u.sequence), u.kind, u.phase])).toEqual([
      [1, StatusUpdateKind.PHASE_STARTED, Phase.PREPARE],
      [2, StatusUpdateKind.RUN_FINISHED, Phase.PREPARE],
    ]);
    const stored = (await h.acme.getWorkflowRun({ id: run.id })).run!;
    expect(stored.status).toBe(RunStatus.FAILED);
    expect(stored.error).toBe('boom');
    expect(stored.lastSequence).toBe(2n);
    expect((await code(h.service.recordStatusUpdate(update(0n)))).code).toBe(Code.InvalidArgument);
  });

  it('ends a watch at the final update even when an earlier update never arrived, and stores NUL bytes escaped', async () => {
    await applySample(h.acme, '/srv/repos/gap.git', {}, 'gap');
    const run = (await h.acme.startWorkflowRun({ definition: 'gap' })).run!;
    const update = (sequence: bigint, extra: Omit<Partial<StatusUpdate>, '$typeName'> = {}) => ({
      update: { runId: run.id, sequence, kind: StatusUpdateKind.PHASE_STARTED, phase: Phase.PREPARE, ...extra },
    });
    await h.service.recordStatusUpdate(update(1n, { kind: StatusUpdateKind.RUN_STARTED, runStatus: RunStatus.RUNNING }));
    // Sequence 2 was refused for good; 3 is the run's final update.
    await h.service.recordStatusUpdate(update(3n, { kind: StatusUpdateKind.RUN_FINISHED, runStatus: RunStatus.COMPLETED, message: 'a\u0000b' }));
    const watched = await Promise.race([watchAll(h.acme, run.id), new Promise<'hung'>((r) => setTimeout(() => r('hung'), 10_000))]);
    expect(watched).not.toBe('hung');
    expect((watched as StatusUpdate[]).map((u) => Number(u.sequence))).toEqual([1, 3]);
    expect((watched as StatusUpdate[])[1]!.message).toBe('a\u2400b');
    expect((await h.acme.getWorkflowRun({ id: run.id })).run!.status).toBe(RunStatus.COMPLETED);
  });

  it('streams updates live to a watcher that joined before they were recorded', async () => {
    await applySample(h.acme, '/srv/repos/live.git', {}, 'live');
    const run = (await h.acme.startWorkflowRun({ definition: 'live' })).run!;
    const watching = watchAll(h.acme, run.id);
    await new Promise((r) => setTimeout(r, 300));
    for (let i = 1n; i <= 3n; i++) {
      await h.service.recordStatusUpdate({ update: { runId: run.id, sequence: i, kind: StatusUpdateKind.PHASE_STARTED, phase: Number(i) } });
    }
    await h.service.recordStatusUpdate({ update: { runId: run.id, sequence: 4n, kind: StatusUpdateKind.RUN_FINISHED, runStatus: RunStatus.COMPLETED } });
    const updates = await watching;
    expect(updates.map((u) => Number(u.sequence))).toEqual([1, 2, 3, 4]);
  });
});
