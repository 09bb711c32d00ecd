/**
 * Contract test: the real Claude Code binary (2.1.328, the native binary of
 * `@anthropic-ai/claude-code-linux-x64`), started exactly as `claudeCodeAdapter.launch` says (but
 * without the worker's sandbox), against the local model server speaking the Anthropic Messages API
 * (anthropic-version 2023-06-01, streaming). Its stdout goes through the adapter's parser.
 *
 * Every other host is out of reach: HTTP(S)_PROXY point at a recorder that refuses everything, so
 * any request to a host but the model server's would show up there.
 */
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scripted, startModelServer, type ModelServer, type ModelStep } from '../../../../../tests/support/model-server.js';
import { CLAUDE_CODE_QUIET_ENV, claudeCodeAdapter } from '../../../src/agents/claude-code.js';
import type { AgentConfig, AgentEvent, AgentLaunchContext } from '../../../src/agents/types.js';

const KEY_ENV = 'MODEL_API_KEY_FOR_TEST';
const KEY = 'sk-contract-test-key';

/** Records every request and CONNECT that reaches it, and refuses them. */
async function startRecordingProxy(): Promise<{ url: string; seen: string[]; close(): Promise<void> }> {
  const seen: string[] = [];
  const server: Server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    res.writeHead(403).end();
  });
  server.on('connect', (req, socket) => {
    socket.on('error', () => {});
    seen.push(`CONNECT ${req.url}`);
    socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  events: AgentEvent[];
}

describe('Claude Code against the model server (Anthropic Messages API, contract)', () => {
  let root: string;
  let proxy: Awaited<ReturnType<typeof startRecordingProxy>>;
  const servers: ModelServer[] = [];

  beforeAll(async () => {
    // Not under a dot-directory: Claude Code and the tests it runs treat those differently.
    root = mkdtempSync(join(tmpdir(), 'claude-code-contract-'));
    proxy = await startRecordingProxy();
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
    await proxy?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  /** A fresh git repository with greeting.txt = hello, and the step's HOME, TMPDIR and prompt. */
  function workspace(name: string): AgentLaunchContext {
    const dir = join(root, name);
    const ctx: AgentLaunchContext = { worktree: join(dir, 'repo'), home: join(dir, 'home'), tmp: join(dir, 'tmp'), promptFile: join(dir, 'prompt.md') };
    for (const d of [ctx.worktree, ctx.home, ctx.tmp]) mkdirSync(d, { recursive: true });
    execFileSync('git', ['init', '-q', '-b', 'main', ctx.worktree]);
    writeFileSync(join(ctx.worktree, 'greeting.txt'), 'hello');
    const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=Test', '-c', 'user.email=test@example.com', ...args], { cwd: ctx.worktree });
    git('add', 'greeting.txt');
    git('commit', '-q', '-m', 'greeting');
    writeFileSync(ctx.promptFile, 'Change greeting.txt so that it says "hello, world".\n');
    return ctx;
  }

  async function run(steps: ModelStep[], maxTurns: number, ctx: AgentLaunchContext, without: string[] = []): Promise<{ run: Run; server: ModelServer }> {
    proxy.seen.length = 0;
    const server = await startModelServer({ reply: scripted(steps), usage: (req) => ({ input: 100 + req.toolResults, output: 10 + req.toolResults }) });
    servers.push(server);
    const config: AgentConfig = {
      kind: 'claude-code',
      model: 'claude-sonnet-4-5',
      endpoint: server.url,
      apiKeyEnv: KEY_ENV,
      maxTurns,
      instructions: 'Do not touch any other file.',
    };
    const launch = claudeCodeAdapter.launch(config, ctx);
    for (const name of without) delete launch.env[name];
    for (const file of launch.files) {
      mkdirSync(dirname(file.path), { recursive: true });
      writeFileSync(file.path, file.content);
    }
    const proxyEnv = {
      HTTP_PROXY: proxy.url,
      HTTPS_PROXY: proxy.url,
      ALL_PROXY: proxy.url,
      http_proxy: proxy.url,
      https_proxy: proxy.url,
      all_proxy: proxy.url,
    };
    const child = spawn(launch.argv[0]!, launch.argv.slice(1), {
      cwd: ctx.worktree,
      // Only what the sandbox would give it: nothing of this process's environment.
      env: {
        PATH: '/usr/bin:/bin',
        HOME: ctx.home,
        TMPDIR: ctx.tmp,
        LANG: 'C.UTF-8',
        ...proxyEnv,
        NO_PROXY: '127.0.0.1',
        no_proxy: '127.0.0.1',
        [KEY_ENV]: KEY,
        ...launch.env,
      },
      stdio: [launch.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    if (launch.stdin !== undefined) child.stdin!.end(launch.stdin);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    const events = stdout.split('\n').flatMap((line) => claudeCodeAdapter.parseLine(line));
    return { run: { code, stdout, stderr, events }, server };
  }

  it('reads greeting.txt, edits it, answers: exit 0, the file changed, three turns, tool calls, final text and usage', async () => {
    const ctx = workspace('edit');
    const file = join(ctx.worktree, 'greeting.txt');
    const { run: r, server } = await run(
      [
        { text: 'Let me read the file.', tools: [{ name: 'Read', input: { file_path: file } }] },
        { tools: [{ name: 'Edit', input: { file_path: file, old_string: 'hello', new_string: 'hello, world' } }] },
        { text: 'greeting.txt now says "hello, world".' },
      ],
      3,
      ctx,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe('hello, world');

    const types = r.events.map((e) => e.type);
    expect(types.filter((t) => t === 'turn')).toHaveLength(3);
    const calls = r.events.filter((e): e is Extract<AgentEvent, { type: 'tool_call' }> => e.type === 'tool_call');
    expect(calls.map((c) => c.name)).toEqual(['Read', 'Edit']);
    expect(JSON.parse(calls[0]!.input)).toEqual({ file_path: file });
    const results = r.events.filter((e): e is Extract<AgentEvent, { type: 'tool_result' }> => e.type === 'tool_result');
    expect(results.map((x) => x.id)).toEqual(calls.map((c) => c.id));
    expect(results[0]!.output).toContain('hello');
    expect(results.some((x) => x.isError)).toBe(false);
    expect(r.events).toContainEqual({ type: 'message', role: 'assistant', text: 'Let me read the file.' });
    expect(r.events).toContainEqual({ type: 'usage', model: 'claude-sonnet-4-5', inputTokens: 100 + 101 + 102, outputTokens: 10 + 11 + 12 });
    expect(r.events.at(-1)).toEqual({ type: 'final', text: 'greeting.txt now says "hello, world".' });
    expect(types).not.toContain('error');

    // Every request the binary made: three streamed Messages calls with the key from the named
    // variable, the prompt followed by the instructions, and only the six tools of the session.
    expect(server.requests.map((q) => `${q.method} ${q.path}?${q.query}`)).toEqual([
      'POST /v1/messages?beta=true',
      'POST /v1/messages?beta=true',
      'POST /v1/messages?beta=true',
    ]);
    for (const q of server.requests) {
      expect(q.api).toBe('messages');
      expect(q.stream).toBe(true);
      expect(q.model).toBe('claude-sonnet-4-5');
      expect(q.headers['x-api-key']).toBe(KEY);
      expect(q.headers['anthropic-version']).toBe('2023-06-01');
      expect([...q.toolNames].sort()).toEqual(['Bash', 'Edit', 'Glob', 'Grep', 'Read', 'Write']);
    }
    expect(JSON.stringify(server.requests[0]!.body)).toContain('Change greeting.txt so that it says \\"hello, world\\".\\n\\nDo not touch any other file.');
    expect(proxy.seen).toEqual([]);
  });

  it("stops at --max-turns 1 with Claude Code's max-turns result, reported as an error", async () => {
    const ctx = workspace('max-turns');
    const file = join(ctx.worktree, 'greeting.txt');
    const { run: r, server } = await run(
      [
        { tools: [{ name: 'Read', input: { file_path: file } }] },
        { tools: [{ name: 'Edit', input: { file_path: file, old_string: 'hello', new_string: 'hello, world' } }] },
        { text: 'done' },
      ],
      1,
      ctx,
    );
    expect(r.code).toBe(1);
    expect(readFileSync(file, 'utf8')).toBe('hello');
    expect(server.requests.map((q) => `${q.method} ${q.path}`)).toEqual(['POST /v1/messages']);
    const result = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    expect(result).toMatchObject({ type: 'result', subtype: 'error_max_turns', is_error: true });
    expect(r.events.filter((e) => e.type === 'turn')).toHaveLength(1);
    expect(r.events).toContainEqual({ type: 'usage', model: 'claude-sonnet-4-5', inputTokens: 100, outputTokens: 10 });
    expect(r.events.filter((e) => e.type === 'final')).toEqual([]);
    expect(r.events.at(-1)).toEqual({
      type: 'error',
      message: 'Claude Code stopped at its turn limit (--max-turns): Reached maximum number of turns (1)',
    });
    expect(proxy.seen).toEqual([]);
  });

  it('the recorder would see other hosts: without the switches that keep Claude Code quiet, it calls out', async () => {
    const ctx = workspace('control');
    const { run: r, server } = await run([{ text: 'nothing to do' }], 3, ctx, Object.keys(CLAUDE_CODE_QUIET_ENV));
    expect(r.code, r.stderr).toBe(0);
    expect(server.requests.filter((q) => q.path === '/v1/messages')).toHaveLength(1);
    expect(proxy.seen.filter((s) => s.startsWith('CONNECT ')).length).toBeGreaterThan(0);
  });
});
