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
