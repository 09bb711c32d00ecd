import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const CLI_DIR = resolve(import.meta.dirname, '../..');

/** Builds the CLI bundle (as `make install-cli` does) into a directory of its own; returns its path. */
export function buildBinary(): string {
  const out = join(mkdtempSync(join(tmpdir(), 'ameide-bin-')), 'ameide');
  execFileSync(process.execPath, [join(CLI_DIR, 'build.mjs'), out], { stdio: 'inherit' });
  return out;
}

export interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built binary as a user would: its own process, only the environment given (plus PATH). */
export function runBinary(
  bin: string,
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string; input?: string; stdin?: 'ignore' } = {},
): Promise<Result> {
  return new Promise((done) => {
    const child = execFile(
      bin,
      args,
      { cwd: opts.cwd ?? tmpdir(), env: { PATH: process.env.PATH!, HOME: '/nonexistent', ...opts.env }, timeout: 60_000 },
      (_err, stdout, stderr) => done({ status: child.exitCode, stdout, stderr }),
    );
    if (opts.stdin === 'ignore') child.stdin!.destroy();
    else child.stdin!.end(opts.input);
  });
}
