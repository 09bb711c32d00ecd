import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { claudeCodeAdapter, claudeCodeBaseUrl, CLAUDE_CODE_TOOLS } from '../../../src/agents/claude-code.js';
import type { AgentConfig, AgentEvent, AgentLaunchContext } from '../../../src/agents/types.js';

/**
 * Lines Claude Code 2.1.328 (`-p --output-format stream-json --verbose`, launched as the adapter
 * launches it) wrote against the local model server (Anthropic Messages API, anthropic-version
 * 2023-06-01); only the temporary directories were replaced by the sandbox's paths.
 */
const fixture = (name: string) => readFileSync(new URL(`./fixtures/claude-code-${name}.jsonl`, import.meta.url), 'utf8');
const parse = (text: string): AgentEvent[] => text.split('\n').flatMap((line) => claudeCodeAdapter.parseLine(line));
const count = (events: AgentEvent[], type: AgentEvent['type']) => events.filter((e) => e.type === type).length;

describe('claude-code parseLine', () => {
  it('reads a session of three model calls: a Read, an Edit, a final text; usage from the result line', () => {
    const events = parse(fixture('ok'));
    expect(count(events, 'turn')).toBe(3);
    const calls = events.filter((e): e is Extract<AgentEvent, { type: 'tool_call' }> => e.type === 'tool_call');
    expect(calls.map((c) => c.name)).toEqual(['Read', 'Edit']);
    expect(JSON.parse(calls[0]!.input)).toEqual({ file_path: '/sandbox/workspace/greeting.txt' });
    expect(JSON.parse(calls[1]!.input)).toMatchObject({ old_string: 'hello', new_string: 'hello, world' });
    const results = events.filter((e): e is Extract<AgentEvent, { type: 'tool_result' }> => e.type === 'tool_result');
    expect(results.map((r) => r.id)).toEqual(calls.map((c) => c.id));
    expect(results[0]!.output).toBe('1\thello');
    expect(results.some((r) => r.isError)).toBe(false);
    expect(events).toContainEqual({ type: 'message', role: 'assistant', text: 'Reading the file.' });
    // The model server reported 100+n input and 10+n output tokens for the n-th call.
    expect(events.filter((e) => e.type === 'usage')).toEqual([{ type: 'usage', model: 'claude-sonnet-4-5', inputTokens: 303, outputTokens: 33 }]);
    expect(events.at(-1)).toEqual({ type: 'final', text: 'greeting.txt now says hello, world.' });
    expect(count(events, 'error')).toBe(0);
  });

  it('counts one turn per model response, though each content block comes on a line of its own', () => {
    const text = fixture('parallel');
    const assistantLines = text.split('\n').filter((l) => l.includes('"type":"assistant"'));
    expect(assistantLines).toHaveLength(5); // text + Read + Grep, Edit, final text
    const events = parse(text);
    expect(count(events, 'turn')).toBe(3);
    expect(events.filter((e) => e.type === 'tool_call').map((e) => (e as { name: string }).name)).toEqual(['Read', 'Grep', 'Edit']);
    expect(count(events, 'tool_result')).toBe(3);
  });

  it('gives the same events when a transcript is read again, and keeps interleaved sessions apart', () => {
    const ok = fixture('ok');
    expect(parse(ok)).toEqual(parse(ok));
    const a = fixture('ok').split('\n');
    const b = fixture('parallel').split('\n');
    const interleaved: string[] = [];
    for (let i = 0; i < Math.max(a.length, b.length); i++) interleaved.push(a[i] ?? '', b[i] ?? '');
    expect(count(parse(interleaved.join('\n')), 'turn')).toBe(6);
  });

  it("reports Claude Code's own turn limit (--max-turns 1) as an error, with the usage so far", () => {
    const events = parse(fixture('maxturns'));
    expect(count(events, 'turn')).toBe(1);
    expect(count(events, 'final')).toBe(0);
    expect(events).toContainEqual({ type: 'usage', model: 'claude-sonnet-4-5', inputTokens: 100, outputTokens: 10 });
    expect(events.at(-1)).toEqual({
      type: 'error',
      message: 'Claude Code stopped at its turn limit (--max-turns): Reached maximum number of turns (1)',
    });
  });

  it('reports an API error with its status; the synthetic message is not a turn', () => {
    const events = parse(fixture('apierror'));
    expect(count(events, 'turn')).toBe(0);
    expect(events).toEqual([
      { type: 'error', message: 'Claude Code failed (api_error, HTTP 400): API Error: 400 model server: the script has no reply: no such step' },
    ]);
  });

  it('reports a missing credential', () => {
    const events = parse(fixture('not-logged-in'));
    expect(count(events, 'turn')).toBe(0);
    expect(events).toEqual([{ type: 'error', message: 'Claude Code failed (api_error): Not logged in · Please run /login' }]);
  });

  it('marks refused tool calls (outside the worktree, a tool the session does not have) as failed results', () => {
    const events = parse(fixture('perm'));
    const results = events.filter((e): e is Extract<AgentEvent, { type: 'tool_result' }> => e.type === 'tool_result');
    const refused = results.filter((r) => r.isError);
    // Read /etc/hostname, Write outside, Grep in /etc, WebFetch
    expect(refused).toHaveLength(4);
    expect(refused[0]!.output).toMatch(/^Permission to use Read has been denied/);
    expect(refused.at(-1)!.output).toMatch(/No such tool available: WebFetch/);
    expect(events.at(-1)).toEqual({ type: 'final', text: 'done' });
  });

  it('ignores what is not one of its JSON lines', () => {
    for (const line of ['', 'plain text', '{not json', '[1,2]', '"x"', '{"type":"system","subtype":"init"}', '{"type":"rate_limit_event"}']) {
      expect(claudeCodeAdapter.parseLine(line)).toEqual([]);
    }
  });
});

describe('claude-code launch', () => {
  const config: AgentConfig = {
    kind: 'claude-code',
    model: 'claude-sonnet-4-5',
    endpoint: 'https://api.anthropic.com/',
    apiKeyEnv: 'ANTHROPIC_KEY_FOR_TEST',
    maxTurns: 7,
    instructions: 'Keep the change small.',
  };
  const ctx: AgentLaunchContext = { promptFile: '/sandbox/prompt.md', worktree: '/sandbox/workspace', home: '/sandbox/home', tmp: '/sandbox/tmp' };
  const scratch = mkdtempSync(join(tmpdir(), 'claude-code-unit-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it("starts the platform package's native binary headless, with the turn limit, the tools and no phoning home", () => {
    const launch = claudeCodeAdapter.launch(config, ctx);
    const binaryAt = launch.argv.findIndex((a) => a.endsWith('/claude'));
    const binary = launch.argv[binaryAt]!;
    expect(launch.readOnly).toHaveLength(1);
    expect(binary).toBe(join(launch.readOnly[0]!, 'claude'));
    expect(launch.readOnly[0]).toMatch(/claude-code-linux-x64$/);
    expect(existsSync(binary)).toBe(true);
    expect(launch.argv[0]).toBe('/bin/sh');
    const args = launch.argv.slice(binaryAt + 1);
    expect(args.slice(0, 4)).toEqual(['-p', '--output-format', 'stream-json', '--verbose']);
    const flag = (name: string) => args[args.indexOf(name) + 1];
    expect(flag('--model')).toBe('claude-sonnet-4-5');
    expect(flag('--max-turns')).toBe('7');
    expect(flag('--tools')).toBe(CLAUDE_CODE_TOOLS.join(','));
    expect(flag('--permission-mode')).toBe('dontAsk');
    expect(flag('--setting-sources')).toBe('user');
    expect(launch.env).toMatchObject({
      ANTHROPIC_BASE_URL: 'https://api.anthropic.com',
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      DISABLE_AUTOUPDATER: '1',
      DISABLE_TELEMETRY: '1',
      DISABLE_ERROR_REPORTING: '1',
    });
    expect(launch.stdin).toBeUndefined();
  });

  it('writes user settings: the key through an apiKeyHelper naming the variable, files only under the worktree, no web tools, no own sandbox', () => {
    const launch = claudeCodeAdapter.launch(config, ctx);
    expect(launch.files.map((f) => f.path)).toEqual(['/sandbox/home/.claude/settings.json']);
    const settings = JSON.parse(launch.files[0]!.content);
    expect(settings.apiKeyHelper).toBe(`printf '%s' "$ANTHROPIC_KEY_FOR_TEST"`);
    expect(settings.permissions).toMatchObject({
      defaultMode: 'dontAsk',
      allow: ['Read(//sandbox/workspace/**)', 'Edit(//sandbox/workspace/**)', 'Bash'],
      deny: ['WebFetch', 'WebSearch'],
    });
    expect(settings.sandbox).toEqual({ enabled: false });
    expect(settings.disableAllHooks).toBe(true);
    expect(JSON.stringify(launch)).not.toContain('ANTHROPIC_API_KEY');
  });

  it('takes an endpoint with or without /v1; without apiKeyEnv the helper prints a placeholder', () => {
    expect(claudeCodeBaseUrl('http://127.0.0.1:8080/v1/')).toBe('http://127.0.0.1:8080');
    expect(claudeCodeBaseUrl('https://gateway.example/anthropic')).toBe('https://gateway.example/anthropic');
    const launch = claudeCodeAdapter.launch({ ...config, apiKeyEnv: undefined }, ctx);
    expect(JSON.parse(launch.files[0]!.content).apiKeyHelper).toBe("printf '%s' no-key");
  });

  it('refuses an apiKeyEnv that is not a variable name, and a turn limit below 1', () => {
    expect(() => claudeCodeAdapter.launch({ ...config, apiKeyEnv: 'X"; rm -rf /' }, ctx)).toThrow(/environment variable name/);
    expect(() => claudeCodeAdapter.launch({ ...config, maxTurns: 0 }, ctx)).toThrow(/maxTurns/);
  });

  it('feeds the prompt file, then the instructions, on stdin, byte for byte', () => {
    const prompt = 'Fix `it` in $HOME\\n "quoted" $(echo no)\nPROMPT_END\nlast line\n\n';
    const promptFile = join(scratch, 'prompt.md');
    writeFileSync(promptFile, prompt);
    const launch = claudeCodeAdapter.launch(config, { ...ctx, promptFile });
    const binaryAt = launch.argv.findIndex((a) => a.endsWith('/claude'));
    // The same wrapper, with `cat` in the agent's place.
    const out = execFileSync(launch.argv[0]!, [...launch.argv.slice(1, binaryAt), '/bin/cat'], { encoding: 'utf8' });
    expect(out).toBe(`${prompt.trimEnd()}\n\nKeep the change small.\n`);
    const noInstructions = claudeCodeAdapter.launch({ ...config, instructions: undefined }, { ...ctx, promptFile });
    expect(execFileSync('/bin/sh', [...noInstructions.argv.slice(1, binaryAt), '/bin/cat'], { encoding: 'utf8' })).toBe(`${prompt.trimEnd()}\n`);
  });

  it('fails with a message when the prompt file cannot be read', () => {
    const launch = claudeCodeAdapter.launch(config, { ...ctx, promptFile: join(scratch, 'missing.md') });
    const binaryAt = launch.argv.findIndex((a) => a.endsWith('/claude'));
    expect(() => execFileSync('/bin/sh', [...launch.argv.slice(1, binaryAt), '/bin/cat'], { encoding: 'utf8', stdio: 'pipe' })).toThrow(
      /cannot read the prompt file/,
    );
  });
});
