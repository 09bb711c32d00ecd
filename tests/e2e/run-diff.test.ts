import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileStatus, RunStatus, type FileDiff, type GetRunDiffResponse, type Run } from '@ameide/contracts';
import { createOrigin } from '@ameide/devstack';
import { Code, ConnectError } from '@ameide/sdk';
import { cli } from '../../packages/cli/src/main.js';
import { applySample, startHarness, watchAll, type Harness } from '../support/harness.js';

/** The code and message a call fails with. */
async function refusal(p: Promise<unknown>): Promise<{ code: Code; message: string }> {
  try {
    await p;
  } catch (err) {
    const e = ConnectError.from(err);
    return { code: e.code, message: e.rawMessage };
  }
  throw new Error('the call succeeded');
}

/** git as the test's own tool: no system or user configuration, output byte for byte. */
function gitRaw(cwd: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'core.quotePath=false', ...args], {
    cwd,
    encoding: 'utf8',
    env: { PATH: process.env.PATH!, HOME: process.env.HOME!, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' },
    maxBuffer: 64 * 1024 * 1024,
  });
}

/** A repository whose files the agent below modifies, renames (one into a path with a space), deletes and adds to, text and binary. */
function writeFixture(dir: string): void {
  const files: Record<string, string | Buffer> = {
    'README.md': '# diff fixture\n\nA repository the run diff test changes.\n',
    'src/app.js': Array.from({ length: 20 }, (_, i) => `export const line${i + 1} = ${i + 1};\n`).join(''),
    'lib/util.js': Array.from({ length: 30 }, (_, i) => `// util line ${i + 1}\n`).join(''),
    'docs/guide.md': Array.from({ length: 10 }, (_, i) => `Guide paragraph ${i + 1}.\n`).join(''),
    'obsolete.txt': 'this file goes away\n',
    'assets/logo.bin': Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0x00, 0x01, 0x02, 0xff]),
  };
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
}

/** The agent: a shell script run in the sandbox's checkout. */
const AGENT = String.raw`set -e
{ head -n 2 src/app.js; echo 'export const line3 = "three";'; tail -n +4 src/app.js; echo 'export const answer = 42;'; } > src/app.next
mv src/app.next src/app.js
mv lib/util.js lib/helpers.js
echo '// helpers' >> lib/helpers.js
mv docs/guide.md "docs/user guide.md"
rm obsolete.txt
printf '\211PNG\r\n\032\n\000\000\000\rIHDR\000\001' > assets/logo.bin
printf '\000\001\002\003\377' > assets/icon.bin
printf '# Release notes\n\n- answer\n' > "docs/release notes.md"
printf 'quoted\n' > 'src/naïve "q".txt'`;

const STATUS: Record<string, FileStatus> = {
  A: FileStatus.ADDED,
  M: FileStatus.MODIFIED,
  D: FileStatus.DELETED,
  R: FileStatus.RENAMED,
  T: FileStatus.TYPE_CHANGED,
};

/** The files of base..head as the test's git sees them: `--name-status -z -M` and `--numstat -z -M`. */
function gitFiles(repo: string, base: string, head: string, renames = '-M') {
  const ns = gitRaw(repo, 'diff', '--name-status', '-z', renames, base, head).split('\0');
  const names: Array<{ status: FileStatus; path: string; oldPath: string }> = [];
  for (let i = 0; i < ns.length - 1;) {
    const s = ns[i++]!;
    if (s.startsWith('R')) names.push({ status: FileStatus.RENAMED, oldPath: ns[i++]!, path: ns[i++]! });
    else names.push({ status: STATUS[s]!, oldPath: '', path: ns[i++]! });
  }
  const nm = gitRaw(repo, 'diff', '--numstat', '-z', renames, base, head).split('\0');
  const counts: Array<{ insertions: number; deletions: number; binary: boolean }> = [];
  for (let i = 0; i < nm.length - 1;) {
    const [ins, del, path] = nm[i++]!.split('\t') as [string, string, string];
    if (path === '') i += 2;
    counts.push({ insertions: ins === '-' ? 0 : Number(ins), deletions: del === '-' ? 0 : Number(del), binary: ins === '-' });
  }
  return names.map((n, i) => ({ ...n, ...counts[i]! }));
}

const stats = (files: FileDiff[]) =>
  files.map((f) => ({ path: f.path, oldPath: f.oldPath, status: f.status, insertions: f.insertions, deletions: f.deletions, binary: f.binary }));

/** Every page of a run's diff, `pageSize` files at a time. */
async function allPages(h: Harness, id: string, pageSize: number, statOnly = false) {
  const pages: GetRunDiffResponse[] = [];
  let pageToken = '';
  do {
    const page = await h.acme.getRunDiff({ id, pageSize, pageToken, statOnly });
    pages.push(page);
    pageToken = page.nextPageToken;
  } while (pageToken && pages.length < 100);
  return pages;
}

/** A follow of a run to its end that may be awaited later (a failure then, not as an unhandled rejection). */
function finished(h: Harness, id: string): Promise<Run> {
  const p = watchAll(h.acme, id).then(async () => (await h.acme.getWorkflowRun({ id })).run!);
  p.catch(() => undefined);
  return p;
}

describe('GetRunDiff and `ameide runs diff`: a run’s change, read from the branch it pushed', () => {
  let h: Harness;
  /** run 1's repository (made unreachable for a moment), and the repository of runs 2 and 3. */
  let originA: string;
  let originB: string;
  let run1: Run;
  let run2: Promise<Run>;
  let run3: Promise<Run>;
  /** A bare clone of run 1's pushed branch, made by the test. */
  let clone: string;

  beforeAll(async () => {
    h = await startHarness({ worker: true });
    const src = join(h.dir, 'diff-fixture');
    writeFixture(src);
    originA = createOrigin(src, join(h.dir, 'diff-origin-a.git'));
    originB = createOrigin(src, join(h.dir, 'diff-origin-b.git'));
    const plain = { installCommand: '', testCommand: '', env: {} };
    await applySample(h.acme, originA, { ...plain, agentCommand: AGENT }, 'diff-agent');
    await applySample(h.acme, originB, { ...plain, agentCommand: `printf 'One more line.\\n' >> README.md && printf 'x\\n' > added.txt` }, 'diff-small');
    await applySample(h.acme, originB, { ...plain, agentCommand: `printf 'never pushed\\n' >> README.md`, testCommand: 'exit 1' }, 'diff-failing');
  });
  afterAll(() => h?.stop());

  it('has no change while the run is unfinished; the completed run pushed one', { timeout: 300_000 }, async () => {
    const start = (definition: string, id: string) => h.acme.startWorkflowRun({ definition, workItems: [{ id, title: `Change ${id}` }] }).then((r) => r.run!);
    const first = await start('diff-agent', 'DIFF-1');
    const early = await refusal(h.acme.getRunDiff({ id: first.id }));
    expect(early.code).toBe(Code.FailedPrecondition);
    expect(early.message).toMatch(/^the run has no change yet \(status (queued|running)\)$/);
    run2 = finished(h, (await start('diff-small', 'DIFF-2')).id);
    run3 = finished(h, (await start('diff-failing', 'DIFF-3')).id);

    run1 = await finished(h, first.id);
    expect(run1.error).toBe('');
    expect(run1.status).toBe(RunStatus.COMPLETED);
    expect(run1.summary!.pushed).toBe(true);
    clone = join(h.dir, 'diff-clone.git');
    gitRaw(h.dir, 'clone', '--quiet', '--bare', '--single-branch', '--branch', run1.summary!.branch, originA, clone);
    expect(gitRaw(clone, 'rev-parse', 'HEAD').trim()).toBe(run1.summary!.headCommit);
  });

  it('answers Unavailable with git’s message while the repository cannot be read', async () => {
    const away = `${originA}.away`;
    renameSync(originA, away);
    try {
      const r = await refusal(h.acme.getRunDiff({ id: run1.id }));
      expect(r.code).toBe(Code.Unavailable);
      expect(r.message).toMatch(/^the repository cannot be read: fatal: .*does not appear to be a git repository/);
      expect(r.message).not.toContain('\n');
    } finally {
      renameSync(away, originA);
    }
  });

  it('lists every file with the stats and patches git gives for base..head of the pushed branch', async () => {
    const { baseCommit: base, headCommit: head } = run1.summary!;
    const diff = await h.acme.getRunDiff({ id: run1.id });
    expect(diff).toMatchObject({ baseCommit: base, headCommit: head, source: 'branch', nextPageToken: '' });

    const expected = gitFiles(clone, base, head);
    expect(stats(diff.files)).toEqual(expected);
    // What the agent did, as git names it.
    expect(expected.map((f) => [f.status, f.oldPath, f.path, f.binary])).toEqual([
      [FileStatus.ADDED, '', 'assets/icon.bin', true],
      [FileStatus.MODIFIED, '', 'assets/logo.bin', true],
      [FileStatus.ADDED, '', 'docs/release notes.md', false],
      [FileStatus.RENAMED, 'docs/guide.md', 'docs/user guide.md', false],
      [FileStatus.RENAMED, 'lib/util.js', 'lib/helpers.js', false],
      [FileStatus.DELETED, '', 'obsolete.txt', false],
      [FileStatus.MODIFIED, '', 'src/app.js', false],
      [FileStatus.ADDED, '', 'src/naïve "q".txt', false],
    ]);
    expect(diff.filesChanged).toBe(expected.length);
    expect(diff.insertions).toBe(expected.reduce((n, f) => n + f.insertions, 0));
    expect(diff.deletions).toBe(expected.reduce((n, f) => n + f.deletions, 0));
    // The patches, concatenated, are `git diff -M base head`.
    expect(diff.files.map((f) => f.patch).join('')).toBe(gitRaw(clone, 'diff', '-M', base, head));
    expect(diff.files.find((f) => f.path === 'assets/logo.bin')!.patch).toContain('Binary files a/assets/logo.bin and b/assets/logo.bin differ');

    // The run's summary counts the same change without rename detection (a rename is a deletion and an addition).
    const plain = gitFiles(clone, base, head, '--no-renames');
    expect({ files: run1.summary!.filesChanged, insertions: run1.summary!.insertions, deletions: run1.summary!.deletions }).toEqual({
      files: plain.length,
      insertions: plain.reduce((n, f) => n + f.insertions, 0),
      deletions: plain.reduce((n, f) => n + f.deletions, 0),
    });
  });

  it('pages through the files: each exactly once, in order, with totals over all of them', async () => {
    const whole = await h.acme.getRunDiff({ id: run1.id });
    const pages = await allPages(h, run1.id, 2);
    expect(pages).toHaveLength(Math.ceil(whole.files.length / 2));
    expect(pages.map((p) => p.files.length)).toEqual(pages.map((_, i) => Math.min(2, whole.files.length - 2 * i)));
    const paths = pages.flatMap((p) => p.files.map((f) => f.path));
    expect(paths).toEqual(whole.files.map((f) => f.path));
    expect(new Set(paths).size).toBe(paths.length);
    expect(pages.flatMap((p) => p.files)).toEqual(whole.files);
    for (const p of pages) expect([p.filesChanged, p.insertions, p.deletions]).toEqual([whole.filesChanged, whole.insertions, whole.deletions]);
    expect(pages.at(-1)!.nextPageToken).toBe('');

    // stat_only: the same files and stats, no patches.
    const statPages = await allPages(h, run1.id, 3, true);
    expect(statPages.flatMap((p) => stats(p.files))).toEqual(stats(whole.files));
    expect(statPages.flatMap((p) => p.files).every((f) => f.patch === '')).toBe(true);

    // A page size above the limit is refused by the request limits.
    expect((await refusal(h.acme.getRunDiff({ id: run1.id, pageSize: 1001 }))).code).toBe(Code.InvalidArgument);
  });

  it('refuses a forged page token and one of another run', { timeout: 300_000 }, async () => {
    for (const pageToken of ['not a token', 'AAAA', Buffer.from('d1:1:0000000000000000').toString('base64url')]) {
      const r = await refusal(h.acme.getRunDiff({ id: run1.id, pageToken }));
      expect(r.code).toBe(Code.InvalidArgument);
      expect(r.message).toMatch(/^page_token: /);
    }
    const other = await run2;
    expect(other.status).toBe(RunStatus.COMPLETED);
    const foreign = (await h.acme.getRunDiff({ id: other.id, pageSize: 1 })).nextPageToken;
    expect(foreign).not.toBe('');
    const r = await refusal(h.acme.getRunDiff({ id: run1.id, pageToken: foreign }));
    expect(r).toEqual({ code: Code.InvalidArgument, message: expect.stringMatching(/^page_token: belongs to another run/) });
  });

  it('gives a run without renames the totals of its summary; concurrent first calls are answered alike', { timeout: 300_000 }, async () => {
    const other = await run2;
    const again = await h.acme.startWorkflowRun({ planId: other.planId }).then((r) => r.run!);
    const rerun = await finished(h, again.id);
    expect(rerun.status).toBe(RunStatus.COMPLETED);
    // Three calls at once for a head the cache has not fetched yet, and one for a run it has.
    const answers = await Promise.all([
      h.acme.getRunDiff({ id: rerun.id }),
      h.acme.getRunDiff({ id: rerun.id, statOnly: true }),
      h.acme.getRunDiff({ id: rerun.id, pageSize: 1 }),
      h.acme.getRunDiff({ id: other.id }),
    ]);
    for (const a of answers.slice(0, 3)) {
      expect(a.headCommit).toBe(rerun.summary!.headCommit);
      expect([a.filesChanged, a.insertions, a.deletions]).toEqual([rerun.summary!.filesChanged, rerun.summary!.insertions, rerun.summary!.deletions]);
    }
    const first = answers[3]!;
    expect([first.filesChanged, first.insertions, first.deletions]).toEqual([other.summary!.filesChanged, other.summary!.insertions, other.summary!.deletions]);
    expect(first.files.map((f) => [f.path, f.status])).toEqual([
      ['README.md', FileStatus.MODIFIED],
      ['added.txt', FileStatus.ADDED],
    ]);
    // The rerun built on the first run's head: its change is only what it added.
    expect(answers[0]!.baseCommit).toBe(other.summary!.headCommit);
  });

  it('answers NotFound for an unknown run and for a run of another tenant', async () => {
    expect((await refusal(h.acme.getRunDiff({ id: randomUUID() }))).code).toBe(Code.NotFound);
    expect((await refusal(h.acme.getRunDiff({ id: 'not-a-uuid' }))).code).toBe(Code.NotFound);
    expect((await refusal(h.globex.getRunDiff({ id: run1.id }))).code).toBe(Code.NotFound);
  });

  it('refuses a run that did not push, naming its handoff bundle', { timeout: 300_000 }, async () => {
    const failed = await run3;
    expect(failed.status).toBe(RunStatus.HANDED_OFF);
    expect(failed.summary!.pushed).toBe(false);
    const r = await refusal(h.acme.getRunDiff({ id: failed.id }));
    expect(r.code).toBe(Code.FailedPrecondition);
    expect(r.message).toMatch(/^the run did not push its branch \(handed off: test phase failed: .*\); its change is in its handoff bundle/);
    expect(r.message).toContain(`ameide runs handoff ${failed.id}`);
  });

  it('`ameide runs diff --stat` prints git’s stat lines and summary; without it, the patches', async () => {
    const lines: string[] = [];
    const o = { out: (l: string) => void lines.push(...l.split('\n')) };
    expect(await cli(['runs', 'diff', run1.id, '--stat'], o, { clients: { workflows: h.acme } })).toBe(0);
    const { baseCommit: base, headCommit: head } = run1.summary!;
    const git = gitRaw(clone, 'diff', '--stat', '-M', base, head).trimEnd().split('\n');
    // Every line is git's, word for word, but for binary files (git adds their sizes, which the API does not carry).
    const binary = (l: string) => /\| +Bin( |$)/.test(l);
    expect(lines.filter((l) => !binary(l))).toEqual(git.filter((l) => !binary(l)));
    expect(lines.at(-1)).toMatch(/^ 8 files changed, \d+ insertions\(\+\), \d+ deletions\(-\)$/);
    expect(lines).toContainEqual(expect.stringMatching(/^ "src\/naïve \\"q\\"\.txt" +\| +1 \+$/));
    expect(lines).toContainEqual(expect.stringMatching(/^ docs\/\{guide\.md => user guide\.md\} \| +0$/));
    expect(lines.find((l) => l.startsWith(' assets/icon.bin '))).toMatch(/^ assets\/icon\.bin +\| Bin$/);
    expect(git.find((l) => l.startsWith(' assets/icon.bin '))).toMatch(/^ assets\/icon\.bin +\| Bin 0 -> 5 bytes$/);

    const patch: string[] = [];
    expect(await cli(['runs', 'diff', run1.id], { out: (l) => void patch.push(l) }, { clients: { workflows: h.acme }, term: { color: false } })).toBe(0);
    // Not a terminal: no colour.
    expect(patch.join('\n') + '\n').toBe(gitRaw(clone, 'diff', '-M', base, head));

    const json: string[] = [];
    expect(await cli(['runs', 'diff', run1.id, '--stat', '--json'], { out: (l) => void json.push(l) }, { clients: { workflows: h.acme } })).toBe(0);
    const parsed = JSON.parse(json.join('\n')) as { files: Array<{ path: string; status: string; patch?: string }>; filesChanged: number; source: string };
    expect(parsed).toMatchObject({ filesChanged: 8, source: 'branch' });
    expect(parsed.files.find((f) => f.path === 'lib/helpers.js')).toMatchObject({ status: 'renamed', oldPath: 'lib/util.js' });
    expect(parsed.files.every((f) => f.patch === undefined)).toBe(true);
  });
});
