import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureMirror, resolveBase, runPaths, safeSegment } from '../../src/activities/workspace.js';

/** git in `cwd`, with an identity for commits; its output, trimmed. */
const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { cwd, encoding: 'utf8' }).trim();

describe('tenant directories', () => {
  it('keep plain tenant ids as they are', () => {
    expect(safeSegment('acme')).toBe('acme');
    expect(safeSegment('team-1.eu_west')).toBe('team-1.eu_west');
  });

  it('never let two tenant ids share a directory, however they differ', () => {
    const ids = ['a/b', 'a_b', 'a b', 'a:b', 'a\\b', '..', '.', 'ä'];
    const dirs = ids.map(safeSegment);
    expect(new Set(dirs).size).toBe(ids.length);
    for (const d of dirs) expect(d).toMatch(/^[A-Za-z0-9._-]+$/);
    expect(dirs).not.toContain('..');
    expect(runPaths('/w', 'a/b', 'r').runDir).not.toBe(runPaths('/w', 'a_b', 'r').runDir);
  });
});

describe('the base commit of a run', () => {
  /** A mirror as the worker keeps one: origin's branches under refs/remotes/origin/. */
  function mirror(): { dir: string; main: string; work: string } {
    const dir = mkdtempSync(join(tmpdir(), 'mirror-'));
    git(dir, 'init', '-q', '-b', 'main');
    git(dir, 'commit', '-q', '--allow-empty', '-m', 'base');
    const main = git(dir, 'rev-parse', 'HEAD');
    git(dir, 'commit', '-q', '--allow-empty', '-m', 'work');
    const work = git(dir, 'rev-parse', 'HEAD');
    git(dir, 'update-ref', 'refs/remotes/origin/main', main);
    return { dir, main, work };
  }

  it("is the work branch's head when an earlier run pushed it, else the default branch's", async () => {
    const m = mirror();
    expect(await resolveBase(m.dir, 'ameide/calc-1', 'main')).toBe(m.main);
    git(m.dir, 'update-ref', 'refs/remotes/origin/ameide/calc-1', m.work);
    expect(await resolveBase(m.dir, 'ameide/calc-1', 'main')).toBe(m.work);
    // A branch pointing at an annotated tag: the commit it tags.
    git(m.dir, 'tag', '-a', '-m', 'release', 'v1', m.work);
    git(m.dir, 'update-ref', 'refs/remotes/origin/ameide/calc-2', git(m.dir, 'rev-parse', 'refs/tags/v1'));
    expect(await resolveBase(m.dir, 'ameide/calc-2', 'main')).toBe(m.work);
  });

  it('names the default branch when neither branch exists', async () => {
    const m = mirror();
    await expect(resolveBase(m.dir, 'ameide/calc-1', 'trunk')).rejects.toThrow(
      'branch "trunk" not found in the repository; check the definition\'s default_branch',
    );
  });
});

describe("the tenant's mirror of a repository", () => {
  /** An origin with a default branch, a run's work branch and another run's. */
  function origin() {
    const dir = mkdtempSync(join(tmpdir(), 'origin-'));
    git(dir, 'init', '-q', '-b', 'main');
    git(dir, 'commit', '-q', '--allow-empty', '-m', 'base');
    for (const b of ['ameide/calc-1', 'ameide/calc-2']) {
      git(dir, 'checkout', '-q', '-b', b, 'main');
      git(dir, 'commit', '-q', '--allow-empty', '-m', b);
    }
    return dir;
  }
  const refsOf = (mirror: string) => git(mirror, 'for-each-ref', '--format=%(refname)').split('\n').filter(Boolean);

  it("fetches the default branch and the run's own work branch, not other runs' branches", async () => {
    const o = origin();
    const ws = mkdtempSync(join(tmpdir(), 'ws-'));
    const mirror = await ensureMirror(ws, 'acme', `file://${o}`, { branch: 'ameide/calc-1', defaultBranch: 'main' });
    expect(refsOf(mirror)).toEqual(['refs/remotes/origin/ameide/calc-1', 'refs/remotes/origin/main']);
    expect(await resolveBase(mirror, 'ameide/calc-1', 'main')).toBe(git(o, 'rev-parse', 'ameide/calc-1'));
    // A work branch origin does not have yet: nothing more, and the run starts from the default branch.
    await ensureMirror(ws, 'acme', `file://${o}`, { branch: 'ameide/calc-3', defaultBranch: 'main' });
    expect(refsOf(mirror)).toEqual(['refs/remotes/origin/ameide/calc-1', 'refs/remotes/origin/main']);
    expect(await resolveBase(mirror, 'ameide/calc-3', 'main')).toBe(git(o, 'rev-parse', 'main'));
    // A branch deleted on origin goes from the mirror when a run of it fetches.
    git(o, 'branch', '-q', '-D', 'ameide/calc-1');
    await ensureMirror(ws, 'acme', `file://${o}`, { branch: 'ameide/calc-1', defaultBranch: 'main' });
    expect(refsOf(mirror)).toEqual(['refs/remotes/origin/main']);
  });

  it('says which default branch the repository lacks', async () => {
    const ws = mkdtempSync(join(tmpdir(), 'ws-'));
    await expect(ensureMirror(ws, 'acme', `file://${origin()}`, { branch: 'ameide/calc-1', defaultBranch: 'trunk' })).rejects.toMatchObject({
      message: 'branch "trunk" not found in the repository; check the definition\'s default_branch',
      permanent: true,
    });
  });
});
