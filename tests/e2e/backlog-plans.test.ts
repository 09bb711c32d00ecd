import { describe, expect, it } from 'vitest';
import { backlogV1, ChangeKind } from '@ameide/contracts';
import { Code, ConnectError, createBacklogServiceClient, type BacklogServiceClient } from '@ameide/sdk';
import { cli } from '../../packages/cli/src/main.js';
import { applySample, useHarnessWithOrigin, type Harness } from '../support/harness.js';

/** A work item revision, ready under Scrum (acceptance criteria, definition, timebox and goal). */
const revision = (id: string, rev: number, acceptanceCriteria: string[]): backlogV1.UpsertWorkItemRequest =>
  ({
    id,
    revision: BigInt(rev),
    spec: {
      title: 'Add a multiply function',
      description: 'Users need to multiply.',
      acceptanceCriteria,
      state: backlogV1.WorkItemState.READY,
      profile: 'scrum',
      timeboxIds: ['sprint-7'],
      goalIds: ['sprint-7-goal'],
      definition: 'sample',
    },
  }) as backlogV1.UpsertWorkItemRequest;

/** Runs the CLI in this process against the harness (the service runs here too, so the call stays asynchronous). */
async function ameide(h: Harness, ...argv: string[]): Promise<{ code: number; out: string }> {
  const saved = { url: process.env.AMEIDE_API_URL, token: process.env.AMEIDE_TOKEN };
  process.env.AMEIDE_API_URL = h.apiUrl;
  process.env.AMEIDE_TOKEN = h.tokens.acme;
  const lines: string[] = [];
  try {
    const code = await cli(argv, { out: (l) => lines.push(l) });
    return { code, out: lines.join('\n') };
  } finally {
    for (const [k, v] of [
      ['AMEIDE_API_URL', saved.url],
      ['AMEIDE_TOKEN', saved.token],
    ] as const)
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
  }
}

const codeOf = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (err) {
    return { code: ConnectError.from(err).code, message: ConnectError.from(err).rawMessage };
  }
  throw new Error('succeeded');
};

describe('plan versions', () => {
  let h: Harness;
  let origin: string;
  let backlog: BacklogServiceClient;
  // No worker: runs stay queued; plans are all this test needs.
  useHarnessWithOrigin(
    (started) => {
      ({ h, origin } = started);
      backlog = createBacklogServiceClient({ baseUrl: h.apiUrl, token: h.tokens.acme });
    },
    { worker: false },
  );

  it('numbers a work item’s plans per revision, and DiffPlans and `plans diff` show the changed acceptance criterion', async () => {
    await applySample(h.acme, origin);
    const first = (await backlog.upsertWorkItem(revision('PLAN-1', 1, ['multiply(6, 7) returns 42', 'multiply(0, 5) returns 0']))).workItem!;
    const second = (await backlog.upsertWorkItem(revision('PLAN-1', 2, ['multiply(6, 7) returns 42', 'multiply(-2, 3) returns -6']))).workItem!;
    expect(first.planId).not.toBe('');
    expect(second.planId).not.toBe(first.planId);
    const [v1, v2] = [(await h.acme.getPlan({ id: first.planId })).plan!, (await h.acme.getPlan({ id: second.planId })).plan!];
    expect([v1.version, v2.version]).toEqual([1, 2]);

    // Default: the plan against the version before it; the same by explicit versions.
    const diff = await h.acme.diffPlans({ planId: v2.id });
    expect(diff).toMatchObject({ fromPlanId: v1.id, fromVersion: 1, toPlanId: v2.id, toVersion: 2 });
    expect(diff.changes.map(({ path, kind, oldValue, newValue }) => ({ path, kind, oldValue, newValue }))).toEqual([
      {
        path: 'spec.work_items[0].acceptance_criteria[1]',
        kind: ChangeKind.CHANGED,
        oldValue: '"multiply(0, 5) returns 0"',
        newValue: '"multiply(-2, 3) returns -6"',
      },
    ]);
    const explicit = await h.acme.diffPlans({ planId: v1.id, fromVersion: 1, toVersion: 2 });
    expect(explicit.changes).toEqual(diff.changes);
    expect((await h.acme.diffPlans({ planId: v2.id, fromVersion: 2, toVersion: 2 })).changes).toEqual([]);

    // The CLI.
    const printed = await ameide(h, 'plans', 'diff', v2.id);
    expect(printed.code).toBe(0);
    expect(printed.out.split('\n')).toEqual([
      `plan ${v1.id} v1 → plan ${v2.id} v2: 1 change`,
      '~ spec.work_items[0].acceptance_criteria[1]: "multiply(0, 5) returns 0" → "multiply(-2, 3) returns -6"',
    ]);
    const reversed = JSON.parse((await ameide(h, 'plans', 'diff', v2.id, '--from', '2', '--to', '1', '--json')).out);
    expect(reversed.changes).toEqual([
      {
        path: 'spec.work_items[0].acceptance_criteria[1]',
        kind: 'changed',
        oldValue: '"multiply(-2, 3) returns -6"',
        newValue: '"multiply(0, 5) returns 0"',
      },
    ]);
    const listed = await ameide(h, 'plans', 'list', '--work-item', 'PLAN-1');
    expect(listed.out.split('\n')).toEqual([
      expect.stringMatching(/^ID +VERSION +DEFINITION +WORK ITEM +TRIGGER +CREATED$/),
      expect.stringMatching(new RegExp(`^${v2.id}  v2 +sample +PLAN-1 revision 2 +auto `)),
      expect.stringMatching(new RegExp(`^${v1.id}  v1 +sample +PLAN-1 revision 1 +auto `)),
    ]);
    const shown = (await ameide(h, 'plans', 'get', v2.id)).out;
    expect(shown).toContain('version     2');
    expect(shown).toContain('work item   PLAN-1 revision 2');
    expect(shown).toContain('trigger     auto');
  });

  it('compares any two plans of the tenant with other_plan_id, and refuses what it cannot compare', async () => {
    await applySample(h.acme, origin);
    const auto = (await backlog.upsertWorkItem(revision('PLAN-2', 1, ['multiply(6, 7) returns 42']))).workItem!;
    const manual = (
      await h.acme.createPlan({
        definition: 'sample',
        workItems: [
          { id: 'PLAN-2', title: 'Add a multiply function', description: 'Users need to multiply.', acceptanceCriteria: ['multiply(6, 7) returns 42'] },
        ],
      })
    ).plan!;
    expect(manual.version).toBe(1);

    const diff = await h.acme.diffPlans({ planId: manual.id, otherPlanId: auto.planId });
    expect(diff).toMatchObject({ fromPlanId: manual.id, toPlanId: auto.planId });
    const paths = diff.changes.map((c) => `${ChangeKind[c.kind]} ${c.path}`);
    expect(paths).toEqual(expect.arrayContaining(['CHANGED spec.trigger', 'CHANGED spec.methodology.profile', 'ADDED spec.methodology.timebox_ids[0]']));
    expect(paths.filter((p) => p.includes('work_items'))).toEqual([]);
    const printed = (await ameide(h, 'plans', 'diff', manual.id, '--other', auto.planId)).out.split('\n');
    expect(printed).toContain('~ spec.trigger: "TRIGGER_MANUAL" → "TRIGGER_AUTO"');
    expect(printed).toContain('+ spec.methodology.timebox_ids[0]: "sprint-7"');

    expect(await codeOf(h.acme.diffPlans({ planId: manual.id }))).toEqual({ code: Code.InvalidArgument, message: expect.stringContaining('other_plan_id') });
    expect(await codeOf(h.acme.diffPlans({ planId: auto.planId, fromVersion: 5 }))).toEqual({
      code: Code.InvalidArgument,
      message: expect.stringMatching(/^from_version: .*no plan version 5/),
    });
    expect(await codeOf(h.acme.diffPlans({ planId: auto.planId, fromVersion: 1, toVersion: 9 }))).toEqual({
      code: Code.InvalidArgument,
      message: expect.stringMatching(/^to_version: /),
    });
    // A first version has nothing before it.
    expect(await codeOf(h.acme.diffPlans({ planId: auto.planId }))).toEqual({ code: Code.InvalidArgument, message: expect.stringContaining('is its first') });
    const unknown = '00000000-0000-4000-8000-000000000000';
    expect(await codeOf(h.acme.diffPlans({ planId: unknown }))).toEqual({ code: Code.NotFound, message: expect.stringContaining(unknown) });
    expect(await codeOf(h.acme.diffPlans({ planId: manual.id, otherPlanId: unknown }))).toEqual({
      code: Code.NotFound,
      message: expect.stringContaining(unknown),
    });
    // Another tenant's plan is not found.
    expect((await codeOf(h.globex.diffPlans({ planId: auto.planId }))).code).toBe(Code.NotFound);
    expect((await ameide(h, 'plans', 'diff', manual.id, '--from', 'x').catch((e: Error) => ({ code: -1, out: e.message }))).out).toMatch(/--from x/);
  });
});
