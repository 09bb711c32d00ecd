import { constants, createWriteStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import { AGENT_IDENTITY, workerGit, type GitLimits } from './git.js';

/**
 * How the sandbox's work crosses into the worker. The sandbox has a git repository of its own (the
 * checkout, borrowing the mirror's objects read-only). The worker never runs git there: after each
 * phase a fixed script *inside the sandbox* commits what is left uncommitted on a temporary index
 * and writes a git bundle of everything since the base commit. The worker reads that bundle as
 * data, checks it (only one ref, prerequisites reachable from the base, the head descends from the
 * base, objects pass fsck) and fetches it into its own import repository, from which the path
 * policy, push protection, summary, diff, handoff and push are all computed.
 */

/** Environment of the sandbox's git steps (the values the scripts read; nothing secret). */
export function exchangeEnv(values: {
  base: string;
  branch: string;
  mirrorObjects: string;
  commitMessage: string;
  outDir?: string;
  /** The date of a commit the step makes (ISO 8601). Fixed per attempt of an activity, so a retried export makes the same commit. */
  commitTime?: string;
}): Record<string, string> {
  const date = values.commitTime ? `@${Math.floor(Date.parse(values.commitTime) / 1000)} +0000` : undefined;
  return {
    ...(date ? { GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date } : {}),
    AMEIDE_BASE: values.base,
    AMEIDE_BRANCH: values.branch,
    AMEIDE_MIRROR_OBJECTS: values.mirrorObjects,
    AMEIDE_COMMIT_MESSAGE: values.commitMessage,
    AMEIDE_EXPORT_DIR: values.outDir ?? '',
    GIT_AUTHOR_NAME: AGENT_IDENTITY.name,
    GIT_AUTHOR_EMAIL: AGENT_IDENTITY.email,
    GIT_COMMITTER_NAME: AGENT_IDENTITY.name,
    GIT_COMMITTER_EMAIL: AGENT_IDENTITY.email,
    GIT_CONFIG_NOSYSTEM: '1',
  };
}

/** Sandbox git without the checkout's hooks, fsmonitor or background maintenance. */
const SANDBOX_GIT = 'g() { git -c core.hooksPath=/dev/null -c core.fsmonitor=false -c gc.auto=0 -c maintenance.auto=false "$@"; }';

/** Sandbox script: the run's checkout on the work branch at the base commit, objects borrowed from the mirror. */
export const CHECKOUT_SCRIPT = [
  'set -e',
  'git init -q -b "$AMEIDE_BRANCH" .',
  'printf "%s\\n" "$AMEIDE_MIRROR_OBJECTS" > .git/objects/info/alternates',
  'printf "[user]\\n\\tname = %s\\n\\temail = %s\\n" "$GIT_AUTHOR_NAME" "$GIT_AUTHOR_EMAIL" >> .git/config',
  // On the unborn work branch, this points it at the base and checks the base out.
  'git reset -q --hard "$AMEIDE_BASE"',
].join('\n');

/**
 * Sandbox script: commits whatever is uncommitted on a temporary index (the agent's own HEAD and
 * index stay as they are), then bundles everything since the base. Writes `head` (the exported
 * commit and the sandbox's HEAD) and, when there is work, `work.bundle` into the export directory.
 */
export const EXPORT_SCRIPT = [
  'set -e',
  SANDBOX_GIT,
  'out="$AMEIDE_EXPORT_DIR"',
  'set -- $(g rev-parse --git-path index "HEAD^{commit}" "HEAD^{tree}")',
  'index=$1 head=$2 headtree=$3',
  'export GIT_INDEX_FILE="$out/index"',
  'cp "$index" "$GIT_INDEX_FILE" 2>/dev/null || g read-tree HEAD',
  'g add -A .',
  'tree=$(g write-tree)',
  'if [ "$tree" = "$headtree" ]; then commit=$head',
  'else commit=$(printf "%s\\n" "$AMEIDE_COMMIT_MESSAGE" | g commit-tree "$tree" -p "$head"); fi',
  'if [ "$commit" != "$AMEIDE_BASE" ]; then',
  '  g update-ref refs/ameide/export "$commit"',
  '  g bundle create -q "$out/work.bundle" "$AMEIDE_BASE..refs/ameide/export"',
  'fi',
  'printf "%s %s\\n" "$commit" "$head" > "$out/head"',
].join('\n');

/** The identity of the snapshot commits, set inside the scripts (they run before the phase's command, in its shell). */
const SNAPSHOT_IDENTITY = `export GIT_AUTHOR_NAME='${AGENT_IDENTITY.name}' GIT_AUTHOR_EMAIL='${AGENT_IDENTITY.email}' GIT_COMMITTER_NAME='${AGENT_IDENTITY.name}' GIT_COMMITTER_EMAIL='${AGENT_IDENTITY.email}'`;

/**
 * Prelude of the first attempt of a command phase, run in the phase's own sandbox just before its
 * command (see `prelude` in sandboxArgv): records the checkout as the phase finds it (HEAD, and every
 * tracked and untracked file, written on a temporary index; ignored files such as installed
 * dependencies are not recorded) as `refs/ameide/phase-start/$AMEIDE_PHASE`.
 */
export const SNAPSHOT_SCRIPT = [
  'set -e',
  SANDBOX_GIT,
  SNAPSHOT_IDENTITY,
  'export GIT_INDEX_FILE="$TMPDIR/ameide-snapshot.index"',
  // The checkout's own index (its stat data spares re-reading unchanged files); without one, HEAD's.
  'cp .git/index "$GIT_INDEX_FILE" 2>/dev/null || g read-tree HEAD',
  'g add -A .',
  'tree=$(g write-tree)',
  'g update-ref "refs/ameide/phase-start/$AMEIDE_PHASE" "$(echo "start of $AMEIDE_PHASE" | g commit-tree "$tree" -p HEAD)"',
  'rm -f "$GIT_INDEX_FILE"',
].join('\n');

/**
 * Prelude of a retried attempt of a command phase: puts the checkout back as the phase found it.
 * HEAD and the branch go back (commits of the failed attempt are dropped), files the attempt added
 * are removed, changed and deleted files come back. Ignored files stay as they are. Without a
 * snapshot the first attempt never started its command, so there is nothing to undo. Says what it
 * did on stderr (the phase's transcript).
 */
export const RESTORE_SCRIPT = [
  'set -e',
  SANDBOX_GIT,
  'snap=$(g rev-parse -q --verify "refs/ameide/phase-start/$AMEIDE_PHASE^{commit}") || { echo "[ameide] retried attempt: nothing to undo" >&2; exit 0; }',
  // Files as recorded (the ignore rules too, before anything is cleaned by them), then away with
  // what the attempt added, then HEAD back; the index ends as HEAD's, as after the checkout.
  'g read-tree -u --reset "$snap"',
  'g clean -fdq',
  'g reset -q --soft "$snap^"',
  'g reset -q',
  'echo "[ameide] retried attempt: the checkout is back where $AMEIDE_PHASE started" >&2',
].join('\n');

/** Why the sandbox's work was not accepted; the run fails with this message. */
export class ImportRefused extends Error {}

const OID = /^[0-9a-f]{40}([0-9a-f]{24})?$/;
const EXPORT_REF = 'refs/ameide/export';
/** The verified head of the run's work in the import repository. */
export const HEAD_REF = 'refs/ameide/head';

/**
 * Opens a file the sandbox wrote, refusing anything but a regular file (a symlink, FIFO or device
 * could make the worker read, or block on, something else) and anything over `maxBytes`.
 */
export async function openUntrusted(path: string, maxBytes: number) {
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch((err: NodeJS.ErrnoException) => {
    throw new ImportRefused(err.code === 'ENOENT' ? 'the sandbox wrote no export' : `the export is not a plain file (${err.code})`);
  });
  const st = await fh.stat();
  if (!st.isFile() || st.size > maxBytes) {
    await fh.close();
    throw new ImportRefused(st.isFile() ? `the exported work is larger than ${maxBytes} bytes` : 'the export is not a plain file');
  }
  return { fh, size: st.size };
}

/** The header of a git bundle (v2 or v3): prerequisites and refs. */
export interface BundleHeader {
  prerequisites: string[];
  refs: Array<{ oid: string; name: string }>;
  /** Bytes of the header; the pack follows. */
  length: number;
}

/** Parses a bundle's header; throws ImportRefused for anything that is not a plain, unfiltered bundle. */
export function parseBundleHeader(head: Buffer): BundleHeader {
  const end = head.indexOf('\n\n');
  if (end < 0) throw new ImportRefused('the export is not a git bundle');
  const lines = head.subarray(0, end).toString('utf8').split('\n');
  const sig = lines.shift();
  if (sig !== '# v2 git bundle' && sig !== '# v3 git bundle') throw new ImportRefused('the export is not a git bundle');
  const out: BundleHeader = { prerequisites: [], refs: [], length: end + 2 };
  for (const line of lines) {
    if (line.startsWith('@')) {
      if (line !== '@object-format=sha1' && line !== '@object-format=sha256')
        throw new ImportRefused(`the export's bundle has an unsupported capability ${line.slice(0, 40)}`);
    } else if (line.startsWith('-')) {
      const oid = line.slice(1).split(' ')[0]!;
      if (!OID.test(oid)) throw new ImportRefused("the export's bundle has a malformed prerequisite");
      out.prerequisites.push(oid);
    } else {
      const [oid, name] = [line.slice(0, line.indexOf(' ')), line.slice(line.indexOf(' ') + 1)];
      if (!OID.test(oid)) throw new ImportRefused("the export's bundle has a malformed ref");
      out.refs.push({ oid, name });
    }
  }
  return out;
}

export interface ImportResult {
  /** The verified head of the run's work (the base when there is none). */
  head: string;
  /** The sandbox's own HEAD when the export was made (differs from `head` when leftovers were committed). */
  sandboxHead: string;
}

/**
 * Reads the export the sandbox wrote to `outDir`, verifies it and fetches it into the worker's
 * import repository as {@link HEAD_REF}. Throws ImportRefused when the work is not acceptable.
 */
export async function importExport(opts: {
  outDir: string;
  importRepo: string;
  base: string;
  maxBundleBytes: number;
  scratch: string;
  limits?: GitLimits;
}): Promise<ImportResult> {
  const { fh: headFile } = await openUntrusted(join(opts.outDir, 'head'), 200);
  const [head = '', sandboxHead = ''] = (await headFile.readFile('utf8').finally(() => headFile.close())).trim().split(' ');
  if (!OID.test(head) || !OID.test(sandboxHead)) throw new ImportRefused('the sandbox wrote a malformed export');
  const git = workerGit(opts.importRepo, undefined, opts.limits);
  if (head === opts.base) {
    await git.raw(['update-ref', HEAD_REF, head]);
    return { head, sandboxHead };
  }
  const { fh, size } = await openUntrusted(join(opts.outDir, 'work.bundle'), opts.maxBundleBytes);
  // The worker's own copy: what is checked is exactly what is fetched.
  const copy = join(opts.scratch, 'import.bundle');
  try {
    await pipeline(fh.createReadStream({ start: 0, end: Math.max(0, size - 1) }), createWriteStream(copy, { mode: 0o600 }));
    const prefix = Buffer.alloc(Math.min(size, 1 << 16));
    const copyHandle = await open(copy, 'r');
    await copyHandle.read(prefix, 0, prefix.length, 0).finally(() => copyHandle.close());
    const header = parseBundleHeader(prefix);
    if (header.refs.length !== 1 || header.refs[0]!.name !== EXPORT_REF || header.refs[0]!.oid !== head) {
      throw new ImportRefused(`the export's bundle must carry exactly ${EXPORT_REF} at the exported commit`);
    }
    for (const p of header.prerequisites) {
      if (p === opts.base) continue;
      const ok = await git.test(['merge-base', '--is-ancestor', p, opts.base]).catch(() => false);
      if (!ok) throw new ImportRefused(`the exported work builds on ${p.slice(0, 12)}, which is not part of the base commit's history`);
    }
    // The pack goes through index-pack --strict (every object checked, as fsck would: no `.git`
    // or `..` paths, no malformed trees) into the worker's repository; thin packs take their bases
    // from the mirror.
    await git.raw(['index-pack', '--stdin', '--fix-thin', '--strict'], { inputFile: { path: copy, start: header.length } }).catch((err: Error) => {
      if (opts.limits?.signal?.aborted) throw err;
      throw new ImportRefused(`the exported work failed verification: ${err.message}`);
    });
    await verifyHistory(opts.importRepo, opts.base, head, opts.limits);
    await git.raw(['update-ref', HEAD_REF, head]);
    return { head, sandboxHead };
  } finally {
    await fh.close().catch(() => undefined);
    await rm(copy, { force: true });
  }
}

/** Most commits one run may add. */
const MAX_COMMITS = 10_000;

/**
 * The head must descend from the base, and every commit the run added must have parents that are
 * either commits it added or part of the base's history: no foreign history rides along.
 */
async function verifyHistory(importRepo: string, base: string, head: string, limits?: GitLimits): Promise<void> {
  const git = workerGit(importRepo, undefined, limits);
  // One walk: every commit the run added with its parents, and the boundary (the parents outside,
  // all of them in the base's history by definition). The head descends from the base exactly when
  // the base is on that boundary; history from elsewhere would have to start with a root commit.
  const lines = (
    await git.text(['rev-list', '--parents', '--boundary', `--max-count=${MAX_COMMITS + 1}`, head, `^${base}`]).catch((err: Error) => {
      if (limits?.signal?.aborted) throw err;
      throw new ImportRefused('the exported bundle does not contain the exported commit');
    })
  )
    .split('\n')
    .filter(Boolean);
  const added = lines.filter((l) => !l.startsWith('-'));
  const boundary = new Set(lines.filter((l) => l.startsWith('-')).map((l) => l.slice(1).split(' ')[0]!));
  if (added.length > MAX_COMMITS) throw new ImportRefused(`the exported work has more than ${MAX_COMMITS} commits`);
  if (!boundary.has(base)) throw new ImportRefused('the exported work does not build on the base commit (was the branch reset or replaced?)');
  for (const l of added) {
    if (l.split(' ').length < 2) throw new ImportRefused(`commit ${l.slice(0, 12)} starts a history of its own`);
  }
}
