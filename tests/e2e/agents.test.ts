import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Phase, RunStatus, RunView, type Run } from '@ameide/contracts';
import { git } from '@ameide/devstack';
import { applySample, type Harness, MULTIPLY, sampleOrigin, startHarness } from '../support/harness.js';
import { scripted, startModelServer, type ModelServer, type ModelStep } from '../support/model-server.js';

/**
 * Contract tests of the three agent adapters end to end: the real Codex CLI (0.169.0, OpenAI
 * Responses API), the real Claude Code CLI (2.1.328, Anthropic Messages API, anthropic-version
 * 2023-06-01) and the LangChain runtime (OpenAI Chat Completions) each run as the agent phase of a
 * real run, in the bubblewrap sandbox, in network mode `model`: the only way out is the worker's
 * egress proxy, which admits the model endpoint and nothing else. The model is the local model
 * server (tests/support/model-server.ts), which replies from a script: read src/calc.js, add
 * multiply, answer. It listens on an address of this machine other than loopback, under the name
 * model.test (pinned for the proxy with AMEIDE_EGRESS_RESOLVE, admitted with
 * AMEIDE_EGRESS_EXTRA_NETWORKS), as a model server on the local network would.
 */

const HOST = 'model.test';
/** An address of this machine the sandbox cannot reach but through the proxy; loopback only if there is none. */
const ADDRESS =
  Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal)?.address ?? '127.0.0.1';

const OLD = '/** Subtracts b from a. */';
const NEW = '/** Multiplies a and b. */\nexport function multiply(a, b) {\n  return a * b;\n}\n\n/** Subtracts b from a. */';

/** The script each agent follows, in the tools it offers. */
const SCRIPTS: Record<'codex' | 'claude-code' | 'langchain', ModelStep[]> = {
  codex: [
    { text: 'Reading the calculator first.', tools: [{ name: 'exec_command', input: { cmd: 'cat src/calc.js; echo "key=[$MODEL_KEY]"' } }] },
    {
      tools: [
        {
          name: 'exec_command',
          input: {
            cmd: `apply_patch <<'EOF'\n*** Begin Patch\n*** Update File: src/calc.js\n@@\n-${OLD}\n${NEW.split('\n')
              .map((l) => `+${l}`)
              .join('\n')}\n*** End Patch\nEOF\n`,
          },
        },
      ],
    },
    { text: 'Added multiply(a, b) to src/calc.js.' },
  ],
  'claude-code': [
    { text: 'Let me read the calculator.', tools: [{ name: 'Read', input: { file_path: '/sandbox/workspace/src/calc.js' } }] },
    { tools: [{ name: 'Edit', input: { file_path: '/sandbox/workspace/src/calc.js', old_string: OLD, new_string: NEW } }] },
    { text: 'Added multiply(a, b) to src/calc.js.' },
  ],
  langchain: [
    { tools: [{ name: 'read_file', input: { path: 'src/calc.js' } }] },
    { tools: [{ name: 'edit_file', input: { path: 'src/calc.js', oldString: OLD, newString: NEW } }] },
    { text: 'Added multiply(a, b) to src/calc.js.' },
  ],
};

/** A plain HTTP server on the same address: a destination the agent phase must not reach. */
async function bystander(): Promise<{ server: Server; port: number; hits: number[] }> {
  const hits: number[] = [];
  const server = createServer((_req, res) => {
    hits.push(Date.now());
    res.end('should not be reached');
  });
  await new Promise<void>((r) => server.listen(0, ADDRESS, r));
  return { server, port: (server.address() as AddressInfo).port, hits };
}

/** An OTLP/HTTP receiver (JSON), as a collector. */
async function collector(): Promise<{ server: Server; url: string; bodies: unknown[] }> {
  const bodies: unknown[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        // protobuf from another exporter: not ours
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`, bodies };
}

async function waitForEnd(h: Harness, id: string): Promise<Run> {
  const until = Date.now() + 150_000;
  for (;;) {
    const run = (await h.acme.getWorkflowRun({ id })).run!;
    if (run.endTime || Date.now() > until) return run;
    await new Promise((r) => setTimeout(r, 300));
  }
}

describe('coding agents in the sandbox, through model-only egress', () => {
  let h: Harness;
  let origin: string;
  let model: ModelServer;
  let script: ModelStep[] = [];
  let other: Awaited<ReturnType<typeof bystander>>;
  let otlp: Awaited<ReturnType<typeof collector>>;
  const policy = { AMEIDE_EGRESS_ALLOWED_HOSTS: `registry.npmjs.org,${HOST}` };
  // The worker runs in this process: its activity spans (OpenTelemetry interceptor) are recorded here.
  const workerSpans = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(workerSpans)] });

  beforeAll(async () => {
    provider.register();
    model = await startModelServer({ reply: (req) => scripted(script)(req), host: ADDRESS });
    other = await bystander();
    otlp = await collector();
    h = await startHarness({
      worker: true,
      serviceEnv: policy,
      workerEnv: {
        ...policy,
        AMEIDE_EGRESS_RESOLVE: `${HOST}=${ADDRESS}`,
        AMEIDE_EGRESS_EXTRA_NETWORKS: `${ADDRESS}/32`,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: otlp.url,
        AMEIDE_SECRET_ACME__MODEL_KEY: 'sk-model-key-7f3a9c2e51d4',
      },
    });
    origin = sampleOrigin(h);
  });
  afterAll(async () => {
    await h?.stop();
    await model?.close();
    other?.server.close();
    otlp?.server.close();
    await provider.shutdown();
  });

  for (const kind of ['codex', 'claude-code', 'langchain'] as const) {
    it(`runs ${kind} to a completed run with the scripted change on the branch, its turns and its token usage`, async () => {
      script = SCRIPTS[kind];
      const seen = model.requests.length;
      const endpoint = kind === 'claude-code' ? `http://${HOST}:${model.port}` : `http://${HOST}:${model.port}/v1`;
      const name = `agent-${kind}`;
      await applySample(
        h.acme,
        origin,
        {
          agent: { kind, model: kind === 'claude-code' ? 'claude-sonnet-4-5' : 'gpt-5-codex', endpoint, apiKeySecret: 'MODEL_KEY', maxTurns: 5 },
          secrets: [{ name: 'MODEL_KEY', phases: [Phase.AGENT], fromEnv: 'MODEL_KEY' }],
        },
        name,
      );
      const started = (await h.acme.startWorkflowRun({ definition: name, workItems: [{ ...MULTIPLY, id: `AGENT-${kind}` }] })).run!;
      const run = await waitForEnd(h, started.id);
      expect(run.status, `${run.error}\n${run.phases.map((p) => p.outputTail).join('\n')}`).toBe(RunStatus.COMPLETED);

      // The change is on the pushed branch.
      const s = run.summary!;
      expect(git(origin, 'show', `${s.headCommit}:src/calc.js`)).toContain('export function multiply(a, b)');
      // The agent's turns and tokens.
      const a = s.agent!;
      expect([a.kind, a.turns, a.toolCalls]).toEqual([kind, 3, 2]);
      expect(a.inputTokens).toBeGreaterThan(0n);
      expect(a.outputTokens).toBeGreaterThan(0n);
      expect(a.finalMessage).toBe('Added multiply(a, b) to src/calc.js.');
      const transcript = readFileSync(new URL(a.transcriptUri), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { type: string; name?: string });
      expect(transcript.filter((e) => e.type === 'tool_call').length).toBe(2);
      expect(transcript.filter((e) => e.type === 'turn').length).toBe(3);
      // The model saw the key (and the prompt); the key is in no transcript.
      const mine = model.requests.slice(seen).filter((r) => r.path.endsWith('/responses') || r.path.endsWith('/messages') || r.path.endsWith('/completions'));
      expect(mine.length).toBe(3);
      expect(JSON.stringify(mine[0]!.headers)).toContain('sk-model-key-7f3a9c2e51d4');
      expect(JSON.stringify(mine[0]!.body)).toContain('multiply');
      expect(readFileSync(new URL(a.transcriptUri), 'utf8')).not.toContain('sk-model-key-7f3a9c2e51d4');
      if (kind === 'codex') {
        // The commands codex runs do not get its key.
        expect(mine[1]!.toolOutputs.join('\n')).toContain('key=[]');
        expect(JSON.stringify(mine[1]!.body)).not.toContain('sk-model-key-7f3a9c2e51d4');
      }
      // The turns are evidence of the run (with their digest), and the provenance names the agent and its model.
      const evidence = s.evidence.find((e) => e.name === 'agent/transcript.jsonl');
      expect(evidence).toMatchObject({ kind: 'transcript', uri: a.transcriptUri, mediaType: 'application/jsonl' });
      const versions = { codex: 'codex-cli 0.169.0', 'claude-code': 'claude-code 2.1.328', langchain: 'ameide-agent 0.1.0 (langchain 1.5.14)' };
      expect(s.provenance!.toolVersions).toMatchObject({ agent: `${kind}: ${versions[kind]}`, agent_model: `${a.model} at ${endpoint}` });
      expect(s.provenance!.toolVersions['agent_command']).toBeUndefined();
      // Egress: the agent phase reached its endpoint, and only through the proxy.
      expect(s.egress.filter((e) => e.phase === 'agent' && e.allowed).map((e) => e.destination)).toEqual([`${HOST}:${model.port}`]);
      // The live log shows the turns.
      const logs = [];
      for await (const c of h.acme.streamRunOutput({ runId: run.id, phase: Phase.AGENT })) if (c.data.length) logs.push(Buffer.from(c.data).toString('utf8'));
      expect(logs.join('')).toMatch(/\[agent\] model call 3\n/);

      if (kind === 'langchain') {
        // Its spans went on to the worker's collector: the agent, each model call, each tool call.
        type OtlpSpan = { name: string; traceId: string; spanId: string; parentSpanId?: string };
        const spans = otlp.bodies.flatMap((b) =>
          ((b as { resourceSpans?: Array<{ scopeSpans: Array<{ spans: OtlpSpan[] }> }> }).resourceSpans ?? []).flatMap((r) =>
            r.scopeSpans.flatMap((x) => x.spans),
          ),
        );
        const root = spans.find((sp) => sp.name === 'agent')!;
        expect(root).toBeDefined();
        const children = spans.filter((sp) => sp.parentSpanId === root.spanId).map((sp) => sp.name);
        expect(children.filter((n) => n.startsWith('chat ')).length).toBe(3);
        expect(children.filter((n) => n.startsWith('execute_tool ')).length).toBe(2);
        // One trace: the agent span's parent is the worker's span of the agent phase's activity.
        const phase = workerSpans.getFinishedSpans().find((sp) => sp.spanContext().spanId === root.parentSpanId);
        expect(phase?.name).toBe('RunActivity:runCommandPhase');
        expect(phase?.spanContext().traceId).toBe(root.traceId);
      }
    });
  }

  it('refuses every other destination of the agent phase and records the refusal', async () => {
    // The LangChain agent runs a command that tries another port of the model's host, and a host that is not the model.
    script = [
      {
        tools: [
          {
            name: 'run_command',
            input: {
              command: `curl -sS -m 5 http://${HOST}:${other.port}/ ; curl -sS -m 5 https://example.org/ ; curl -sS -m 5 http://${ADDRESS}:${other.port}/ ; echo probed`,
            },
          },
        ],
      },
      { tools: [{ name: 'edit_file', input: { path: 'src/calc.js', oldString: OLD, newString: NEW } }] },
      { text: 'Added multiply(a, b) to src/calc.js.' },
    ];
    const endpoint = `http://${HOST}:${model.port}/v1`;
    await applySample(h.acme, origin, { agent: { kind: 'langchain', model: 'gpt-5-codex', endpoint, maxTurns: 5 } }, 'agent-probe');
    const started = (await h.acme.startWorkflowRun({ definition: 'agent-probe', workItems: [{ ...MULTIPLY, id: 'AGENT-probe' }] })).run!;
    const run = await waitForEnd(h, started.id);
    expect(run.status, run.error).toBe(RunStatus.COMPLETED);
    expect(other.hits).toEqual([]);
    const refused = run.summary!.egress.filter((e) => e.phase === 'agent' && !e.allowed);
    const byDestination = Object.fromEntries(refused.map((e) => [e.destination, e.reason]));
    expect(byDestination).toMatchObject({ [`${HOST}:${other.port}`]: 'not in the allowlist', 'example.org:443': 'not in the allowlist' });
    expect(run.summary!.egress.some((e) => e.phase === 'agent' && e.allowed && e.destination === `${HOST}:${model.port}`)).toBe(true);
  });

  it("reads the agent's events as data: a link put in place of its events file leads the worker nowhere", async () => {
    // A file only the worker can read; the agent swaps its events file for a link to it mid-run.
    const secretFile = join(h.dir, 'worker-only.txt');
    writeFileSync(secretFile, 'WORKER-ONLY-4f1c9a\n', { mode: 0o600 });
    script = [
      {
        tools: [
          {
            name: 'run_command',
            input: { command: `rm -f "$TMPDIR/ameide-agent-events.jsonl" && ln -s ${secretFile} "$TMPDIR/ameide-agent-events.jsonl" && echo swapped` },
          },
        ],
      },
      { tools: [{ name: 'edit_file', input: { path: 'src/calc.js', oldString: OLD, newString: NEW } }] },
      { text: 'Added multiply(a, b) to src/calc.js.' },
    ];
    const endpoint = `http://${HOST}:${model.port}/v1`;
    await applySample(h.acme, origin, { agent: { kind: 'langchain', model: 'gpt-5-codex', endpoint, maxTurns: 5 } }, 'agent-swap');
    const started = (await h.acme.startWorkflowRun({ definition: 'agent-swap', workItems: [{ ...MULTIPLY, id: 'AGENT-swap' }] })).run!;
    const run = await waitForEnd(h, started.id);
    expect(run.status, run.error).toBe(RunStatus.COMPLETED);
    // The worker kept reading the file it opened before the start: every turn is there, the worker's file is not.
    const a = run.summary!.agent!;
    expect([a.turns, a.toolCalls, a.finalMessage]).toEqual([3, 2, 'Added multiply(a, b) to src/calc.js.']);
    const transcript = readFileSync(new URL(a.transcriptUri), 'utf8');
    expect(transcript).toContain('swapped');
    expect(transcript).not.toContain('WORKER-ONLY-4f1c9a');
  });

  it('lists runs without their bulky parts unless the full view is asked for', async () => {
    const full = (await h.acme.getWorkflowRun({ id: (await h.acme.listWorkflowRuns({ workItemId: 'AGENT-langchain' })).runs[0]!.id })).run!;
    expect(full.phases.some((p) => p.outputTail !== '')).toBe(true);
    expect([full.summary!.evidence.length > 0, full.summary!.egress.length > 0, full.summary!.agent!.calls.length]).toEqual([true, true, 3]);
    const [basic] = (await h.acme.listWorkflowRuns({ workItemId: 'AGENT-langchain' })).runs;
    // The same run, the same phases and totals; no output tails, evidence files, egress record or per-call tokens.
    expect(basic!.phases.map((p) => [p.phase, p.state, p.exitCode, p.durationMs])).toEqual(
      full.phases.map((p) => [p.phase, p.state, p.exitCode, p.durationMs]),
    );
    expect(basic!.phases.every((p) => p.outputTail === '')).toBe(true);
    expect([basic!.summary!.evidence, basic!.summary!.egress, basic!.summary!.agent!.calls]).toEqual([[], [], []]);
    expect([basic!.summary!.headCommit, basic!.summary!.agent!.inputTokens, basic!.status]).toEqual([
      full.summary!.headCommit,
      full.summary!.agent!.inputTokens,
      full.status,
    ]);
    const [asked] = (await h.acme.listWorkflowRuns({ workItemId: 'AGENT-langchain', view: RunView.FULL })).runs;
    expect(asked).toEqual(full);
  });

  it('stops an agent that exceeds maxTurns with a clear message', async () => {
    // A model that keeps asking for tools (its one step repeats): the worker stops codex after maxTurns model calls.
    const endpoint = `http://${HOST}:${model.port}/v1`;
    await applySample(h.acme, origin, { agent: { kind: 'codex', model: 'gpt-5-codex', endpoint, maxTurns: 2 } }, 'agent-loop');
    script = SCRIPTS.codex.slice(0, 1);
    const started = (await h.acme.startWorkflowRun({ definition: 'agent-loop', workItems: [{ ...MULTIPLY, id: 'AGENT-loop' }] })).run!;
    const run = await waitForEnd(h, started.id);
    expect(run.status).toBe(RunStatus.HANDED_OFF);
    expect(run.error).toContain('the agent was stopped after 2 model calls (maxTurns 2)');
    expect(run.summary!.agent!.stopped).toBe('the agent was stopped after 2 model calls (maxTurns 2)');
    expect(run.summary!.agent!.transcriptUri).toMatch(/agent\/transcript\.jsonl$/);
  });
});
