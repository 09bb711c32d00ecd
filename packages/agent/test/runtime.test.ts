import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { globToRegExp, parseAgentArgs, ToolError, UsageError, Workspace } from '../src/index.js';

const base = ['--prompt-file', 'p.md', '--model', 'm', '--endpoint', 'http://model.example/v1'];

describe('parseAgentArgs', () => {
  it('takes the flags, with chat and 50 turns by default, and TRACEPARENT from the environment', () => {
    expect(parseAgentArgs(base, { TRACEPARENT: 'tp' })).toEqual({
      promptFile: 'p.md',
      model: 'm',
      endpoint: 'http://model.example/v1',
      api: 'chat',
      maxTurns: 50,
      traceparent: 'tp',
    });
    expect(
      parseAgentArgs(
        [...base, '--api', 'messages', '--api-key-env', 'KEY', '--max-turns', '3', '--max-tool-calls', '9', '--spans-file', 's.json', '--traceparent', 'x'],
        {
          TRACEPARENT: 'tp',
        },
      ),
    ).toMatchObject({ api: 'messages', apiKeyEnv: 'KEY', maxTurns: 3, maxToolCalls: 9, spansFile: 's.json', traceparent: 'x' });
  });

  it.each([
    [[...base, '--api', 'completions'], /--api must be chat, responses or messages/],
    [[...base, '--max-turns', '0'], /--max-turns must be a positive integer/],
    [[...base, '--api-key-env', 'A-B'], /--api-key-env must be an environment variable name/],
    [['--model', 'm', '--endpoint', 'http://x'], /--prompt-file is required/],
    [['--prompt-file', 'p', '--model', 'm', '--endpoint', 'file:///etc'], /--endpoint must be an http/],
    [[...base, '--unknown'], /Unknown option '--unknown'/],
  ])('refuses %j', (argv, message) => {
    expect(() => parseAgentArgs(argv)).toThrow(UsageError);
    expect(() => parseAgentArgs(argv)).toThrow(message);
  });
});

describe('globToRegExp', () => {
  it.each([
    ['*.ts', 'a.ts', true],
    ['*.ts', 'a.tsx', false],
    ['src/**/*.ts', 'src/a.ts', true],
    ['src/**/*.ts', 'src/x/y/a.ts', true],
    ['src/*.ts', 'src/x/a.ts', false],
    ['*.{js,mjs}', 'a.mjs', true],
    ['a?.txt', 'ab.txt', true],
    ['a.txt', 'abtxt', false],
  ])('%s on %s: %s', (glob, path, match) => {
    expect(globToRegExp(glob).test(path)).toBe(match);
  });
});

describe('Workspace', () => {
  const dir = mkdtempSync(join(tmpdir(), 'agent-ws-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const root = join(dir, 'wt');
  mkdirSync(join(root, 'sub'), { recursive: true });
  mkdirSync(join(dir, 'out'));
  writeFileSync(join(root, 'a.txt'), 'a');
  symlinkSync(join(dir, 'out'), join(root, 'out'));
  symlinkSync('sub', join(root, 'inside'));
  const ws = new Workspace(root);

  it('resolves paths inside the worktree, including new ones and symlinks that stay inside', () => {
    expect(ws.resolve('a.txt')).toBe(join(root, 'a.txt'));
    expect(ws.resolve('sub/../a.txt')).toBe(join(root, 'a.txt'));
    expect(ws.resolve('new/dir/file.txt')).toBe(join(root, 'new/dir/file.txt'));
    expect(ws.resolve('inside/x')).toBe(join(root, 'inside/x'));
    expect(ws.resolve('.')).toBe(root);
  });

  it.each(['../x', '..', 'sub/../../x', '/etc/passwd', join(root, 'a.txt'), 'out', 'out/new.txt', ''])('refuses %j', (path) => {
    expect(() => ws.resolve(path)).toThrow(ToolError);
  });
});
