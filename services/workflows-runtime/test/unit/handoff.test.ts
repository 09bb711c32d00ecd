import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrigin, git, SAMPLE_REPO } from '@ameide/devstack';
import { fetchArtifact, restoreHandoff } from '@ameide/cli';
import { FileArtifactStore } from '../../src/artifacts.js';
import { EXPORT_SCRIPT, exchangeEnv, importExport, type ImportResult } from '../../src/activities/exchange.js';
import { createHandoffBundle, renderFollowup, type FollowupInfo } from '../../src/activities/handoff.js';

const root = mkdtempSync(join(tmpdir(), 'handoff-test-'));
const runId = 'run-1234abcd-5678';
const branch = 'ameide/run-x';
const followup: FollowupInfo = {
  attempted: 'Add a `divide` function to the calculator',
  failedPhase: 'test',
  reason: 'tests failed (exit 1)',
  lastOutput: 'FAIL test/calc.test.js\n  expected 2 but got ```NaN```\n',
  workItems: [{ id: 'WI-7', title: 'Division' }],
  nextSteps: ['Look at `src/` for the half-written divide function.'],
};

let origin: string;
let worktree: string;
let baseCommit: string;
let firstCommit: string;
let artifacts: FileArtifactStore;
let result: { uri: string; sha256: string; size: number };
let importRepo: string;
let imported: ImportResult;

beforeAll(async () => {
  origin = createOrigin(SAMPLE_REPO, join(root, 'origin.git'));
  worktree = join(root, 'worktree');
  git(root, 'clone', '--quiet', origin, worktree);
  git(worktree, 'checkout', '--quiet', '-b', branch);
  baseCommit = git(worktree, 'rev-parse', 'HEAD');
  // One committed change...
  writeFileSync(join(worktree, 'committed.txt'), 'committed by the agent\n');
  writeFileSync(join(worktree, '.gitignore'), 'ignored.log\n');
  git(worktree, 'add', '-A');
  git(worktree, 'commit', '--quiet', '-m', 'agent: first step');
  firstCommit = git(worktree, 'rev-parse', 'HEAD');
  // ...one uncommitted change to a tracked file, one untracked file and one ignored file.
  writeFileSync(join(worktree, 'committed.txt'), 'committed by the agent\nthen edited, not committed\n');
  writeFileSync(join(worktree, 'untracked.bin'), Buffer.from([0, 1, 2, 255, 254, 10, 0]));
  writeFileSync(join(worktree, 'ignored.log'), 'noise\n');

  const transcriptsDir = join(root, 'transcripts');
  mkdirSync(transcriptsDir);
  writeFileSync(join(transcriptsDir, 'agent.log'), '$ agent\nworking\n[exit 0]\n');
  writeFileSync(join(transcriptsDir, 'test.log'), '$ npm test\nFAIL\n[exit 1]\n');

  // What the worker does: the sandbox's export script commits the leftovers on a temporary index and
  // bundles the work; the worker verifies it into its own import repository and bundles from there.
  importRepo = join(root, 'import.git');
  git(root, 'init', '--quiet', '--bare', importRepo);
  writeFileSync(join(importRepo, 'objects/info/alternates'), join(origin, 'objects') + '\n');
  const out = join(root, 'export');
  mkdirSync(out);
  execFileSync('/bin/sh', ['-c', EXPORT_SCRIPT], {
    cwd: worktree,
    env: {
      PATH: '/usr/bin:/bin',
      HOME: root,
      ...exchangeEnv({ base: baseCommit, branch, mirrorObjects: '', commitMessage: `WIP: handoff of run ${runId}`, outDir: out }),
    },
  });
  imported = await importExport({ outDir: out, importRepo, base: baseCommit, maxBundleBytes: 1 << 30, scratch: root });

  artifacts = new FileArtifactStore(pathToFileURL(join(root, 'artifacts')).href);
  result = await createHandoffBundle({
    repo: importRepo,
    headCommit: imported.head,
    wipCommit: imported.head !== imported.sandboxHead,
    baseCommit,
    branch,
    transcriptsDir,
    runId,
    followup,
    artifacts,
    key: `runs/t1/${runId}/handoff.tar.gz`,
    workDir: join(root, 'work'),
  });
}, 60_000);

afterAll(() => rmSync(root, { recursive: true, force: true }));

const tar = (...args: string[]) => execFileSync('tar', args, { encoding: 'utf8' });

describe('createHandoffBundle', () => {
  it('stores one tar.gz whose sha256 and size match what it returns', () => {
    const stored = readFileSync(fileURLToPath(result.uri));
    expect(result.uri).toBe(artifacts.uri(`runs/t1/${runId}/handoff.tar.gz`));
    expect(createHash('sha256').update(stored).digest('hex')).toBe(result.sha256);
    expect(stored.length).toBe(result.size);
  });

  it("carries the leftovers as a WIP commit with the agent identity, leaves the agent's checkout alone and removes the staging dir", () => {
    expect(imported.sandboxHead).toBe(firstCommit);
    expect(git(importRepo, 'log', '-1', '--format=%s|%an|%ae', imported.head)).toBe(`WIP: handoff of run ${runId}|Ameide Agent|agent@ameide.dev`);
    expect(git(importRepo, 'rev-parse', `${imported.head}~1`)).toBe(firstCommit);
    expect(git(importRepo, 'ls-tree', '-r', '--name-only', imported.head)).not.toContain('ignored.log');
    expect(git(worktree, 'rev-parse', 'HEAD')).toBe(firstCommit);
    expect(git(worktree, 'status', '--porcelain')).not.toBe('');
    expect(existsSync(join(root, 'work'))).toBe(true);
    expect(execFileSync('ls', ['-A', join(root, 'work')], { encoding: 'utf8' }).trim()).toBe('');
  });

  it('packs the bundle, the diff, the transcripts, the follow-up note and the manifest under handoff/', () => {
    const entries = tar('-tzf', fileURLToPath(result.uri))
      .split('\n')
      .filter(Boolean)
      .map((e) => e.replace(/\/$/, ''));
    expect(entries).toEqual(
      expect.arrayContaining([
        'handoff/branch.bundle',
        'handoff/changes.diff',
        'handoff/transcripts/agent.log',
        'handoff/transcripts/test.log',
        'handoff/.codex/followup.md',
        'handoff/manifest.json',
      ]),
    );
    expect(entries.every((e) => e === 'handoff' || e.startsWith('handoff/'))).toBe(true);

    const out = join(root, 'extracted');
    mkdirSync(out);
    tar('-xzf', fileURLToPath(result.uri), '-C', out);
    const manifest = JSON.parse(readFileSync(join(out, 'handoff/manifest.json'), 'utf8'));
    expect(manifest).toMatchObject({ runId, branch, baseCommit, headCommit: imported.head, wipCommit: true });

    const diff = readFileSync(join(out, 'handoff/changes.diff'), 'utf8');
    expect(diff).toContain('then edited, not committed');
    expect(diff).toContain('untracked.bin');
    expect(diff).toContain('GIT binary patch');
    expect(diff).not.toContain('a/ignored.log');
    expect(diff).not.toContain('noise');

    const note = readFileSync(join(out, 'handoff/.codex/followup.md'), 'utf8');
    expect(note).toBe(renderFollowup(followup, runId, branch));
    expect(note).toContain('Failing phase: test');
    expect(note).toContain('tests failed (exit 1)');
    expect(note).toContain('expected 2 but got ```NaN```');
    expect(note).toContain('WI-7: Division');
    expect(note).toContain(`ameide runs handoff ${runId} --dir handoff-${runId.slice(0, 8)}`);
    expect(note).toContain(`git push -u origin ${branch}`);
    // The last output sits in a fence the output's own backticks cannot close.
    expect(note).toMatch(/^````\nFAIL test\/calc\.test\.js\n[\s\S]*\n````$/m);

    // The bundle needs only the base commit: it verifies in a fresh clone of origin.
    const fresh = join(root, 'fresh');
    git(root, 'clone', '--quiet', origin, fresh);
    expect(() => git(fresh, 'bundle', 'verify', join(out, 'handoff/branch.bundle'))).not.toThrow();
  });
});

describe('restoreHandoff', () => {
  it('restores the branch with all the agent work on top of origin/main, and the note outside git', async () => {
    const dir = join(root, 'restored');
    const bundle = await fetchArtifact(result.uri);
    const r = await restoreHandoff({ bundle, expectedSha256: result.sha256, repoUrl: origin, dir });
    expect(r.branch).toBe(branch);
    expect(r.head).toBe(imported.head);
    expect(git(dir, 'rev-parse', '--abbrev-ref', 'HEAD')).toBe(branch);
    expect(git(dir, 'rev-parse', `refs/heads/${branch}`)).toBe(r.head);
    expect(readFileSync(join(dir, 'committed.txt'), 'utf8')).toBe('committed by the agent\nthen edited, not committed\n');
    expect(readFileSync(join(dir, 'untracked.bin'))).toEqual(Buffer.from([0, 1, 2, 255, 254, 10, 0]));
    expect(existsSync(join(dir, 'ignored.log'))).toBe(false);
    expect(git(dir, 'log', '--format=%s', 'origin/main..HEAD').split('\n')).toEqual([`WIP: handoff of run ${runId}`, 'agent: first step']);
    expect(git(dir, 'merge-base', '--is-ancestor', 'origin/main', 'HEAD')).toBe('');
    expect(git(dir, 'rev-parse', 'origin/main')).toBe(baseCommit);

    expect(r.followup).toBe(join(dir, '.codex/followup.md'));
    expect(readFileSync(join(dir, '.codex/followup.md'), 'utf8')).toBe(renderFollowup(followup, runId, branch));
    expect(git(dir, 'status', '--porcelain')).toBe('');
  });

  it('bundles the whole branch when it has no commits beyond the base', async () => {
    const wt = join(root, 'idle');
    git(root, 'clone', '--quiet', origin, wt);
    git(wt, 'checkout', '--quiet', '-b', 'ameide/run-idle');
    const base = git(wt, 'rev-parse', 'HEAD');
    const idle = await createHandoffBundle({
      repo: wt,
      headCommit: base,
      wipCommit: false,
      baseCommit: base,
      branch: 'ameide/run-idle',
      transcriptsDir: join(root, 'no-transcripts'),
      runId: 'idle-run',
      followup: { ...followup, nextSteps: undefined },
      artifacts,
      key: 'runs/t1/idle-run/handoff.tar.gz',
      workDir: join(root, 'work'),
    });
    const dir = join(root, 'restored-idle');
    const r = await restoreHandoff({ bundle: await fetchArtifact(idle.uri), expectedSha256: idle.sha256, repoUrl: origin, dir });
    expect(r).toMatchObject({ branch: 'ameide/run-idle', head: base });
    expect(git(dir, 'status', '--porcelain')).toBe('');
  });

  it('refuses a tampered bundle with the checksum error and creates no directory', async () => {
    const bundle = Buffer.from(await fetchArtifact(result.uri));
    bundle[bundle.length >> 1]! ^= 0xff;
    const dir = join(root, 'tampered');
    const err = await restoreHandoff({ bundle, expectedSha256: result.sha256, repoUrl: origin, dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(new RegExp(`^handoff bundle checksum mismatch: expected ${result.sha256} got [0-9a-f]{64}$`));
    expect((err as { expected?: boolean }).expected).toBe(true);
    expect(existsSync(dir)).toBe(false);
  });

  it('refuses a directory that exists and is not empty', async () => {
    const dir = join(root, 'taken');
    mkdirSync(dir);
    writeFileSync(join(dir, 'keep.txt'), 'mine\n');
    const bundle = await fetchArtifact(result.uri);
    await expect(restoreHandoff({ bundle, expectedSha256: result.sha256, repoUrl: origin, dir })).rejects.toThrow(/already exists and is not empty/);
    expect(readFileSync(join(dir, 'keep.txt'), 'utf8')).toBe('mine\n');
  });
});

describe('fetchArtifact', () => {
  it('needs an injected loader for s3:// and uses it when given', async () => {
    await expect(fetchArtifact('s3://bucket/runs/x/handoff.tar.gz')).rejects.toThrow('downloading s3:// handoff bundles needs the S3 artifact store settings');
    const got = await fetchArtifact('s3://bucket/runs/x/handoff.tar.gz', { s3: async (b, k) => Buffer.from(`${b}|${k}`) });
    expect(got.toString()).toBe('bucket|runs/x/handoff.tar.gz');
  });
});
