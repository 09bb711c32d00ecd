import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliConfigPath, cliWorkingDir, loadCliConfig, readCliContexts, writeCliContexts } from '../src/index.js';

describe('CLI configuration', () => {
  const nowhere = { AMEIDE_HOME: '/nonexistent' };

  it('asks for a token when there is neither a setting, a context nor a running stack', () => {
    expect(() => loadCliConfig(nowhere)).toThrow('Invalid setting AMEIDE_TOKEN: not set (run `make up`, `ameide login`, or export a bearer token)');
    expect(loadCliConfig({ ...nowhere, AMEIDE_TOKEN: 't' })).toEqual({ apiUrl: 'http://127.0.0.1:8080', token: 't', tokenSource: 'AMEIDE_TOKEN' });
  });

  it('keeps contexts in $XDG_CONFIG_HOME/ameide/config.yaml (0600 in a 0700 directory) and uses the current one', () => {
    const home = mkdtempSync(join(tmpdir(), 'ameide-cli-config-'));
    const env = { ...nowhere, HOME: home };
    expect(cliConfigPath(env)).toBe(join(home, '.config', 'ameide', 'config.yaml'));
    const xdg = { ...env, XDG_CONFIG_HOME: join(home, 'xdg') };
    expect(readCliContexts(xdg)).toEqual({ contexts: {} });
    const file = writeCliContexts(
      { current: 'prod', contexts: { prod: { apiUrl: 'https://ameide.example.com', token: 'p' }, dev: { apiUrl: 'http://127.0.0.1:8080', token: 'd' } } },
      xdg,
    );
    expect(file).toBe(join(home, 'xdg', 'ameide', 'config.yaml'));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(home, 'xdg', 'ameide')).mode & 0o777).toBe(0o700);
    expect(readFileSync(file, 'utf8')).toContain('current-context: prod');

    expect(loadCliConfig(xdg)).toEqual({ apiUrl: 'https://ameide.example.com', token: 'p', tokenSource: 'context prod' });
    expect(loadCliConfig(xdg, { context: 'dev' })).toMatchObject({ apiUrl: 'http://127.0.0.1:8080', token: 'd' });
    expect(loadCliConfig({ ...xdg, AMEIDE_CONTEXT: 'dev' })).toMatchObject({ token: 'd' });
    // The environment wins; a context's token goes to its own API only.
    expect(loadCliConfig({ ...xdg, AMEIDE_API_URL: 'http://other:1', AMEIDE_TOKEN: 'e' })).toEqual({
      apiUrl: 'http://other:1',
      token: 'e',
      tokenSource: 'AMEIDE_TOKEN',
    });
    expect(() => loadCliConfig({ ...xdg, AMEIDE_API_URL: 'http://other:1' })).toThrow(/context "prod"'s token is only sent to https:\/\/ameide\.example\.com/);
    expect(() => loadCliConfig(xdg, { context: 'staging' })).toThrow('no context "staging": use prod, dev');

    writeFileSync(file, 'contexts:\n  x:\n    api-url: ftp://x\n    token: t\n');
    expect(() => loadCliConfig(xdg)).toThrow(/config\.yaml: contexts\.x\.api-url: /);
  });

  it('finds the `make up` stack from any directory below it', () => {
    const repo = mkdtempSync(join(tmpdir(), 'ameide-repo-'));
    mkdirSync(join(repo, '.ameide', 'stack'), { recursive: true });
    mkdirSync(join(repo, 'packages', 'cli'), { recursive: true });
    writeFileSync(join(repo, '.ameide', 'stack', 'stack.json'), JSON.stringify({ apiUrl: 'http://127.0.0.1:9999', devToken: 'dev' }));
    expect(loadCliConfig({}, { cwd: join(repo, 'packages', 'cli') })).toEqual({
      apiUrl: 'http://127.0.0.1:9999',
      token: 'dev',
      tokenSource: 'the make up stack',
    });
  });

  it('resolves paths where the user typed the command, also when a package manager ran the ameide script from the root', () => {
    expect(cliWorkingDir({}, '/repo')).toBe('/repo');
    expect(cliWorkingDir({ INIT_CWD: '/repo/sub' }, '/repo')).toBe('/repo');
    expect(cliWorkingDir({ INIT_CWD: '/repo/sub', npm_lifecycle_event: 'ameide' }, '/repo')).toBe('/repo/sub');
  });
});
