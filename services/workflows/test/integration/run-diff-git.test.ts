import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileStatus } from '@ameide/contracts';
import { FailedPreconditionError, UnavailableError } from '../../src/errors.js';
import { RunDiffs, type RunChange } from '../../src/runs/diff.js';

/** The test's own git: no system or user configuration, output as bytes. */
function git(cwd: string, ...args: string[]): Buffer {
  return execFileSync('git', ['-c', 'core.quotePath=false', '-c', 'user.name=T', '-c', 'user.email=t@example.com', ...args], {
    cwd,
    env: { PATH: process.env.PATH!, HOME: tmpdir(), GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' },
    maxBuffer: 256 * 1024 * 1024,
  });
}
const text = (cwd: string, ...args: string[]) => git(cwd, ...args).toString('utf8');

/**
 * The service's git cache against real repositories (no service): a change with every kind of file
 * change and awkward paths, pages, byte budgets, concurrent first calls, rewritten and vanished
 * branches, and an unreachable repository.
 */
describe('RunDiffs: the service git cache', () => {
  let dir: string;
  let work: string;
  let origin: string;
  let change: RunChange;
  let n = 0;
  /** A cache of its own (a fresh directory) unless one is given. */
  const diffs = (o: Partial<ConstructorParameters<typeof RunDiffs>[0]> = {}) => new RunDiffs({ dir: join(dir, `cache-${n++}`), ...o });

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ameide-run-diff-'));
    work = join(dir, 'work');
    mkdirSync(join(work, 'docs'), { recursive: true });
    text(work, 'init', '-q', '-b', 'main');
    writeFileSync(join(work, 'a.txt'), 'one\ntwo\nthree\n');
    writeFileSync(join(work, 'util.js'), Array.from({ length: 30 }, (_, i) => `// ${i}\n`).join(''));
    writeFileSync(join(work, 'link'), 'was a file\n');
    writeFileSync(join(work, 'gone.txt'), 'bye\n');
    writeFileSync(join(work, 'logo.bin'), Buffer.from([0, 1, 2, 3]));
    writeFileSync(join(work, 'quo"te.txt'), 'q\n');
    writeFileSync(join(work, 'big.txt'), 'small\n');
    text(work, 'add', '-A');
    text(work, 'commit', '-qm', 'base');
    const base = text(work, 'rev-parse', 'HEAD').trim();
    text(work, 'checkout', '-qb', 'ameide/work');
    writeFileSync(join(work, 'a.txt'), 'one\n2\nthree\nfour\n');
    text(work, 'mv', 'util.js', 'helpers.js');
    writeFileSync(join(work, 'helpers.js'), Array.from({ length: 31 }, (_, i) => `// ${i}\n`).join(''));
    unlinkSync(join(work, 'link'));
    symlinkSync('a.txt', join(work, 'link'));
    unlinkSync(join(work, 'gone.txt'));
    writeFileSync(join(work, 'logo.bin'), Buffer.from([0, 9, 9, 3, 4]));
    writeFileSync(join(work, 'docs', 'release notes.md'), '# notes\n');
    writeFileSync(join(work, 'naïve.txt'), 'n\n');
    writeFileSync(join(work, 'tab\tname.txt'), 't\n');
    writeFileSync(join(work, 'quo"te.txt'), 'q\nq2\n');
    writeFileSync(join(work, ':(glob)*.txt'), 'not a pathspec\n');
    // A name that is not UTF-8 (latin-1 "é").
    writeFileSync(Buffer.from(join(work, 'caf\xe9.txt'), 'latin1'), 'latin-1 name\n');
    writeFileSync(join(work, 'big.txt'), Array.from({ length: 20_000 }, (_, i) => `line ${i} of a large change\n`).join(''));
    text(work, 'add', '-A');
    text(work, 'commit', '-qm', 'work');
    const head = text(work, 'rev-parse', 'HEAD').trim();
    origin = join(dir, 'origin.git');
    text(dir, 'clone', '-q', '--bare', work, origin);
    change = { tenantId: 'acme', runId: 'run-1', repoUrl: origin, branch: 'ameide/work', baseCommit: base, headCommit: head };
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const gitDiff = (...extra: string[]) => git(origin, 'diff', '-M', ...extra, change.baseCommit, change.headCommit).toString('utf8');

  it('lists the files as git does and gives the patches of any page, in order', async () => {
    const d = diffs();
    const files = await d.files(change);
    expect(files.map((f) => [f.status, f.oldPath, f.path])).toEqual([
      [FileStatus.ADDED, '', ':(glob)*.txt'],
      [FileStatus.MODIFIED, '', 'a.txt'],
      [FileStatus.MODIFIED, '', 'big.txt'],
      [FileStatus.ADDED, '', 'caf\ufffd.txt'],
      [FileStatus.ADDED, '', 'docs/release notes.md'],
      [FileStatus.DELETED, '', 'gone.txt'],
      [FileStatus.RENAMED, 'util.js', 'helpers.js'],
      [FileStatus.TYPE_CHANGED, '', 'link'],
      [FileStatus.MODIFIED, '', 'logo.bin'],
      [FileStatus.ADDED, '', 'naïve.txt'],
      [FileStatus.MODIFIED, '', 'quo"te.txt'],
      [FileStatus.ADDED, '', 'tab\tname.txt'],
    ]);
    expect(files.find((f) => f.path === 'logo.bin')).toMatchObject({ binary: true, insertions: 0, deletions: 0 });
    const whole = gitDiff();
    expect((await d.patches(change, files, 0, 100)).patches.join('')).toBe(whole);
    for (const size of [1, 2, 5]) {
      const pages: string[] = [];
      for (let at = 0; at < files.length; at += size) {
        const { patches } = await d.patches(change, files, at, size);
        expect(patches).toHaveLength(Math.min(size, files.length - at));
        pages.push(...patches);
      }
      expect(pages.join('')).toBe(whole);
    }
  });

  it('ends a page early at its byte budget, and leaves out a patch larger than a page may hold', async () => {
    const files = await diffs().files(change);
    const big = files.findIndex((f) => f.path === 'big.txt');
    const whole = (await diffs().patches(change, files, 0, 100)).patches;
    const bigBytes = Buffer.byteLength(whole[big]!);
    expect(bigBytes).toBeGreaterThan(256 * 1024);
    // A budget the large patch just fits: the file before it ends its page, and it has a page of its own.
    const fits = diffs({ pageBytes: bigBytes + 10 });
    expect((await fits.patches(change, files, big - 1, 10)).patches).toEqual([whole[big - 1]]);
    expect((await fits.patches(change, files, big, 10)).patches).toEqual([whole[big]]);
    // A budget it does not fit: its header is kept, the rest left out, and the page goes on.
    const omitted = (await diffs({ pageBytes: 64 * 1024 }).patches(change, files, big, 10)).patches;
    expect(omitted[0]).toBe(
      `diff --git a/big.txt b/big.txt\n${whole[big]!.split('\n')[1]}\n--- a/big.txt\n+++ b/big.txt\n# patch omitted: ${bigBytes} bytes, more than one page may hold\n`,
    );
    expect(omitted.slice(1)).toEqual(whole.slice(big + 1, big + 10));
    // When git prints more than it may: the page is computed in halves, down to the one file that is too large.
    const small = diffs({ maxOutputBytes: 32 * 1024 });
    expect((await small.patches(change, files, 0, 100)).patches).toEqual(whole.slice(0, big));
    expect((await small.patches(change, files, big, 100)).patches).toEqual([
      'diff --git a/big.txt b/big.txt\n# patch omitted: more than 32768 bytes, more than one page may hold\n',
    ]);
  });

  it('answers concurrent first calls of one repository alike (their fetches take turns)', async () => {
    const d = diffs();
    const all = await Promise.all(Array.from({ length: 6 }, () => d.files({ ...change })));
    for (const files of all) expect(files).toEqual(all[0]);
    const again = await Promise.all(Array.from({ length: 3 }, (_, i) => d.patches(change, all[0]!, i, 4)));
    expect(again.map((p) => p.patches.length)).toEqual([4, 4, 4]);
  });

  it('finds the commits of a branch that was rewritten since, and says so when they are gone', async () => {
    const moved = join(dir, 'moved.git');
    text(dir, 'clone', '-q', '--bare', origin, moved);
    // The branch force-pushed elsewhere: the run's head is no longer on it, but the repository still has it.
    text(moved, 'update-ref', 'refs/heads/ameide/work', change.baseCommit);
    expect((await diffs().files({ ...change, repoUrl: moved })).length).toBe(12);
    // The branch deleted and its commits pruned.
    text(moved, 'update-ref', '-d', 'refs/heads/ameide/work');
    text(moved, 'reflog', 'expire', '--expire=now', '--all');
    text(moved, 'gc', '-q', '--prune=now');
    const err = await diffs()
      .files({ ...change, repoUrl: moved })
      .catch((e: Error) => e);
    expect(err).toBeInstanceOf(FailedPreconditionError);
    expect((err as Error).message).toBe(`the run's head commit ${change.headCommit.slice(0, 12)} is no longer in the repository (branch ameide/work is gone)`);
  });

  it('says the repository cannot be read, in git’s words, when it is not there', async () => {
    const err = await diffs()
      .files({ ...change, repoUrl: join(dir, 'nowhere.git') })
      .catch((e: Error) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toMatch(/^the repository cannot be read: fatal: '.*nowhere\.git' does not appear to be a git repository$/);
  });

  it('refuses summaries it cannot trust as git arguments, and a cache directory others can write', async () => {
    await expect(diffs().files({ ...change, branch: '--upload-pack=x' })).rejects.toThrow(FailedPreconditionError);
    await expect(diffs().files({ ...change, branch: 'a/../b' })).rejects.toThrow(FailedPreconditionError);
    await expect(diffs().files({ ...change, headCommit: 'HEAD' })).rejects.toThrow(/no valid base and head commit/);
    const open = join(dir, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    await expect(new RunDiffs({ dir: open }).files(change)).rejects.toThrow(/writable by others/);
  });
});
