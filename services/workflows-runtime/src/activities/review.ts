import { posix } from 'node:path';
import type { CodingRunInput } from '@ameide/temporal';
import { checkPaths } from '../guardrails/paths.js';
import { Redactor } from '../guardrails/redact.js';
import { workerGit } from './git.js';

/**
 * What the worker learns from the verified import alone (git data, never the sandbox's files):
 * which paths changed and how much, which of them the policy refuses, and whether a secret would
 * leave with the push.
 */
/** Policy violations listed in a run's summary at most; the rest are counted. */
const MAX_LISTED_VIOLATIONS = 100;

export interface WorkReview {
  filesChanged: number;
  insertions: number;
  deletions: number;
  /** `path (reason)` for each path the definition does not allow; secrets in paths are redacted. */
  violations: string[];
  /** Set when the work carries a secret: names the secret and where, never its value. */
  secretFinding?: string;
}

/** A change of one path between the base and the head, from `git diff --raw`. */
interface RawChange {
  newMode: string;
  newOid: string;
  path: string;
}

/**
 * The paths the change touches (with their new mode and object) and its size, from one
 * `git diff --raw --numstat -z`: raw records (`:<modes> <oids> <status>\0<path>\0`), then numstat
 * records (`<insertions>\t<deletions>\t<path>\0`, `-` for binary files).
 */
async function changesOf(importRepo: string, base: string, head: string) {
  const out = (
    await workerGit(importRepo).raw(['diff', '--raw', '--numstat', '-z', '--no-renames', '--no-ext-diff', '--no-textconv', '--abbrev=64', base, head])
  ).toString('utf8');
  const parts = out.split('\0');
  const changes: RawChange[] = [];
  let insertions = 0;
  let deletions = 0;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    if (part.startsWith(':')) {
      const meta = part.slice(1).split(' ');
      changes.push({ newMode: meta[1]!, newOid: meta[3]!, path: parts[++i]! });
      continue;
    }
    const m = /^(\d+|-)\t(\d+|-)\t/.exec(part);
    if (!m) continue;
    insertions += m[1] === '-' ? 0 : Number(m[1]);
    deletions += m[2] === '-' ? 0 : Number(m[2]);
  }
  return { changes, stats: { filesChanged: changes.length, insertions, deletions } };
}

/** A symlink's target leaves the repository (absolute, or `..` past the root). Pure path logic. */
export function linkEscapes(path: string, target: string): boolean {
  if (target.startsWith('/')) return true;
  const resolved = posix.normalize(posix.join(posix.dirname(path), target));
  return resolved === '..' || resolved.startsWith('../');
}

/** Largest object the secret scan reads whole. Bigger ones are refused: a push may not hide in size. */
const MAX_SCANNED_OBJECT = 256 * 1024 * 1024;

/**
 * Push protection: reads every object the run adds (commit messages, trees with their file names,
 * blobs) and looks for every form of every secret of the run. Returns where the first one is.
 */
async function scanForSecrets(importRepo: string, base: string, head: string, secrets: Array<{ name: string; value: string }>): Promise<string | undefined> {
  if (!secrets.length) return undefined;
  const git = workerGit(importRepo);
  const listing = (await git.text(['rev-list', '--objects', head, `^${base}`])).split('\n').filter(Boolean);
  const paths = new Map(
    listing.map((l) => [l.slice(0, l.indexOf(' ') < 0 ? l.length : l.indexOf(' ')), l.indexOf(' ') < 0 ? '' : l.slice(l.indexOf(' ') + 1)]),
  );
  const detectors = secrets.map((s) => ({ name: s.name, redactor: new Redactor([s.value]) }));
  const all = new Redactor(secrets.map((s) => s.value));
  const batch = await git.raw(['cat-file', '--batch'], { input: [...paths.keys()].join('\n') + '\n' });
  let at = 0;
  while (at < batch.length) {
    const nl = batch.indexOf(10, at);
    const [oid, type, sizeText] = batch.subarray(at, nl).toString('utf8').split(' ');
    const size = Number(sizeText);
    if (!Number.isFinite(size)) break;
    if (size > MAX_SCANNED_OBJECT) return `an object of ${size} bytes is too large to scan for secrets`;
    const body = batch.subarray(nl + 1, nl + 1 + size);
    at = nl + 1 + size + 1;
    if (!all.contains(body)) continue;
    const name = detectors.find((d) => d.redactor.contains(body))?.name ?? 'a secret';
    const where =
      type === 'commit'
        ? `the message of commit ${oid!.slice(0, 12)}`
        : type === 'tree'
          ? 'a file name'
          : `the content of ${all.redact(paths.get(oid!) || oid!)}`;
    return `the change contains the secret ${name} in ${where}`;
  }
  return undefined;
}

/** Reviews the work between `base` and `head` in the import repository. */
export async function reviewWork(opts: {
  importRepo: string;
  base: string;
  head: string;
  run: CodingRunInput;
  secrets: Array<{ name: string; value: string }>;
}): Promise<WorkReview> {
  const { importRepo, base, head, run } = opts;
  if (head === base) return { filesChanged: 0, insertions: 0, deletions: 0, violations: [] };
  const redactor = new Redactor(opts.secrets.map((s) => s.value));
  const { changes, stats } = await changesOf(importRepo, base, head);
  const { allowedPaths: allowed, deniedPaths: denied } = run.repo.guardrails;
  const violations = checkPaths([...new Set(changes.map((c) => c.path))].sort(), { allowed, denied }).map((v) => `${v.path} (${v.reason})`);
  const git = workerGit(importRepo);
  for (const c of changes) {
    if (c.newMode !== '120000') continue;
    const target = (await git.raw(['cat-file', 'blob', c.newOid])).toString('utf8');
    if (linkEscapes(c.path, target)) violations.push(`${c.path} (symlink escapes the worktree)`);
  }
  const secretFinding = await scanForSecrets(importRepo, base, head, opts.secrets);
  // Listed up to a bound, so the status update and report that carry them stay small.
  const listed =
    violations.length > MAX_LISTED_VIOLATIONS
      ? [...violations.slice(0, MAX_LISTED_VIOLATIONS), `… and ${violations.length - MAX_LISTED_VIOLATIONS} more`]
      : violations;
  return { ...stats, violations: listed.map((v) => redactor.redact(v.length > 1024 ? `${v.slice(0, 1024)}…` : v)), secretFinding };
}
