import { processEnv, toolEnv } from '@ameide/config';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { appendFile, copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { UsageError } from './args.js';

const execFileAsync = promisify(execFile);

/** Where the follow-up note goes in the restored directory, relative to it. */
export const FOLLOWUP_PATH = '.codex/followup.md';

export interface RestoreHandoffOptions {
  /** The handoff tar.gz as downloaded. */
  bundle: Buffer;
  /** sha256 the run summary recorded for it. */
  expectedSha256: string;
  /** The repository to clone (the plan's repo_url). */
  repoUrl: string;
  /** Directory to clone into; must be missing or empty. */
  dir: string;
}

export interface RestoredHandoff {
  branch: string;
  head: string;
  /** Absolute path of the follow-up note in the restored directory. */
  followup: string;
}

interface Manifest {
  runId: string;
  branch: string;
  baseCommit: string;
  headCommit: string;
  /** Why the branch is not in the bundle (it carried a secret), when it is not. */
  withheld: string;
}

/** The environment git runs in: no GIT_* variables of the caller, only what finding git and its config needs. */
function gitEnv(): Record<string, string> {
  // SSH_AUTH_SOCK lets clones over ssh use the caller's agent.
  return toolEnv({ SSH_AUTH_SOCK: processEnv().SSH_AUTH_SOCK });
}

async function run(cmd: string, args: string[], cwd?: string): Promise<string> {
  try {
    const { stdout } = await execFileAsync(cmd, args, { cwd, env: gitEnv(), maxBuffer: 64 * 1024 * 1024 });
    return stdout.trim();
  } catch (err) {
    const e = err as Error & { stderr?: string };
    // git's and tar's own message is what the user needs: an expected failure, not a stack trace.
    throw Object.assign(new Error(`${cmd} ${args[0]} failed: ${(e.stderr || e.message).trim()}`), { expected: true });
  }
}

const git = (cwd: string, ...args: string[]) => run('git', args, cwd);

/** Whether `dir` can take the clone: missing or an empty directory. */
async function dirState(dir: string): Promise<'missing' | 'empty' | 'taken'> {
  if (!existsSync(dir)) return 'missing';
  if (!statSync(dir).isDirectory()) return 'taken';
  return (await readdir(dir)).length ? 'taken' : 'empty';
}

/**
 * Restores a run's handoff bundle: checks its sha256, clones the repository into `dir`, fetches the
 * run branch from the bundle's git bundle, checks it out and puts the follow-up note into
 * `<dir>/.codex/followup.md`, excluded from git so it never becomes part of the branch.
 */
export async function restoreHandoff(opts: RestoreHandoffOptions): Promise<RestoredHandoff> {
  const actual = createHash('sha256').update(opts.bundle).digest('hex');
  const expected = opts.expectedSha256.trim().toLowerCase();
  if (actual !== expected) throw new UsageError(`handoff bundle checksum mismatch: expected ${expected || '(none)'} got ${actual}`);

  const dir = resolve(opts.dir);
  const state = await dirState(dir);
  if (state === 'taken') throw new UsageError(`${opts.dir} already exists and is not empty; pass --dir with a new or empty directory`);

  const tmp = await mkdtemp(join(tmpdir(), 'ameide-handoff-'));
  let cloned = false;
  try {
    const archive = join(tmp, 'handoff.tar.gz');
    await writeFile(archive, opts.bundle);
    await run('tar', ['-xzf', archive, '--no-same-owner', '-C', tmp]);
    const root = join(tmp, 'handoff');
    const manifest = await readManifest(join(root, 'manifest.json'));
    if (manifest.withheld) {
      throw new UsageError(
        `the run's branch was withheld from this handoff bundle (${manifest.withheld}); its changes, with secrets hidden, are in changes.diff inside the bundle`,
      );
    }
    await run('git', ['check-ref-format', `refs/heads/${manifest.branch}`]).catch(() => {
      throw new UsageError(`handoff bundle names an invalid branch "${manifest.branch}"`);
    });

    cloned = true;
    await mkdir(dir, { recursive: true });
    await run('git', ['clone', '--quiet', '--', opts.repoUrl, dir]);
    // Fetching into the branch that is checked out is refused; only possible if the run branch is the default one.
    if ((await git(dir, 'symbolic-ref', '-q', 'HEAD').catch(() => '')) === `refs/heads/${manifest.branch}`) {
      await git(dir, 'checkout', '--quiet', '--detach');
    }
    const ref = `refs/heads/${manifest.branch}`;
    await git(dir, 'fetch', '--quiet', '--force', join(root, 'branch.bundle'), `${ref}:${ref}`).catch((err: Error) => {
      throw Object.assign(
        new Error(
          `cannot fetch branch ${manifest.branch} from the handoff bundle (does ${opts.repoUrl} still have its base commit ${manifest.baseCommit.slice(0, 12)}?): ${err.message}`,
        ),
        { expected: true },
      );
    });
    await git(dir, 'checkout', '--quiet', manifest.branch, '--');
    const head = await git(dir, 'rev-parse', 'HEAD');
    if (manifest.headCommit && head !== manifest.headCommit) {
      throw Object.assign(new Error(`handoff bundle's branch is at ${head.slice(0, 12)} but its manifest says ${manifest.headCommit.slice(0, 12)}`), {
        expected: true,
      });
    }

    const followup = await placeFollowup(dir, join(root, FOLLOWUP_PATH));
    return { branch: manifest.branch, head, followup };
  } catch (err) {
    // Leave nothing half-restored: the directory was missing or empty before.
    if (cloned) {
      if (state === 'missing') await rm(dir, { recursive: true, force: true });
      else for (const entry of await readdir(dir).catch(() => [])) await rm(join(dir, entry), { recursive: true, force: true });
    }
    throw err;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function readManifest(path: string): Promise<Manifest> {
  let m: Partial<Record<keyof Manifest, unknown>>;
  try {
    m = JSON.parse(await readFile(path, 'utf8')) as typeof m;
  } catch {
    throw new UsageError('handoff bundle has no readable manifest.json');
  }
  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  const manifest = { runId: str(m.runId), branch: str(m.branch), baseCommit: str(m.baseCommit), headCommit: str(m.headCommit), withheld: str(m.withheld) };
  if (!manifest.branch) throw new UsageError('handoff bundle manifest names no branch');
  return manifest;
}

/**
 * Copies the follow-up note to `<dir>/.codex/followup.md` and excludes that path in `.git/info/exclude`,
 * so it stays out of the branch. If the branch itself tracks that path, the note goes beside it as
 * `.codex/followup.handoff.md` instead of overwriting the tracked file.
 */
async function placeFollowup(dir: string, source: string): Promise<string> {
  const tracked = await git(dir, 'ls-files', '--', FOLLOWUP_PATH);
  const rel = tracked ? '.codex/followup.handoff.md' : FOLLOWUP_PATH;
  const gitDir = resolve(dir, await git(dir, 'rev-parse', '--git-dir'));
  await mkdir(join(gitDir, 'info'), { recursive: true });
  await appendFile(join(gitDir, 'info', 'exclude'), `\n# ameide handoff note\n/${rel}\n`);
  const target = join(dir, rel);
  await mkdir(join(dir, '.codex'), { recursive: true });
  if (existsSync(source)) await copyFile(source, target);
  else await writeFile(target, '# Handoff\n\nThe handoff bundle carried no follow-up note.\n');
  return target;
}

/** Loaders for artifact URIs the CLI cannot read by itself. */
export interface FetchArtifactOptions {
  /** Downloads `s3://bucket/key`; the CLI has no S3 settings of its own. */
  s3?: (bucket: string, key: string) => Promise<Buffer>;
}

/** Downloads an artifact by URI: `file://` is read directly, `s3://` needs an injected loader. */
export async function fetchArtifact(uri: string, opts: FetchArtifactOptions = {}): Promise<Buffer> {
  if (uri.startsWith('file:')) {
    try {
      return await readFile(fileURLToPath(uri));
    } catch (err) {
      throw new UsageError(`cannot read ${uri}: ${(err as Error).message}`);
    }
  }
  const s3 = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (s3) {
    if (!opts.s3) throw new UsageError('downloading s3:// handoff bundles needs the S3 artifact store settings');
    return opts.s3(s3[1]!, s3[2]!);
  }
  throw new UsageError(`cannot download ${uri}: only file:// and s3:// artifact URIs are supported`);
}
