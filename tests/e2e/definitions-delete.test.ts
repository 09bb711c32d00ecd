import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code } from '@connectrpc/connect';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import type { Definition } from '@ameide/contracts';
import { applySample, type Harness, MULTIPLY, refusal, sampleOrigin, startHarness } from '../support/harness.js';

/**
 * DeleteDefinition: the definition leaves the lists and frees its name; what was made from it (plans,
 * runs) keeps working and still names it; no new plan can be made from it. No worker: runs stay queued.
 */
describe('deleting a definition', () => {
  let h: Harness;
  let old: Definition;

  beforeAll(async () => {
    h = await startHarness();
    old = await applySample(h.acme, sampleOrigin(h));
  });
  afterAll(() => h?.stop());

  it('frees the name, keeps the plans and runs made from it, and refuses new plans from it', async () => {
    const plan = (await h.acme.createPlan({ definition: 'sample', workItems: [{ ...MULTIPLY, id: 'DEL-1' }] })).plan!;
    const run = (await h.acme.startWorkflowRun({ planId: plan.id })).run!;

    const deleted = (await h.acme.deleteDefinition({ idOrName: old.id.slice(0, 8) })).definition!;
    expect(deleted.id).toBe(old.id);
    expect(timestampDate(deleted.deleteTime!).getTime()).toBeGreaterThan(Date.now() - 60_000);

    // Gone from the list and by name; still there by id (and with --deleted), marked deleted.
    expect((await h.acme.listDefinitions({})).definitions.map((d) => d.name)).not.toContain('sample');
    expect((await refusal(h.acme.getDefinition({ idOrName: 'sample' }))).code).toBe(Code.NotFound);
    expect((await h.acme.getDefinition({ idOrName: old.id })).definition!.deleteTime).toBeDefined();
    expect((await h.acme.listDefinitions({ showDeleted: true })).definitions.map((d) => d.id)).toContain(old.id);

    // No new plan or run from it.
    const plan2 = await refusal(h.acme.createPlan({ definition: old.id, workItems: [{ ...MULTIPLY, id: 'DEL-2' }] }));
    expect(plan2.code).toBe(Code.FailedPrecondition);
    expect(plan2.rawMessage).toMatch(new RegExp(`^definition: definition "sample" \\(${old.id}\\) was deleted at .+: apply it again to use the name$`));
    expect((await refusal(h.acme.startWorkflowRun({ definition: old.id, workItems: [{ ...MULTIPLY, id: 'DEL-3' }] }))).code).toBe(Code.FailedPrecondition);
    // Deleting it again says it is deleted already.
    const again = await refusal(h.acme.deleteDefinition({ idOrName: old.id }));
    expect([again.code, again.rawMessage.startsWith('definition "sample"')]).toEqual([Code.FailedPrecondition, true]);

    // What was made from it is untouched: the plan, the run (and a run of the old plan can still start), lists by its id.
    expect((await h.acme.getPlan({ id: plan.id })).plan!.spec!.definitionId).toBe(old.id);
    expect((await h.acme.getWorkflowRun({ id: run.id })).run!.definitionName).toBe('sample');
    expect((await h.acme.startWorkflowRun({ planId: plan.id })).run!.planId).toBe(plan.id);
    expect((await h.acme.listWorkflowRuns({ definition: old.id })).runs.map((r) => r.id)).toContain(run.id);

    // The name is free: applying it again makes a new definition, version 1.
    const fresh = await applySample(h.acme, sampleOrigin(h));
    expect(fresh.id).not.toBe(old.id);
    expect(fresh.version).toBe(1);
    expect((await h.acme.getDefinition({ idOrName: 'sample' })).definition!.id).toBe(fresh.id);
    expect((await h.acme.listDefinitions({})).definitions.filter((d) => d.name === 'sample').map((d) => d.id)).toEqual([fresh.id]);
    const both = (await h.acme.listDefinitions({ showDeleted: true })).definitions.filter((d) => d.name === 'sample');
    expect(both.map((d) => d.id)).toEqual([fresh.id, old.id]);
  });

  it("refuses another tenant's definition and a name that names nothing", async () => {
    const mine = await applySample(h.globex, sampleOrigin(h));
    expect((await refusal(h.acme.deleteDefinition({ idOrName: mine.id }))).code).toBe(Code.NotFound);
    expect((await h.globex.getDefinition({ idOrName: mine.id })).definition!.deleteTime).toBeUndefined();
    const missing = await refusal(h.acme.deleteDefinition({ idOrName: 'no-such-definition' }));
    expect([missing.code, missing.rawMessage]).toEqual([Code.NotFound, 'definition "no-such-definition" not found']);
    expect((await refusal(h.acme.deleteDefinition({ idOrName: '' }))).code).toBe(Code.InvalidArgument);
  });
});
