/**
 * Contract test of the Codex adapter: the real Codex CLI 0.169.0 (the binary `codexAdapter.launch`
 * resolves, started with its argv, env and files, without the worker's sandbox) against the local
 * model server speaking the OpenAI Responses API (`POST /v1/responses`, streaming SSE as documented
 * for the Responses API; see tests/support/model-server.ts), in a temporary git repository.
 *
 * A recording HTTP proxy is set for codex (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, the model server
 * host excepted by NO_PROXY; codex honours these variables, a host:port entry in NO_PROXY it does not):
 * every host codex tries to reach besides the endpoint shows up there.
 */
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scripted, startModelServer, type ModelServer, type ModelStep } from '../../../../../tests/support/model-server.js';
import { codexAdapter } from '../../../src/agents/codex.js';
import type { AgentConfig, AgentEvent, AgentLaunchContext } from '../../../src/agents/types.js';

const PATCH = `apply_patch <<'EOF'
*** Begin Patch
*** Update File: greeting.txt
@@
-hello
+hello, world
*** End Patch
EOF
`;

const steps: ModelStep[] = [
  { text: 'Reading greeting.txt first.', tools: [{ name: 'exec_command', input: { cmd: 'cat greeting.txt' } }] },
  { tools: [{ name: 'exec_command', input: { cmd: PATCH } }] },
  { text: 'greeting.txt now says hello, world.' },
];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  events: AgentEvent[];
  worktree: string;
}

let root: string;
let proxy: Server;
let proxyUrl: string;
const proxied: string[] = [];

beforeAll(async () => {
  // Not under a dot-directory (codex and the tools it runs treat those as hidden/ignored).
  root = mkdtempSync(join(tmpdir(), 'codex-contract-'));
  proxy = createServer((req, res) => {
    proxied.push(`${req.method} ${req.url}`);
    res.writeHead(403).end('no egress in this test');
  });
  proxy.on('connect', (req, socket) => {
    proxied.push(`CONNECT ${req.url}`);
    socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => proxy.close(() => resolve()));
  rmSync(root, { recursive: true, force: true });
});

async function runCodex(name: string, server: ModelServer, config: Partial<AgentConfig>, extraEnv: Record<string, string> = {}): Promise<Run> {
  const dir = join(root, name);
  const ctx: AgentLaunchContext = { promptFile: join(dir, 'prompt.md'), worktree: join(dir, 'workspace'), home: join(dir, 'home'), tmp: join(dir, 'tmp') };
  for (const d of [ctx.worktree, ctx.home, ctx.tmp]) mkdirSync(d, { recursive: true });
  writeFileSync(ctx.promptFile, 'Change greeting.txt so that it says "hello, world".\n');
  writeFileSync(join(ctx.worktree, 'greeting.txt'), 'hello\n');
  const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=test', '-c', 'user.email=test@example.com', ...args], { cwd: ctx.worktree });
  git('init', '-q');
  git('add', '.');
  git('commit', '-qm', 'greeting');

  const launch = codexAdapter.launch({ kind: 'codex', model: 'gpt-test-codex', endpoint: `${server.url}/v1`, maxTurns: 10, ...config }, ctx);
  for (const f of launch.files) {
    mkdirSync(dirname(f.path), { recursive: true });
    writeFileSync(f.path, f.content);
  }
  const env: Record<string, string> = {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    HOME: ctx.home,
    TMPDIR: ctx.tmp,
    LANG: 'C.UTF-8',
    HTTP_PROXY: proxyUrl,
    HTTPS_PROXY: proxyUrl,
    ALL_PROXY: proxyUrl,
    http_proxy: proxyUrl,
    https_proxy: proxyUrl,
    NO_PROXY: '127.0.0.1',
    no_proxy: '127.0.0.1',
    ...extraEnv,
    ...launch.env,
  };
  const child = spawn(launch.argv[0]!, launch.argv.slice(1), { cwd: ctx.worktree, env, stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.end(launch.stdin ?? '');
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const events = stdout.split('\n').flatMap((l) => codexAdapter.parseLine(l));
  return { code, stdout, stderr, events, worktree: ctx.worktree };
}

describe('codex exec against the model server (Responses API)', () => {
  let server: ModelServer;
  let run: Run;

  beforeAll(async () => {
    server = await startModelServer({ reply: scripted(steps) });
    run = await runCodex('edit', server, { apiKeyEnv: 'TEST_MODEL_KEY', instructions: 'Keep the trailing newline.' }, { TEST_MODEL_KEY: 'test-key' });
  }, 120_000);
  afterAll(async () => {
    await server.close();
  });

  it('exits 0 and changed greeting.txt', () => {
    expect(run.code, `stderr: ${run.stderr}\nstdout: ${run.stdout}`).toBe(0);
    expect(readFileSync(join(run.worktree, 'greeting.txt'), 'utf8')).toBe('hello, world\n');
  });

  it('the parsed events show both tool calls, their results, the final text, three turns and the usage', () => {
    const calls = run.events.filter((e) => e.type === 'tool_call');
    expect(calls).toEqual([
      expect.objectContaining({ name: 'command_execution', input: expect.stringContaining('cat greeting.txt') }),
      expect.objectContaining({ name: 'file_change', input: expect.stringContaining('greeting.txt') }),
    ]);
    const results = run.events.filter((e) => e.type === 'tool_result');
    expect(results).toEqual([expect.objectContaining({ output: 'hello\n' }), expect.objectContaining({ output: expect.stringContaining('completed') })]);
    expect(results.some((r) => r.type === 'tool_result' && r.isError)).toBe(false);
    expect(run.events.filter((e) => e.type === 'turn')).toHaveLength(3);
    expect(run.events.filter((e) => e.type === 'final').at(-1)).toEqual({ type: 'final', text: 'greeting.txt now says hello, world.' });
    expect(run.events).toContainEqual({ type: 'message', role: 'assistant', text: 'Reading greeting.txt first.' });
    const usage = run.events.filter((e) => e.type === 'usage');
    expect(usage).toEqual([{ type: 'usage', inputTokens: 300, outputTokens: 60 }]);
    expect(run.events.filter((e) => e.type === 'error')).toEqual([]);
  });

  it('the model server saw three Responses requests, with the prompt, the key and the tool results; nothing else was reached', () => {
    expect(server.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /v1/responses', 'POST /v1/responses', 'POST /v1/responses']);
    expect(server.requests.map((r) => r.toolResults)).toEqual([0, 1, 2]);
    for (const r of server.requests) {
      expect(r).toMatchObject({ api: 'responses', model: 'gpt-test-codex', stream: true });
      expect(r.headers['authorization']).toBe('Bearer test-key');
      expect(r.toolNames).toContain('exec_command');
      // Off by config: the hosted web search tool, sub-agents, goals.
      expect(r.toolNames).not.toContain('web_search');
      expect(r.toolNames.some((n) => /agent|goal/.test(n))).toBe(false);
    }
    const first = JSON.stringify(server.requests[0]!.body);
    expect(first).toContain('Change greeting.txt so that it says \\"hello, world\\".');
    expect(first).toContain('Keep the trailing newline.');
    expect(server.requests[1]!.toolOutputs[0]).toContain('hello');
    expect(server.requests[2]!.toolOutputs[1]).toContain('Success. Updated the following files');
    expect(proxied).toEqual([]);
  });
});

describe('codex exec with a keyless endpoint', () => {
  it('sends no Authorization header and finishes with the final text', async () => {
    const server = await startModelServer({ reply: () => ({ text: 'Nothing to do.' }) });
    try {
      const run = await runCodex('keyless', server, {});
      expect(run.code, `stderr: ${run.stderr}\nstdout: ${run.stdout}`).toBe(0);
      expect(server.requests).toHaveLength(1);
      expect(server.requests[0]!.headers['authorization']).toBeUndefined();
      expect(run.events.filter((e) => e.type === 'turn')).toHaveLength(1);
      expect(run.events.filter((e) => e.type === 'final')).toEqual([{ type: 'final', text: 'Nothing to do.' }]);
      expect(proxied).toEqual([]);
    } finally {
      await server.close();
    }
  }, 120_000);
});

describe('codex exec when the endpoint fails', () => {
  it('exits non-zero with an error event naming the status', async () => {
    const server = await startModelServer({ reply: () => ({ text: 'unused' }) });
    try {
      const run = await runCodex('failing', server, { endpoint: `${server.url}/nowhere` });
      expect(run.code).not.toBe(0);
      expect(run.events).toContainEqual({ type: 'error', message: expect.stringContaining('404') });
      expect(run.events.filter((e) => e.type === 'turn')).toHaveLength(0);
      // Codex retries even a 404, as many times as configured (2): bounded.
      expect(server.requests.map((r) => r.path)).toEqual(['/nowhere/responses', '/nowhere/responses', '/nowhere/responses']);
      // The retry notices ("Reconnecting... 1/2") are not errors; the failure is (the stream's error and turn.failed).
      expect(run.events.filter((e) => e.type === 'error').map((e) => e.type === 'error' && e.message)).toEqual([
        expect.stringMatching(/^codex: unexpected status 404 Not Found/),
        expect.stringMatching(/^codex: the turn failed: unexpected status 404 Not Found/),
      ]);
      expect(proxied).toEqual([]);
    } finally {
      await server.close();
    }
  }, 120_000);
});
