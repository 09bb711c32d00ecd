import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { parseArgs } from '../src/args.js';
import { Code, ConnectError } from '@ameide/sdk';
import { UsageError } from '../src/args.js';
import { camelKeyPath, explainDefinitionError, readDefinitionFile } from '../src/definition-file.js';

const dir = mkdtempSync(join(tmpdir(), 'defs-'));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

it('reads a definition and resolves a relative local repo path against the file', () => {
  execFileSync('git', ['init', '--bare', '--quiet', join(dir, '..', 'repos', 'origin.git')]);
  const p = file(
    'ok.yaml',
    'name: sample\nspec:\n  repoUrl: ../repos/origin.git\n  agentCommand: codex exec "$(cat $AMEIDE_PROMPT_FILE)"\n  phaseTimeoutSeconds: 60\n',
  );
  const def = readDefinitionFile(p);
  expect(def.spec.repoUrl).toBe(join(dir, '..', 'repos', 'origin.git'));
  expect(def.spec.phaseTimeoutSeconds).toBe(60);
  expect(def.annotations).toEqual({});
});

it('keeps remote URLs as written', () => {
  for (const url of ['https://github.com/acme/app.git', 'git@github.com:acme/app.git', 'ssh://git@host/app.git']) {
    const def = readDefinitionFile(file('remote.yaml', `name: r\nspec:\n  repoUrl: ${url}\n  agentCommand: x\n`));
    expect(def.spec.repoUrl).toBe(url);
  }
});

it.each([
  ['name: a\nspec:\n  agentCommand: x\n', /bad\.yaml: spec\.repoUrl: /],
  ['name: a\nspec:\n  repoUrl: x\n  agentCommand: x\n  testComand: npm test\n', /bad\.yaml: spec\.testComand: unknown key \(did you mean testCommand\?\)/],
  ['name: a\nspec:\n  repoUrl: x\n  agentCommand: x\n  phaseTimeoutSeconds: -1\n', /spec\.phaseTimeoutSeconds/],
  ['name: [unclosed\n', /bad\.yaml is not valid YAML/],
])('names the field to fix in a bad file (%#)', (text, message) => {
  expect(() => readDefinitionFile(file('bad.yaml', text))).toThrow(message);
});

it('parses repeatable flags, -f and --flag=value', () => {
  const a = parseArgs(['runs', 'start', '--definition=sample', '--criterion', 'a', '--criterion', 'b', '--json', '-f', 'x.yaml']);
  expect(a.positionals).toEqual(['runs', 'start']);
  expect(a.flags.get('definition')).toEqual(['sample']);
  expect(a.flags.get('criterion')).toEqual(['a', 'b']);
  expect(a.flags.get('json')).toEqual(['true']);
  expect(a.flags.get('file')).toEqual(['x.yaml']);
  expect(() => parseArgs(['runs', 'start', '--definition'])).toThrow('--definition needs a value');
});

it('reads the example definition, with its preview and pull request settings', () => {
  // Its origin exists only once `make demo` made it.
  const def = readDefinitionFile(join(__dirname, '../../../examples/sample-repo.definition.yaml'), { checkLocalRepo: false });
  expect(def.spec.preview).toEqual({ command: 'node scripts/preview.mjs', healthPath: '/health', ttlSeconds: 3600 });
  expect(def.spec.pullRequest).toEqual({ provider: 'git' });
  expect(def.spec.testReports).toEqual(['reports/*.xml']);
  expect(() => readDefinitionFile(file('pr.yaml', 'name: a\nspec:\n  repoUrl: x\n  agentCommand: x\n  pullRequest:\n    provider: bitbucket\n'))).toThrow(
    /spec\.pullRequest\.provider/,
  );
  expect(() => readDefinitionFile(file('pv.yaml', 'name: a\nspec:\n  repoUrl: x\n  agentCommand: x\n  preview:\n    healthPath: /h\n'))).toThrow(
    /spec\.preview\.command/,
  );
});

it('reports every problem at once, each with the file and the key as written', () => {
  const p = file(
    'many.yaml',
    [
      'name: a',
      'spec:',
      '  repo_url: https://example.com/a.git',
      '  agentCommand: x',
      '  phaseTimeoutSeconds: "60"',
      '  env: { RETRIES: 3 }',
      '  guardrails:',
      '    sandbox: docker',
      '    readOnlyPaths: [tools, /opt/../etc, /opt/tools]',
      '    network: { test: online }',
      '  secrets: [{ name: TOKEN, phases: [], fromEnv: TOKEN }]',
      '',
    ].join('\n'),
  );
  let message = '';
  try {
    readDefinitionFile(p);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    message = (err as Error).message;
  }
  expect(message.split('\n').sort()).toEqual(
    [
      `${p}: spec.repo_url: unknown key (did you mean repoUrl?)`,
      `${p}: spec.repoUrl: is required (a string)`,
      `${p}: spec.phaseTimeoutSeconds: must be a number, not string "60"`,
      `${p}: spec.env.RETRIES: must be a string, not number 3 (quote it: "3")`,
      `${p}: spec.guardrails.sandbox: must be one of bubblewrap, none, not string "docker"`,
      `${p}: spec.guardrails.readOnlyPaths[0]: must be an absolute path without ".."`,
      `${p}: spec.guardrails.readOnlyPaths[1]: must be an absolute path without ".."`,
      `${p}: spec.guardrails.network.test: must be true or false, not string "online"`,
      `${p}: spec.secrets[0].phases: must have at least 1 entry`,
    ].sort(),
  );
  expect(() => readDefinitionFile(file('empty.yaml', ''))).toThrow(/empty\.yaml: must be a mapping with name and spec, not null/);
  expect(() => readDefinitionFile(file('neg.yaml', 'name: a\nspec:\n  repoUrl: https://h/a\n  agentCommand: x\n  phaseTimeoutSeconds: 0\n'))).toThrow(
    /neg\.yaml: spec\.phaseTimeoutSeconds: must be greater than 0$/,
  );
});

it('refuses a local repoUrl that does not exist or is not a git repository, resolved against the file', () => {
  const sub = join(dir, 'nested');
  mkdirSync(join(sub, 'plain'), { recursive: true });
  mkdirSync(join(sub, 'work', '.git'), { recursive: true });
  const def = (name: string, url: string) => file(join('nested', name), `name: a\nspec:\n  repoUrl: ${url}\n  agentCommand: x\n`);
  expect(() => readDefinitionFile(def('missing.yaml', '../nowhere.git'))).toThrow(
    `${join(sub, 'missing.yaml')}: spec.repoUrl: ../nowhere.git (${join(dir, 'nowhere.git')}: a relative path is resolved against the definition file's directory) does not exist`,
  );
  expect(() => readDefinitionFile(def('abs.yaml', join(dir, 'gone.git')))).toThrow(
    `${join(sub, 'abs.yaml')}: spec.repoUrl: ${join(dir, 'gone.git')} does not exist`,
  );
  expect(() => readDefinitionFile(def('plain.yaml', 'plain'))).toThrow(/plain\.yaml: spec\.repoUrl: plain \(.*\) is not a git repository$/);
  expect(() => readDefinitionFile(def('file.yaml', 'missing.yaml'))).toThrow(/is not a directory/);
  // A working copy (with .git) is a repository too; URLs are never looked up.
  expect(readDefinitionFile(def('work.yaml', 'work')).spec.repoUrl).toBe(join(sub, 'work'));
  expect(readDefinitionFile(def('url.yaml', 'https://example.com/nowhere.git')).spec.repoUrl).toBe('https://example.com/nowhere.git');
  expect(readDefinitionFile(def('unchecked.yaml', '../nowhere.git'), { checkLocalRepo: false }).spec.repoUrl).toBe(join(dir, 'nowhere.git'));
});

it("explains the service's answers with the file and the key as written", () => {
  const invalid = (m: string) => new ConnectError(m, Code.InvalidArgument);
  expect(
    explainDefinitionError(
      'def.yaml',
      invalid("spec.guardrails.read_only_paths[0]: is outside the operator's policy: no host path is allowed (AMEIDE_SANDBOX_READ_ONLY_PATHS)"),
    ),
  ).toBe(
    "def.yaml: spec.guardrails.readOnlyPaths[0]: is outside the operator's policy: no host path is allowed (AMEIDE_SANDBOX_READ_ONLY_PATHS) (invalid argument)",
  );
  expect(explainDefinitionError('def.yaml', invalid('spec.secrets[1].from_env: must be upper-case letters, digits and _'))).toBe(
    'def.yaml: spec.secrets[1].fromEnv: must be upper-case letters, digits and _ (invalid argument)',
  );
  expect(explainDefinitionError('def.yaml', invalid('spec.env.MY_VAR: must not contain NUL bytes'))).toBe(
    'def.yaml: spec.env.MY_VAR: must not contain NUL bytes (invalid argument)',
  );
  expect(explainDefinitionError('def.yaml', invalid('name: must be 1-63 lowercase letters, digits, ".", "_" or "-"'))).toBe(
    'def.yaml: name: must be 1-63 lowercase letters, digits, ".", "_" or "-" (invalid argument)',
  );
  expect(explainDefinitionError('def.yaml', invalid('request: not a valid message'))).toBe('def.yaml: request: not a valid message (invalid argument)');
  expect(explainDefinitionError('def.yaml', new ConnectError('no such tenant', Code.PermissionDenied))).toBe('no such tenant (permission denied)');
  expect(explainDefinitionError('def.yaml', new UsageError('def.yaml: spec.repoUrl: is required (a string)'))).toBe(
    'def.yaml: spec.repoUrl: is required (a string)',
  );
});

it('turns proto field paths into the keys of the file, leaving map keys alone', () => {
  expect(camelKeyPath('spec.guardrails.budgets.max_file_bytes')).toBe('spec.guardrails.budgets.maxFileBytes');
  expect(camelKeyPath('spec.pull_request.labels[2]')).toBe('spec.pullRequest.labels[2]');
  expect(camelKeyPath('spec.env.SOME_NAME')).toBe('spec.env.SOME_NAME');
  expect(camelKeyPath('annotations["a_b c"]')).toBe('annotations["a_b c"]');
  expect(camelKeyPath('annotations.team_name')).toBe('annotations.team_name');
});

it('reads a coding agent and network mode model, and names a wrong agent field as written', () => {
  const p = file(
    'agent.yaml',
    [
      'name: agent',
      'spec:',
      '  repoUrl: https://git.example.com/app.git',
      '  agent: { kind: codex, model: gpt-5-codex, endpoint: "https://api.openai.com/v1", apiKeySecret: OPENAI_API_KEY, maxTurns: 30 }',
      '  secrets: [{ name: OPENAI_API_KEY, phases: [agent], fromEnv: OPENAI_KEY }]',
      '  guardrails: { network: { agent: model } }',
      '',
    ].join('\n'),
  );
  const def = readDefinitionFile(p);
  expect(def.spec.agent).toEqual({ kind: 'codex', model: 'gpt-5-codex', endpoint: 'https://api.openai.com/v1', apiKeySecret: 'OPENAI_API_KEY', maxTurns: 30 });
  expect(def.spec.agentCommand).toBeUndefined();
  expect(def.spec.guardrails?.network?.agent).toBe('model');
  const bad = file(
    'bad-agent.yaml',
    'name: x\nspec:\n  repoUrl: https://git.example.com/app.git\n  agent: { kind: aider, maxTurns: 0 }\n  guardrails: { network: { agent: web } }\n',
  );
  const message = (() => {
    try {
      readDefinitionFile(bad);
    } catch (err) {
      expect(err).toBeInstanceOf(UsageError);
      return (err as Error).message;
    }
    return 'accepted';
  })();
  expect(message).toContain(`${bad}: spec.agent.kind:`);
  expect(message).toContain(`${bad}: spec.agent.maxTurns:`);
  expect(message).toContain(`${bad}: spec.guardrails.network.agent:`);
});
