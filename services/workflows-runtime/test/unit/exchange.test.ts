import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { git } from '@ameide/devstack';
import { HEAD_REF, importExport, ImportRefused, RESTORE_SCRIPT, SNAPSHOT_SCRIPT } from '../../src/activities/exchange.js';

/**
 * The worker's side of the exchange with real git: only a bundle of work that builds on the base,
 * carries one ref and well-formed objects is imported; anything else is refused with a reason.
 */
const root = mkdtempSync(join(tmpdir(), 'exchange-'));
let origin: string;
let base: string;
let n = 0;

const sh = (cwd: string, script: string) =>
  execFileSync('sh', ['-c', script], {
    cwd,
    encoding: 'utf8',
    env: { PATH: '/usr/bin:/bin', HOME: root, GIT_AUTHOR_NAME: 'A', GIT_AUTHOR_EMAIL: 'a@x', GIT_COMMITTER_NAME: 'A', GIT_COMMITTER_EMAIL: 'a@x' },
  });

/** A sandbox-like checkout at the base commit, an empty import repo borrowing the origin's objects, an export dir. */
function fixture() {
  const dir = join(root, `case-${n++}`);
  const work = join(dir, 'work');
  const importRepo = join(dir, 'import.git');
  const out = join(dir, 'out');
  mkdirSync(out, { recursive: true });
  git(dir, 'clone', '--quiet', origin, work);
  git(dir, 'init', '--quiet', '--bare', importRepo);
  writeFileSync(join(importRepo, 'objects/info/alternates'), join(origin, 'objects') + '\n');
  const exportRef = (rev: string) => {
    const commit = git(work, 'rev-parse', rev);
    git(work, 'update-ref', 'refs/ameide/export', commit);
    git(work, 'bundle', 'create', '-q', join(out, 'work.bundle'), `${base}..refs/ameide/export`);
    writeFileSync(join(out, 'head'), `${commit} ${commit}\n`);
    return commit;
  };
  const run = () => importExport({ outDir: out, importRepo, base, maxBundleBytes: 1 << 26, scratch: dir });
  return { work, importRepo, out, exportRef, run };
}

const refusal = async (p: Promise<unknown>) => {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ImportRefused);
  return (err as Error).message;
};

beforeAll(() => {
  const src = join(root, 'src');
  mkdirSync(src);
  sh(src, 'git init -q -b main && echo one > a.txt && git add -A && git commit -qm base');
  origin = join(root, 'origin.git');
  git(root, 'clone', '--quiet', '--bare', src, origin);
  base = git(origin, 'rev-parse', 'main');
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('importExport', () => {
  it('imports work that builds on the base and points the head ref at it', async () => {
    const f = fixture();
    sh(f.work, 'echo two >> a.txt && git commit -qam step1 && echo new > b.txt && git add -A && git commit -qm step2');
    const head = f.exportRef('HEAD');
    expect(await f.run()).toEqual({ head, sandboxHead: head });
    expect(git(f.importRepo, 'rev-parse', HEAD_REF)).toBe(head);
    expect(git(f.importRepo, 'show', `${head}:b.txt`)).toBe('new');
  });

  it('refuses work that does not build on the base (a reset to an orphan history)', async () => {
    const f = fixture();
    sh(f.work, 'git checkout -q --orphan other && echo x > a.txt && git add -A && git commit -qm orphan');
    f.exportRef('HEAD');
    expect(await refusal(f.run())).toMatch(/does not build on the base commit|starts a history of its own/);
    expect(() => git(f.importRepo, 'rev-parse', '--verify', HEAD_REF)).toThrow();
  });

  it('refuses work that merges in a history of its own', async () => {
    const f = fixture();
    sh(
      f.work,
      'git checkout -q --orphan foreign && echo f > foreign.txt && git add -A && git commit -qm foreign && git checkout -q main && git merge -q --allow-unrelated-histories -m merge foreign',
    );
    f.exportRef('HEAD');
    expect(await refusal(f.run())).toMatch(/starts a history of its own/);
  });

  it('refuses a bundle whose ref is not the export ref at the exported commit', async () => {
    const f = fixture();
    sh(f.work, 'echo two >> a.txt && git commit -qam step');
    const head = f.exportRef('HEAD');
    git(f.work, 'bundle', 'create', '-q', join(f.out, 'work.bundle'), `${base}..main`);
    expect(await refusal(f.run())).toMatch(/exactly refs\/ameide\/export at the exported commit/);
    writeFileSync(join(f.out, 'head'), `${base.replace(/^./, (c) => (c === 'a' ? 'b' : 'a'))} ${head}\n`);
    expect(await refusal(f.run())).toMatch(/not a git bundle|exactly refs\/ameide\/export|exported/);
  });

  it('refuses an export that is a symlink, and a tree with a .git entry', async () => {
    const f = fixture();
    sh(f.work, 'echo two >> a.txt && git commit -qam step');
    f.exportRef('HEAD');
    rmSync(join(f.out, 'head'));
    symlinkSync('/etc/hostname', join(f.out, 'head'));
    expect(await refusal(f.run())).toMatch(/not a plain file/);

    const g = fixture();
    // A tree that holds `.git/config` can only be written by hand: git refuses to add it.
    const blob = sh(g.work, 'echo "[core] fsmonitor = touch /tmp/pwned" | git hash-object -w --stdin').trim();
    const gitTree = sh(g.work, `printf '100644 blob ${blob}\\tconfig\\n' | git mktree`).trim();
    const top = sh(g.work, `(git ls-tree HEAD; printf '040000 tree ${gitTree}\\t.git\\n') | git mktree --missing`).trim();
    const commit = sh(g.work, `git commit-tree ${top} -p HEAD -m evil`).trim();
    g.exportRef(commit);
    expect(await refusal(g.run())).toMatch(/failed verification/);
  });
});

/** A retried command phase starts from the checkout its first attempt found, whatever that attempt did. */
describe('the snapshot of a phase start', () => {
  it('puts back HEAD, tracked, untracked and deleted files, and keeps ignored files', () => {
    const { work } = fixture();
    const tmp = join(work, '..', 'tmp');
    mkdirSync(tmp);
    const phase = (script: string) => sh(work, `export TMPDIR='${tmp}' AMEIDE_PHASE=agent\n(\n${script}\n) 2>&1`);
    sh(
      work,
      `printf 'node_modules/\\n' > .gitignore && mkdir -p node_modules && echo dep > node_modules/dep.js && echo 'pending edit' >> README.md && echo draft > draft.txt`,
    );
    const head = git(work, 'rev-parse', 'HEAD');
    const before = sh(work, 'git status --porcelain=v1 -uall && cat README.md draft.txt && ls');
    phase(SNAPSHOT_SCRIPT);
    // The first attempt appends a line, commits, adds and deletes files, and installs something.
    sh(
      work,
      `echo 'appended once' >> README.md && git add -A && git commit -qm attempt && echo new > added.txt && rm draft.txt && mkdir -p sub && echo x > sub/y && echo more > node_modules/more.js`,
    );
    expect(phase(RESTORE_SCRIPT)).toContain('back where agent started');
    expect(git(work, 'rev-parse', 'HEAD')).toBe(head);
    expect(sh(work, 'git status --porcelain=v1 -uall && cat README.md draft.txt && ls')).toBe(before);
    // Ignored files (installed dependencies) are left as they are.
    expect(sh(work, 'ls node_modules')).toBe('dep.js\nmore.js\n');
  });

  it('changes nothing on a retry when the first attempt did not get to record it', () => {
    const { work } = fixture();
    const head = git(work, 'rev-parse', 'HEAD');
    sh(work, 'echo partial > partial.txt');
    expect(sh(work, `AMEIDE_PHASE=agent sh -c '${RESTORE_SCRIPT.replace(/'/g, `'\\''`)}' 2>&1`)).toContain('nothing to undo');
    expect(git(work, 'rev-parse', 'HEAD')).toBe(head);
    expect(sh(work, 'cat partial.txt')).toBe('partial\n');
  });
});
