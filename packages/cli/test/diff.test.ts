import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { cliColor } from '@ameide/config';
import { FileDiffSchema, FileStatus } from '@ameide/contracts';
import { colorPatch, formatDiffStat, quoted, renameName, statSummary } from '../src/diff.js';

const file = (path: string, insertions: number, deletions: number, more: { oldPath?: string; binary?: boolean } = {}) =>
  create(FileDiffSchema, { path, insertions, deletions, status: more.oldPath ? FileStatus.RENAMED : FileStatus.MODIFIED, ...more });

describe('ameide runs diff: output as git prints it', () => {
  it('shows renames with their common directories once', () => {
    expect(renameName('lib/util.js', 'lib/helpers.js')).toBe('lib/{util.js => helpers.js}');
    expect(renameName('docs/guide.md', 'docs/user guide.md')).toBe('docs/{guide.md => user guide.md}');
    expect(renameName('src/a/x.js', 'src/b/x.js')).toBe('src/{a => b}/x.js');
    expect(renameName('a/x.js', 'x.js')).toBe('a/x.js => x.js');
    expect(renameName('one.txt', 'two.txt')).toBe('one.txt => two.txt');
    // Names git quotes are quoted whole.
    expect(renameName('a/q"1.txt', 'a/q2.txt')).toBe('"a/q\\"1.txt" => a/q2.txt');
    expect(quoted('tab\there')).toBe('"tab\\there"');
    expect(quoted('naïve and spaced.txt')).toBe('naïve and spaced.txt');
  });

  it('words the summary line as git does', () => {
    expect(statSummary(3, 10, 2)).toBe(' 3 files changed, 10 insertions(+), 2 deletions(-)');
    expect(statSummary(1, 1, 0)).toBe(' 1 file changed, 1 insertion(+)');
    expect(statSummary(1, 0, 1)).toBe(' 1 file changed, 1 deletion(-)');
    expect(statSummary(2, 0, 0)).toBe(' 2 files changed, 0 insertions(+), 0 deletions(-)');
    expect(statSummary(0, 0, 0)).toBe(' 0 files changed');
  });

  it('prints one stat line per file and scales the graph to 80 columns', () => {
    const lines = formatDiffStat({
      files: [file('src/app.js', 2, 1), file('lib/helpers.js', 1, 0, { oldPath: 'lib/util.js' }), file('logo.png', 0, 0, { binary: true })],
      filesChanged: 3,
      insertions: 3,
      deletions: 1,
    });
    expect(lines).toEqual([
      ' src/app.js                  |   3 ++-',
      ' lib/{util.js => helpers.js} |   1 +',
      ' logo.png                    | Bin',
      ' 3 files changed, 3 insertions(+), 1 deletion(-)',
    ]);
    const wide = formatDiffStat({ files: [file('big.txt', 900, 100), file('small.txt', 1, 1)], filesChanged: 2, insertions: 901, deletions: 101 });
    for (const l of wide.slice(0, 2)) expect(l.length).toBeLessThanOrEqual(80);
    expect(wide[0]).toMatch(/^ big\.txt {3}\| 1000 \+{50,}-+$/);
    expect(wide[1]).toBe(' small.txt |    2 +-');
  });

  it('colours added, removed and hunk lines, and headers bold', () => {
    const patch = ['diff --git a/x b/x', 'index 1..2 100644', '--- a/x', '+++ b/x', '@@ -1 +1 @@ fn', '-old', '+new', ' same'].join('\n');
    expect(colorPatch(patch).split('\n')).toEqual([
      '\x1b[1mdiff --git a/x b/x\x1b[m',
      '\x1b[1mindex 1..2 100644\x1b[m',
      '\x1b[1m--- a/x\x1b[m',
      '\x1b[1m+++ b/x\x1b[m',
      '\x1b[36m@@ -1 +1 @@\x1b[m fn',
      '\x1b[31m-old\x1b[m',
      '\x1b[32m+new\x1b[m',
      ' same',
    ]);
  });

  it('colours only on a terminal, and never with NO_COLOR set', () => {
    expect(cliColor(true, {})).toBe(true);
    expect(cliColor(false, {})).toBe(false);
    expect(cliColor(true, { NO_COLOR: '1' })).toBe(false);
    expect(cliColor(true, { NO_COLOR: '' })).toBe(true);
  });
});
