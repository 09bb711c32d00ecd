import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { parseArgs } from '../src/args.js';
import { readDefinitionFile } from '../src/definition-file.js';

const dir = mkdtempSync(join(tmpdir(), 'defs-'));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

it('reads a definition and resolves a relative local repo path against the file', () => {
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
  ['name: a\nspec:\n  repoUrl: x\n  agentCommand: x\n  testComand: npm test\n', /bad\.yaml: spec: Unrecognized key.*testComand/],
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
  const def = readDefinitionFile(join(__dirname, '../../../examples/sample-repo.definition.yaml'));
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
