import { create } from '@bufbuild/protobuf';
import { GetRunDiffResponseSchema, type FileDiff, type GetRunDiffResponse } from '@ameide/contracts';
import type { WorkflowServiceClient } from '@ameide/sdk';
import { emit, protoJson, type Format, type Output } from './output.js';

/** Every page of a run's diff, as one response (all files, no next page). */
export async function readRunDiff(api: WorkflowServiceClient, id: string, statOnly: boolean): Promise<GetRunDiffResponse> {
  const files: FileDiff[] = [];
  let pageToken = '';
  let last: GetRunDiffResponse;
  do {
    last = await api.getRunDiff({ id, pageToken, statOnly });
    files.push(...last.files);
    pageToken = last.nextPageToken;
  } while (pageToken);
  return create(GetRunDiffResponseSchema, { ...last, files, nextPageToken: '' });
}

/**
 * `ameide runs diff <run> [--stat] [-o json|yaml]`: the run's change (base..head of the branch it pushed).
 * Prints the unified diff (coloured when `color`: on a terminal unless NO_COLOR is set), or with `--stat`
 * one line per file and the totals as `git diff --stat` does (fitted to `columns`, default 80), or the
 * response as JSON or YAML.
 */
export async function runsDiff(
  api: WorkflowServiceClient,
  id: string,
  opts: { stat: boolean; format: Format },
  o: Output,
  term: { color: boolean; columns?: number },
): Promise<number> {
  const diff = await readRunDiff(api, id, opts.stat);
  if (opts.format === 'json' || opts.format === 'yaml') {
    emit(o, opts.format, protoJson(GetRunDiffResponseSchema, diff), () => '');
    return 0;
  }
  if (opts.stat) {
    for (const line of formatDiffStat(diff, term.columns ?? 80)) o.out(line);
    return 0;
  }
  if (!diff.files.length) o.out('no changes');
  for (const f of diff.files) {
    const text = f.patch.replace(/\n$/, '');
    if (text) o.out(term.color ? colorPatch(text) : text);
  }
  return 0;
}

const ANSI = { bold: '\x1b[1m', red: '\x1b[31m', green: '\x1b[32m', cyan: '\x1b[36m', reset: '\x1b[m' };

/** Colours one file's patch as git does: bold headers, cyan hunk headers, red removed and green added lines. */
export function colorPatch(patch: string): string {
  let header = true;
  return patch
    .split('\n')
    .map((line) => {
      if (line.startsWith('diff --git ')) header = true;
      else if (line.startsWith('@@')) header = false;
      if (header) return `${ANSI.bold}${line}${ANSI.reset}`;
      if (line.startsWith('@@')) {
        const end = line.indexOf('@@', 2);
        return end < 0 ? `${ANSI.cyan}${line}${ANSI.reset}` : `${ANSI.cyan}${line.slice(0, end + 2)}${ANSI.reset}${line.slice(end + 2)}`;
      }
      if (line.startsWith('+')) return `${ANSI.green}${line}${ANSI.reset}`;
      if (line.startsWith('-')) return `${ANSI.red}${line}${ANSI.reset}`;
      return line;
    })
    .join('\n');
}

/** A path as git's stat shows it: in C-style quotes when it holds `"`, `\\` or control characters. */
export function quoted(s: string): string {
  const special = /["\\\x00-\x1f\x7f]/g;
  if (!s.match(special)) return s;
  const esc: Record<string, string> = { '\x07': '\\a', '\b': '\\b', '\t': '\\t', '\n': '\\n', '\v': '\\v', '\f': '\\f', '\r': '\\r', '"': '\\"', '\\': '\\\\' };
  return `"${s.replace(special, (c) => esc[c] ?? `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`)}"`;
}

/** A renamed file's name as git's stat shows it: `dir/{old => new}.js`, or `old => new`. */
export function renameName(from: string, to: string): string {
  if (quoted(from) !== from || quoted(to) !== to) return `${quoted(from)} => ${quoted(to)}`;
  let pfx = 0;
  for (let i = 0; i < from.length && i < to.length && from[i] === to[i]; i++) if (from[i] === '/') pfx = i + 1;
  let sfx = 0;
  const adjust = pfx ? 1 : 0;
  for (let a = from.length - 1, b = to.length - 1; a >= pfx - adjust && b >= pfx - adjust && from[a] === to[b]; a--, b--)
    if (from[a] === '/') sfx = from.length - a;
  const aMid = from.slice(pfx, Math.max(pfx, from.length - sfx));
  const bMid = to.slice(pfx, Math.max(pfx, to.length - sfx));
  return pfx + sfx ? `${from.slice(0, pfx)}{${aMid} => ${bMid}}${from.slice(from.length - sfx)}` : `${from} => ${to}`;
}

/** git's closing line of a stat: ` 3 files changed, 10 insertions(+), 2 deletions(-)`. */
export function statSummary(files: number, insertions: number, deletions: number): string {
  if (!files) return ' 0 files changed';
  let s = ` ${files} ${files === 1 ? 'file' : 'files'} changed`;
  if (insertions || !deletions) s += `, ${insertions} ${insertions === 1 ? 'insertion' : 'insertions'}(+)`;
  if (deletions || !insertions) s += `, ${deletions} ${deletions === 1 ? 'deletion' : 'deletions'}(-)`;
  return s;
}

/** `git diff --stat` lines of a diff: ` path | 12 +++---` per file (graph scaled to 80 columns), then the totals. */
export function formatDiffStat(diff: Pick<GetRunDiffResponse, 'files' | 'filesChanged' | 'insertions' | 'deletions'>, width = 80): string[] {
  const rows = diff.files.map((f) => ({ name: f.oldPath && f.oldPath !== f.path ? renameName(f.oldPath, f.path) : quoted(f.path), f }));
  const nameWidth = Math.max(0, ...rows.map((r) => r.name.length));
  const maxChange = Math.max(0, ...rows.filter((r) => !r.f.binary).map((r) => r.f.insertions + r.f.deletions));
  const numWidth = Math.max(String(maxChange).length, rows.some((r) => r.f.binary) ? 3 : 0);
  // " name | 123 " and git's empty last column take nameWidth + numWidth + 6 columns; the graph gets the rest (at least 6).
  const graphWidth = Math.max(6, width - nameWidth - numWidth - 6);
  const scale = (n: number) => (maxChange <= graphWidth || n === 0 ? n : 1 + Math.floor((n * (graphWidth - 1)) / maxChange));
  const lines = rows.map(({ name, f }) => {
    const left = ` ${name.padEnd(nameWidth)} | `;
    if (f.binary) return `${left}${'Bin'.padStart(numWidth)}`;
    const total = f.insertions + f.deletions;
    let plus = f.insertions;
    let minus = f.deletions;
    if (maxChange > graphWidth) {
      let scaled = scale(total);
      if (scaled < 2 && plus && minus) scaled = 2;
      if (plus < minus) {
        plus = scale(plus);
        minus = scaled - plus;
      } else {
        minus = scale(minus);
        plus = scaled - minus;
      }
    }
    return `${left}${String(total).padStart(numWidth)} ${'+'.repeat(plus)}${'-'.repeat(minus)}`.trimEnd();
  });
  return [...lines, statSummary(diff.filesChanged, diff.insertions, diff.deletions)];
}
