import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const GIT_ENV = {
  GIT_AUTHOR_NAME: 'Sample Author',
  GIT_AUTHOR_EMAIL: 'author@example.com',
  GIT_COMMITTER_NAME: 'Sample Author',
  GIT_COMMITTER_EMAIL: 'author@example.com',
  PATH: '/usr/local/bin:/usr/bin:/bin',
  HOME: tmpdir(),
};

export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, env: GIT_ENV, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/**
 * Creates a bare "origin" repository at `originDir` whose main branch holds the files of `sourceDir`
 * in one commit, as a hosted repository would. Returns the path of the bare repository.
 */
export function createOrigin(sourceDir: string, originDir: string): string {
  rmSync(originDir, { recursive: true, force: true });
  const work = mkdtempSync(join(tmpdir(), 'ameide-origin-'));
  try {
    cpSync(sourceDir, work, { recursive: true, filter: (src) => !src.includes('node_modules') });
    git(work, 'init', '--quiet', '--initial-branch=main');
    git(work, 'add', '-A');
    git(work, 'commit', '--quiet', '-m', 'Initial commit');
    mkdirSync(originDir, { recursive: true });
    git(originDir, 'clone', '--quiet', '--bare', work, originDir);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return originDir;
}
