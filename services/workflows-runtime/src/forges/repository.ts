const SCHEMES = new Set(['https:', 'http:', 'ssh:', 'git:', 'git+ssh:', 'ssh+git:']);

/** `[user@]host:path`, git's scp-like syntax; the host has no slash and the path does not start with `//`. */
const SCP_LIKE = /^(?:[^@/\s]+@)?([^:/\s]+):(?!\/\/)(.+)$/;

/**
 * Derives "owner/name" (GitHub) or "group/subgroup/project" (GitLab) from a git remote URL:
 * `https://github.com/o/r.git`, `git@github.com:o/r.git`, `ssh://git@gitlab.example.com:2222/g/s/p.git`,
 * with or without credentials, `.git` or a trailing slash. A GitLab web URL (`.../g/p/-/tree/main`) gives `g/p`.
 * Undefined when it cannot: not a URL, a local path or `file://`, or fewer than two path segments. A GitLab
 * installed under a relative URL root (`https://host/gitlab/g/p.git`) cannot be told apart: the root stays in.
 */
export function repositoryFromUrl(repoUrl: string): string | undefined {
  const raw = repoUrl.trim();
  if (!raw) return undefined;
  let path: string | undefined;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      return undefined;
    }
    if (!SCHEMES.has(url.protocol) || !url.hostname) return undefined;
    try {
      path = decodeURIComponent(url.pathname);
    } catch {
      return undefined;
    }
  } else {
    const m = SCP_LIKE.exec(raw);
    // A single letter before the colon is a Windows drive (C:\repo or C:/repo), not a host.
    if (!m || m[1].length < 2) return undefined;
    path = m[2];
  }
  return repositoryFromPath(path);
}

function repositoryFromPath(path: string): string | undefined {
  let p = path.replace(/[?#].*$/, '');
  const dash = p.indexOf('/-/');
  if (dash >= 0) p = p.slice(0, dash);
  p = p.replace(/^\/+/, '').replace(/\/+$/, '');
  p = p.replace(/\.git$/i, '').replace(/\/+$/, '');
  const segments = p.split('/');
  if (segments.length < 2) return undefined;
  if (segments.some((s) => s === '' || s === '.' || s === '..' || /[\s\\:]/.test(s))) return undefined;
  return segments.join('/');
}
