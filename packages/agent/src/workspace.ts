/**
 * The worktree the agent may touch: every path a tool takes is resolved here, relative to the
 * worktree, and refused when it is absolute, climbs out with `..`, or goes through a symlink that
 * leads outside (or nowhere).
 */
import { lstatSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';

/** A tool call the runtime refuses or cannot do; the model sees the message as the tool's error. */
export class ToolError extends Error {
  override name = 'ToolError';
}

export class Workspace {
  readonly root: string;
  private readonly realRoot: string;

  constructor(root: string) {
    this.root = resolve(root);
    this.realRoot = realpathSync(this.root);
  }

  /** The absolute host path of `path` (relative to the worktree), or a {@link ToolError}. */
  resolve(path: string): string {
    if (typeof path !== 'string' || path === '') throw new ToolError('path is empty');
    if (path.includes('\0')) throw new ToolError('path contains a NUL byte');
    if (isAbsolute(path)) throw new ToolError(`refused: ${path} is an absolute path; paths are relative to the worktree`);
    const abs = resolve(this.root, path);
    if (!within(this.root, abs)) throw new ToolError(`refused: ${path} is outside the worktree`);
    // The deepest part of the path that exists must really be inside the worktree (no symlink out).
    let existing = abs;
    for (;;) {
      try {
        lstatSync(existing);
        break;
      } catch {
        if (existing === this.root) break;
        existing = dirname(existing);
      }
    }
    let real: string;
    try {
      real = realpathSync(existing);
    } catch {
      throw new ToolError(`refused: ${path} goes through a symlink that leads nowhere`);
    }
    if (!within(this.realRoot, real)) throw new ToolError(`refused: ${path} leads outside the worktree through a symlink`);
    return abs;
  }

  /** `abs` as the model sees it: relative to the worktree, with forward slashes. */
  display(abs: string): string {
    return relative(this.root, abs).split(sep).join('/') || '.';
  }
}

function within(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}
