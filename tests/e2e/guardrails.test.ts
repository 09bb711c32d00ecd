import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Phase, PhaseState, RunStatus } from '@ameide/contracts';
import { Code, ConnectError } from '@ameide/sdk';
import { git } from '@ameide/devstack';
import { ACME_SECRET, applySample, MULTIPLY, sampleOrigin, startHarness, useHarnessWithOrigin, watchAll, type Harness } from '../support/harness.js';

/** Guardrails of real runs: sandbox, allowed paths, budgets, scoped secrets. */
describe('guardrails of a run', () => {
  let h: Harness;
  let origin: string;
  useHarnessWithOrigin((started) => ({ h, origin } = started));

  const runToEnd = async (definition: string, overrides: Parameters<typeof applySample>[2]) => {
    await applySample(h.acme, origin, overrides, definition);
    const { run } = await h.acme.startWorkflowRun({ definition, workItems: [MULTIPLY] });
    const updates = await watchAll(h.acme, run!.id);
    return { run: (await h.acme.getWorkflowRun({ id: run!.id })).run!, updates };
  };

  it('fails as a policy violation when the change touches a denied path, and pushes nothing', async () => {
    const { run } = await runToEnd('denied', {
      agentCommand: 'node "$AGENT_SCRIPT" && mkdir -p .github/workflows && echo "on: push" > .github/workflows/ci.yml',
    });
    expect(run.status).not.toBe(RunStatus.COMPLETED);
    // The policy is the gate before the push: it checks the change of every phase as a whole.
    expect(run.phase).toBe(Phase.PUBLISH);
    expect(run.error).toContain('policy violation');
    expect(run.error).toContain('.github/workflows/ci.yml (denied)');
    expect(run.summary!.policyViolations).toEqual(['.github/workflows/ci.yml (denied)']);
    expect(run.summary!.pushed).toBe(false);
    expect(() => git(origin, 'rev-parse', '--verify', `refs/heads/${run.summary!.branch}`)).toThrow();
  });

  it('fails when the change leaves the allowed paths or plants a symlink out of the worktree', async () => {
    const { run } = await runToEnd('allowed', {
      agentCommand: 'node "$AGENT_SCRIPT" && echo x > README.md && ln -s /etc/passwd src/leak',
      guardrails: { allowedPaths: ['src/**', 'test/**'] },
    });
    expect(run.summary!.policyViolations).toEqual(['README.md (not allowed)', 'src/leak (symlink escapes the worktree)']);
  });

  it('lists at most 100 policy violations and counts the rest, so a change touching many paths still ends', async () => {
    const { run } = await runToEnd('many-denied', {
      agentCommand: 'mkdir -p .github/workflows && for i in $(seq 1 150); do echo x > .github/workflows/w$i.yml; done',
    });
    expect(run.status).toBe(RunStatus.HANDED_OFF);
    expect(run.summary!.policyViolations).toHaveLength(101);
    expect(run.summary!.policyViolations.at(-1)).toBe('… and 50 more');
  });

  it('gives a secret only to the phases it names, and records the sandbox', async () => {
    const { run } = await runToEnd('secrets', {
      installCommand: `test "$DEPLOY_TOKEN" = "${ACME_SECRET}" && npm ci --no-audit --no-fund`,
      agentCommand: 'test -z "$DEPLOY_TOKEN" && node "$AGENT_SCRIPT"',
      testCommand: 'test -z "$DEPLOY_TOKEN" && npm test',
      secrets: [{ name: 'DEPLOY_TOKEN', phases: [Phase.INSTALL], fromEnv: 'DEPLOY_TOKEN' }],
    });
    expect(run.status).toBe(RunStatus.COMPLETED);
    expect(run.summary!.sandbox).toBe('bubblewrap');
  });

  it('refuses to run with a secret the worker does not hold for the tenant', async () => {
    await applySample(h.globex, sampleOrigin(h, 'globex-origin'), {
      secrets: [{ name: 'DEPLOY_TOKEN', phases: [Phase.INSTALL], fromEnv: 'DEPLOY_TOKEN' }],
    });
    const { run } = await h.globex.startWorkflowRun({ definition: 'sample', workItems: [MULTIPLY] });
    await watchAll(h.globex, run!.id);
    const done = (await h.globex.getWorkflowRun({ id: run!.id })).run!;
    expect(done.status).not.toBe(RunStatus.COMPLETED);
    expect(done.error).toContain('secret DEPLOY_TOKEN is not configured on the worker: set AMEIDE_SECRET_GLOBEX__DEPLOY_TOKEN');
  });

  it('stops a run that exceeds its wall-clock budget and says which budget', async () => {
    const { run } = await runToEnd('slow', { agentCommand: 'sleep 60', guardrails: { budgets: { runTimeoutSeconds: 3 } } });
    expect(run.status).not.toBe(RunStatus.COMPLETED);
    expect(run.summary!.budgetExceeded).toBe('run_timeout');
    expect(run.phases.find((p) => p.phase === Phase.AGENT)).toMatchObject({ state: PhaseState.FAILED, exitCode: 124 });
  });

  it('stops at the command budget', async () => {
    const { run } = await runToEnd('few-commands', { guardrails: { budgets: { maxCommands: 1 } } });
    expect(run.summary!.budgetExceeded).toBe('max_commands');
    expect(run.phase).toBe(Phase.AGENT);
  });

  it("refuses a definition without a sandbox unless the operator's policy allows it, naming the field and the setting", async () => {
    const err = await applySample(h.acme, origin, { guardrails: { sandbox: 'none' } }, 'unsandboxed').catch((e: unknown) => ConnectError.from(e));
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
    expect((err as ConnectError).message).toContain('spec.guardrails.sandbox');
    expect((err as ConnectError).message).toContain('AMEIDE_SANDBOX_ALLOW_NONE');
  });

  it('removes the worktree after success, and after a failure once its handoff bundle is stored', async () => {
    const runDir = (id: string) => join(h.dir, 'workspaces', 'runs', 'acme', id, 'worktree');
    // Removal happens right after the report, off the run's critical path: allow it a moment.
    const gone = async (path: string) => {
      for (let i = 0; i < 50 && existsSync(path); i++) await new Promise((r) => setTimeout(r, 100));
      return !existsSync(path);
    };
    const ok = await runToEnd('cleanup-ok', {});
    expect(ok.run.status).toBe(RunStatus.COMPLETED);
    expect(await gone(runDir(ok.run.id))).toBe(true);
    const failed = await runToEnd('cleanup-failed', { testCommand: 'exit 1' });
    expect(failed.run.status).toBe(RunStatus.HANDED_OFF);
    expect(existsSync(new URL(failed.run.summary!.handoffUri))).toBe(true);
    expect(await gone(runDir(failed.run.id))).toBe(true);
  });
});

describe('secrets never leave the worker', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: true });
  });
  afterAll(() => h?.stop());

  it('are redacted from transcripts, status updates, artifacts and Temporal history', async () => {
    const half = ACME_SECRET.length >> 1;
    await applySample(h.acme, sampleOrigin(h), {
      // Echo the secret plainly, in base64, and split across two writes a moment apart.
      installCommand: `echo "plain $DEPLOY_TOKEN"; printf %s "$DEPLOY_TOKEN" | base64; printf "split %s" "$(printf %s "$DEPLOY_TOKEN" | cut -c1-${half})"; sleep 0.3; printf "%s\\n" "$(printf %s "$DEPLOY_TOKEN" | cut -c${half + 1}-)"; npm ci --no-audit --no-fund`,
      testCommand: 'echo "$DEPLOY_TOKEN in test"; exit 1',
      secrets: [{ name: 'DEPLOY_TOKEN', phases: [Phase.INSTALL, Phase.TEST], fromEnv: 'DEPLOY_TOKEN' }],
    });
    const { run } = await h.acme.startWorkflowRun({ definition: 'sample', workItems: [MULTIPLY] });
    const updates = await watchAll(h.acme, run!.id);
    const done = (await h.acme.getWorkflowRun({ id: run!.id })).run!;
    expect(done.status).toBe(RunStatus.HANDED_OFF);
    const install = done.phases.find((p) => p.phase === Phase.INSTALL)!;
    expect(install.outputTail).toContain('plain [REDACTED]');
    expect(install.outputTail).toContain('split [REDACTED]');

    const forms = [ACME_SECRET, Buffer.from(ACME_SECRET).toString('base64').slice(0, 16)];
    const leaks = (where: string, text: string) => forms.filter((f) => text.includes(f)).map((f) => `${where}: ${f}`);
    const found: string[] = [];
    found.push(
      ...leaks(
        'status updates',
        JSON.stringify(updates, (_k, v) => (typeof v === 'bigint' ? String(v) : v)),
      ),
    );
    found.push(
      ...leaks(
        'run',
        JSON.stringify(done, (_k, v) => (typeof v === 'bigint' ? String(v) : v)),
      ),
    );
    const artifacts = join(h.dir, 'artifacts', 'runs', 'acme', run!.id);
    for (const f of ['transcripts/install.log', 'transcripts/test.log', 'report.json']) found.push(...leaks(f, readFileSync(join(artifacts, f), 'latin1')));
    const bundle = execFileSync('tar', ['-xzOf', join(artifacts, 'handoff.tar.gz')], { encoding: 'latin1', maxBuffer: 1 << 26 });
    found.push(...leaks('handoff bundle', bundle));
    const history = execFileSync(inject('temporalCli'), ['workflow', 'show', '--address', inject('temporalAddress'), '-w', done.workflowId, '-o', 'json'], {
      encoding: 'utf8',
      maxBuffer: 1 << 26,
    });
    found.push(...leaks('temporal history', history));
    // Temporal payloads are base64-encoded JSON: decode them too.
    for (const m of history.matchAll(/"data":\s*"([A-Za-z0-9+/=]+)"/g))
      found.push(...leaks('temporal payload', Buffer.from(m[1]!, 'base64').toString('latin1')));
    expect(found).toEqual([]);
    expect(readFileSync(join(artifacts, 'transcripts/install.log'), 'utf8')).toContain('plain [REDACTED]');
  });
});

/** Real test suites (static-file servers among them) refuse paths with a dot-directory: commands never see one. */
describe('a worker whose workspace lies under a dot-directory', () => {
  let h: Harness;
  let origin: string;
  const workspace = join(inject('scratchDir'), `.hidden-${process.pid}`, 'workspaces');
  useHarnessWithOrigin((started) => ({ h, origin } = started), { worker: true, workerEnv: { AMEIDE_WORKSPACE_DIR: workspace } });

  it('runs commands in plain paths: the checkout, HOME and TMPDIR have no component starting with "."', async () => {
    await applySample(h.acme, origin, { agentCommand: 'node "$AGENT_SCRIPT" && printf "cwd=%s\\nhome=%s\\ntmp=%s\\n" "$(pwd -P)" "$HOME" "$TMPDIR"' });
    const { run } = await h.acme.startWorkflowRun({ definition: 'sample', workItems: [MULTIPLY] });
    await watchAll(h.acme, run!.id);
    const done = (await h.acme.getWorkflowRun({ id: run!.id })).run!;
    expect(done.status).toBe(RunStatus.COMPLETED);
    const seen = done.phases.find((p) => p.phase === Phase.AGENT)!.outputTail;
    expect(seen).toContain('cwd=/sandbox/workspace\nhome=/sandbox/home\ntmp=/sandbox/tmp\n');
    expect(existsSync(join(workspace, 'repos'))).toBe(true);
  });
});
