import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunStatus } from '@ameide/contracts';
import { git } from '@ameide/devstack';
import { applySample, sampleOrigin, startHarness, type Harness } from '../support/harness.js';
import { forgeBase, ownGitDir, plantGitCommands, redirectToVictim } from './attacks.js';
import {
  applyAndRun,
  clearMarkers,
  commitFiles,
  filesMentioning,
  item,
  markerDir,
  markers,
  output,
  pushedDiff,
  refsOf,
  settle,
  shellScript,
  startAndFinish,
  transcript,
  type Finished,
} from './support.js';

/**
 * The git boundary: whatever an agent writes into the git directories it can reach (hooks, config,
 * attributes, refs, alternates) has no effect outside the sandbox. The worker never runs git in a
 * directory the sandbox could write, pushes only to the definition's own repository, and pushes
 * exactly what it reports.
 *
 * Marker technique: every planted command touches a file in a host directory that the sandbox does
 * not mount, so only code running outside the sandbox can create it.
 */
describe('the git boundary between the sandbox and the worker', () => {
  let h: Harness;
  let M: string;
  /** The attacker's (acme's) origin for the planted-commands attacks. */
  let origin: string;
  /** Another tenant's repository (globex's definition), with a commit acme's origin does not have. */
  let victim: string;
  let victimRun: Finished;
  const AGENT = 'node "$AGENT_SCRIPT"';

  beforeAll(async () => {
    h = await startHarness({ worker: true });
    M = markerDir();
    origin = sampleOrigin(h, 'acme-origin');
    victim = sampleOrigin(h, 'victim-origin');
    commitFiles(victim, 'main', { 'victim-only.txt': 'globex internal\n' }, 'Victim-only commit');
    await applySample(h.globex, victim);
    // The victim has a run (and so a mirror on the worker) before the attacker starts.
    victimRun = await startAndFinish(h.globex, 'sample', item('CALC-1'));
  });
  afterAll(async () => {
    await h?.stop();
    if (M) rmSync(M, { recursive: true, force: true });
  });

  /** Marker files created since the last clear, after the worker is done with the run. */
  const markersAfter = async (f: Finished, tenant = 'acme') => {
    await settle(h, tenant, f.run.id);
    return markers(M);
  };
  const attackRan = (f: Finished) => expect(output(transcript(h, 'acme', f.run.id, 'agent'))).toContain('attack: done');
  /** Files of the worker's workspace, outside the run's own directory, that carry the attack's payload. */
  const persisted = (f: Finished) =>
    filesMentioning(join(h.dir, 'workspaces'), M, [join(h.dir, 'workspaces', 'runs', 'acme', f.run.id)]).map((p) => p.slice(h.dir.length + 1));

  describe('planted hooks, config and filters', () => {
    const attack = (repo = origin) => `${AGENT} && ${shellScript(plantGitCommands(M, victim, repo))}`;

    it('do not run outside the sandbox when the attacking run finishes', async () => {
      expect(victimRun.run.status).toBe(RunStatus.COMPLETED);
      clearMarkers(M);
      const f = await applyAndRun(h.acme, origin, 'git-attack', { agentCommand: attack() }, item('CALC-1'));
      attackRan(f);
      expect(await markersAfter(f)).toEqual([]);
      // Nothing the agent planted survives its run in a repository the worker keeps (mirrors never writable).
      expect(persisted(f)).toEqual([]);
    });

    it('do not run in the next run of the same definition', async () => {
      clearMarkers(M);
      const f = await startAndFinish(h.acme, 'git-attack', item('CALC-2'));
      expect(await markersAfter(f)).toEqual([]);
    });

    // The next cases attack a repository of their own, so each exercises its own path from a clean mirror.
    it('do not run when the change is refused by the path policy', async () => {
      clearMarkers(M);
      const repo = sampleOrigin(h, 'acme-denied-origin');
      const f = await applyAndRun(
        h.acme,
        repo,
        'git-attack-denied',
        { agentCommand: `${attack(repo)} && mkdir -p .github/workflows && echo "on: push" > .github/workflows/ci.yml` },
        item('CALC-3'),
      );
      attackRan(f);
      expect(await markersAfter(f)).toEqual([]);
      expect(f.run.status).not.toBe(RunStatus.COMPLETED);
      expect(f.run.summary?.policyViolations).toContain('.github/workflows/ci.yml (denied)');
    });

    it('do not run when the run is handed off', async () => {
      clearMarkers(M);
      const repo = sampleOrigin(h, 'acme-handoff-origin');
      const f = await applyAndRun(h.acme, repo, 'git-attack-handoff', { agentCommand: attack(repo), testCommand: 'exit 1' }, item('CALC-4'));
      attackRan(f);
      expect(await markersAfter(f)).toEqual([]);
      expect(f.run.status).toBe(RunStatus.HANDED_OFF);
    });

    it('do not run when the agent replaces the worktree git link with a repository of its own', async () => {
      clearMarkers(M);
      const repo = sampleOrigin(h, 'acme-own-repo-origin');
      const f = await applyAndRun(
        h.acme,
        repo,
        'git-attack-own-repo',
        { agentCommand: `${AGENT} && ${shellScript(ownGitDir(M, victim, repo))}` },
        item('CALC-5'),
      );
      attackRan(f);
      expect(await markersAfter(f)).toEqual([]);
    });

    it("do not reach another tenant's repository or its runs", async () => {
      clearMarkers(M);
      const before = refsOf(victim);
      const f = await startAndFinish(h.globex, 'sample', item('CALC-6'));
      expect(await markersAfter(f, 'globex')).toEqual([]);
      expect(f.run.status).toBe(RunStatus.COMPLETED);
      expect(f.run.summary!.baseCommit).toBe(git(victim, 'rev-parse', 'main'));
      // The victim got exactly its own new branch.
      const added = refsOf(victim)
        .split('\n')
        .filter((l) => !before.split('\n').includes(l));
      expect(added.map((l) => l.split(' ')[0])).toEqual([`refs/heads/${f.run.summary!.branch}`]);
    });
  });

  it('an agent cannot make the worker push to, or fetch from, another repository', async () => {
    const own = sampleOrigin(h, 'acme-redirect-origin');
    const main = git(own, 'rev-parse', 'main');
    const victimBefore = refsOf(victim);
    const ownBefore = refsOf(own).split('\n');

    // The attacking run: it uses a work item the victim has no branch for, so a redirected push would land.
    const attack = await applyAndRun(h.acme, own, 'redirect', { agentCommand: `${AGENT} && ${shellScript(redirectToVictim(victim, own))}` }, item('CALC-31'));
    expect(output(transcript(h, 'acme', attack.run.id, 'agent'))).toContain('attack: done');
    // Soft: the follow-up run below is checked whatever happened here.
    expect.soft(refsOf(victim), 'the victim repository changed').toBe(victimBefore);
    expect.soft(attack.run.status).toBe(RunStatus.COMPLETED);
    const branch = attack.run.summary!.branch;
    // The attacker's origin got exactly the run branch, built on its own main.
    expect
      .soft(
        refsOf(own)
          .split('\n')
          .filter((l) => !ownBefore.includes(l))
          .map((l) => l.split(' ')[0]),
      )
      .toEqual([`refs/heads/${branch}`]);
    if (refsOf(own).includes(`refs/heads/${branch} `)) expect.soft(git(own, 'rev-list', '--first-parent', branch).split('\n')).toContain(main);
    expect.soft(attack.run.summary!.baseCommit).toBe(main);
    const victimAfterAttack = refsOf(victim);

    // The next run of the same repository still fetches from and pushes to its own origin only.
    const next = await applyAndRun(h.acme, own, 'redirect-clean', {}, item('CALC-32'));
    expect.soft(refsOf(victim), 'the victim repository changed in the next run').toBe(victimAfterAttack);
    expect.soft(next.run.summary!.baseCommit, 'base commit of the next run').toBe(main);
    expect(next.run.status, `the next run: ${next.run.error}`).toBe(RunStatus.COMPLETED);
    const nextBranch = next.run.summary!.branch;
    expect(refsOf(own), 'the next run pushed its branch to its own origin').toContain(`refs/heads/${nextBranch} `);
    expect(git(own, 'ls-tree', '-r', '--name-only', nextBranch).split('\n')).not.toContain('victim-only.txt');
    expect(git(own, 'rev-list', '--first-parent', nextBranch).split('\n')).toContain(main);
  });

  it("a forged origin/main or refs/replace does not change the next run's base, and what is pushed is what is reported", async () => {
    const own = sampleOrigin(h, 'acme-forge-origin');
    const main = git(own, 'rev-parse', 'main');
    const nextItem = item('CALC-42');
    const attack = await applyAndRun(
      h.acme,
      own,
      'forge',
      { agentCommand: `${AGENT} && ${shellScript(forgeBase(victim, `ameide/${nextItem.id.toLowerCase()}`))}` },
      item('CALC-41'),
    );
    expect(output(transcript(h, 'acme', attack.run.id, 'agent'))).toContain('attack: done');
    // Soft: the follow-up run below is checked whatever happened here.
    expect.soft(attack.run.summary!.baseCommit).toBe(main);
    if (attack.run.summary!.pushed) {
      // The attacking run itself: the origin holds exactly the change its summary reports.
      const s = attack.run.summary!;
      const pushed = pushedDiff(own, s.baseCommit, git(own, 'rev-parse', `refs/heads/${s.branch}`));
      expect.soft(git(own, 'rev-parse', `refs/heads/${s.branch}`)).toBe(s.headCommit);
      expect.soft({ files: pushed.files.length, insertions: pushed.insertions, deletions: pushed.deletions }, 'pushed vs reported (attacking run)').toEqual({
        files: s.filesChanged,
        insertions: s.insertions,
        deletions: s.deletions,
      });
    }

    const next = await applyAndRun(h.acme, own, 'forge-clean', {}, nextItem);
    const s = next.run.summary!;
    expect.soft(s.baseCommit, 'base commit of the next run').toBe(main);
    expect(next.run.status, `the next run: ${next.run.error}`).toBe(RunStatus.COMPLETED);
    const head = git(own, 'rev-parse', `refs/heads/${s.branch}`);
    expect(head).toBe(s.headCommit);
    expect(git(own, 'ls-tree', '-r', '--name-only', head).split('\n')).not.toContain('injected.txt');
    const pushed = pushedDiff(own, main, head);
    expect(pushed.files).toEqual(['src/calc.js', 'test/multiply.test.js']);
    expect({ files: pushed.files.length, insertions: pushed.insertions, deletions: pushed.deletions }).toEqual({
      files: s.filesChanged,
      insertions: s.insertions,
      deletions: s.deletions,
    });
    expect(git(own, 'rev-list', '--first-parent', head).split('\n')).toContain(main);
    // Nothing but branches ever reaches the origin (no replace refs, no remote-tracking refs).
    expect(
      refsOf(own)
        .split('\n')
        .filter((l) => !l.startsWith('refs/heads/')),
    ).toEqual([]);
  });
});
