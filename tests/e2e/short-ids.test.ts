import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code } from '@connectrpc/connect';
import type { Plan, Run } from '@ameide/contracts';
import { createGovernanceServiceClient } from '@ameide/sdk';
import { applySample, type Harness, MULTIPLY, refusal, sampleOrigin, startHarness } from '../support/harness.js';

/**
 * Short ids: a unique prefix (6 hex characters or more) of a run, plan or definition id is taken
 * wherever the API takes the id, within the caller's tenant. Rows with chosen ids (inserted into the
 * service's database) make the ambiguous cases deterministic. No worker: the runs stay queued.
 */
describe('short ids', () => {
  let h: Harness;
  let run: Run;
  let plan: Plan;
  let definitionId: string;
  /** A prefix no random id of this test shares (in practice): the rows made with it are the only ones. */
  const p = randomBytes(3).toString('hex');
  const chosen = (tail: string) => `${p}${tail}`;

  beforeAll(async () => {
    h = await startHarness();
    definitionId = (await applySample(h.acme, sampleOrigin(h))).id;
    plan = (await h.acme.createPlan({ definition: 'sample', workItems: [{ ...MULTIPLY, id: 'SHORT-1' }] })).plan!;
    run = (await h.acme.startWorkflowRun({ planId: plan.id })).run!;
    const db = h.app.database.pool;
    // Three runs, three plans and two definitions whose ids begin with p.
    for (const id of [chosen('01-0000-4000-8000-000000000001'), chosen('02-0000-4000-8000-000000000002'), chosen('7e-0000-4000-8000-000000000003')])
      await db.query(
        `insert into runs (id, tenant_id, plan_id, plan_version, definition_id, workflow_id, status, phase, spec, state)
         select $1::uuid, tenant_id, plan_id, plan_version, definition_id, 'coding-run-' || $1::text, status, phase, spec, state from runs where id = $2`,
        [id, run.id],
      );
    for (const id of [chosen('aa-1111-4000-8000-000000000001'), chosen('aa-2222-4000-8000-000000000002'), chosen('bb-0000-4000-8000-000000000003')])
      await db.query(
        `insert into plans (id, tenant_id, definition_id, version, spec, annotations) select $1::uuid, tenant_id, definition_id, version, spec, annotations from plans where id = $2`,
        [id, plan.id],
      );
    for (const [id, name] of [
      [chosen('cc-0000-4000-8000-000000000001'), 'short-one'],
      [chosen('cd-0000-4000-8000-000000000002'), 'short-two'],
    ])
      await db.query(`insert into definitions (id, tenant_id, name, spec) select $1::uuid, tenant_id, $2, spec from definitions where id = $3`, [
        id,
        name,
        definitionId,
      ]);
  });
  afterAll(() => h?.stop());

  it('takes a unique prefix of a run id wherever a run id goes', async () => {
    const short = run.id.slice(0, 8);
    expect((await h.acme.getWorkflowRun({ id: short })).run!.id).toBe(run.id);
    expect((await h.acme.getWorkflowRun({ id: run.id.slice(0, 6).toUpperCase() })).run!.id).toBe(run.id);
    expect((await h.acme.getWorkflowRun({ id: run.id.slice(0, 13) })).run!.id).toBe(run.id);
    expect((await h.acme.getWorkflowRun({ id: chosen('7e') })).run!.id).toBe(chosen('7e-0000-4000-8000-000000000003'));
    // Not finished: GetRunDiff found the run and says so (rather than NotFound).
    const diff = await refusal(h.acme.getRunDiff({ id: short }));
    expect(diff.code).toBe(Code.FailedPrecondition);
    expect(diff.rawMessage).toBe('the run has no change yet (status queued)');
    const cancelled = await h.acme.cancelWorkflowRun({ id: chosen('02') });
    expect(cancelled.run!.id).toBe(chosen('02-0000-4000-8000-000000000002'));
    const updates = [];
    for await (const u of h.acme.watchWorkflowRun({ id: chosen('02') })) updates.push(u);
    expect(updates).toEqual([]);
    // Another tenant's run is not found by its prefix either.
    expect((await refusal(h.globex.getWorkflowRun({ id: short }))).code).toBe(Code.NotFound);
  });

  it('takes a unique prefix of a plan id, and of a definition id (or its name)', async () => {
    const short = plan.id.slice(0, 8);
    expect((await h.acme.getPlan({ id: short })).plan!.id).toBe(plan.id);
    const started = (await h.acme.startWorkflowRun({ planId: short })).run!;
    expect(started.planId).toBe(plan.id);
    expect((await h.acme.diffPlans({ planId: short, otherPlanId: chosen('bb') })).toPlanId).toBe(chosen('bb-0000-4000-8000-000000000003'));
    const approve = await refusal(h.acme.approvePlan({ id: short }));
    expect([approve.code, approve.rawMessage]).toEqual([Code.FailedPrecondition, `plan ${plan.id} is not waiting for approval (approval: not required)`]);
    expect((await refusal(h.acme.rejectPlan({ id: short }))).code).toBe(Code.FailedPrecondition);

    expect((await h.acme.getDefinition({ idOrName: definitionId.slice(0, 8) })).definition!.id).toBe(definitionId);
    expect((await h.acme.getDefinition({ idOrName: chosen('cd') })).definition!.name).toBe('short-two');
    expect((await h.acme.getDefinition({ idOrName: 'short-one' })).definition!.id).toBe(chosen('cc-0000-4000-8000-000000000001'));
    const listed = await h.acme.listWorkflowRuns({ definition: definitionId.slice(0, 8) });
    expect(listed.runs.map((r) => r.id)).toContain(run.id);
  });

  it('refuses an ambiguous prefix, naming the field and listing the candidates', async () => {
    const runs = await refusal(h.acme.getWorkflowRun({ id: p }));
    expect(runs.code).toBe(Code.InvalidArgument);
    expect(runs.rawMessage).toBe(`id: "${p}" matches 3 runs: ${chosen('01')}…, ${chosen('02')}…, ${chosen('7e')}…; give more characters`);
    // Candidates sharing their first 8 characters are shown with as many as tell them apart.
    const plans = await refusal(h.acme.startWorkflowRun({ planId: chosen('aa') }));
    expect(plans.code).toBe(Code.InvalidArgument);
    expect(plans.rawMessage).toBe(`plan_id: "${chosen('aa')}" matches 2 plans: ${chosen('aa-1')}…, ${chosen('aa-2')}…; give more characters`);
    const defs = await refusal(h.acme.getDefinition({ idOrName: `${p}c` }));
    expect(defs.code).toBe(Code.InvalidArgument);
    expect(defs.rawMessage).toBe(`id_or_name: "${p}c" matches 2 definitions: ${chosen('cc')}…, ${chosen('cd')}…; give more characters`);
    expect((await refusal(h.acme.diffPlans({ planId: plan.id, otherPlanId: chosen('aa') }))).rawMessage).toMatch(/^other_plan_id: /);
  });

  it('takes a short run id in the run filters of lists and in StreamRunOutput', async () => {
    const short = run.id.slice(0, 8);
    const gov = createGovernanceServiceClient({ baseUrl: h.apiUrl, token: h.tokens.acme });
    // Nothing recorded for the queued run yet: the filters resolve the id (a wrong one would be refused) and list nothing.
    expect((await h.acme.listPreviews({ runId: short })).previews).toEqual([]);
    expect((await gov.listImpediments({ runId: short })).impediments).toEqual([]);
    expect((await gov.listDeliveries({ runId: short })).deliveries).toEqual([]);
    const chunks = [];
    for await (const c of h.acme.streamRunOutput({ runId: short })) chunks.push(c);
    expect(chunks).toEqual([]);
    // Ambiguous, unknown and malformed filters are refused naming the field.
    const ambiguous = await refusal(gov.listImpediments({ runId: p }));
    expect([ambiguous.code, ambiguous.rawMessage]).toEqual([
      Code.InvalidArgument,
      `run_id: "${p}" matches 3 runs: ${chosen('01')}…, ${chosen('02')}…, ${chosen('7e')}…; give more characters`,
    ]);
    const none = run.id.startsWith('ffffff') ? '000000' : 'ffffff';
    expect((await refusal(h.acme.listPreviews({ runId: none }))).code).toBe(Code.NotFound);
    const bad = await refusal(gov.listDeliveries({ runId: 'not a run' }));
    expect([bad.code, bad.rawMessage]).toEqual([Code.InvalidArgument, 'run_id: must be a run id or its first 6 or more characters']);
    const drain = async () => {
      for await (const c of h.acme.streamRunOutput({ runId: p })) void c;
    };
    expect((await refusal(drain())).code).toBe(Code.InvalidArgument);
    // Another tenant's run: not found.
    expect((await refusal(h.globex.listPreviews({ runId: short }))).code).toBe(Code.NotFound);
  });

  it('refuses a prefix shorter than 6 characters, and answers NotFound for one that matches nothing', async () => {
    const short = await refusal(h.acme.getWorkflowRun({ id: run.id.slice(0, 5) }));
    expect(short.code).toBe(Code.InvalidArgument);
    expect(short.rawMessage).toBe(`id: "${run.id.slice(0, 5)}" is too short: give the run id, or at least its first 6 characters`);
    expect((await refusal(h.acme.getPlan({ id: plan.id.slice(0, 5) }))).code).toBe(Code.InvalidArgument);
    // A definition's short value may be a name: unknown, not refused.
    expect((await refusal(h.acme.getDefinition({ idOrName: 'abc12' }))).code).toBe(Code.NotFound);
    const none = run.id.startsWith('ffffff') ? '000000' : 'ffffff';
    expect((await refusal(h.acme.getWorkflowRun({ id: none }))).code).toBe(Code.NotFound);
    expect((await refusal(h.acme.getWorkflowRun({ id: 'not-a-run' }))).code).toBe(Code.NotFound);
  });
});
