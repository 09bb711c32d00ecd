import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { codexAdapter, codexConfigToml, codexProviderUrl, CODEX_DISABLED_FEATURES } from '../../../src/agents/codex.js';
import { AgentUnavailableError, type AgentConfig, type AgentEvent, type AgentLaunchContext } from '../../../src/agents/types.js';

/**
 * Lines Codex CLI 0.169.0 (`codex exec --json`, launched as the adapter launches it) wrote against
 * the local model server (OpenAI Responses API, streaming); only the temporary directories were
 * replaced by the sandbox's paths and the server's port by 8089. The server reported 100+n input and
 * 10+n output tokens for the n-th model call.
 */
const fixture = (name: string) => readFileSync(new URL(`./fixtures/codex-${name}.jsonl`, import.meta.url), 'utf8');
const parse = (text: string): AgentEvent[] => text.split('\n').flatMap((line) => codexAdapter.parseLine(line));
const count = (events: AgentEvent[], type: AgentEvent['type']) => events.filter((e) => e.type === type).length;

describe('codex parseLine', () => {
  it('reads a run of three model calls: a command with a preamble, an apply_patch, a final text; the run’s usage', () => {
    const events = parse(fixture('ok'));
    expect(events).toEqual([
      { type: 'message', role: 'assistant', text: 'Reading greeting.txt first.' },
      { type: 'final', text: 'Reading greeting.txt first.' },
      { type: 'turn' },
      { type: 'tool_call', name: 'command_execution', input: "/bin/bash -lc 'cat greeting.txt'", id: 'item_2' },
      { type: 'tool_result', output: 'hello\n', id: 'item_2' },
      { type: 'turn' },
      { type: 'tool_call', name: 'file_change', input: 'update /sandbox/workspace/greeting.txt', id: 'item_3' },
      { type: 'tool_result', output: 'completed\nupdate /sandbox/workspace/greeting.txt', id: 'item_3' },
      { type: 'message', role: 'assistant', text: 'greeting.txt now says hello, world.' },
      { type: 'final', text: 'greeting.txt now says hello, world.' },
      { type: 'turn' },
      { type: 'usage', inputTokens: 306, outputTokens: 36 },
    ]);
  });

  it('a failed command is an error result; parallel calls of one response count a turn each (never fewer than the model calls)', () => {
    const events = parse(fixture('parallel'));
    const results = events.filter((e): e is Extract<AgentEvent, { type: 'tool_result' }> => e.type === 'tool_result');
    expect(results).toEqual([
      { type: 'tool_result', output: 'cat: missing.txt: No such file or directory\n', id: 'item_1', isError: true },
      { type: 'tool_result', output: 'hello\n', id: 'item_2' },
    ]);
    // Two model calls (two commands in one response, then the answer): three turns seen.
    expect(count(events, 'turn')).toBe(3);
    expect(events.filter((e) => e.type === 'final').at(-1)).toEqual({ type: 'final', text: 'missing.txt does not exist.' });
    expect(events.filter((e) => e.type === 'usage')).toEqual([{ type: 'usage', inputTokens: 203, outputTokens: 23 }]);
  });

  it('a failing endpoint: the retry notices are not errors, the failure is; no turn, no usage', () => {
    const events = parse(fixture('failing'));
    expect(events).toEqual([
      { type: 'error', message: expect.stringMatching(/^codex: unexpected status 404 Not Found: model server: no route for POST \/nowhere\/responses/) },
      { type: 'error', message: expect.stringMatching(/^codex: the turn failed: unexpected status 404 Not Found/) },
    ]);
  });

  it('codex’s notices (error items), thread and turn starts and reasoning are no events; other lines are ignored', () => {
    expect(
      codexAdapter.parseLine(
        '{"type":"item.completed","item":{"id":"item_0","type":"error","message":"Model metadata for `gpt-test-codex` not found. Defaulting to fallback metadata; this can degrade performance and cause issues."}}',
      ),
    ).toEqual([]);
    expect(codexAdapter.parseLine('{"type":"thread.started","thread_id":"01a218b6-440a-7e20-9bb1-a679bab93bdd"}')).toEqual([]);
    expect(codexAdapter.parseLine('{"type":"turn.started"}')).toEqual([]);
    expect(codexAdapter.parseLine('{"type":"item.completed","item":{"id":"item_5","type":"reasoning","text":"**Thinking**"}}')).toEqual([]);
    expect(codexAdapter.parseLine('WARNING: proceeding, even though we could not create PATH aliases')).toEqual([]);
    expect(codexAdapter.parseLine('{"type":')).toEqual([]);
    expect(codexAdapter.parseLine('')).toEqual([]);
    expect(codexAdapter.parseLine('[1,2]')).toEqual([]);
  });

  it('items of the exec_events schema not in the fixtures: MCP calls, plan updates (update_plan), a failed patch', () => {
    const mcpStart =
      '{"type":"item.started","item":{"id":"item_7","type":"mcp_tool_call","server":"docs","tool":"search","arguments":{"q":"x"},"result":null,"error":null,"status":"in_progress"}}';
    expect(codexAdapter.parseLine(mcpStart)).toEqual([{ type: 'turn' }, { type: 'tool_call', name: 'mcp:docs/search', input: '{"q":"x"}', id: 'item_7' }]);
    const mcpDone =
      '{"type":"item.completed","item":{"id":"item_7","type":"mcp_tool_call","server":"docs","tool":"search","arguments":{"q":"x"},"result":{"content":[{"type":"text","text":"found"}],"structured_content":null},"error":null,"status":"completed"}}';
    expect(codexAdapter.parseLine(mcpDone)).toEqual([{ type: 'tool_result', output: 'found', id: 'item_7' }]);
    const mcpFailed =
      '{"type":"item.completed","item":{"id":"item_8","type":"mcp_tool_call","server":"docs","tool":"search","arguments":{},"result":null,"error":{"message":"boom"},"status":"failed"}}';
    expect(codexAdapter.parseLine(mcpFailed)).toEqual([{ type: 'tool_result', output: 'boom', id: 'item_8', isError: true }]);
    const plan = (t: string) => `{"type":"${t}","item":{"id":"item_9","type":"todo_list","items":[{"text":"edit","completed":false}]}}`;
    expect(codexAdapter.parseLine(plan('item.started'))).toEqual([
      { type: 'turn' },
      { type: 'tool_call', name: 'update_plan', input: '[{"text":"edit","completed":false}]', id: 'item_9' },
    ]);
    expect(count(codexAdapter.parseLine(plan('item.updated')), 'turn')).toBe(1);
    // The plan's completion comes with the end of the run, not from a model call.
    expect(codexAdapter.parseLine(plan('item.completed'))).toEqual([]);
    // A patch updated while it is applied is the same call.
    expect(codexAdapter.parseLine('{"type":"item.updated","item":{"id":"item_3","type":"file_change","changes":[],"status":"in_progress"}}')).toEqual([]);
    const patchFailed =
      '{"type":"item.completed","item":{"id":"item_3","type":"file_change","changes":[{"path":"/sandbox/workspace/a.txt","kind":"add"}],"status":"failed"}}';
    expect(codexAdapter.parseLine(patchFailed)).toEqual([{ type: 'tool_result', output: 'failed\nadd /sandbox/workspace/a.txt', id: 'item_3', isError: true }]);
  });
});

describe('codex launch', () => {
  const ctx: AgentLaunchContext = { promptFile: '/sandbox/prompt.md', worktree: '/sandbox/workspace', home: '/sandbox/home', tmp: '/sandbox/tmp' };
  const config: AgentConfig = {
    kind: 'codex',
    model: 'gpt-5-codex',
    endpoint: 'https://models.example.com/v1',
    apiKeyEnv: 'MODEL_KEY',
    maxTurns: 20,
    instructions: 'Run the tests.',
  };

  // The first launch runs the native binary once (`codex --version`, which the adapter allows 30 s): on
  // a busy machine, loading it takes longer than a unit test's default 5 s.
  it('runs the platform package’s native binary with exec --json, no sandbox of its own, the prompt file and instructions on stdin', () => {
    const l = codexAdapter.launch(config, ctx);
    expect(l.argv.slice(0, 2)).toEqual(['/bin/sh', '-c']);
    expect(l.argv.slice(3, 6)).toEqual(['codex', '/sandbox/prompt.md', '\n\nRun the tests.']);
    const [binary, ...args] = l.argv.slice(6);
    expect(binary).toMatch(/\/vendor\/[^/]+\/bin\/codex$/);
    expect(existsSync(binary!)).toBe(true);
    expect(l.readOnly).toHaveLength(1);
    expect(binary!.startsWith(`${l.readOnly[0]}/`)).toBe(true);
    expect(args).toEqual([
      'exec',
      '--json',
      '--color',
      'never',
      '--strict-config',
      '--ephemeral',
      '--skip-git-repo-check',
      '--dangerously-bypass-approvals-and-sandbox',
      '--model',
      'gpt-5-codex',
      '--cd',
      '/sandbox/workspace',
      '-',
    ]);
    expect(l.stdin).toBeUndefined();
    expect(l.env).toEqual({ CODEX_HOME: '/sandbox/home/.codex', NO_COLOR: '1' });
    expect(l.files.map((f) => f.path)).toEqual(['/sandbox/home/.codex/config.toml']);
    expect(
      codexAdapter.launch({ ...config, instructions: undefined }, { ...ctx, traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' }).env,
    ).toMatchObject({
      TRACEPARENT: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    });
  }, 30_000);

  it('the wrapper hands the prompt file and the instructions to the command on stdin', () => {
    const dir = mkdtempSync(join(tmpdir(), 'codex-unit-'));
    writeFileSync(join(dir, 'prompt.md'), 'Fix the $HOME `bug` in "a".\n');
    const l = codexAdapter.launch(config, { ...ctx, promptFile: join(dir, 'prompt.md') });
    const out = execFileSync(l.argv[0]!, [...l.argv.slice(1, 6), '/bin/cat'], { encoding: 'utf8' });
    expect(out).toBe('Fix the $HOME `bug` in "a".\n\nRun the tests.\n');
    expect(() => execFileSync(l.argv[0]!, [l.argv[1]!, l.argv[2]!, 'codex', join(dir, 'missing.md'), '', '/bin/cat'], { stdio: 'pipe' })).toThrow(
      /cannot read the prompt file/,
    );
    rmSync(dir, { recursive: true, force: true });
  });

  it('config.toml: the provider at the endpoint with the key’s variable, approvals never, everything that phones home off', () => {
    const toml = codexAdapter.launch(config, ctx).files[0]!.content;
    expect(toml).toContain('model = "gpt-5-codex"\nmodel_provider = "endpoint"\napproval_policy = "never"\nsandbox_mode = "danger-full-access"\n');
    expect(toml).toContain(
      '[model_providers.endpoint]\nname = "endpoint"\nbase_url = "https://models.example.com/v1"\nwire_api = "responses"\nenv_key = "MODEL_KEY"\nrequest_max_retries = 2\nstream_max_retries = 2\nsupports_websockets = false\n',
    );
    for (const line of [
      'check_for_update_on_startup = false',
      'web_search = "disabled"',
      '[analytics]\nenabled = false',
      '[otel]\nexporter = "none"',
      '[agents]\nenabled = false',
    ]) {
      expect(toml).toContain(line);
    }
    for (const f of CODEX_DISABLED_FEATURES) expect(toml).toContain(`\n${f} = false\n`);
    expect(codexConfigToml({ ...config, apiKeyEnv: undefined })).not.toContain('env_key');
  });

  it('an endpoint’s query string becomes query_params; strings are TOML-escaped', () => {
    expect(codexProviderUrl('https://x.example.com/openai/v1/?api-version=2025-04-01-preview')).toEqual({
      baseUrl: 'https://x.example.com/openai/v1',
      query: { 'api-version': '2025-04-01-preview' },
    });
    const toml = codexConfigToml({ ...config, model: 'a"b\\c\nd', endpoint: 'https://x.example.com/v1?api-version=1' });
    expect(toml).toContain('model = "a\\"b\\\\c\\nd"');
    expect(toml).toContain('[model_providers.endpoint.query_params]\n"api-version" = "1"\n');
    expect(() => codexProviderUrl('models.example.com')).toThrow(/absolute http\(s\) URL/);
    expect(() => codexProviderUrl('file:///etc/passwd')).toThrow(/http\(s\) URL/);
  });

  it('refuses the chat and messages wire formats (codex 0.169.0 speaks only the Responses API) and bad settings', () => {
    expect(() => codexAdapter.launch({ ...config, api: 'chat' }, ctx)).toThrow(AgentUnavailableError);
    expect(() => codexAdapter.launch({ ...config, api: 'messages' }, ctx)).toThrow(/only the OpenAI Responses API/);
    expect(codexAdapter.launch({ ...config, api: 'responses' }, ctx).argv).toContain('exec');
    expect(() => codexAdapter.launch({ ...config, apiKeyEnv: 'A-B; rm' }, ctx)).toThrow(/environment variable name/);
    expect(() => codexAdapter.launch({ ...config, maxTurns: 0 }, ctx)).toThrow(/positive integer/);
  });
});
