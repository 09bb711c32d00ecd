import { describe, expect, it } from 'vitest';
import { Phase, PhaseState, RunStatus, StatusUpdateKind } from '@ameide/contracts';
import { applySample, MULTIPLY, useHarnessWithOrigin, watchAll, type Harness } from '../support/harness.js';

/** Failures the sandbox explains: the run's error says what to change in the definition. */
describe('failure hints of real runs', () => {
  let h: Harness;
  let origin: string;
  useHarnessWithOrigin((started) => ({ h, origin } = started));

  const runToEnd = async (definition: string, overrides: Parameters<typeof applySample>[2]) => {
    await applySample(h.acme, origin, overrides, definition);
    const { run } = await h.acme.startWorkflowRun({ definition, workItems: [MULTIPLY] });
    const updates = await watchAll(h.acme, run!.id);
    return { run: (await h.acme.getWorkflowRun({ id: run!.id })).run!, updates };
  };

  it('says a command is missing from the sandbox and how to mount one', async () => {
    const { run, updates } = await runToEnd('missing-tool', { agentCommand: 'nonexistent-tool --go' });
    expect(run.status).toBe(RunStatus.HANDED_OFF);
    expect(run.error).toMatch(/^agent phase failed: agent command failed with exit code 127: nonexistent-tool: command not found in the sandbox\./);
    expect(run.error).toContain('add its directory to guardrails.readOnlyPaths in the definition');
    expect(run.error).toContain('AMEIDE_SANDBOX_READ_ONLY_PATHS');
    const agent = updates.find((u) => u.kind === StatusUpdateKind.PHASE_FINISHED && u.phase === Phase.AGENT)!;
    expect(agent.message).toMatch(/^agent command failed with exit code 127: nonexistent-tool: command not found in the sandbox/);
    // The shell's own line stays in the output.
    expect(agent.outputTail).toContain('nonexistent-tool: not found');
    expect(run.phases.find((p) => p.phase === Phase.AGENT)).toMatchObject({ state: PhaseState.FAILED, exitCode: 127 });
  });

  it('says an offline phase has no network and how to allow it', async () => {
    const { run, updates } = await runToEnd('offline-test', { testCommand: `node -e "require('https').get('https://registry.npmjs.org')"` });
    expect(run.status).toBe(RunStatus.HANDED_OFF);
    expect(run.error).toMatch(/^test phase failed: test command failed with exit code 1: the output shows a network failure \(.*registry\.npmjs\.org\)/);
    expect(run.error).toContain('the test phase has no network');
    expect(run.error).toContain('set guardrails.network.test: true in the definition');
    expect(run.error).toContain('guardrails.egressHosts');
    const test = updates.find((u) => u.kind === StatusUpdateKind.PHASE_FINISHED && u.phase === Phase.TEST)!;
    expect(test.message).toContain('the test phase has no network');
  });
});
