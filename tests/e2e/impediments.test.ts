import { EventEmitter } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { governanceV1, Phase, PhaseState, RunStatus, type Run } from '@ameide/contracts';
import { ImpedimentRepository, RunRepository } from '@ameide/db';
import { git } from '@ameide/devstack';
import { Code, ConnectError, createGovernanceServiceClient, type GovernanceServiceClient } from '@ameide/sdk';
import type { GovernanceDeps } from '../../services/workflows/src/governance/deps.js';
import { impedimentActivities } from '../../services/workflows/src/impediments/activities.js';
import { cli as ameide } from '../../packages/cli/src/main.js';
import { applySample, MULTIPLY, runCli, useHarnessWithOrigin, watchAll, type Harness } from '../support/harness.js';

const { ImpedimentState } = governanceV1;

/** Impediments of real runs: raised once per run by the follow-up's activity, listed, resolved, handed back to the agent. */
describe('impediments', () => {
  let h: Harness;
  let origin: string;
  let gov: GovernanceServiceClient;
  let raise: (run: Pick<Run, 'id'>) => Promise<{ impedimentId?: string }>;
  useHarnessWithOrigin((started) => ({ h, origin } = started));

  beforeAll(() => {
    gov = createGovernanceServiceClient({ baseUrl: h.apiUrl, token: h.tokens.acme });
    const deps: GovernanceDeps = {
      db: h.app.database.db,
      startRun: () => Promise.reject(new Error('the activity starts no runs')),
      notifications: {} as GovernanceDeps['notifications'],
      events: new EventEmitter(),
    };
    // Until the follow-up workflow calls it, the test calls the activity itself once a run has finished.
    const { raiseImpediment } = impedimentActivities(deps);
    raise = (run) => raiseImpediment({ runId: run.id, tenantId: 'acme' });
  });

  /** Runs work item `id` with definition `name` (applied with `overrides`) to its end. */
  const runToEnd = async (name: string, overrides: Parameters<typeof applySample>[2], id: string) => {
    await applySample(h.acme, origin, overrides, name);
    const { run } = await h.acme.startWorkflowRun({
      definition: name,
      workItems: [{ ...MULTIPLY, id }],
      methodology: { profile: 'scrum', timeboxIds: ['sprint-9'], goalIds: ['goal-3'] },
    });
    await watchAll(h.acme, run!.id);
    return (await h.acme.getWorkflowRun({ id: run!.id })).run!;
  };

  const cli = async (...argv: string[]) => {
    const lines: string[] = [];
    const code = await ameide(argv, { out: (l) => lines.push(l) }, { clients: { governance: gov } });
    return { code, out: lines.join('\n') };
  };

  const refusal = (p: Promise<unknown>) =>
    p.then(
      () => {
        throw new Error('accepted');
      },
      (e: unknown) => ConnectError.from(e),
    );

  // The prompt reaches the agent's output (cat), and only a run that was told about the previous attempt passes its tests.
  const PROMPTED = {
    agentCommand: 'cat "$AMEIDE_PROMPT_FILE" && node "$AGENT_SCRIPT"',
    testCommand: 'grep -q "^## Previous attempt" "$AMEIDE_PROMPT_FILE" || { echo "expected 42, got undefined"; exit 3; }; npm test',
  };

  let handedOff: Run;
  let impedimentId: string;

  it('raises one impediment for a handed-off run, however often it is raised, with its phase, work item, timeboxes, goals and handoff', async () => {
    handedOff = await runToEnd('prompted', PROMPTED, 'IMP-1');
    expect(handedOff.status).toBe(RunStatus.HANDED_OFF);

    const [a, b] = await Promise.all([raise(handedOff), raise(handedOff)]);
    const c = await raise(handedOff);
    expect(a.impedimentId).toBeDefined();
    expect(b.impedimentId).toBe(a.impedimentId);
    expect(c.impedimentId).toBe(a.impedimentId);
    impedimentId = a.impedimentId!;
    const rows = await new ImpedimentRepository(h.app.database.db).list('acme', { runId: handedOff.id, limit: 10 });
    expect(rows.map((r) => r.id)).toEqual([impedimentId]);

    const { impediment } = await gov.getImpediment({ id: impedimentId });
    expect(impediment).toMatchObject({
      cause: 'run_handed_off',
      phase: 'test',
      runId: handedOff.id,
      workItemId: 'IMP-1',
      timeboxIds: ['sprint-9'],
      goalIds: ['goal-3'],
      handoffUri: handedOff.summary!.handoffUri,
      state: ImpedimentState.OPEN,
      assignee: '',
      rerunId: '',
    });
    expect(impediment!.reason).toBe(handedOff.error);
    expect(impediment!.reason).toMatch(/^test phase failed: test command failed with exit code 3/);
    expect(impediment!.handoffUri).toMatch(/handoff\.tar\.gz$/);
  });

  it('shows it in the CLI with the handoff link and the command that restores the branch from it', async () => {
    const got = await cli('impediments', 'get', impedimentId);
    expect(got.code).toBe(0);
    expect(got.out).toContain(`impediment ${impedimentId} (open)`);
    expect(got.out).toContain('cause       run_handed_off');
    expect(got.out).toContain('phase       test');
    expect(got.out).toContain(`run         ${handedOff.id}`);
    expect(got.out).toContain('work item   IMP-1');
    expect(got.out).toContain('timeboxes   sprint-9');
    expect(got.out).toContain(`handoff     ${handedOff.summary!.handoffUri}`);
    expect(got.out).toContain(`restore     ameide runs handoff ${handedOff.id}`);
    expect(JSON.parse((await cli('impediments', 'get', impedimentId, '--json')).out)).toMatchObject({ id: impedimentId, state: 'open' });

    const listed = await cli('impediments', 'list', '--state', 'open', '--work-item', 'IMP-1');
    expect(listed.out.split('\n')).toHaveLength(2); // the header and the impediment
    expect(listed.out).toContain(impedimentId);
    expect(listed.out).toContain('run_handed_off');
    expect((await cli('impediments', 'list', '--state', 'resolved', '--work-item', 'IMP-1')).out).toBe('no impediments');
    await expect(cli('impediments', 'list', '--state', 'sleeping')).rejects.toThrow('--state must be open, resolved or reassigned');

    // The link is the run's handoff bundle: the CLI restores the branch from it.
    const dir = join(h.dir, 'restored-imp-1');
    const restored = await runCli(h, 'runs', 'handoff', handedOff.id, '--dir', dir);
    expect(restored.stderr).toBe('');
    expect(restored.status).toBe(0);
    expect(git(dir, 'rev-parse', '--abbrev-ref', 'HEAD')).toBe(handedOff.summary!.branch);
    expect(readFileSync(join(dir, 'src', 'calc.js'), 'utf8')).toContain('export function multiply');
    expect(existsSync(join(dir, '.codex', 'followup.md'))).toBe(true);
  });

  it('raises policy violations, exceeded budgets and failures as such, naming the phase', async () => {
    const denied = await runToEnd(
      'imp-denied',
      { agentCommand: 'node "$AGENT_SCRIPT" && mkdir -p .github/workflows && echo "on: push" > .github/workflows/ci.yml' },
      'IMP-2',
    );
    const budget = await runToEnd('imp-budget', { guardrails: { budgets: { maxCommands: 1 } } }, 'IMP-3');
    const failed = await runToEnd('imp-no-branch', { defaultBranch: 'no-such-branch' }, 'IMP-4');
    expect(failed.status).toBe(RunStatus.FAILED);

    const get = async (run: Run) => (await gov.getImpediment({ id: (await raise(run)).impedimentId! })).impediment!;
    expect(await get(denied)).toMatchObject({ cause: 'policy_violation', phase: 'publish', workItemId: 'IMP-2', handoffUri: denied.summary!.handoffUri });
    expect((await get(denied)).reason).toContain('.github/workflows/ci.yml (denied)');
    expect(await get(budget)).toMatchObject({ cause: 'budget_exceeded', phase: 'agent', reason: budget.error });
    expect(await get(failed)).toMatchObject({ cause: 'run_failed', phase: 'prepare', reason: failed.error, handoffUri: '' });
    expect(failed.error).toContain('no-such-branch');
  });

  it('raises dod_failed for a completed run whose Definition of Done is not met, and nothing for one that met it or was cancelled', async () => {
    const completed = await runToEnd('imp-ok', {}, 'IMP-5');
    expect(completed.status).toBe(RunStatus.COMPLETED);
    // Without a checklist (no profile rules evaluated), a completed run needs nothing.
    expect(await raise(completed)).toEqual({});

    // What the follow-up's evaluateDone stores with the run: the profile's checklist.
    const runRows = new RunRepository(h.app.database.db);
    const setDone = async (met: boolean) => {
      const row = (await runRows.get('acme', completed.id))!;
      const rules = [
        { rule: 'tests_pass', passed: true, detail: '5 passed' },
        { rule: 'review_approved', passed: met, detail: met ? 'approved' : 'no approving review' },
        { rule: 'coverage', passed: met, detail: met ? '' : 'coverage 41% < 80%' },
      ];
      await runRows.setProgress(completed.id, { state: { ...row.state, done: { profile: 'scrum', met, rules } } });
    };
    await setDone(true);
    expect(await raise(completed)).toEqual({});
    await setDone(false);
    const { impedimentId: id } = await raise(completed);
    const { impediment } = await gov.getImpediment({ id: id! });
    expect(impediment).toMatchObject({ cause: 'dod_failed', phase: '', workItemId: 'IMP-5', handoffUri: '' });
    expect(impediment!.reason).toBe('review_approved: no approving review\ncoverage: coverage 41% < 80%');

    // A person cancelled this one: not an impediment.
    await applySample(h.acme, origin, { agentCommand: 'sleep 300' }, 'imp-slow');
    const { run } = await h.acme.startWorkflowRun({ definition: 'imp-slow', workItems: [{ ...MULTIPLY, id: 'IMP-6' }] });
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const r = (await h.acme.getWorkflowRun({ id: run!.id })).run!;
      if (r.phases.some((p) => p.phase === Phase.AGENT && p.state === PhaseState.RUNNING)) break;
      await new Promise((res) => setTimeout(res, 200));
    }
    await h.acme.cancelWorkflowRun({ id: run!.id });
    await watchAll(h.acme, run!.id);
    expect((await h.acme.getWorkflowRun({ id: run!.id })).run!.status).toBe(RunStatus.CANCELLED);
    expect(await raise(run!)).toEqual({});
    expect((await gov.listImpediments({ runId: run!.id })).impediments).toEqual([]);
  });

  it('assigns to a person, and hands back to the agent as one rerun that is told about the previous attempt', async () => {
    const assigned = (await gov.reassignImpediment({ id: impedimentId, assignee: 'alice' })).impediment!;
    expect(assigned).toMatchObject({ state: ImpedimentState.OPEN, assignee: 'alice', rerunId: '' });
    expect((await gov.listImpediments({ assignee: 'alice' })).impediments.map((i) => i.id)).toEqual([impedimentId]);
    expect((await gov.listImpediments({ assignee: 'bob' })).impediments).toEqual([]);

    // Twice (at once, and again through the CLI): one rerun.
    const note = 'The test checks multiply(6, 7); keep the function name.';
    const [first, second] = await Promise.all([
      gov.reassignImpediment({ id: impedimentId, assignee: 'agent', note }),
      gov.reassignImpediment({ id: impedimentId, assignee: 'agent', note }),
    ]);
    const rerunId = first.impediment!.rerunId;
    expect(rerunId).toMatch(/^[0-9a-f-]{36}$/);
    expect(second.impediment!.rerunId).toBe(rerunId);
    expect(first.impediment).toMatchObject({ state: ImpedimentState.REASSIGNED_TO_AGENT, assignee: '' });
    const again = await cli('impediments', 'reassign', impedimentId, '--to', 'agent', '--note', note);
    expect(again.out).toContain(`handed back to the agent: rerun ${rerunId} of run ${handedOff.id}`);
    const runs = (await h.acme.listWorkflowRuns({ workItemId: 'IMP-1' })).runs;
    expect(runs.map((r) => r.id).sort()).toEqual([handedOff.id, rerunId].sort());
    expect((await gov.listImpediments({ state: ImpedimentState.REASSIGNED_TO_AGENT })).impediments.map((i) => i.id)).toContain(impedimentId);

    await watchAll(h.acme, rerunId);
    const rerun = (await h.acme.getWorkflowRun({ id: rerunId })).run!;
    expect(rerun.planId).toBe(handedOff.planId);
    expect(rerun.annotations).toMatchObject({
      'ameide.dev/rerun-of': handedOff.id,
      'ameide.dev/impediment': impedimentId,
      'ameide.dev/handoff-uri': handedOff.summary!.handoffUri,
      'ameide.dev/handoff-reason': handedOff.error,
    });
    // The agent read the previous attempt from its prompt: the failure, the bundle, how to restore it, the note.
    const prompt = rerun.phases.find((p) => p.phase === Phase.AGENT)!.outputTail;
    expect(prompt).toContain('## Previous attempt');
    expect(prompt).toContain(`This run retries run ${handedOff.id}`);
    expect(prompt).toContain(`> ${handedOff.error.split('\n')[0]}`);
    expect(prompt).toContain(handedOff.summary!.handoffUri);
    expect(prompt).toContain(`ameide runs handoff ${handedOff.id}`);
    expect(prompt).toContain(`> ${note}`);
    // Told about it, it passes; on the same work branch.
    expect(rerun.status).toBe(RunStatus.COMPLETED);
    expect(rerun.summary!.branch).toBe(handedOff.summary!.branch);
    expect(git(origin, 'rev-parse', `refs/heads/${rerun.summary!.branch}`)).toBe(rerun.summary!.headCommit);

    // The rerun's follow-up resolves the impediment it was queued for (and raises none of its own).
    expect(await raise(rerun)).toEqual({});
    const { impediment } = await gov.getImpediment({ id: impedimentId });
    expect(impediment).toMatchObject({ state: ImpedimentState.RESOLVED, resolution: `rerun ${rerunId} completed`, rerunId });
    expect((await gov.listImpediments({ runId: rerunId })).impediments).toEqual([]);
  });

  it('resolves with a resolution, once', async () => {
    const [open] = (await gov.listImpediments({ workItemId: 'IMP-2' })).impediments;
    const resolved = await cli('impediments', 'resolve', open!.id, '--resolution', 'Moved the workflow change to a separate, reviewed PR.');
    expect(resolved.out).toBe(`resolved impediment ${open!.id}: Moved the workflow change to a separate, reviewed PR.`);
    expect((await gov.getImpediment({ id: open!.id })).impediment).toMatchObject({
      state: ImpedimentState.RESOLVED,
      resolution: 'Moved the workflow change to a separate, reviewed PR.',
    });
    const again = await refusal(gov.resolveImpediment({ id: open!.id, resolution: 'again' }));
    expect(again.code).toBe(Code.FailedPrecondition);
    expect(again.rawMessage).toContain('is resolved already (Moved the workflow change');
    expect((await refusal(gov.reassignImpediment({ id: open!.id, assignee: 'agent' }))).code).toBe(Code.FailedPrecondition);
    expect((await gov.listImpediments({ state: ImpedimentState.RESOLVED, workItemId: 'IMP-2' })).impediments.map((i) => i.id)).toEqual([open!.id]);
    await expect(cli('impediments', 'resolve', open!.id)).rejects.toThrow('needs --resolution');
  });

  it('lists newest first within the page size', async () => {
    const all = (await gov.listImpediments({})).impediments;
    expect(all.length).toBeGreaterThanOrEqual(5);
    const times = all.map((i) => Number(i.createTime!.seconds) * 1e9 + i.createTime!.nanos);
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    expect((await gov.listImpediments({ pageSize: 2 })).impediments.map((i) => i.id)).toEqual(all.slice(0, 2).map((i) => i.id));
  });

  it('refuses bad requests naming the field, and answers not_found for unknown ids and other tenants', async () => {
    const [some] = (await gov.listImpediments({ state: ImpedimentState.OPEN })).impediments;
    const bad = async (p: Promise<unknown>, code: Code, message: string) => {
      const err = await refusal(p);
      expect(err.code, err.rawMessage).toBe(code);
      expect(err.rawMessage).toContain(message);
    };
    await bad(gov.getImpediment({ id: '00000000-0000-4000-8000-000000000000' }), Code.NotFound, 'impediment "00000000-0000-4000-8000-000000000000" not found');
    await bad(gov.getImpediment({ id: 'nope' }), Code.NotFound, 'impediment "nope" not found');
    await bad(gov.getImpediment({ id: '' }), Code.InvalidArgument, 'id: must not be empty');
    await bad(gov.resolveImpediment({ id: some!.id, resolution: '  ' }), Code.InvalidArgument, 'resolution: must not be empty');
    await bad(gov.resolveImpediment({ id: some!.id, resolution: 'x'.repeat(5000) }), Code.InvalidArgument, 'resolution: must be at most 4096 bytes');
    await bad(gov.reassignImpediment({ id: some!.id, assignee: '' }), Code.InvalidArgument, 'assignee: must not be empty');
    await bad(gov.reassignImpediment({ id: some!.id, assignee: 'al\nice' }), Code.InvalidArgument, 'assignee: must not contain control characters');
    await bad(gov.reassignImpediment({ id: some!.id, assignee: 'alice', note: 'n\0' }), Code.InvalidArgument, 'note: must not contain NUL bytes');
    await bad(gov.listImpediments({ runId: 'x' }), Code.InvalidArgument, 'run_id: must be a run id');
    await bad(gov.listImpediments({ pageSize: 5000 }), Code.InvalidArgument, 'page_size: must be at most 1000');
    await bad(gov.listImpediments({ state: 42 as governanceV1.ImpedimentState }), Code.InvalidArgument, 'state: 42 is not a ImpedimentState value');

    // Another tenant's impediment is as unknown as a missing one.
    const globex = createGovernanceServiceClient({ baseUrl: h.apiUrl, token: h.tokens.globex });
    await bad(globex.getImpediment({ id: some!.id }), Code.NotFound, 'not found');
    await bad(globex.resolveImpediment({ id: some!.id, resolution: 'mine' }), Code.NotFound, 'not found');
    await bad(globex.reassignImpediment({ id: some!.id, assignee: 'agent' }), Code.NotFound, 'not found');
    expect((await globex.listImpediments({})).impediments).toEqual([]);
    expect((await gov.getImpediment({ id: some!.id })).impediment!.state).toBe(ImpedimentState.OPEN);
  });
});
