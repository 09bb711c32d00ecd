import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Phase, PhaseState, RunStatus, type StreamRunOutputResponse } from '@ameide/contracts';
import { Code, ConnectError, createWorkflowServiceClient } from '@ameide/sdk';
import { latestOutputLines, runsLogs } from '../../packages/cli/src/logs.js';
import { ACME_SECRET, applySample, MULTIPLY, useHarnessWithOrigin, type Harness } from '../support/harness.js';

const AGENT_SECRET = [{ name: 'DEPLOY_TOKEN', phases: [Phase.AGENT], fromEnv: 'DEPLOY_TOKEN' }];

/**
 * The agent prints a line a second for five seconds (after printing the secret, once whole and once in
 * two halves a second apart); the test phase fails with an assertion followed by 30 lines of stack.
 */
const AGENT = [
  'printf "%s\\n" "whole $DEPLOY_TOKEN"',
  'printf %s "$DEPLOY_TOKEN" | head -c 6',
  'sleep 1.2',
  'printf "%s\\n" "$DEPLOY_TOKEN" | tail -c +7',
  'for i in 1 2 3 4 5; do echo "tick $i"; sleep 1; done',
  'node "$AGENT_SCRIPT"',
].join('; ');
const TEST = 'npm test; echo "AssertionError: expected 41 to equal 42"; seq 1 30 | sed "s/^/    at frame /"; exit 1';

const transcriptOf = (h: Harness, runId: string, phase: string) => readFileSync(join(h.dir, 'artifacts', 'runs', 'acme', runId, 'transcripts', `${phase}.log`));

async function collect(stream: AsyncIterable<StreamRunOutputResponse>): Promise<StreamRunOutputResponse[]> {
  const out: StreamRunOutputResponse[] = [];
  for await (const res of stream) out.push(res);
  return out;
}

/** The data of one phase's chunks, in offset order. */
const dataOf = (chunks: StreamRunOutputResponse[], phase: Phase) =>
  chunks
    .filter((c) => c.phase === phase && !c.phaseFinished)
    .sort((a, b) => Number(a.offset - b.offset))
    .map((c) => c.data)
    .join('');

const codeOf = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (err) {
    return ConnectError.from(err).code;
  }
  return undefined;
};

describe('run logs: what the agent prints, while it prints it', () => {
  let h: Harness;
  let origin: string;
  useHarnessWithOrigin((started) => ({ h, origin } = started));
  let runId: string;
  let live: StreamRunOutputResponse[];
  let logLines: string[];

  it('follows the output live, phase by phase, and ends when the run ends', async () => {
    await applySample(h.acme, origin, { agentCommand: AGENT, testCommand: TEST, secrets: AGENT_SECRET });
    const { run } = await h.acme.startWorkflowRun({ definition: 'sample', workItems: [MULTIPLY] });
    runId = run!.id;
    logLines = [];
    const logs = runsLogs(h.acme, runId, { follow: true }, { out: (l) => logLines.push(l) });
    live = [];
    let firstTick: { status: RunStatus; agent?: PhaseState } | undefined;
    for await (const res of h.acme.streamRunOutput({ runId, follow: true })) {
      live.push(res);
      if (!firstTick && res.data.includes('tick 1')) {
        const now = (await h.acme.getWorkflowRun({ id: runId })).run!;
        firstTick = { status: now.status, agent: now.phases.find((p) => p.phase === Phase.AGENT)?.state };
      }
    }
    // The stream ended with the run, and not before.
    const done = (await h.acme.getWorkflowRun({ id: runId })).run!;
    expect(done.status, done.error).toBe(RunStatus.HANDED_OFF);
    // The first line arrived while the agent was still running (it runs 6 s more after it).
    expect(firstTick).toEqual({ status: RunStatus.RUNNING, agent: PhaseState.RUNNING });
    // Phase by phase: each phase's output, then its end.
    const order = live.map((c) => `${Phase[c.phase]}${c.phaseFinished ? ' finished' : ''}`).filter((x, i, all) => x !== all[i - 1]);
    expect(order).toEqual(['INSTALL', 'INSTALL finished', 'AGENT', 'AGENT finished', 'TEST', 'TEST finished']);
    // Each chunk is the transcript's bytes at its offset; together they are the whole transcript.
    for (const [phase, name] of [
      [Phase.INSTALL, 'install'],
      [Phase.AGENT, 'agent'],
      [Phase.TEST, 'test'],
    ] as const) {
      const transcript = transcriptOf(h, runId, name);
      for (const c of live.filter((x) => x.phase === phase && !x.phaseFinished)) {
        expect(transcript.subarray(Number(c.offset), Number(c.offset) + Buffer.byteLength(c.data)).toString()).toBe(c.data);
      }
      expect(dataOf(live, phase)).toBe(transcript.toString());
    }
    const agent = dataOf(live, Phase.AGENT);
    expect(agent).toMatch(/tick 1\ntick 2\ntick 3\ntick 4\ntick 5\n/);
    // The secret: redacted whole, also when printed in two halves a second apart; no chunk holds any of it.
    expect(agent).toContain('whole [REDACTED]');
    for (const c of live) {
      expect(c.data).not.toContain(ACME_SECRET);
      expect(c.data).not.toContain(ACME_SECRET.slice(0, 6));
    }
    // The CLI follower printed the same, under a header per phase, and returned 0.
    expect(await logs).toBe(0);
    const headers = logLines.filter((l) => l.startsWith('==> '));
    expect(headers).toEqual(['==> install <==', '==> agent <==', '==> test <==']);
    const agentAt = logLines.indexOf('==> agent <==');
    expect(logLines.indexOf('tick 1')).toBeGreaterThan(agentAt);
    expect(logLines.indexOf('tick 5')).toBeLessThan(logLines.indexOf('==> test <=='));
    expect(logLines.join('\n')).not.toContain(ACME_SECRET);
  });

  it('a failed phase says where its whole transcript is, and its tail reaches back to the assertion', async () => {
    const done = (await h.acme.getWorkflowRun({ id: runId })).run!;
    const test = done.phases.find((p) => p.phase === Phase.TEST)!;
    const transcripts = done.summary!.transcriptsUri;
    expect(transcripts).toMatch(/^file:.*\/transcripts\/$/);
    expect(done.error).toContain(`(full output: ${transcripts}test.log)`);
    // The assertion is 31 lines before the end: in the tail (40 lines), as the CLI shows it.
    expect(test.outputTail).toContain('AssertionError: expected 41 to equal 42');
    expect(test.outputTail.trimEnd().split('\n').at(-1)).toBe('    at frame 30');
  });

  it('without follow, replays what is kept and ends; tail_lines and one phase only', async () => {
    const all = await collect(h.acme.streamRunOutput({ runId, follow: false }));
    expect(dataOf(all, Phase.AGENT)).toBe(dataOf(live, Phase.AGENT));
    expect(all.filter((c) => c.phaseFinished).map((c) => Phase[c.phase])).toEqual(['INSTALL', 'AGENT', 'TEST']);
    expect(all.every((c) => c.transcriptUri === '')).toBe(true);

    const testTail = await collect(h.acme.streamRunOutput({ runId, phase: Phase.TEST, tailLines: 2 }));
    expect(dataOf(testTail, Phase.TEST)).toBe('    at frame 30\n[exit 1]\n');
    // It starts mid-phase, so it says where the whole transcript is.
    expect(testTail[0]!.transcriptUri).toBe(`${(await h.acme.getWorkflowRun({ id: runId })).run!.summary!.transcriptsUri}test.log`);
    expect(testTail.at(-1)).toMatchObject({ phase: Phase.TEST, phaseFinished: true });

    // Following a phase that has finished ends after its replay.
    const agentOnly = await collect(h.acme.streamRunOutput({ runId, phase: Phase.AGENT, follow: true }));
    expect(new Set(agentOnly.map((c) => c.phase))).toEqual(new Set([Phase.AGENT]));

    const lines: string[] = [];
    expect(await runsLogs(h.acme, runId, { phase: 'agent', follow: false }, { out: (l) => lines.push(l) })).toBe(0);
    expect(lines[0]).toBe('==> agent <==');
    expect(lines.filter((l) => l.startsWith('==> '))).toHaveLength(1);
    expect(lines).toContain('tick 3');

    const agentLines = transcriptOf(h, runId, 'agent').toString().trimEnd().split('\n');
    expect(await latestOutputLines(h.acme, runId, 'agent', 3)).toEqual(agentLines.slice(-3));
  });

  it('stores a resent chunk once, and only the worker may record output', async () => {
    const agent = await collect(h.acme.streamRunOutput({ runId, phase: Phase.AGENT }));
    const first = agent[0]!;
    // The worker sends a chunk again when the service's answer did not arrive: the first one stays.
    expect(await h.service.recordRunOutput({ runId, phase: Phase.AGENT, offset: first.offset, data: 'again' })).toMatchObject({ duplicate: true });
    const end = BigInt(transcriptOf(h, runId, 'agent').length);
    expect(await h.service.recordRunOutput({ runId, phase: Phase.AGENT, offset: end, data: 'late\n' })).toMatchObject({ duplicate: false });
    expect(await h.service.recordRunOutput({ runId, phase: Phase.AGENT, offset: end, data: 'late\n' })).toMatchObject({ duplicate: true });
    const after = await collect(h.acme.streamRunOutput({ runId, phase: Phase.AGENT }));
    expect(after.find((c) => c.offset === first.offset)!.data).toBe(first.data);
    expect(after.filter((c) => c.offset === end).map((c) => c.data)).toEqual(['late\n']);

    expect(await codeOf(h.acme.recordRunOutput({ runId, phase: Phase.AGENT, offset: 0n, data: 'x' }))).toBe(Code.PermissionDenied);
    const globexWorker = createWorkflowServiceClient({ baseUrl: h.apiUrl, token: h.tokens.globexService });
    expect(await codeOf(globexWorker.recordRunOutput({ runId, phase: Phase.AGENT, offset: 0n, data: 'x' }))).toBe(Code.PermissionDenied);
    expect(await codeOf(h.service.recordRunOutput({ runId, phase: Phase.UNSPECIFIED, offset: 0n, data: 'x' }))).toBe(Code.InvalidArgument);
    expect(await codeOf(collect(h.globex.streamRunOutput({ runId })))).toBe(Code.NotFound);
  });

  it('keeps only the newest 1 MiB of a phase', async () => {
    const chunk = `${'x'.repeat(1023)}\n`.repeat(64); // 64 KiB
    for (let i = 0; i < 20; i++) {
      await h.service.recordRunOutput({ runId, phase: Phase.PREVIEW, offset: BigInt(i * chunk.length), data: chunk });
    }
    const kept = await collect(h.acme.streamRunOutput({ runId, phase: Phase.PREVIEW }));
    const data = kept.filter((c) => !c.phaseFinished);
    const bytes = data.reduce((n, c) => n + c.data.length, 0);
    expect(bytes).toBeGreaterThanOrEqual(1024 * 1024);
    expect(bytes).toBeLessThanOrEqual(1024 * 1024 + chunk.length);
    expect(data.at(-1)!.offset).toBe(BigInt(19 * chunk.length));
    expect(data[0]!.offset).toBeGreaterThan(0n);
    expect(data[0]!.transcriptUri).toMatch(/\/transcripts\/preview\.log$/);
  });
});
