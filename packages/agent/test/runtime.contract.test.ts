/**
 * Contract tests of the LangChain agent runtime (packages/agent, bundled as dist/agent.mjs) and its
 * adapter (services/workflows-runtime/src/agents/langchain.ts), against the local model server of
 * tests/support/model-server.ts in each wire format it follows: OpenAI Chat Completions
 * (`POST /v1/chat/completions`), OpenAI Responses (`POST /v1/responses`) and Anthropic Messages
 * (`POST /v1/messages`, anthropic-version 2023-06-01).
 *
 * The runtime runs as the worker starts it (the adapter's argv, files and environment), without the
 * sandbox: in a temporary git worktree, as its own process, its stdout read through the adapter.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentSpansFile, exportAgentSpans, langchainAdapter } from '../../../services/workflows-runtime/src/agents/langchain.js';
import type { AgentEvent, ModelApi } from '../../../services/workflows-runtime/src/agents/types.js';
import { scripted, startModelServer, type ModelServer, type ModelStep } from '../../../tests/support/model-server.js';

const here = import.meta.dirname;
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_SPAN_ID = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE_ID}-${PARENT_SPAN_ID}-01`;
const MODEL = 'test-model';
const KEY = 'sk-contract-test';

let scratch: string;

beforeAll(() => {
  // Outside any directory whose name starts with "." (the worktree of a real run is not in one either).
  scratch = mkdtempSync(join(tmpdir(), 'agent-runtime-'));
  // The bundle the adapter launches, as `make deps` builds it.
  execFileSync(process.execPath, [join(here, '..', 'build.mjs')], { stdio: 'inherit' });
}, 120_000);

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

let counter = 0;
/** A git worktree with greeting.txt = "hello", and the step's HOME and TMPDIR beside it. */
function workspace() {
  const dir = join(scratch, `run-${++counter}`);
  const worktree = join(dir, 'worktree');
  const home = join(dir, 'home');
  const tmp = join(dir, 'tmp');
  for (const d of [worktree, home, tmp]) mkdirSync(d, { recursive: true });
  writeFileSync(join(worktree, 'greeting.txt'), 'hello');
  const git = (...args: string[]) => execFileSync('git', args, { cwd: worktree, stdio: 'ignore' });
  git('init', '-q');
  git('-c', 'user.name=t', '-c', 'user.email=t@example.com', 'add', '.');
  git('-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-qm', 'start');
  const promptFile = join(dir, 'prompt.md');
  writeFileSync(promptFile, 'Change greeting.txt so that it says "hello, world".');
  return { dir, worktree, home, tmp, promptFile };
}

function endpointOf(server: ModelServer, api: ModelApi): string {
  return api === 'messages' ? server.url : `${server.url}/v1`;
}

interface Run {
  code: number | null;
  events: AgentEvent[];
  stdout: string;
  stderr: string;
}

/** Starts the runtime as the worker would (the adapter's launch), with `env` beside the key. */
async function runAgent(
  ws: ReturnType<typeof workspace>,
  server: ModelServer,
  api: ModelApi,
  opts: { maxTurns?: number; env?: Record<string, string>; instructions?: string; onEvent?: (event: AgentEvent, child: ChildProcess) => void } = {},
): Promise<Run> {
  const launch = langchainAdapter.launch(
    {
      kind: 'langchain',
      model: MODEL,
      endpoint: endpointOf(server, api),
      api,
      apiKeyEnv: 'AGENT_TEST_KEY',
      maxTurns: opts.maxTurns ?? 10,
      ...(opts.instructions ? { instructions: opts.instructions } : {}),
    },
    { promptFile: ws.promptFile, worktree: ws.worktree, home: ws.home, tmp: ws.tmp, traceparent: TRACEPARENT },
  );
  for (const f of launch.files) writeFileSync(f.path, f.content);
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: ws.home, TMPDIR: ws.tmp, ...launch.env, AGENT_TEST_KEY: KEY, ...opts.env };
  const child = spawn(launch.argv[0]!, launch.argv.slice(1), { cwd: ws.worktree, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => {
    const before = stdout.split('\n').length - 1;
    stdout += c.toString();
    const lines = stdout.split('\n');
    for (const l of lines.slice(before, -1)) for (const e of langchainAdapter.parseLine(l)) opts.onEvent?.(e, child);
  });
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const lines = stdout.split('\n').filter(Boolean);
  const events = lines.flatMap((l) => langchainAdapter.parseLine(l));
  // Every stdout line is an event: nothing else is written there.
  expect(events).toHaveLength(lines.length);
  return { code, events, stdout, stderr };
}

/** A tiny OTLP/HTTP JSON receiver: what arrives at /v1/traces. */
async function otlpReceiver() {
  const bodies: unknown[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/traces' && req.headers['content-type'] === 'application/json') {
        bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } else res.writeHead(400).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`;
  return { url, bodies, close: () => new Promise<void>((r) => server.close(() => r())) };
}

type OtlpSpan = {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  status?: { code?: number; message?: string };
  attributes: Array<{ key: string; value: Record<string, unknown> }>;
};
function spansOf(body: unknown): OtlpSpan[] {
  const b = body as { resourceSpans: Array<{ scopeSpans: Array<{ spans: OtlpSpan[] }> }> };
  return b.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans));
}
function attr(span: OtlpSpan, key: string): unknown {
  const v = span.attributes.find((a) => a.key === key)?.value;
  return v === undefined ? undefined : Object.values(v)[0];
}

const EDIT_SCRIPT: ModelStep[] = [
  { tools: [{ name: 'read_file', input: { path: 'greeting.txt' } }] },
  { tools: [{ name: 'edit_file', input: { path: 'greeting.txt', oldString: 'hello', newString: 'hello, world' } }] },
  { text: 'greeting.txt now says hello, world.' },
];
const usage = (req: { toolResults: number }) => ({ input: 100 + req.toolResults, output: 10 + req.toolResults });
const modelCalls = (server: ModelServer, api: ModelApi) =>
  server.requests.filter(
    (r) => r.method === 'POST' && r.path.endsWith(api === 'chat' ? '/chat/completions' : api === 'responses' ? '/responses' : '/messages'),
  );

describe.each(['chat', 'responses', 'messages'] as const)('the LangChain runtime over %s', (api) => {
  it('reads and edits a file in three turns, reporting each turn, tool call and usage, with spans under the traceparent', async () => {
    const server = await startModelServer({ reply: scripted(EDIT_SCRIPT), usage });
    const receiver = await otlpReceiver();
    try {
      const ws = workspace();
      const run = await runAgent(ws, server, api, { instructions: 'Keep the file on one line.' });
      expect(run.code, run.stderr).toBe(0);
      expect(readFileSync(join(ws.worktree, 'greeting.txt'), 'utf8')).toBe('hello, world');

      expect(run.events.map((e) => e.type)).toEqual([
        'turn',
        'usage',
        'tool_call',
        'tool_result',
        'turn',
        'usage',
        'tool_call',
        'tool_result',
        'turn',
        'usage',
        'message',
        'final',
      ]);
      const calls = run.events.filter((e) => e.type === 'tool_call');
      expect(calls.map((c) => [c.name, JSON.parse(c.input)])).toEqual([
        ['read_file', { path: 'greeting.txt' }],
        ['edit_file', { path: 'greeting.txt', oldString: 'hello', newString: 'hello, world' }],
      ]);
      const results = run.events.filter((e) => e.type === 'tool_result');
      expect(results[0]).toMatchObject({ output: 'hello', id: calls[0]!.id });
      expect(results[1]).toMatchObject({ output: 'edited greeting.txt', id: calls[1]!.id });
      expect(results.every((r) => !r.isError)).toBe(true);
      expect(run.events.filter((e) => e.type === 'usage')).toEqual(
        [0, 1, 2].map((n) => ({ type: 'usage', model: MODEL, inputTokens: 100 + n, outputTokens: 10 + n })),
      );
      expect(run.events.at(-1)).toEqual({ type: 'final', text: 'greeting.txt now says hello, world.' });

      // Three model calls, each with the key, the six tools and the prompt with the instructions.
      const requests = modelCalls(server, api);
      expect(requests).toHaveLength(3);
      for (const r of requests) {
        expect(r.model).toBe(MODEL);
        if (api === 'messages') expect(r.headers['x-api-key']).toBe(KEY);
        else expect(r.headers.authorization).toBe(`Bearer ${KEY}`);
        expect([...r.toolNames].sort()).toEqual(['edit_file', 'list_files', 'read_file', 'run_command', 'search', 'write_file']);
        expect(JSON.stringify(r.body)).toContain('Keep the file on one line.');
      }
      expect(requests[1]!.toolOutputs).toEqual(['hello']);

      // The spans the sandbox wrote, sent by the worker to its collector.
      const file = agentSpansFile(ws);
      expect(file).toBe(join(ws.tmp, 'agent-spans.json'));
      expect(await exportAgentSpans(file, receiver.url)).toBe(6);
      expect(receiver.bodies).toHaveLength(1);
      const spans = spansOf(receiver.bodies[0]);
      expect(spans.every((s) => s.traceId === TRACE_ID)).toBe(true);
      const root = spans.find((s) => s.name === 'agent')!;
      expect(root.parentSpanId).toBe(PARENT_SPAN_ID);
      const model = spans.filter((s) => s.name === `chat ${MODEL}`);
      expect(model).toHaveLength(3);
      for (const [i, s] of model.entries()) {
        expect(s.parentSpanId).toBe(root.spanId);
        expect(attr(s, 'gen_ai.request.model')).toBe(MODEL);
        expect(attr(s, 'gen_ai.system')).toBe(api === 'messages' ? 'anthropic' : 'openai');
        expect(Number(attr(s, 'gen_ai.usage.input_tokens'))).toBe(100 + i);
        expect(Number(attr(s, 'gen_ai.usage.output_tokens'))).toBe(10 + i);
      }
      const tools = spans.filter((s) => s.name.startsWith('execute_tool '));
      expect(tools.map((s) => attr(s, 'gen_ai.tool.name'))).toEqual(['read_file', 'edit_file']);
      expect(tools.every((s) => s.parentSpanId === root.spanId)).toBe(true);
    } finally {
      await receiver.close();
      await server.close();
    }
  });
});

describe('the LangChain runtime', () => {
  it('stops after maxTurns model calls with exit code 3, saying so, and still writes its spans', async () => {
    const server = await startModelServer({ reply: scripted(EDIT_SCRIPT), usage });
    const receiver = await otlpReceiver();
    try {
      const ws = workspace();
      const run = await runAgent(ws, server, 'chat', { maxTurns: 2 });
      expect(run.code).toBe(3);
      const message = 'stopped after 2 model calls (maxTurns 2)';
      expect(run.events.filter((e) => e.type === 'turn')).toHaveLength(2);
      expect(run.events.at(-1)).toEqual({ type: 'error', message });
      expect(run.stderr).toContain(message);
      expect(modelCalls(server, 'chat')).toHaveLength(2);
      // The second turn's edit was done before the budget stopped a third call.
      expect(readFileSync(join(ws.worktree, 'greeting.txt'), 'utf8')).toBe('hello, world');
      expect(await exportAgentSpans(agentSpansFile(ws), receiver.url)).toBe(5);
      const root = spansOf(receiver.bodies[0]).find((s) => s.name === 'agent')!;
      expect(root.status).toMatchObject({ code: 2, message });
    } finally {
      await receiver.close();
      await server.close();
    }
  });

  it('refuses paths that leave the worktree (.., absolute, symlinks out) as tool errors the model sees', async () => {
    const ws = workspace();
    const outside = join(ws.dir, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'secret.txt'), 'secret');
    symlinkSync(outside, join(ws.worktree, 'link'));
    symlinkSync(join(ws.dir, 'nowhere'), join(ws.worktree, 'dangling'));
    const attempts = [
      { name: 'read_file', input: { path: '../outside/secret.txt' } },
      { name: 'read_file', input: { path: join(outside, 'secret.txt') } },
      { name: 'read_file', input: { path: 'link/secret.txt' } },
      { name: 'write_file', input: { path: 'link/new.txt', content: 'x' } },
      { name: 'edit_file', input: { path: 'link/secret.txt', oldString: 'secret', newString: 'changed' } },
      { name: 'write_file', input: { path: 'dangling', content: 'x' } },
      { name: 'list_files', input: { path: 'link' } },
      { name: 'search', input: { query: 'secret', path: '..' } },
    ];
    const server = await startModelServer({
      reply: (req) => (req.toolResults === 0 ? { tools: attempts } : { text: 'I could not leave the worktree.' }),
    });
    try {
      const run = await runAgent(ws, server, 'chat');
      expect(run.code, run.stderr).toBe(0);
      const results = run.events.filter((e) => e.type === 'tool_result');
      expect(results).toHaveLength(attempts.length);
      for (const r of results) {
        expect(r.isError).toBe(true);
        expect(r.output).toMatch(/refused/);
      }
      expect(results[1]!.output).toContain('absolute path');
      expect(readFileSync(join(outside, 'secret.txt'), 'utf8')).toBe('secret');
      expect(existsSync(join(outside, 'new.txt'))).toBe(false);
      expect(existsSync(join(ws.dir, 'nowhere'))).toBe(false);
      // The model got the refusals as the tools' results and went on.
      const second = modelCalls(server, 'chat')[1]!;
      expect(second.toolOutputs).toHaveLength(attempts.length);
      expect(second.toolOutputs.every((o) => o.includes('refused'))).toBe(true);
      expect(run.events.at(-1)).toEqual({ type: 'final', text: 'I could not leave the worktree.' });
    } finally {
      await server.close();
    }
  });

  it('writes its spans and kills its running command when it is stopped (SIGTERM)', async () => {
    const ws = workspace();
    const marker = join(ws.dir, 'still-running');
    const server = await startModelServer({
      reply: scripted([{ tools: [{ name: 'run_command', input: { command: `sleep 2; touch ${marker}` } }] }, { text: 'done' }]),
    });
    const receiver = await otlpReceiver();
    try {
      const run = await runAgent(ws, server, 'chat', { onEvent: (e, child) => e.type === 'tool_call' && setTimeout(() => child.kill('SIGTERM'), 200) });
      expect(run.code).toBe(143);
      expect(run.events.at(-1)).toEqual({ type: 'error', message: 'stopped by SIGTERM' });
      expect(await exportAgentSpans(agentSpansFile(ws), receiver.url)).toBe(3);
      const spans = spansOf(receiver.bodies[0]);
      expect(spans.find((s) => s.name === 'execute_tool run_command')?.status).toMatchObject({ code: 2, message: 'stopped by SIGTERM' });
      expect(spans.find((s) => s.name === 'agent')?.status).toMatchObject({ code: 2, message: 'stopped by SIGTERM' });
      await new Promise((r) => setTimeout(r, 2500));
      expect(existsSync(marker)).toBe(false);
    } finally {
      await receiver.close();
      await server.close();
    }
  });

  it('runs commands in the worktree without the API key in their environment', async () => {
    const ws = workspace();
    const server = await startModelServer({
      reply: scripted([
        { tools: [{ name: 'run_command', input: { command: 'pwd; cat greeting.txt; echo "key=[$AGENT_TEST_KEY]"; exit 4' } }] },
        {
          tools: [
            { name: 'search', input: { query: 'hel+o', regex: true } },
            { name: 'list_files', input: { pattern: '*.txt' } },
          ],
        },
        { text: 'done' },
      ]),
    });
    try {
      const run = await runAgent(ws, server, 'chat');
      expect(run.code, run.stderr).toBe(0);
      const results = run.events.filter((e) => e.type === 'tool_result').map((e) => e.output);
      expect(results[0]).toBe(`exit code 4\n${ws.worktree}\nhellokey=[]\n`);
      expect(results[1]).toBe('greeting.txt:1: hello');
      expect(results[2]).toBe('greeting.txt');
    } finally {
      await server.close();
    }
  });

  describe.each(['chat', 'messages'] as const)('over %s', (api) => {
    it('reaches the model through HTTP_PROXY when it is set', async () => {
      const server = await startModelServer({ reply: scripted(EDIT_SCRIPT) });
      const proxy = await startProxy();
      try {
        const ws = workspace();
        const run = await runAgent(ws, server, api, { env: { HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url } });
        expect(run.code, run.stderr).toBe(0);
        expect(modelCalls(server, api)).toHaveLength(3);
        // Every model call went through the proxy, in CONNECT tunnels to the model host.
        expect(proxy.seen.length).toBeGreaterThanOrEqual(1);
        expect(proxy.seen.every((s) => s === `CONNECT 127.0.0.1:${server.port}`)).toBe(true);
        // A host in NO_PROXY is reached directly.
        const seen = proxy.seen.length;
        const direct = await runAgent(workspace(), server, api, { env: { HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url, NO_PROXY: '127.0.0.1' } });
        expect(direct.code, direct.stderr).toBe(0);
        expect(modelCalls(server, api)).toHaveLength(6);
        expect(proxy.seen).toHaveLength(seen);
      } finally {
        await proxy.close();
        await server.close();
      }
    });
  });
});

/** A small HTTP proxy: forwards absolute-form requests and tunnels CONNECT, recording the targets. */
async function startProxy() {
  const seen: string[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    seen.push(`${req.method} ${req.url}`);
    const target = new URL(req.url ?? '');
    const upstream = httpRequest(
      { host: target.hostname, port: target.port, path: target.pathname + target.search, method: req.method, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  server.on('connect', (req: IncomingMessage, socket, head: Buffer) => {
    seen.push(`CONNECT ${req.url}`);
    const [host, port] = (req.url ?? '').split(':');
    const upstream = connect(Number(port), host!, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
