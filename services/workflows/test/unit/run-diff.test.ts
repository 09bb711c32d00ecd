import { describe, expect, it } from 'vitest';
import { FileStatus } from '@ameide/contracts';
import { InvalidFieldError } from '../../src/errors.js';
import { decodePageToken, encodePageToken } from '../../src/handlers/diff.js';
import { assignPatches, diffHeader, firstLine, normaliseRepoUrl, parseDiffStats, quotePath, splitPatches, type ChangedFile } from '../../src/runs/diff.js';

const HEAD = 'a'.repeat(40);
const RUN = '5b7c1f9e-3c1d-4c55-9a53-0f4d7d1e2a11';

describe('run diff: page tokens', () => {
  it('round-trips an offset for the same run and head', () => {
    const t = encodePageToken(200, RUN, HEAD);
    expect(t).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(t.length).toBeLessThanOrEqual(256);
    expect(decodePageToken(t, RUN, HEAD)).toBe(200);
  });

  it.each([
    ['another run', () => encodePageToken(2, '00000000-0000-4000-8000-000000000000', HEAD), /^page_token: belongs to another run/],
    ['another head of the same run', () => encodePageToken(2, RUN, 'b'.repeat(40)), /^page_token: belongs to another run/],
    ['not base64url', () => 'a+b/c=', /^page_token: is not a page token/],
    ['garbage', () => Buffer.from('hello').toString('base64url'), /^page_token: is not a page token/],
    ['a negative offset', () => Buffer.from('d1:-1:0000000000000000').toString('base64url'), /^page_token: is not a page token/],
  ])('refuses a token of %s', (_what, token, message) => {
    let err: unknown;
    try {
      decodePageToken(token(), RUN, HEAD);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidFieldError);
    expect((err as Error).message).toMatch(message);
  });
});

describe('run diff: reading git output', () => {
  it('zips --name-status -z and --numstat -z, renames and binary files included', () => {
    const ns = ['M', 'a b.txt', 'R087', 'old/x.js', 'new/x.js', 'A', 'img.png', 'D', 'gone', 'T', 'link', ''].join('\0');
    const nm = ['3\t1\ta b.txt', '1\t0\t', 'old/x.js', 'new/x.js', '-\t-\timg.png', '0\t4\tgone', '1\t1\tlink', ''].join('\0');
    expect(parseDiffStats(ns, nm)).toEqual([
      { path: 'a b.txt', oldPath: '', status: FileStatus.MODIFIED, insertions: 3, deletions: 1, binary: false },
      { path: 'new/x.js', oldPath: 'old/x.js', status: FileStatus.RENAMED, insertions: 1, deletions: 0, binary: false },
      { path: 'img.png', oldPath: '', status: FileStatus.ADDED, insertions: 0, deletions: 0, binary: true },
      { path: 'gone', oldPath: '', status: FileStatus.DELETED, insertions: 0, deletions: 4, binary: false },
      { path: 'link', oldPath: '', status: FileStatus.TYPE_CHANGED, insertions: 1, deletions: 1, binary: false },
    ]);
    expect(parseDiffStats('', '')).toEqual([]);
  });

  it('refuses stats that do not line up', () => {
    expect(() => parseDiffStats('M\0a\0', '1\t1\tb\0')).toThrow(/disagree/);
    expect(() => parseDiffStats('M\0a\0M\0b\0', '1\t1\ta\0')).toThrow(/2 files .* but 1/);
  });

  it('quotes paths as git does with core.quotePath=false', () => {
    expect(quotePath('a/docs/release notes.md')).toBe('a/docs/release notes.md');
    expect(quotePath('a/naïve.txt')).toBe('a/naïve.txt');
    expect(quotePath('a/quo"te.txt')).toBe('"a/quo\\"te.txt"');
    expect(quotePath('a/tab\tname\\x\x01')).toBe('"a/tab\\tname\\\\x\\001"');
    expect(diffHeader({ path: 'lib/helpers.js', oldPath: 'lib/util.js' })).toBe('diff --git a/lib/util.js b/lib/helpers.js');
  });

  it('splits a diff at its file headers and gives each file its pieces (two for a type change)', () => {
    const out = [
      'diff --git a/a b/a\nindex 1..2 100644\n--- a/a\n+++ b/a\n@@ -1 +1 @@\n-x\n+diff --git inside a line\n',
      'diff --git a/link b/link\ndeleted file mode 100644\n',
      'diff --git a/link b/link\nnew file mode 120000\n',
      'diff --git a/old b/new\nsimilarity index 100%\nrename from old\nrename to new\n',
    ];
    const pieces = splitPatches(Buffer.from(out.join('')));
    expect(pieces.map((p) => p.header)).toEqual(['diff --git a/a b/a', 'diff --git a/link b/link', 'diff --git a/link b/link', 'diff --git a/old b/new']);
    const f = (path: string, status: FileStatus, oldPath = ''): ChangedFile => ({ path, oldPath, status, insertions: 0, deletions: 0, binary: false });
    const files = [f('a', FileStatus.MODIFIED), f('link', FileStatus.TYPE_CHANGED), f('new', FileStatus.RENAMED, 'old')];
    expect(assignPatches(pieces, files)).toEqual([out[0], out[1]! + out[2]!, out[3]]);
    // Pieces of other files, or one missing: they do not line up.
    expect(assignPatches(pieces, files.slice(0, 2))).toBeUndefined();
    expect(assignPatches(pieces.slice(1), files)).toBeUndefined();
    expect(splitPatches(Buffer.alloc(0))).toEqual([]);
  });

  it('keeps passwords of repository URLs out of git messages', () => {
    expect(firstLine("\nfatal: unable to access 'https://bot:s3cret@git.example.com/r.git/': Could not resolve host\nmore")).toBe(
      "fatal: unable to access 'https://bot@git.example.com/r.git/': Could not resolve host",
    );
  });

  it('treats local paths and file URLs as local, refuses URLs that git would read as options', () => {
    expect(normaliseRepoUrl('/srv/r.git')).toEqual({ url: '/srv/r.git', local: true });
    expect(normaliseRepoUrl('file:///srv/r.git')).toEqual({ url: 'file:///srv/r.git', local: true });
    expect(normaliseRepoUrl('https://git.example.com/r.git')).toEqual({ url: 'https://git.example.com/r.git', local: false });
    expect(normaliseRepoUrl('git@git.example.com:r.git')).toEqual({ url: 'git@git.example.com:r.git', local: false });
    expect(() => normaliseRepoUrl('--upload-pack=touch /tmp/x')).toThrow(/must not start with "-"/);
    expect(() => normaliseRepoUrl('')).toThrow(/names no repository/);
  });
});
