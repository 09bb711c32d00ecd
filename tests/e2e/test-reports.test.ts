import { describe, expect, it } from 'vitest';
import { RunStatus } from '@ameide/contracts';
import { git } from '@ameide/devstack';
import { applySample, MULTIPLY, useHarnessWithOrigin, watchAll, type Harness } from '../support/harness.js';

describe('test reports: the test phase counted from JUnit files or TAP output', () => {
  let h: Harness;
  let origin: string;
  useHarnessWithOrigin((s) => ({ h, origin } = s));

  const run = async (definition: string, item: string) => {
    const { run } = await h.acme.startWorkflowRun({ definition, workItems: [{ ...MULTIPLY, id: item }] });
    await watchAll(h.acme, run!.id);
    return (await h.acme.getWorkflowRun({ id: run!.id })).run!;
  };

  it("counts the sample's JUnit report (npm test writes it), which never lands in the branch", async () => {
    await applySample(h.acme, origin);
    const done = await run('sample', 'CALC-1');
    expect(done.status).toBe(RunStatus.COMPLETED);
    expect(done.summary!.testReport).toMatchObject({ format: 'junit', passed: 3, failed: 0, skipped: 0, sources: ['reports/junit.xml'], failingTests: [] });
    expect(git(origin, 'ls-tree', '-r', '--name-only', done.summary!.headCommit)).not.toContain('reports/');
  });

  it('names the failing tests of a failed run', async () => {
    const junit = `<testsuite name="calc"><testcase classname="calc" name="adds"/><testcase classname="calc" name="multiplies"><failure message="expected 42"/></testcase><testcase classname="calc" name="divides"><skipped/></testcase></testsuite>`;
    await applySample(
      h.acme,
      origin,
      { testCommand: `mkdir -p out/junit && printf '%s' '${junit}' > out/junit/calc.xml && exit 1`, testReports: ['out/**/*.xml'] },
      'junit-failing',
    );
    const done = await run('junit-failing', 'CALC-2');
    expect(done.status).toBe(RunStatus.HANDED_OFF);
    expect(done.summary!.testReport).toMatchObject({
      format: 'junit',
      passed: 1,
      failed: 1,
      skipped: 1,
      failingTests: ['calc › multiplies'],
      sources: ['out/junit/calc.xml'],
    });
  });

  it('reads TAP from the output when the definition names no report files', async () => {
    const tap = 'TAP version 13\\nok 1 - adds\\nnot ok 2 - divides by zero\\nok 3 - rounds # SKIP not yet\\n1..3';
    await applySample(h.acme, origin, { testCommand: `printf '${tap}\\n'; exit 1`, testReports: [] }, 'tap');
    const done = await run('tap', 'CALC-3');
    expect(done.summary!.testReport).toMatchObject({ format: 'tap', passed: 1, failed: 1, skipped: 1, failingTests: ['divides by zero'], sources: ['output'] });
  });

  it('reads only what the sandbox collected as plain files: symlinks are not followed, and a missing report is said', async () => {
    // A report that is a symlink (here to the sandbox's passwd) is not a report; nothing else matches.
    await applySample(h.acme, origin, { testCommand: 'mkdir -p reports && ln -sf /etc/passwd reports/junit.xml', testReports: ['reports/*.xml'] }, 'symlinked');
    const done = await run('symlinked', 'CALC-4');
    expect(done.status).toBe(RunStatus.COMPLETED);
    expect(done.summary!.testReport).toMatchObject({ format: '', passed: 0, error: 'no file matches reports/*.xml' });
    // A report that is not XML says so, naming the file.
    await applySample(h.acme, origin, { testCommand: 'mkdir -p reports && echo "not <xml" > reports/junit.xml', testReports: ['reports/*.xml'] }, 'garbled');
    const garbled = await run('garbled', 'CALC-5');
    expect(garbled.summary!.testReport!.error).toMatch(/^reports\/junit\.xml/);
  });

  it('still counts the reports of a test command stopped at its budget, and refuses a collect status the command forged', async () => {
    const junit = `<testsuite name="calc"><testcase classname="calc" name="adds"/><testcase classname="calc" name="hangs"/></testsuite>`;
    // The command is killed with its sandbox before the collect there could run: a step of its own collects.
    await applySample(
      h.acme,
      origin,
      { testCommand: `mkdir -p reports && printf '%s' '${junit}' > reports/junit.xml && sleep 60`, phaseTimeoutSeconds: 3 },
      'hangs',
    );
    const hung = await run('hangs', 'CALC-6');
    expect(hung.status).not.toBe(RunStatus.COMPLETED);
    expect(hung.summary!.testReport).toMatchObject({ format: 'junit', passed: 2, failed: 0, sources: ['reports/junit.xml'] });
    // The collect's exit status is the sandbox's, as untrusted as the reports: one the command made a
    // link (which the worker would follow to one of its own files) is refused, and so are the reports.
    await applySample(h.acme, origin, { testCommand: 'npm test && ln -sf /etc/hostname "$AMEIDE_REPORTS_OUT/collect.status"' }, 'forged');
    const forged = await run('forged', 'CALC-7');
    expect(forged.status).toBe(RunStatus.COMPLETED);
    expect(forged.summary!.testReport).toMatchObject({
      format: '',
      passed: 0,
      error: 'collecting the test reports failed (exit 1): its exit status is not a plain file',
    });
  });
});
