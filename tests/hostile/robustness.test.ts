import { describe, expect, it } from 'vitest';
import { Phase, PhaseState, RunStatus } from '@ameide/contracts';
import { liveProcesses } from '../support/processes.js';
import { applySample, useHarnessWithOrigin, type Harness } from '../support/harness.js';
import { applyAndRun, item, output, sleep, startAndFinish, transcript } from './support.js';

/** Hostile output and process counts do not break a run, the worker or other runs. */
describe('robustness against hostile commands', () => {
  let h: Harness;
  let origin: string;
  useHarnessWithOrigin((started) => ({ h, origin } = started));

  it('a command printing NUL bytes and invalid UTF-8 does not break the run, its status updates or watching', async () => {
    const f = await applyAndRun(
      h.acme,
      origin,
      'binary-output',
      { agentCommand: `printf 'a\\000b\\377\\376c\\n'; node "$AGENT_SCRIPT"` },
      item('CALC-1'),
      45_000,
    );
    expect(f.run.status).toBe(RunStatus.COMPLETED);
    expect(f.updates.at(-1)?.runStatus).toBe(RunStatus.COMPLETED);
    const agent = f.run.phases.find((p) => p.phase === Phase.AGENT)!;
    expect(agent.outputTail).toContain('agent: added multiply()');
    expect(agent.outputTail).toMatch(/a.{0,8}b.{0,16}c/s);
  });

  it('limits processes per run, not per tenant: two concurrent runs of one tenant each start 30 processes under maxProcesses 40', async () => {
    await applySample(
      h.acme,
      origin,
      {
        agentCommand: 'node "$AGENT_SCRIPT" && { for i in $(seq 30); do sleep 8 & done; echo "started 30 processes"; wait; }',
        guardrails: { budgets: { maxProcesses: 40 } },
      },
      'thirty-processes',
    );
    const runs = await Promise.all(['CALC-71', 'CALC-72'].map((id) => startAndFinish(h.acme, 'thirty-processes', item(id))));
    for (const { run } of runs) {
      const agent = run.phases.find((p) => p.phase === Phase.AGENT);
      expect(output(transcript(h, 'acme', run.id, 'agent')), `run ${run.id}`).toContain('started 30 processes');
      expect(agent?.state, `agent phase of run ${run.id}: ${agent?.outputTail}`).toBe(PhaseState.SUCCEEDED);
    }
  });

  it('a process the agent detaches (setsid, nohup, double fork) does not outlive its phase', async () => {
    const isDetached = (p: { text: string }) => p.text.startsWith('sleep\u0000301\u0000');
    const f = await applyAndRun(
      h.acme,
      origin,
      'detached',
      { agentCommand: 'node "$AGENT_SCRIPT" && (setsid nohup sh -c "sleep 301" >/dev/null 2>&1 &) && (nohup sleep 301 >/dev/null 2>&1 &) && echo detached' },
      item('CALC-74'),
    );
    expect(output(transcript(h, 'acme', f.run.id, 'agent'))).toContain('detached');
    for (let i = 0; i < 50 && liveProcesses(isDetached).length > 0; i++) await sleep(100);
    expect(liveProcesses(isDetached)).toEqual([]);
    expect(f.run.status).toBe(RunStatus.COMPLETED);
  });

  it('a fork bomb hits the process limit, and its run still ends, not completed, within its budget, leaving nothing behind', async () => {
    const isBomb = (p: { text: string }) => p.text.startsWith('sleep\u000031\u0000');
    const f = await applyAndRun(
      h.acme,
      origin,
      'fork-bomb',
      {
        agentCommand: 'for i in $(seq 200); do sleep 31 & done; wait',
        phaseTimeoutSeconds: 20,
        guardrails: { budgets: { maxProcesses: 40, runTimeoutSeconds: 60 } },
      },
      item('CALC-73'),
      90_000,
    );
    expect(f.run.status).not.toBe(RunStatus.COMPLETED);
    expect(f.elapsedMs).toBeLessThan(50_000);
    expect(output(transcript(h, 'acme', f.run.id, 'agent'))).toMatch(/fork|resource temporarily unavailable/i);
    for (let i = 0; i < 50 && liveProcesses(isBomb).length > 0; i++) await sleep(100);
    expect(liveProcesses(isBomb)).toEqual([]);
  });
});
