import { randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { Phase, RunStatus } from '@ameide/contracts';
import { createOrigin, git, SAMPLE_REPO, SCRIPTED_AGENT } from '@ameide/devstack';
import { Code, ConnectError } from '@ameide/sdk';
import { ACME_SECRET, applySample, type Harness, refusal, sampleOrigin, startHarness, useHarnessWithOrigin } from '../support/harness.js';
import { ancestors, applyAndRun, clearMarkers, item, markerDir, markers, modes, output, transcript } from './support.js';

const ALLOW_NONE = { AMEIDE_SANDBOX_ALLOW_NONE: 'true' };
const AGENTS_DIR = dirname(SCRIPTED_AGENT);

/**
 * The operator's policy wins over what a tenant writes in a definition: no unsandboxed runs and no
 * read-only mounts outside the operator's allow-list unless the operator says so, checked by the
 * service when the definition is stored and again by the worker.
 */
describe('operator policy over tenant settings', () => {
  let h: Harness;
  let origin: string;
  useHarnessWithOrigin((started) => ({ h, origin } = started));

  it('refuses a definition with sandbox: none unless the operator allows it, naming the field and the setting', async () => {
    const viaApply = await refusal(applySample(h.acme, origin, { guardrails: { sandbox: 'none' } }, 'unsandboxed'));
    const def = (await applySample(h.acme, origin, {}, 'sandboxed')).spec!;
    const viaCreate = await refusal(
      h.acme.createDefinition({ name: 'unsandboxed-created', spec: { ...def, guardrails: { ...def.guardrails!, sandbox: 'none' } } }),
    );
    for (const err of [viaApply, viaCreate]) {
      expect(err.code).toBe(Code.InvalidArgument);
      expect(err.message).toContain('spec.guardrails.sandbox');
      expect(err.message).toContain('AMEIDE_SANDBOX_ALLOW_NONE');
    }
    // Not stored either.
    const names = (await h.acme.listDefinitions({})).definitions.map((d) => d.name);
    expect(names).not.toContain('unsandboxed');
    expect(names).not.toContain('unsandboxed-created');
  });

  it('refuses read-only paths outside the operator allow-list (also by prefix tricks), naming the field and the setting', async () => {
    const outside = [
      '/',
      '/etc',
      '/root',
      h.dir,
      join(h.dir, 'workspaces'),
      join(h.dir, 'workspaces', 'runs', 'globex'),
      join(h.dir, 'workspaces', 'mirrors'),
      dirname(AGENTS_DIR),
      `${AGENTS_DIR}-evil`,
      `${AGENTS_DIR}evil`,
    ];
    const wrong: string[] = [];
    for (const p of outside) {
      const err = await refusal(applySample(h.acme, origin, { guardrails: { readOnlyPaths: [p] } }, 'mounts')).catch((e: Error) => e);
      const ok =
        err instanceof ConnectError &&
        err.code === Code.InvalidArgument &&
        err.message.includes('spec.guardrails.read_only_paths[0]') &&
        err.message.includes('AMEIDE_SANDBOX_READ_ONLY_PATHS');
      if (!ok) wrong.push(`${p}: ${err instanceof ConnectError ? `${Code[err.code]} ${err.rawMessage}` : err.message}`);
    }
    expect(wrong).toEqual([]);
    // A path that climbs out of the allowed folder is refused too (however the message words it).
    const climb = await refusal(applySample(h.acme, origin, { guardrails: { readOnlyPaths: [`${AGENTS_DIR}/../../etc`] } }, 'mounts'));
    expect(climb.code).toBe(Code.InvalidArgument);
    expect(climb.message).toContain('spec.guardrails.read_only_paths[0]');
    // The index names the offending entry.
    const second = await refusal(applySample(h.acme, origin, { guardrails: { readOnlyPaths: [AGENTS_DIR, '/etc'] } }, 'mounts'));
    expect(second.message).toContain('spec.guardrails.read_only_paths[1]');
    expect(second.message).toContain('AMEIDE_SANDBOX_READ_ONLY_PATHS');
    // The allowed folder itself is fine.
    await expect(applySample(h.acme, origin, { guardrails: { readOnlyPaths: [AGENTS_DIR] } }, 'mounts')).resolves.toBeTruthy();
  });

  it.each([
    ['test', { testCommand: 'npm test && mkdir -p .github/workflows && echo "on: push" > .github/workflows/evil.yml' }, 'CALC-51'],
    ['install', { installCommand: 'npm ci --no-audit --no-fund && mkdir -p .github/workflows && echo "on: push" > .github/workflows/evil.yml' }, 'CALC-52'],
  ] as const)('applies the path policy to what the %s command changes: nothing is pushed', async (phase, overrides, id) => {
    const f = await applyAndRun(h.acme, origin, `denied-in-${phase}`, overrides, item(id));
    expect(f.run.status).not.toBe(RunStatus.COMPLETED);
    expect(f.run.summary?.policyViolations).toContain('.github/workflows/evil.yml (denied)');
    expect(f.run.summary?.pushed).toBe(false);
    expect(() => git(origin, 'rev-parse', '--verify', `refs/heads/ameide/${id.toLowerCase()}`)).toThrow();
  });

  it('no run changes permission bits of host directories (ancestors of the harness, a private directory beside it, the agent folder)', async () => {
    const privateDir = join(dirname(h.dir), `private-${randomUUID().slice(0, 8)}`);
    mkdirSync(privateDir);
    chmodSync(privateDir, 0o700);
    const watched = [...new Set([...ancestors(h.dir), privateDir, ...ancestors(origin), ...ancestors(AGENTS_DIR)])];
    const before = modes(watched);
    const f = await applyAndRun(h.acme, origin, 'modes', {}, item('CALC-54'));
    expect(modes(watched)).toEqual(before);
    expect(modes([privateDir])).toEqual({ [privateDir]: '0700' });
    expect(f.run.status, `the run: ${f.run.error}`).toBe(RunStatus.COMPLETED);
    expect(f.run.summary!.sandbox).toBe('bubblewrap');
  });

  it('gives each phase a fresh HOME and TMPDIR: what install leaves there (with a secret) is not visible to agent or test', async () => {
    // Each phase also leaves a file of its own (leak-control): the search must find that one, so it works.
    const search = (who: string) =>
      `echo "${who} searching"; echo "control of ${who}" | tr a-z A-Z > "$TMPDIR/leak-control"; cat "$HOME/.npmrc" "$TMPDIR/leak" 2>/dev/null; ` +
      `find / \\( -path /proc -o -path /sys \\) -prune -o \\( -name .npmrc -o -name leak -o -name leak-control \\) -print 2>/dev/null | while read -r f; do echo "FOUND $f"; cat "$f"; done; true`;
    const f = await applyAndRun(
      h.acme,
      origin,
      'phase-homes',
      {
        installCommand:
          `printf '//registry.example.com/:_authToken=%s\\n' "$DEPLOY_TOKEN" > "$HOME/.npmrc" && printf 'LEAKED:%s\\n' "$DEPLOY_TOKEN" > "$TMPDIR/leak" ` +
          `&& echo "install wrote its files" && npm ci --no-audit --no-fund`,
        agentCommand: `${search('agent')} && node "$AGENT_SCRIPT"`,
        testCommand: `${search('test')} && npm test`,
        secrets: [{ name: 'DEPLOY_TOKEN', phases: [Phase.INSTALL], fromEnv: 'DEPLOY_TOKEN' }],
      },
      item('CALC-53'),
    );
    expect(output(transcript(h, 'acme', f.run.id, 'install'))).toContain('install wrote its files');
    for (const phase of ['agent', 'test'] as const) {
      const out = output(transcript(h, 'acme', f.run.id, phase));
      expect(out, `${phase} transcript`).toContain(`${phase} searching`);
      expect(out, `${phase}: the search found the phase's own file`).toContain(`CONTROL OF ${phase.toUpperCase()}`);
      expect(out, `${phase} saw the secret`).not.toContain(ACME_SECRET);
      expect(out, `${phase} saw install's $HOME/.npmrc`).not.toContain('_authToken=');
      expect(out, `${phase} saw install's $TMPDIR/leak`).not.toContain('LEAKED:');
    }
    expect(f.run.status).toBe(RunStatus.COMPLETED);
  });
});

describe('operator settings AMEIDE_SANDBOX_ALLOW_NONE', () => {
  let allowed: Harness | undefined;
  let serviceOnly: Harness | undefined;
  let M: string;
  afterAll(async () => {
    await allowed?.stop();
    await serviceOnly?.stop();
    if (M) rmSync(M, { recursive: true, force: true });
  });

  it('with the setting on service and worker, a sandbox: none run completes and records it', async () => {
    allowed = await startHarness({ worker: true, serviceEnv: ALLOW_NONE, workerEnv: ALLOW_NONE });
    const f = await applyAndRun(allowed.acme, sampleOrigin(allowed), 'unsandboxed', { guardrails: { sandbox: 'none' } });
    expect(f.run.status).toBe(RunStatus.COMPLETED);
    expect(f.run.summary!.sandbox).toBe('none');
  });

  it('a worker without the setting never runs a command unsandboxed, even if the service let the definition in', async () => {
    serviceOnly = await startHarness({ worker: true, serviceEnv: ALLOW_NONE });
    M = markerDir();
    clearMarkers(M);
    const f = await applyAndRun(serviceOnly.acme, sampleOrigin(serviceOnly), 'unsandboxed', {
      guardrails: { sandbox: 'none' },
      // Only a command outside any sandbox can reach the host's marker directory.
      installCommand: `touch ${M}/install-ran-unsandboxed; npm ci --no-audit --no-fund`,
      agentCommand: `touch ${M}/agent-ran-unsandboxed; node "$AGENT_SCRIPT"`,
    });
    expect(markers(M)).toEqual([]);
    expect(f.run.status).not.toBe(RunStatus.COMPLETED);
    expect(f.run.error).toContain('AMEIDE_SANDBOX_ALLOW_NONE');
  });
});

describe('host directories', () => {
  let h: Harness | undefined;
  afterAll(() => h?.stop());

  it('a worker whose workspace lies under a private (0700) directory does not open it up: it runs, or refuses naming AMEIDE_WORKSPACE_DIR', async () => {
    const privateDir = join(inject('scratchDir'), `private-${randomUUID().slice(0, 8)}`);
    mkdirSync(privateDir);
    chmodSync(privateDir, 0o700);
    const workspace = join(privateDir, 'workspaces');
    mkdirSync(workspace, { mode: 0o700 });
    h = await startHarness({ worker: true, workerEnv: { AMEIDE_WORKSPACE_DIR: workspace } });
    const origin = createOrigin(SAMPLE_REPO, join(privateDir, 'origin.git'));
    const watched = [...new Set([...ancestors(h.dir), ...ancestors(privateDir), ...ancestors(origin), ...ancestors(AGENTS_DIR)])];
    const before = modes(watched);
    const f = await applyAndRun(h.acme, origin, 'modes', {});
    expect(modes(watched)).toEqual(before);
    expect(modes([privateDir])).toEqual({ [privateDir]: '0700' });
    if (f.run.status !== RunStatus.COMPLETED) expect(f.run.error).toContain('AMEIDE_WORKSPACE_DIR');
  });
});
