import { lstat, open } from 'node:fs/promises';
import { join } from 'node:path';
import { ImportRefused, openUntrusted } from '../activities/exchange.js';

/** The file the sandbox collects the report files into. */
export const COLLECTED = 'reports.dat';
/** At most this many report files, and bytes of them together, are read. */
export const MAX_REPORT_FILES = 100;
/** The file the test command's sandbox writes the collect's exit code to, beside the collected reports. */
export const COLLECT_STATUS = 'collect.status';
export const MAX_REPORT_BYTES = 16 * 1024 * 1024;

/**
 * Run in the sandbox after the test command, in the checkout: every regular file (never a symlink)
 * matching one of the definition's globs (`AMEIDE_REPORT_GLOBS`, one per line; `*` matches across
 * directories, as in `find -path`) goes into one file of the step's output directory, each after a
 * header line `@@ameide-report <bytes> <path>`. The worker reads that file as data; it never reads
 * the checkout.
 *
 * Each glob is looked for only below its literal directories (`reports/*.xml`: in `reports/`), so a
 * checkout's installed dependencies (tens of thousands of files in `node_modules/`) are not walked
 * for it; a glob that begins with a wildcard searches the whole checkout but `.git`. Those
 * directories must be real ones in the checkout (none of them a symlink, none of them `.git`), as a
 * walk from the top would find them.
 */
export const COLLECT_SCRIPT = String.raw`set -eu
out="$AMEIDE_REPORTS_OUT/${COLLECTED}"
: > "$out"
top=$(pwd -P)
printf '%s\n' "$AMEIDE_REPORT_GLOBS" | while IFS= read -r glob; do
  [ -n "$glob" ] || continue
  lit=${'$'}{glob%%[*?[]*}
  case $lit in
    */*) start=./${'$'}{lit%/*} ;;
    *) start=. ;;
  esac
  case $start/ in ./.git/*) continue ;; esac
  [ -d "$start" ] || continue
  [ "$(cd "$start" && pwd -P)" = "$top${'$'}{start#.}" ] || continue
  find "$start" -path ./.git -prune -o -type f -path "./$glob" -print
done | sort -u | head -n ${MAX_REPORT_FILES} | while IFS= read -r f; do
  printf '@@ameide-report %s %s\n' "$(wc -c < "$f")" "${'$'}{f#./}" >> "$out"
  cat "$f" >> "$out"
  printf '\n' >> "$out"
done`;

/** The environment of the collect step. */
export function collectEnv(globs: string[], outDir: string): Record<string, string> {
  // A glob's `**` is find's `*` (which matches `/` too).
  return { AMEIDE_REPORT_GLOBS: globs.map((g) => g.replace(/\*\*\/?/g, '*')).join('\n'), AMEIDE_REPORTS_OUT: outDir };
}

/** Why the collected reports cannot be read. */
export class ReportsUnreadable extends Error {}

/**
 * Reads what the collect step wrote: a plain file (not a symlink, FIFO or device) of at most
 * MAX_REPORT_BYTES, parsed by its header lines. The contents are the sandbox's, as data.
 */
export async function readCollected(outDir: string): Promise<Array<{ path: string; text: string }>> {
  let opened;
  try {
    opened = await openUntrusted(join(outDir, COLLECTED), MAX_REPORT_BYTES);
  } catch (err) {
    if (err instanceof ImportRefused) throw new ReportsUnreadable(`the collected reports are not a plain file of at most ${MAX_REPORT_BYTES} bytes`);
    throw err;
  }
  const { fh, size } = opened;
  let data: Buffer;
  try {
    data = Buffer.alloc(size);
    await fh.read(data, 0, size, 0);
  } finally {
    await fh.close();
  }
  const files: Array<{ path: string; text: string }> = [];
  let at = 0;
  while (at < data.length && files.length < MAX_REPORT_FILES) {
    const eol = data.indexOf(0x0a, at);
    const header = /^@@ameide-report (\d+) (.+)$/.exec(data.subarray(at, eol < 0 ? data.length : eol).toString('utf8'));
    if (eol < 0 || !header) throw new ReportsUnreadable('the collected reports are malformed');
    const bytes = Number(header[1]);
    const start = eol + 1;
    if (start + bytes > data.length) throw new ReportsUnreadable('the collected reports are cut short');
    files.push({ path: header[2]!, text: data.subarray(start, start + bytes).toString('utf8') });
    at = start + bytes + 1;
  }
  return files;
}

/**
 * The collect's exit code as the test command's sandbox wrote it; undefined when it wrote none (the
 * command was killed before the collect could run). Data from the sandbox: only a plain file holding
 * a number is taken; anything else counts as a failed collect.
 */
export async function readCollectStatus(statusFile: string): Promise<{ exitCode: number; detail: string } | undefined> {
  // The sandbox has ended: nothing changes the file between these two looks.
  if (!(await lstat(statusFile).catch(() => undefined))) return undefined;
  let opened;
  try {
    opened = await openUntrusted(statusFile, 16);
  } catch (err) {
    if (!(err instanceof ImportRefused)) throw err;
    return { exitCode: 1, detail: 'its exit status is not a plain file' };
  }
  const buf = Buffer.alloc(opened.size);
  try {
    await opened.fh.read(buf, 0, opened.size, 0);
  } finally {
    await opened.fh.close();
  }
  const text = buf.toString('utf8').trim();
  return /^\d{1,3}$/.test(text) ? { exitCode: Number(text), detail: '' } : { exitCode: 1, detail: 'its exit status is unreadable' };
}

/** The last `maxBytes` of a file the worker wrote (a command's transcript). */
export async function readTail(path: string, maxBytes: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const length = Math.min(size, maxBytes);
    const buf = Buffer.alloc(length);
    await fh.read(buf, 0, length, size - length);
    return buf;
  } finally {
    await fh.close();
  }
}
