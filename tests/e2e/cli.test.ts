import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { git, sampleDefinition } from '@ameide/devstack';
import { runCli, sampleOrigin, startHarness, type Harness } from '../support/harness.js';

let h: Harness;
type Result = { status: number | null; stdout: string; stderr: string };
let ameide: (...args: string[]) => Promise<Result>;

beforeAll(async () => {
  h = await startHarness({ worker: true });
  ameide = (...args) => runCli(h, ...args);
});
afterAll(() => h?.stop());

it('applies a definition file, runs and watches a run to completion, and prints JSON', async () => {
  const file = join(h.dir, 'def.yaml');
  // YAML is a superset of JSON: a JSON definition file works too.
  writeFileSync(file, JSON.stringify(sampleDefinition(sampleOrigin(h), 'cli-sample')));
  expect((await ameide('definitions', 'apply', '-f', file)).stdout).toMatch(/^definition cli-sample applied \(version 1, id /);
  expect((await ameide('definitions', 'apply', '-f', file)).stdout).toMatch(/^definition cli-sample unchanged \(version 1/);
  const list = JSON.parse((await ameide('definitions', 'list', '--json')).stdout);
  expect(list.map((d: { name: string }) => d.name)).toEqual(['cli-sample']);

  const started = await ameide('runs', 'start', '--definition', 'cli-sample', '--work-item', 'CALC-9', '--title', 'Add a multiply function', '--watch');
  expect(started.stderr).toBe('');
  expect(started.status).toBe(0);
  expect(started.stdout).toMatch(/\] run completed\n/);
  expect(started.stdout).toMatch(/test succeeded in \d+\.\ds exit 0/);
  // It ends with the run's summary, as `make demo` does: phases, tests, evidence and the Definition of Done.
  expect(started.stdout).toMatch(/\n\nrun {9}[0-9a-f-]{36}\nstatus {6}completed\n/);
  expect(started.stdout).toMatch(/done {8}Definition of Done met\n/);

  const runs = JSON.parse((await ameide('runs', 'list', '--work-item', 'CALC-9', '--json')).stdout);
  expect(runs).toHaveLength(1);
  expect(runs[0].status).toBe('completed');
  const got = await ameide('runs', 'get', runs[0].id);
  expect(got.stdout).toMatch(/status\s+completed/);
  expect(got.stdout).toMatch(/tests\s+passed \(exit 0\)/);
  expect(got.stdout).toMatch(/diff\s+2 files changed, \+\d+ -0/);
  const watched = await ameide('runs', 'watch', runs[0].id, '--from', '3', '--json');
  expect(watched.status).toBe(0);
  expect(JSON.parse(watched.stdout.split('\n')[0]!).sequence).toBe('3');

  // A rerun: the same plan, the next attempt, on the same branch (it starts from what the first pushed).
  const rerun = await ameide('runs', 'rerun', runs[0].id);
  expect(rerun.stdout).toMatch(new RegExp(`^run \\S+ started again from plan ${runs[0].planId} v1 `));
  const again = JSON.parse((await ameide('runs', 'list', '--work-item', 'CALC-9', '--json')).stdout);
  expect(again.map((r: { planId: string }) => r.planId)).toEqual([runs[0].planId, runs[0].planId]);
  await ameide('runs', 'watch', again[0].id);
  const second = JSON.parse((await ameide('runs', 'get', again[0].id, '--json')).stdout);
  expect(second.summary.baseCommit).toBe(runs[0].summary.headCommit);

  // `runs logs` takes the short id `runs list` prints.
  const logs = await ameide('runs', 'logs', runs[0].id.slice(0, 8), '--phase', 'test');
  expect(logs.status).toBe(0);
  expect(logs.stdout).toMatch(/^==> test <==\n/);

  // Deleting the definition frees its name and keeps its runs.
  const deleted = await ameide('definitions', 'delete', 'cli-sample');
  expect(deleted.status).toBe(0);
  expect(deleted.stdout).toMatch(/^deleted definition cli-sample v1 \([0-9a-f-]{36}\)\n/);
  expect(JSON.parse((await ameide('definitions', 'list', '-o', 'json')).stdout)).toEqual([]);
  expect((await ameide('definitions', 'list', '--deleted')).stdout).toMatch(/\ncli-sample +v1 .* deleted \d+s ago\n/);
  expect((await ameide('runs', 'get', runs[0].id.slice(0, 8))).stdout).toMatch(/status\s+completed/);
  expect(await ameide('runs', 'start', '--definition', 'cli-sample', '--work-item', 'CALC-10')).toMatchObject({ status: 1, stdout: '' });
  // The name is free again: the file makes a new definition (the next tests use it).
  const again2 = await ameide('definitions', 'apply', '-f', file);
  expect(again2.stdout).toMatch(/^definition cli-sample applied \(version 1, id /);
  expect(again2.stdout).not.toContain(deleted.stdout.match(/\(([0-9a-f-]{36})\)/)![1]);
});

it('recreates the branch of a handed-off run in a fresh clone', async () => {
  const file = join(h.dir, 'def-failing.yaml');
  writeFileSync(
    file,
    JSON.stringify({
      ...sampleDefinition(sampleOrigin(h, 'handoff-origin'), 'cli-failing'),
      spec: { ...sampleDefinition('', '').spec, repoUrl: join(h.dir, 'handoff-origin.git'), testCommand: 'echo "1 failing"; exit 1' },
    }),
  );
  expect((await ameide('definitions', 'apply', '-f', file)).status).toBe(0);
  const failed = await ameide('runs', 'start', '--definition', 'cli-failing', '--work-item', 'CALC-11', '--title', 'Add a multiply function', '--watch');
  expect(failed.status).toBe(1);
  const id = JSON.parse((await ameide('runs', 'list', '--work-item', 'CALC-11', '--json')).stdout)[0].id as string;
  const dir = join(h.dir, 'taken-over');
  const restored = await ameide('runs', 'handoff', id, '--dir', dir);
  expect(restored.stderr).toBe('');
  expect(restored.status).toBe(0);
  expect(restored.stdout).toContain('ameide/calc-11');
  expect(readFileSync(join(dir, 'src', 'calc.js'), 'utf8')).toContain('export function multiply');
  expect(readFileSync(join(dir, '.codex', 'followup.md'), 'utf8')).toContain('test');
  expect(git(dir, 'rev-parse', '--abbrev-ref', 'HEAD')).toBe('ameide/calc-11');
  expect(git(dir, 'status', '--porcelain')).toBe('');
});

it('exits 1 from watch when the run did not complete, and prints one clear line for errors', async () => {
  const failed = await ameide('runs', 'start', '--definition', 'cli-sample', '--work-item', 'CALC-10', '--title', 'Paint it blue', '--watch');
  expect(failed.status).toBe(1);
  expect(failed.stdout).toMatch(/run handed_off — agent phase failed: agent command failed with exit code 3/);

  expect(await ameide('runs', 'get', 'does-not-exist')).toEqual({ status: 1, stdout: '', stderr: 'error: run "does-not-exist" not found (not found)' });
  expect(await ameide('definitions', 'apply', '-f', '/nonexistent.yaml')).toMatchObject({
    status: 1,
    stderr: 'error: cannot read definition file /nonexistent.yaml',
  });
  // The service's refusal of a field, said with the file and the key as written in it.
  const outside = join(h.dir, 'outside.yaml');
  const def = sampleDefinition(sampleOrigin(h, 'outside'), 'outside');
  writeFileSync(outside, JSON.stringify({ ...def, spec: { ...def.spec, guardrails: { ...def.spec.guardrails, readOnlyPaths: ['/opt'] } } }));
  const refused = await ameide('definitions', 'apply', '-f', outside);
  expect(refused.status).toBe(1);
  expect(refused.stderr).toMatch(new RegExp(`^error: ${outside}: spec\\.guardrails\\.readOnlyPaths\\[0\\]: .*\\(invalid argument\\)$`));
  expect(await ameide('runs', 'list', '--status', 'sleeping')).toMatchObject({
    status: 2,
    stderr: 'error: --status sleeping: use queued, running, completed, failed, cancelled, handed_off',
  });
});

it('applies a profile and a work item file, shows each Definition of Ready rule, and lists items and profiles', async () => {
  const profile = join(h.dir, 'profile.yaml');
  writeFileSync(
    profile,
    [
      'name: cli-kanban',
      'spec:',
      '  description: ready with two criteria and a goal',
      '  triggerState: ready',
      '  readyRules: [{ kind: acceptance_criteria, min: 2 }, { kind: goal }]',
      '  evidenceTargets: [{ artifact: service_goal, from: goal }]',
    ].join('\n'),
  );
  expect(await ameide('profiles', 'apply', '-f', profile)).toMatchObject({ status: 0, stdout: 'profile cli-kanban applied (version 1)\n' });
  const shown = await ameide('profiles', 'get', 'cli-kanban');
  expect(shown.stdout).toMatch(/trigger\s+ready/);
  expect(shown.stdout).toMatch(/ready rules acceptance_criteria \(min 2\), goal/);
  expect(shown.stdout).toMatch(/evidence\s+service_goal \(from goal\)/);

  const item = join(h.dir, 'work-item.yaml');
  writeFileSync(
    item,
    [
      'id: CLI-1',
      'revision: 3',
      'spec:',
      '  title: Add a multiply function',
      '  acceptanceCriteria: ["multiply(6, 7) returns 42"]',
      '  state: ready',
      '  profile: cli-kanban',
      '  definition: cli-missing',
    ].join('\n'),
  );
  const applied = await ameide('workitems', 'apply', '-f', item);
  expect(applied.stderr).toBe('');
  expect(applied.stdout).toMatch(/^work item CLI-1 revision 3 applied; ready: no \(acceptance_criteria, goal, definition\)/);
  expect((await ameide('workitems', 'apply', '-f', item)).stdout).toMatch(/^work item CLI-1 revision 3 unchanged/);

  const got = await ameide('workitems', 'get', 'CLI-1');
  expect(got.status).toBe(0);
  expect(got.stdout).toMatch(/state\s+ready/);
  expect(got.stdout).toMatch(/ready\s+no/);
  expect(got.stdout).toContain('  ✗ acceptance_criteria  1 acceptance criterion, needs at least 2');
  expect(got.stdout).toContain('  ✗ goal  0 goals, needs at least 1');
  expect(got.stdout).toContain('  ✗ definition  no definition "cli-missing"');
  expect(got.stdout).toMatch(/run\s+-/);
  expect(JSON.parse((await ameide('workitems', 'get', 'CLI-1', '--json')).stdout).readiness.rules).toHaveLength(3);

  const notReady = await ameide('workitems', 'list', '--not-ready');
  expect(notReady.stdout).toMatch(/^CLI-1\s+r3\s+ready\s+cli-kanban\s+no\s+-\s+Add a multiply function$/m);
  expect((await ameide('workitems', 'list', '--ready')).stdout).not.toContain('CLI-1');
  expect((await ameide('workitems', 'list', '--state', 'backlog')).stdout).toBe('no work items\n');

  const names = JSON.parse((await ameide('profiles', 'list', '--json')).stdout).map((p: { name: string }) => p.name);
  expect(names).toEqual(expect.arrayContaining(['scrum', 'safe', 'togaf', 'cli-kanban']));
  expect((await ameide('profiles', 'list')).stdout).toMatch(/^scrum\s+built-in/m);
  expect(await ameide('workitems', 'remove', 'CLI-1')).toMatchObject({
    status: 2,
    stderr: 'error: unknown command "workitems remove"; use apply, list or get',
  });
  expect(await ameide('workitems', 'list', '--state', 'sleeping')).toMatchObject({
    status: 1,
    stderr: 'error: state sleeping: use proposed, backlog, ready, in_progress, done, removed',
  });
});
