import { lstat, readlink, realpath } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';

/**
 * Turns a glob into a RegExp over repo-relative paths with `/` separators: `**` crosses directories,
 * `*` and `?` stay within one segment. A pattern ending in `/**` also matches the directory itself.
 */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      const slash = glob[i + 2] === '/';
      re += slash ? '(?:.*/)?' : '.*';
      i += slash ? 2 : 1;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  if (glob.endsWith('/**')) re = re.replace(/\.\*$/, '(?:.*)?').replace(/\/\(\?:\.\*\)\?$/, '(?:/.*)?');
  return new RegExp(`^${re}$`);
}

/** Which paths a run may change. */
export interface PathPolicy {
  allowed: string[];
  denied: string[];
}

/** A path the run may not change, and why. */
export interface PathViolation {
  path: string;
  reason: 'not allowed' | 'denied' | 'symlink escapes the worktree';
}

/** Checks changed paths against the allowed and denied globs (denied wins). */
export function checkPaths(paths: string[], policy: PathPolicy): PathViolation[] {
  const allowed = policy.allowed.map(globToRegExp);
  const denied = policy.denied.map(globToRegExp);
  const out: PathViolation[] = [];
  for (const p of paths) {
    if (denied.some((r) => r.test(p))) out.push({ path: p, reason: 'denied' });
    else if (!allowed.some((r) => r.test(p))) out.push({ path: p, reason: 'not allowed' });
  }
  return out;
}

/** True when `target` is `root` or inside it. */
function inside(root: string, target: string): boolean {
  const rel = relative(root, target);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel) && rel.split(sep)[0] !== '..');
}

/**
 * Changed paths that are symlinks pointing outside the worktree (directly, or through other links).
 * A dangling link counts by where it points, so a link to `/etc/shadow` is caught even if unreadable.
 */
export async function symlinkEscapes(worktree: string, paths: string[]): Promise<PathViolation[]> {
  const root = await realpath(worktree);
  const out: PathViolation[] = [];
  for (const p of paths) {
    const abs = join(root, p);
    const st = await lstat(abs).catch(() => undefined);
    if (!st?.isSymbolicLink()) continue;
    const target = resolve(dirname(abs), await readlink(abs));
    const real = await realpath(target).catch(() => target);
    if (!inside(root, target) || !inside(root, real)) out.push({ path: p, reason: 'symlink escapes the worktree' });
  }
  return out;
}
